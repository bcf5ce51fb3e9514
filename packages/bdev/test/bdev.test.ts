// The bdev layer itself: opening and claims, the checks every I/O passes (range, type, a
// closed descriptor, a read-only one), splitting at maxIoBlocks, the I/O pool running dry
// as a value, stats, and hot remove cascading up a stack.
import { afterAll, describe, expect, it } from 'vitest'
import { BDEV_NO_IO, BdevError, createMallocBdev, createPassthruBdev, NvmeStatus, nvmeStatusName, statusSc, statusSct } from '../src/index.js'
import { fixture, type Fixture, io, list, poolsFull, random, read, readBlocks, same, write, writeBlocks } from './helpers.js'

const open: Fixture[] = []
afterAll(async () => {
  for (const f of open) await f.close()
})
async function fx(): Promise<Fixture> {
  const f = await fixture()
  open.push(f)
  return f
}

describe('the bdev layer', () => {
  it('checks each I/O: LBA range, supported type, lengths; completes after the call returns', async () => {
    const f = await fx()
    createMallocBdev(f.bdevs, { name: 'm0', blockCount: 16, blockSize: 512 })
    const d = f.bdevs.open('m0', { write: true })
    const buf = list([f.local(0), 1024])
    let sync = true
    let status = -1
    expect(d.readv(f.ch, buf, null, 15, 2, (_: null, s) => ((status = s), expect(sync).toBe(false)), null)).toBe(0)
    sync = false
    await new Promise((r) => setImmediate(r))
    expect(status).toBe(NvmeStatus.LbaOutOfRange)
    expect(await readBlocks(d, f.ch, buf, null, 14, 2)).toBe(NvmeStatus.Success)
    // lengths that do not match the blocks are a programming error, thrown at once
    expect(() => d.readv(f.ch, list([f.local(0), 1000]), null, 0, 2, () => {}, null)).toThrow(BdevError)
    expect(() => d.readv(f.ch, buf, null, 0, 0, () => {}, null)).toThrow(/numBlocks/)
    // a read-only descriptor refuses writes
    const ro = f.bdevs.open('m0')
    expect(() => ro.writev(f.ch, buf, null, 0, 2, () => {}, null)).toThrow(expect.objectContaining({ code: 'BDEV_READ_ONLY' }))
    ro.close()
    expect(() => ro.readv(f.ch, buf, null, 0, 2, () => {}, null)).toThrow(expect.objectContaining({ code: 'BDEV_STATE' }))
    d.close()
  })

  it('encodes NVMe statuses as SCT and SC', () => {
    expect([statusSct(NvmeStatus.GuardCheckError), statusSc(NvmeStatus.GuardCheckError)]).toEqual([2, 0x82])
    expect([statusSct(NvmeStatus.LbaOutOfRange), statusSc(NvmeStatus.LbaOutOfRange)]).toEqual([0, 0x80])
    expect(nvmeStatusName(NvmeStatus.RefTagCheckError)).toBe('RefTagCheckError')
    expect(nvmeStatusName(0x3ab)).toBe('sct 3 sc 0xab')
  })

  it('claims: one writer above a base; others may read', async () => {
    const f = await fx()
    createMallocBdev(f.bdevs, { name: 'base', blockCount: 8 })
    const reader = f.bdevs.open('base')
    createPassthruBdev(f.bdevs, { name: 'pt', base: 'base' })
    expect(f.bdevs.get('base')!.claimedBy).toBe('passthru pt')
    expect(() => f.bdevs.open('base', { write: true })).toThrow(expect.objectContaining({ code: 'BDEV_CLAIMED' }))
    expect(() => createPassthruBdev(f.bdevs, { name: 'pt2', base: 'base' })).toThrow(expect.objectContaining({ code: 'BDEV_CLAIMED' }))
    // a failed stack leaves nothing behind
    expect(f.bdevs.get('pt2')).toBeUndefined()
    expect(() => f.bdevs.open('nope')).toThrow(expect.objectContaining({ code: 'BDEV_NOT_FOUND' }))
    expect(() => createMallocBdev(f.bdevs, { name: 'base', blockCount: 8 })).toThrow(expect.objectContaining({ code: 'BDEV_EXISTS' }))
    reader.close()
  })

  it('splits an I/O larger than maxIoBlocks into pieces and counts it once', async () => {
    const f = await fx()
    // a dif bdev's maxIoBlocks is what one accel buffer holds; passthru forwards the limit
    createMallocBdev(f.bdevs, { name: 'md', blockCount: 2048, blockSize: 512, mdSize: 8, pi: { type: 1 } })
    const { createDifBdev } = await import('../src/index.js')
    const dif = createDifBdev(f.bdevs, { name: 'd', base: 'md' })
    expect(dif.maxIoBlocks).toBe(Math.floor(f.pm.layout.iobuf.largeSize / 520))
    const d = f.bdevs.open('d', { write: true })
    const n = 1000 // several pieces
    const data = random(n * 512, 5)
    const src = list([f.local(0), n * 512])
    write(f.pm, src, data)
    expect(await writeBlocks(d, f.ch, src, null, 7, n)).toBe(NvmeStatus.Success)
    const dst = list([f.local(1 << 20), 300 * 512], [f.local(2 << 20), 700 * 512])
    expect(await readBlocks(d, f.ch, dst, null, 7, n)).toBe(NvmeStatus.Success)
    expect(same(read(f.pm, dst), data)).toBe(true)
    expect(dif.stats.write).toEqual({ ops: 1, bytes: n * 512 })
    expect(dif.stats.read).toEqual({ ops: 1, bytes: n * 512 })
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    d.close()
  })

  it('the I/O pool running dry is a value: -12, and the I/Os in flight complete', async () => {
    const f = await fx()
    createMallocBdev(f.bdevs, { name: 'm', blockCount: 64 })
    const d = f.bdevs.open('m', { write: true })
    const buf = list([f.local(0), 512])
    const pending: Promise<number>[] = []
    let rc = 0
    for (let i = 0; i < f.ch.ioCount; i++) pending.push(io((cb) => d.writev(f.ch, buf, null, i % 64, 1, cb, null)))
    rc = d.writev(f.ch, buf, null, 0, 1, () => {}, null)
    expect(rc).toBe(BDEV_NO_IO)
    expect((await Promise.all(pending)).every((s) => s === NvmeStatus.Success)).toBe(true)
    expect(f.ch.freeIos).toBe(f.ch.ioCount)
    d.close()
  })

  it('hot remove: the base goes, the bdevs above remove themselves, their openers are told, new I/O fails', async () => {
    const f = await fx()
    createMallocBdev(f.bdevs, { name: 'r0', blockCount: 32 })
    createPassthruBdev(f.bdevs, { name: 'r1', base: 'r0' })
    createPassthruBdev(f.bdevs, { name: 'r2', base: 'r1' })
    const events: string[] = []
    const d = f.bdevs.open('r2', { write: true, onEvent: (e, b) => events.push(`${e} ${b.name}`) })
    const buf = list([f.local(0), 512])
    // an I/O in flight when the removal starts still completes
    const inflight = writeBlocks(d, f.ch, buf, null, 3, 1)
    const removal = f.bdevs.unregister('r0')
    expect(await inflight).toBe(NvmeStatus.Success)
    await new Promise((r) => setImmediate(r))
    expect(events).toEqual(['remove r2'])
    // until the opener closes, its I/O is refused with the status a removed namespace gets
    expect(await writeBlocks(d, f.ch, buf, null, 3, 1)).toBe(NvmeStatus.InvalidNamespaceOrFormat)
    d.close()
    await removal
    expect(f.bdevs.list().map((b) => b.name)).toEqual([])
  })
})
