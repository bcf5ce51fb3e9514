// bdevperf: a short run of each workload through a crypto -> dif -> malloc stack completes
// with no failure, and what it wrote reads back (the buffers' pattern, decrypted).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCryptoBdev, createDifBdev, createMallocBdev, NvmeStatus, runBdevPerf } from '../src/index.js'
import { fixture, type Fixture, list, random, read, readBlocks, same, write } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture({ driver: 'ipu' })
})
afterAll(async () => {
  await f.close()
})

describe('runBdevPerf', () => {
  it('runs each workload at a queue depth, counting I/Os and latencies, with nothing failed', async () => {
    f.accel.keys.create({ name: 'k', key: random(32, 1), key2: random(32, 2) })
    createMallocBdev(f.bdevs, { name: 'm', blockCount: 512, blockSize: 4096, mdSize: 8, pi: { type: 1 } })
    createDifBdev(f.bdevs, { name: 'd', base: 'm' })
    createCryptoBdev(f.bdevs, { name: 'c', base: 'd', key: 'k' })
    const desc = f.bdevs.open('c', { write: true })
    const pattern = random(2 * 4096, 9)
    const buffer = (i: number) => {
      const iovs = list([f.local(i * 8192), 8192])
      write(f.pm, iovs, pattern)
      return { iovs, domain: null }
    }
    for (const workload of ['write', 'randwrite', 'read', 'randread'] as const) {
      const r = await runBdevPerf({ desc, ch: f.ch, workload, ioBlocks: 2, queueDepth: 8, seconds: 0.1, buffer })
      expect(r).toMatchObject({ workload, bdev: 'c', ioBytes: 8192, queueDepth: 8, failed: 0 })
      expect(r.ios).toBeGreaterThan(0)
      expect(r.latencyUs.p50).toBeGreaterThan(0)
      expect(r.latencyUs.p99).toBeGreaterThanOrEqual(r.latencyUs.p50)
    }
    // the sequential write covered the start of the bdev with the pattern
    const back = list([f.local(1 << 20), 8192])
    expect(await readBlocks(desc, f.ch, back, null, 0, 2)).toBe(NvmeStatus.Success)
    expect(same(read(f.pm, back), pattern)).toBe(true)
    await expect(runBdevPerf({ desc, ch: f.ch, workload: 'write', ioBlocks: 0, queueDepth: 1, seconds: 1, buffer })).rejects.toThrow(/ioBlocks/)
    desc.close()
  })
})
