// The acceptance stack: crypto over dif over file. A host write lands on disk as AES-XTS of
// the data (OpenSSL's, tweak = LBA) with NVMe PI over the ciphertext, in the extended-LBA
// layout, and a reader with nothing but node:crypto and a CRC of its own checks every
// block. The write makes one pass: the host bytes are read once (through the NVMe
// function's DMA) and the file's buffers written once. Every layer's error becomes its NVMe
// status and gives every buffer back.
import { createDecipheriv } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCryptoBdev, createDifBdev, createFileBdev, NvmeStatus } from '../src/index.js'
import { crc16Reference, fixture, type Fixture, list, poolsFull, random, readBlocks, same, writeBlocks } from './helpers.js'

const BS = 512
const MD = 8
const BLOCKS = 64
const KEY = Buffer.from(random(64, 99))

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ipukit-bdev-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function build(f: Fixture, path: string) {
  f.accel.keys.create({ name: 'k', key: KEY.subarray(0, 32), key2: KEY.subarray(32) })
  await createFileBdev(f.bdevs, { name: 'file0', path, blockSize: BS, mdSize: MD, pi: { type: 1, format: 16 }, blockCount: BLOCKS })
  createDifBdev(f.bdevs, { name: 'dif0', base: 'file0', appTag: 0x1234 })
  createCryptoBdev(f.bdevs, { name: 'crypt0', base: 'dif0', key: 'k' })
  return f.bdevs.open('crypt0', { write: true })
}

describe('crypto over dif over file', () => {
  for (const driver of ['ipu', null] as const) {
    it(`puts OpenSSL's AES-XTS with NVMe PI over the ciphertext on disk, checkable by node:crypto and a CRC${driver ? ', in one pass (ipu driver)' : ''}`, async () => {
      const f = await fixture({ driver })
      const path = join(dir, `ns-${driver ?? 'none'}.img`)
      const d = await build(f, path)
      // the host's data, in host DRAM, reached by the NVMe function's DMA
      const data = random(BLOCKS * BS, 7)
      f.hostBytes(0, data.length).set(data)
      const lba = 0
      f.fabric.traffic.reset()
      const before = f.accel.stats().domains
      expect(await writeBlocks(d, f.ch, list([f.iova(0), data.length]), f.host, lba, BLOCKS)).toBe(NvmeStatus.Success)
      const dom = f.accel.stats().domains
      const delta = (id: string, k: 'read' | 'written') => (dom[id]?.[k] ?? 0) - (before[id]?.[k] ?? 0)
      if (driver === 'ipu') {
        // one pass: the host bytes read once, the file's buffers written once, nothing else
        expect(delta(`bus:${f.nvme.name}`, 'read')).toBe(data.length)
        expect(delta('system', 'written')).toBe(BLOCKS * (BS + MD))
        expect(delta('system', 'read')).toBe(0)
        expect(delta('accel', 'read') + delta('accel', 'written')).toBe(0)
        expect(f.accel.stats().sequences.fused).toBeGreaterThan(0)
      }
      expect(f.fabric.traffic.report().hostDram.read).toBe(data.length)
      // the reader: the file alone, node:crypto, and a CRC written from its definition
      const disk = readFileSync(path)
      expect(disk.length).toBe(BLOCKS * (BS + MD))
      for (let b = 0; b < BLOCKS; b++) {
        const at = b * (BS + MD)
        const cipher = disk.subarray(at, at + BS)
        const iv = Buffer.alloc(16)
        iv.writeBigUInt64LE(BigInt(lba + b))
        const dec = createDecipheriv('aes-256-xts', KEY, iv)
        const plain = Buffer.concat([dec.update(cipher), dec.final()])
        expect(same(plain, data.subarray(b * BS, (b + 1) * BS))).toBe(true)
        // NVMe 16b PI, big-endian: guard = CRC16 T10-DIF of the stored (encrypted) data,
        // app tag as configured, ref tag = the LBA's low 32 bits (Type 1)
        const pi = disk.subarray(at + BS, at + BS + 8)
        expect(pi.readUInt16BE(0)).toBe(crc16Reference(cipher))
        expect(pi.readUInt16BE(2)).toBe(0x1234)
        expect(pi.readUInt32BE(4)).toBe((lba + b) >>> 0)
      }
      // and it reads back through the stack into host memory
      f.hostBytes(1 << 20, data.length).fill(0)
      expect(await readBlocks(d, f.ch, list([f.iova(1 << 20), data.length]), f.host, lba, BLOCKS)).toBe(NvmeStatus.Success)
      expect(same(f.hostBytes(1 << 20, data.length), data)).toBe(true)
      expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
      d.close()
      await f.close()
    })
  }

  it('errors become NVMe statuses and give every buffer back: a PI mismatch, a destroyed key, a file cut short, a host fault', async () => {
    const f = await fixture({ driver: 'ipu' })
    const path = join(dir, 'errors.img')
    const d = await build(f, path)
    const data = random(8 * BS, 3)
    f.hostBytes(0, data.length).set(data)
    expect(await writeBlocks(d, f.ch, list([f.iova(0), data.length]), f.host, 8, 8)).toBe(NvmeStatus.Success)
    const file = f.bdevs.get('file0')!
    // corrupt block 10's stored data behind the stack: its guard no longer matches
    const { openSync, writeSync, closeSync } = await import('node:fs')
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.from([0xee]), 0, 1, 10 * (BS + MD) + 100)
    closeSync(fd)
    const err = { kind: undefined as 'guard' | 'appTag' | 'refTag' | undefined, block: 0, expected: 0n, actual: 0n }
    expect(await readBlocks(d, f.ch, list([f.iova(1 << 20), data.length]), f.host, 8, 8, { difError: err })).toBe(NvmeStatus.GuardCheckError)
    expect(err).toMatchObject({ kind: 'guard', block: 2 })
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    // a read of blocks never written: zeros with escape PI, so no PI error, and undefined plaintext
    expect(await readBlocks(d, f.ch, list([f.iova(1 << 20), BS]), f.host, 40, 1)).toBe(NvmeStatus.Success)
    // a destroyed key: Access Denied, nothing written
    f.accel.keys.destroy('k')
    expect(await writeBlocks(d, f.ch, list([f.iova(0), BS]), f.host, 0, 1)).toBe(NvmeStatus.AccessDenied)
    expect(await readBlocks(d, f.ch, list([f.iova(0), BS]), f.host, 8, 1)).toBe(NvmeStatus.AccessDenied)
    f.accel.keys.create({ name: 'k', key: KEY.subarray(0, 32), key2: KEY.subarray(32) })
    // a host buffer the IOMMU does not map: Data Transfer Error
    expect(await writeBlocks(d, f.ch, list([0x7000_0000, BS]), f.host, 0, 1)).toBe(NvmeStatus.DataTransferError)
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    // the file cut short behind the bdev: the read of what is gone is an Unrecovered Read Error
    truncateSync(path, 20 * (BS + MD))
    expect(await readBlocks(d, f.ch, list([f.iova(1 << 20), BS]), f.host, 30, 1)).toBe(NvmeStatus.UnrecoveredReadError)
    expect((file as unknown as { lastError: { operation: string } }).lastError.operation).toBe('read')
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    const iobuf = f.ch.accel.iobuf
    // every iobuf buffer is back in this thread's cache or the shared pool
    const io = f.pm.layout.iobuf
    expect(iobuf.cached[0] + iobuf.sharedFree[0]).toBe(io.smallCount)
    expect(iobuf.cached[1] + iobuf.sharedFree[1]).toBe(io.largeCount)
    d.close()
    await f.close()
  })
})
