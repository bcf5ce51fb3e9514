// The RAM disk: random reads and writes over random splits (system memory and host memory
// through the IOMMU) against a model; metadata kept per block; deallocated and never
// written blocks read as zeros with escape PI.
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMallocBdev, type MallocBdev, NvmeStatus } from '../src/index.js'
import { fixture, type Fixture, fuzzRuns, io, list, poolsFull, random, read, readBlocks, same, scattered, write, writeBlocks } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture()
})
afterAll(async () => {
  await f.close()
})

describe('malloc', () => {
  it('reads what was written, for any split of the buffers, in local or host memory (property, against a model)', async () => {
    const m = createMallocBdev(f.bdevs, { name: 'prop', blockCount: 256, blockSize: 512, mdSize: 16 })
    const d = f.bdevs.open('prop', { write: true })
    const L = m.blockLen
    const model = new Uint8Array(256 * L)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 64 }), fc.array(fc.nat(), { maxLength: 4 }), fc.boolean(), fc.nat(), async (lba, n, cuts, host, seed) => {
        n = Math.min(n, 256 - lba)
        const data = random(n * L, seed)
        const w = host ? scattered(f.iova(0), n * L, cuts) : scattered(f.local(0), n * L, cuts)
        if (host) for (let i = 0, o = 0; i < w.count; o += w.len[i]!, i++) f.hostBytes(w.addr[i]! - f.iova(0), w.len[i]!).set(data.subarray(o, o + w.len[i]!))
        else write(f.pm, w, data)
        expect(await writeBlocks(d, f.ch, w, host ? f.host : null, lba, n)).toBe(NvmeStatus.Success)
        model.set(data, lba * L)
        const r = scattered(f.local(1 << 20), n * L, cuts.map((c) => c * 3 + 1))
        expect(await readBlocks(d, f.ch, r, null, lba, n)).toBe(NvmeStatus.Success)
        expect(same(read(f.pm, r), model.subarray(lba * L, (lba + n) * L))).toBe(true)
        // and the RAM holds the extended blocks as they are
        expect(same(f.pm.bytes.subarray(m.address + lba * L, m.address + (lba + n) * L), data)).toBe(true)
      }),
      { numRuns: fuzzRuns(40) },
    )
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    d.close()
    await f.bdevs.unregister('prop')
  })

  it('deallocated and unwritten blocks read as zeros, with all-ones PI fields when the blocks carry PI', async () => {
    for (const [location, format, md] of [['last', 16, 8], ['first', 64, 16], ['last', 32, 64]] as const) {
      const m: MallocBdev = createMallocBdev(f.bdevs, { name: 'z', blockCount: 8, blockSize: 4096, mdSize: md, pi: { type: 1, format, location } })
      const d = f.bdevs.open('z', { write: true })
      const L = m.blockLen
      const piSize = format === 16 ? 8 : 16
      const want = new Uint8Array(L)
      want.fill(0xff, location === 'first' ? 4096 : L - piSize, location === 'first' ? 4096 + piSize : L)
      const r = list([f.local(0), L])
      expect(await readBlocks(d, f.ch, r, null, 5, 1)).toBe(NvmeStatus.Success)
      expect(same(read(f.pm, r), want)).toBe(true)
      write(f.pm, list([f.local(0), 2 * L]), random(2 * L, 1))
      expect(await writeBlocks(d, f.ch, list([f.local(0), 2 * L]), null, 2, 2)).toBe(NvmeStatus.Success)
      expect(await io((cb) => d.unmap(f.ch, 2, 1, cb, null))).toBe(NvmeStatus.Success)
      expect(await io((cb) => d.writeZeroes(f.ch, 3, 1, cb, null))).toBe(NvmeStatus.Success)
      for (const lba of [2, 3]) {
        expect(await readBlocks(d, f.ch, r, null, lba, 1)).toBe(NvmeStatus.Success)
        expect(same(read(f.pm, r), want)).toBe(true)
      }
      expect(await io((cb) => d.flush(f.ch, 0, 8, cb, null))).toBe(NvmeStatus.Success)
      expect(await io((cb) => d.reset(f.ch, cb, null))).toBe(NvmeStatus.Success)
      d.close()
      await f.bdevs.unregister('z')
    }
  })

  it('refuses a RAM disk IPU DRAM cannot hold, and gives its memory back when removed', async () => {
    const free = f.pm.ipuAllocator.available
    expect(() => createMallocBdev(f.bdevs, { name: 'huge', blockCount: 1 << 22, blockSize: 4096 })).toThrow(expect.objectContaining({ code: 'BDEV_NO_SPACE' }))
    createMallocBdev(f.bdevs, { name: 'mid', blockCount: 2048, blockSize: 4096 })
    expect(f.pm.ipuAllocator.available).toBe(free - 2048 * 4096)
    await f.bdevs.unregister('mid')
    expect(f.pm.ipuAllocator.available).toBe(free)
    expect(() => createMallocBdev(f.bdevs, { name: 'bad', blockCount: 8, blockSize: 520 })).toThrow(/power of two/)
    expect(() => createMallocBdev(f.bdevs, { name: 'bad', blockCount: 8, blockSize: 512, mdSize: 8, pi: { type: 1, format: 64 } })).toThrow(/at least 16 bytes of metadata/)
  })
})
