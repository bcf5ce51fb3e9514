// runNvmePerf: its arguments are checked (NvmeError with a code), and a short run keeps the
// queue depth in flight and counts what completed (the figures themselves are the bench's).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NvmeError, type NvmeHostDriver, runNvmePerf } from '../src/index.js'
import { fixture, type Fixture, host } from './helpers.js'

let f: Fixture
let d: NvmeHostDriver
beforeAll(async () => {
  f = await fixture({ namespaces: [{ blocks: 4096, blockSize: 512 }] })
  d = await host(f, { ioQueues: 2, queueDepth: 16, mode: 'poll' })
})
afterAll(async () => {
  d.stop()
  await f.close()
})

describe('runNvmePerf', () => {
  it('random writes then reads at queue depth 24 over two queues: every command succeeds, latencies ordered', async () => {
    for (const workload of ['randwrite', 'randread', 'write', 'read'] as const) {
      const r = await runNvmePerf({ driver: d, nsid: 1, workload, ioBytes: 4096, queueDepth: 24, seconds: 0.05 })
      expect(r.failed).toBe(0)
      expect(r.ios).toBeGreaterThan(24)
      expect(r.iops).toBeGreaterThan(0)
      expect(r.mbPerSecond).toBeCloseTo((r.iops * 4096) / 1e6, 6)
      expect(r.latencyUs.p50).toBeLessThanOrEqual(r.latencyUs.p99)
      expect(r.latencyUs.p99).toBeLessThanOrEqual(r.latencyUs.max)
    }
    expect(d.outstanding).toBe(0)
  })

  it('refuses what does not fit: an inactive namespace, a size not a multiple of the block, a depth beyond the queues', async () => {
    const bad = [
      { nsid: 9, ioBytes: 4096, queueDepth: 1 },
      { nsid: 1, ioBytes: 1000, queueDepth: 1 },
      { nsid: 1, ioBytes: 4096, queueDepth: 31 },
      { nsid: 1, ioBytes: 4096, queueDepth: 1, queues: 3 },
    ]
    for (const b of bad) {
      const e = await runNvmePerf({ driver: d, workload: 'read', seconds: 0.01, ...b }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(NvmeError)
      expect((e as NvmeError).code).toBe('NVME_BAD_ARGUMENT')
    }
    const e = await runNvmePerf({ driver: d, nsid: 1, workload: 'trim' as 'read', ioBytes: 4096, queueDepth: 1, seconds: 0.01 }).catch((x: unknown) => x)
    expect((e as NvmeError).message).toMatch(/workload must be/)
  })
})
