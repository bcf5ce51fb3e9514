// Sequences: callback order, abort, reverse, failures in the middle (a PI error, an IOMMU
// fault in a domain) that name the failing step and give every buffer back, bounce buffers
// for domains a module cannot reach, and the pools.
import { createDifContext } from '@ipukit/dif'
import { Access, drainCompletions, IoVecList } from '@ipukit/memory'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AccelError, AccelStatus, difErrorHolder, TASKS_IN_SEQUENCE_LIMIT } from '../src/index.js'
import { fixture, type Fixture, list, random, read, run, same, write } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture({ aesni: false })
})
afterAll(async () => {
  await f.close()
})

/** iobuf buffers free in the shared pools and this channel's cache, small and large. */
function poolCounts(): [number, number] {
  const shared = f.ch.iobuf.sharedFree
  const cached = f.ch.iobuf.cached
  return [shared[0] + cached[0], shared[1] + cached[1]]
}

describe('sequences', () => {
  it('fires step callbacks in order, elided copies first, then the sequence callback; nothing inside finish()', async () => {
    const events: string[] = []
    const A = list([f.local(0), 4096])
    const B = list([f.local(65536), 4096])
    const C = list([f.local(2 * 65536), 4096])
    const r = { value: 0 }
    const seq = f.ch.sequence()!
    seq.appendCopy(B, null, A, null, (s: string) => events.push(s), 'copy')
    seq.appendFill(C, null, 1, (s: string) => events.push(s), 'fill')
    seq.appendCrc32c(r, C, null, 0, (s: string) => events.push(s), 'crc')
    const done = new Promise<number>((resolve) =>
      seq.finish((_: null, st) => {
        events.push('sequence')
        resolve(st)
      }, null),
    )
    expect(events).toEqual([])
    expect(await done).toBe(AccelStatus.Ok)
    expect(events).toEqual(['copy', 'fill', 'crc', 'sequence'])
  })

  it('abort before finish: every step callback fires, the sequence callback never does, the tasks go back', async () => {
    const before = f.ch.freeTasks
    const events: string[] = []
    const b = f.ch.getBuf(8192)
    const seq = f.ch.sequence()!
    seq.appendFill(list([b, 8192]), f.ch.accelDomain, 0, (s: string) => events.push(s), 'a')
    seq.appendCopy(list([f.local(0), 8192]), null, list([b, 8192]), f.ch.accelDomain, (s: string) => events.push(s), 'b')
    seq.abort()
    expect(() => seq.appendFill(list([b, 8192]), null, 0)).toThrow(AccelError)
    await new Promise((r) => setImmediate(r))
    expect(events).toEqual(['a', 'b'])
    expect(f.ch.freeTasks).toBe(before)
    expect(f.ch.accelDomain.isBacked(b)).toBe(false) // never executed: never backed
    f.ch.putBuf(b)
  })

  it('reverse runs the operations bottom-up (a read through a stack appended top-down)', async () => {
    const k = f.accel.keys.create({ name: 'rev', key: '11'.repeat(16), key2: '22'.repeat(16) })
    const data = random(4096, 5)
    const A = list([f.local(0), 4096])
    const B = list([f.local(65536), 4096])
    const C = list([f.local(2 * 65536), 4096])
    write(f.pm, A, data)
    const seq = f.ch.sequence()!
    // top-down: decrypt B into C, then (below it) copy A into B
    seq.appendDecrypt(k, C, null, B, null, 7, 512)
    seq.appendCopy(B, null, A, null)
    seq.reverse()
    expect(await run(seq)).toBe(AccelStatus.Ok)
    const want = new Uint8Array(4096)
    k.xts.decrypt(data, want, 512, 7)
    expect(same(read(f.pm, C), want)).toBe(true)
  })

  it('a PI error in the middle fails the sequence at that step, fires the remaining step callbacks and releases every buffer', async () => {
    const counts = poolCounts()
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1 })
    const k = f.accel.keys.get('rev')!
    // protected data with a bad ref tag in block 3
    const data = random(8 * 512, 9)
    const ext = new Uint8Array(8 * 520)
    ctx.generateCopy([ext], [data], 8, { initRefTag: 100 })
    ext[3 * 520 + 512 + 7]! ^= 0xff
    const src = list([f.local(0), ext.length])
    write(f.pm, src, ext)
    const b1 = f.ch.getBuf(4096)
    const b2 = f.ch.getBuf(4096)
    const out = list([f.local(65536), 4096])
    out.len[0] = 4096
    f.pm.bytes.fill(0x5a, out.addr[0]!, out.addr[0]! + 4096)
    const err = difErrorHolder()
    const events: string[] = []
    const seq = f.ch.sequence()!
    seq.appendCopy(list([f.local(3 * 65536), ext.length]), null, src, null, (s: string) => events.push(s), 'copy')
    seq.appendDifVerifyCopy(list([b1, 4096]), f.ch.accelDomain, list([f.local(3 * 65536), ext.length]), null, 8, ctx, err, { initRefTag: 100 }, (s: string) => events.push(s), 'verify')
    seq.appendDecrypt(k, list([b2, 4096]), f.ch.accelDomain, list([b1, 4096]), f.ch.accelDomain, 0, 512, (s: string) => events.push(s), 'decrypt')
    seq.appendCopy(out, null, list([b2, 4096]), f.ch.accelDomain, (s: string) => events.push(s), 'out')
    let failure: unknown
    const st = await new Promise<number>((resolve) => seq.finish((_: null, s) => ((failure = seq.failure), resolve(s)), null))
    expect(st).toBe(AccelStatus.Io)
    expect(err).toMatchObject({ kind: 'refTag', block: 3, expected: 103n })
    // after elision: [verify (reading src), decrypt (writing out)]; the verify is step 0
    expect(failure).toEqual({ step: 0, opcode: 'dif_verify_copy', status: AccelStatus.Io })
    expect(events).toEqual(['copy', 'out', 'verify', 'decrypt'])
    expect(read(f.pm, out).every((b) => b === 0x5a)).toBe(true) // nothing was written
    f.ch.putBuf(b1)
    f.ch.putBuf(b2)
    drainCompletions()
    expect(poolCounts()).toEqual(counts)
    expect(f.accel.stats().sequences.failed).toBeGreaterThan(0)
  })

  it('a domain fault (unmapped IOVA) fails the step that reads it; its bounce buffer goes back', async () => {
    const counts = poolCounts()
    const host = f.fabric.busMaster(f.nvme)
    f.iommu.map(f.nvme.rid, 0x300000, 0x10000, 8192, Access.Read)
    const dst = list([f.local(0), 16384])
    const seq = f.ch.sequence()!
    // software cannot reach the host domain: the framework bounces, and the pull faults on page 3
    seq.appendCopy(dst, null, list([0x300000, 16384]), host)
    let failure: unknown
    const st = await new Promise<number>((resolve) => seq.finish((_: null, s) => ((failure = seq.failure), resolve(s)), null))
    expect(st).toBe(AccelStatus.Fault)
    expect(failure).toEqual({ step: 0, opcode: 'copy', status: AccelStatus.Fault })
    expect(f.iommu.lastFault).toMatchObject({ requester: f.nvme.rid, iova: 0x302000 })
    expect(poolCounts()).toEqual(counts)
  })

  it('bounces a host-domain destination: executes into a bounce buffer, then pushes it (charged to both domains)', async () => {
    const host = f.fabric.busMaster(f.nvme)
    f.iommu.map(f.nvme.rid, 0x400000, 0x50000, 200 * 1024, Access.Write)
    const data = random(200 * 1024, 3)
    const src = list([f.local(0), data.length])
    write(f.pm, src, data)
    const before = f.accel.stats().domains[`bus:${f.nvme.name}`]?.written ?? 0
    const seq = f.ch.sequence()!
    // 200 KiB: more than one large iobuf buffer, so the bounce is two buffers
    seq.appendCopy(list([0x400000, data.length]), host, src, null)
    expect(await run(seq)).toBe(AccelStatus.Ok)
    const hb = f.pm.region('host').base + 0x50000
    expect(same(f.pm.bytes.subarray(hb, hb + data.length), data)).toBe(true)
    expect(f.accel.stats().domains[`bus:${f.nvme.name}`]!.written - before).toBe(data.length)
  })

  it('runs out of sequences and tasks as values (SPDK -ENOMEM), keeping 8 tasks for a sequence to finish', async () => {
    const held = []
    let s
    while ((s = f.ch.sequence()) !== null) held.push(s)
    expect(f.ch.freeSequences).toBe(0)
    for (const x of held) x.abort()
    // an aborted sequence goes back once its step callbacks have run
    await new Promise((r) => setImmediate(r))
    // drain tasks to below the limit
    const seq = f.ch.sequence()!
    const A = list([f.local(0), 16])
    let rc = 0
    let n = 0
    while ((rc = seq.appendFill(A, null, 0)) === AccelStatus.Ok) n++
    expect(rc).toBe(AccelStatus.NoMemory)
    expect(f.ch.sequence()).toBeNull() // fewer than 8 free tasks
    expect(TASKS_IN_SEQUENCE_LIMIT).toBe(8)
    seq.abort()
    expect(n).toBeGreaterThan(8)
    await new Promise((r) => setImmediate(r))
  })

  it('refuses misuse with typed errors: lengths, a finished sequence, a bad fill byte, a compare src2 domain', async () => {
    const A = list([f.local(0), 100])
    const B = list([f.local(4096), 200])
    const seq = f.ch.sequence()!
    expect(() => seq.appendCopy(A, null, B, null)).toThrow(/dst holds 100 bytes, src 200/)
    expect(() => seq.appendFill(A, null, 256)).toThrow(AccelError)
    expect(() => seq.appendCompare(A, null, A, f.ch.accelDomain)).toThrow(/src2 must be local/)
    const k = f.accel.keys.get('rev')!
    expect(() => seq.appendEncrypt(k, A, null, A, null, 0, 512)).toThrow(/multiple of the block size/)
    seq.appendFill(A, null, 3)
    const p = run(seq)
    expect(() => seq.appendFill(A, null, 3)).toThrow(/running/)
    expect(await p).toBe(AccelStatus.Ok)
  })

  it('waits for iobuf buffers when the pools run dry, and goes on when they come back', async () => {
    // take every large buffer
    const taken: number[] = []
    let a
    while ((a = f.ch.iobuf.get(100000)) !== 0) taken.push(a)
    const host = f.fabric.busMaster(f.nvme)
    f.iommu.map(f.nvme.rid, 0x600000, 0x70000, 65536, Access.Read)
    const dst = list([f.local(0), 65536])
    const seq = f.ch.sequence()!
    seq.appendCopy(dst, null, list([0x600000, 65536]), host)
    let status = 1
    seq.finish((_: null, st) => (status = st), null)
    await new Promise((r) => setImmediate(r))
    expect(status).toBe(1) // waiting for a bounce buffer
    for (const x of taken) f.ch.iobuf.put(x)
    await new Promise((r) => setImmediate(r))
    drainCompletions()
    await new Promise((r) => setImmediate(r))
    expect(status).toBe(AccelStatus.Ok)
  })
})

export type { IoVecList }
