// The write path of the design (a host write, encrypted and protected into a send buffer)
// and the read path back: the ipu driver fuses what the optimizer leaves, reads the host
// bytes once through the NVMe function's DMA and writes the output once, and the bytes are
// those of the unfused chain.
import { createDifContext } from '@ipukit/dif'
import { Access, IoVecList } from '@ipukit/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { AccelStatus, difErrorHolder } from '../src/index.js'
import { fixture, type Fixture, list, random, read, run, same, write } from './helpers.js'

const BLOCKS = 16
const DBS = 4096
const MDS = 8
const N = BLOCKS * DBS
const EXT = BLOCKS * (DBS + MDS)
const LBA = 0x1234
const KEY = { key: 'aa'.repeat(32), key2: 'bb'.repeat(32) }

/**
 * The write path as the bdev stack appends it: crypto bdev (encrypt host data into an accel
 * buffer), dif bdev (dif_generate_copy into a second accel buffer), nvme-tcp bdev (copy into
 * its send buffer).
 */
async function writePath(f: Fixture, host: IoVecList, send: IoVecList): Promise<{ status: number; elided: number; fused: number }> {
  const ch = f.ch
  const key = f.accel.keys.get('k') ?? f.accel.keys.create({ name: 'k', ...KEY })
  const ctx = createDifContext({ dataBlockSize: DBS, mdSize: MDS, type: 1, appTag: 0x7777 })
  const b1 = ch.getBuf(N)
  const b2 = ch.getBuf(EXT)
  const buf1 = list([b1, N])
  const buf2 = list([b2, EXT])
  const seq = ch.sequence()!
  const hostDomain = f.fabric.busMaster(f.nvme)
  expect(seq.appendEncrypt(key, buf1, ch.accelDomain, host, hostDomain, LBA, DBS)).toBe(0)
  expect(seq.appendDifGenerateCopy(buf2, ch.accelDomain, buf1, ch.accelDomain, BLOCKS, ctx, { lba: LBA })).toBe(0)
  expect(seq.appendCopy(send, null, buf2, ch.accelDomain)).toBe(0)
  let elided = -1
  let fused = -1
  const status = await new Promise<number>((resolve) =>
    seq.finish((_: null, st) => {
      elided = seq.elidedCount
      fused = seq.fusedCount
      resolve(st)
    }, null),
  )
  ch.putBuf(b1)
  ch.putBuf(b2)
  return { status, elided, fused }
}

describe('the ipu platform driver', () => {
  const fixtures: Fixture[] = []
  afterAll(async () => {
    for (const f of fixtures) await f.close()
  })

  for (const workers of [0, 2]) {
    it(`write path${workers ? ' on worker threads' : ''}: one read of the host bytes, one write of the output, the unfused chain's bytes`, async () => {
      const fused = await fixture({ driver: 'ipu', workers })
      fixtures.push(fused)
      const f = fused
      // host data at IOVA 0x10_0000, in two pieces of host DRAM (as a host's pages are)
      const data = random(N, 7)
      const hpaA = 0x20000
      const hpaB = 0x90000
      f.iommu.map(f.nvme.rid, 0x100000, hpaA, N / 2, Access.Read)
      f.iommu.map(f.nvme.rid, 0x100000 + N / 2, hpaB, N / 2, Access.Read)
      const hostBase = f.pm.region('host').base
      f.pm.bytes.set(data.subarray(0, N / 2), hostBase + hpaA)
      f.pm.bytes.set(data.subarray(N / 2), hostBase + hpaB)
      const host = list([0x100000, N])
      const send = list([f.local(0), EXT])
      f.fabric.traffic.reset()
      const r = await writePath(f, host, send)
      expect(r).toEqual({ status: AccelStatus.Ok, elided: 1, fused: 1 })
      const s = f.accel.stats()
      // the per-domain counters: the host read once, the send buffer written once, nothing else
      expect(s.domains).toEqual({
        [`bus:${f.nvme.name}`]: { type: 'host', read: N, written: 0 },
        system: { type: 'system', read: 0, written: EXT },
      })
      expect(s.sequences).toMatchObject({ completed: 1, failed: 0, elided: 1, fused: 1 })
      // and the fabric agrees: N bytes of host DRAM read by the NVMe function's DMA, over its link
      const t = f.fabric.traffic.report()
      expect(t.hostDram).toEqual({ read: N, write: 0 })
      expect(t.links['ipu-nvme']).toMatchObject({ up: 0, down: N })
      const out = read(f.pm, send)

      // the same chain without a driver: every step on its own, through bounce and accel buffers
      const plain = await fixture({ driver: null, workers })
      fixtures.push(plain)
      plain.iommu.map(plain.nvme.rid, 0x100000, hpaA, N / 2, Access.Read)
      plain.iommu.map(plain.nvme.rid, 0x100000 + N / 2, hpaB, N / 2, Access.Read)
      const send2 = list([plain.local(1 << 20), EXT])
      const r2 = await writePath(plain, host, send2)
      expect(r2).toEqual({ status: AccelStatus.Ok, elided: 1, fused: 0 })
      expect(same(read(plain.pm, send2), out)).toBe(true)
      // unfused: the host bytes are pulled into a bounce buffer and the accel buffer is written and read
      const d2 = plain.accel.stats().domains
      expect(d2[`bus:${plain.nvme.name}`]!.read).toBe(N)
      expect(d2.accel!.written).toBe(N)
      expect(d2.accel!.read).toBe(N)

      // and both equal the composition of the single kernels, outside the framework
      const key = f.accel.keys.get('k')!
      const cipher = new Uint8Array(N)
      key.xts.encrypt(data, cipher, DBS, LBA)
      const ctx = createDifContext({ dataBlockSize: DBS, mdSize: MDS, type: 1, appTag: 0x7777 })
      const ext = new Uint8Array(EXT)
      ctx.generateCopy([ext], [cipher], BLOCKS, { lba: LBA })
      expect(same(out, ext)).toBe(true)
    })
  }

  it('read path: dif_verify_copy -> decrypt into host memory, fused; a PI error stops it before the host is written', async () => {
    const f = await fixture({ driver: 'ipu' })
    fixtures.push(f)
    const key = f.accel.keys.create({ name: 'k', ...KEY })
    const ctx = createDifContext({ dataBlockSize: DBS, mdSize: MDS, type: 1, appTag: 0x7777 })
    // what a target returned: ciphertext + PI
    const plain = random(N, 3)
    const cipher = new Uint8Array(N)
    key.xts.encrypt(plain, cipher, DBS, LBA)
    const ext = new Uint8Array(EXT)
    ctx.generateCopy([ext], [cipher], BLOCKS, { lba: LBA })
    const recv = list([f.local(0), EXT])
    write(f.pm, recv, ext)
    f.iommu.map(f.nvme.rid, 0x200000, 0x40000, N, Access.Write)
    const host = list([0x200000, N])
    const hostDomain = f.fabric.busMaster(f.nvme)
    const readPath = async () => {
      const ch = f.ch
      const b = ch.getBuf(N)
      const buf = list([b, N])
      const err = difErrorHolder()
      const seq = ch.sequence()!
      // appended top-down (crypto bdev first), then reversed: the read runs bottom-up
      seq.appendDecrypt(key, host, hostDomain, buf, ch.accelDomain, LBA, DBS)
      seq.appendDifVerifyCopy(buf, ch.accelDomain, recv, null, BLOCKS, ctx, err, { lba: LBA })
      seq.reverse()
      let failure: unknown
      const status = await new Promise<number>((resolve) => seq.finish((_: null, st) => ((failure = seq.failure), resolve(st)), null))
      ch.putBuf(b)
      return { status, err, failure, fused: f.accel.stats().sequences.fused }
    }
    const ok = await readPath()
    expect(ok.status).toBe(AccelStatus.Ok)
    expect(ok.fused).toBe(1)
    const hostBytes = () => f.pm.bytes.slice(f.pm.region('host').base + 0x40000, f.pm.region('host').base + 0x40000 + N)
    expect(same(hostBytes(), plain)).toBe(true)
    // corrupt block 5's data: the guard fails, nothing of block 5 or later reaches the host
    f.pm.bytes.fill(0, f.pm.region('host').base + 0x40000, f.pm.region('host').base + 0x40000 + N)
    f.pm.bytes[recv.addr[0]! + 5 * (DBS + MDS) + 100]! ^= 1
    const bad = await readPath()
    expect(bad.status).toBe(AccelStatus.Io)
    expect(bad.err).toMatchObject({ kind: 'guard', block: 5 })
    expect(bad.failure).toEqual({ step: 0, opcode: 'dif_verify_copy', status: AccelStatus.Io })
    expect(hostBytes().subarray(5 * DBS).every((b) => b === 0)).toBe(true)
  })

  it('copy -> crc32c of the copy becomes one copy_crc32c pass (the NVMe/TCP data digest)', async () => {
    const f = await fixture({ driver: 'ipu' })
    fixtures.push(f)
    const data = random(50000, 11)
    const src = list([f.local(0), 20000], [f.local(40000), 30000])
    write(f.pm, src, data)
    const dst = list([f.local(200000), 50000])
    const result = { value: 0 }
    const seq = f.ch.sequence()!
    seq.appendCopy(dst, null, src, null)
    seq.appendCrc32c(result, dst, null, 0)
    expect(await run(seq)).toBe(AccelStatus.Ok)
    expect(f.accel.stats().sequences.fused).toBe(1)
    expect(same(read(f.pm, dst), data)).toBe(true)
    const { crc32c } = await import('@ipukit/kernels')
    // SPDK semantics: seed 0, no final inversion -> the standard CRC is result ^ 0xffffffff
    expect((result.value ^ 0xffffffff) >>> 0).toBe(crc32c(data))
  })

  it('copy from a host domain + encrypt: the copy is elided and the cipher reads host memory through the DMA, once', async () => {
    const f = await fixture({ driver: 'ipu' })
    fixtures.push(f)
    const key = f.accel.keys.create({ name: 'k', ...KEY })
    const data = random(N, 21)
    f.iommu.map(f.nvme.rid, 0x300000, 0x40000, N, Access.Read)
    f.pm.bytes.set(data, f.pm.region('host').base + 0x40000)
    const host = f.fabric.busMaster(f.nvme)
    const b = f.ch.getBuf(N)
    const buf = list([b, N])
    const dst = list([f.local(0), N])
    const seq = f.ch.sequence()!
    seq.appendCopy(buf, f.ch.accelDomain, list([0x300000, N]), host)
    seq.appendEncrypt(key, dst, null, buf, f.ch.accelDomain, LBA, DBS)
    f.fabric.traffic.reset()
    expect(await run(seq)).toBe(AccelStatus.Ok)
    f.ch.putBuf(b)
    const s = f.accel.stats()
    expect(s.sequences).toMatchObject({ completed: 1, elided: 1 })
    expect(s.domains).toEqual({ [`bus:${f.nvme.name}`]: { type: 'host', read: N, written: 0 }, system: { type: 'system', read: 0, written: N } })
    expect(f.fabric.traffic.report().hostDram).toEqual({ read: N, write: 0 })
    // no bounce buffer was taken, and the accel buffer never got memory
    expect(f.ch.iobuf.stats.retries).toBe(0)
    expect(f.ch.accelDomain.inUse).toBe(0)
    const want = new Uint8Array(N)
    key.xts.encrypt(data, want, DBS, LBA)
    expect(same(read(f.pm, dst), want)).toBe(true)
  })
})
