// The host driver on its own thread: a real worker_threads Worker (test/support/host-thread-
// worker.mjs, on the built package) connects to the NvmePcieController on this thread and
// runs perf and a verified pattern, with MSI-X and polled; doorbells cross in batches, this
// thread's event loop stays free, close() releases a worker that died, bad descriptions are
// typed errors.
import { Worker } from 'node:worker_threads'
import { attachPhysicalMemory, type PhysicalMemory } from '@ipukit/memory'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { connectHostThread, disconnectHostThread, type HostThreadDescription, type HostThreadServer, NvmeError, type NvmePerfResult, serveHostThread } from '../src/index.js'
import { hostAllocator } from '../src/host.js'
import { fixture, type Fixture, host } from './helpers.js'

const WORKER = new URL('./support/host-thread-worker.mjs', import.meta.url)
const BS = 4096
const BLOCKS = 8192
/** host DRAM per host thread: queues of 64 entries (a PRP list page a slot) and the test's buffers */
const HOST_BYTES = 4 << 20

const open: Fixture[] = []
const servers: HostThreadServer[] = []
const threads: Worker[] = []
afterEach(async () => {
  // a failed test leaves nothing behind for the next one: its workers, channels and host DRAM
  for (const w of threads.splice(0)) await w.terminate()
  for (const s of servers.splice(0)) s.close()
})
afterAll(async () => {
  for (const f of open) await f.close()
})

type Msg = { type: string; [k: string]: unknown }

/** A worker and its messages, one at a time. */
class HostThread {
  readonly worker: Worker
  readonly #inbox: Msg[] = []
  readonly #waiting: ((m: Msg) => void)[] = []
  readonly exited: Promise<number>
  constructor(description: HostThreadDescription, options: Record<string, unknown>) {
    // execArgv: not this process's (vitest's --conditions @ipukit/source): the worker runs the built package
    this.worker = new Worker(WORKER, { workerData: { description, options }, execArgv: [] })
    threads.push(this.worker)
    this.worker.on('message', (m: Msg) => {
      const w = this.#waiting.shift()
      if (w !== undefined) w(m)
      else this.#inbox.push(m)
    })
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve))
    this.worker.on('error', (e) => {
      const w = this.#waiting.shift()
      w?.({ type: 'error', error: { name: e.name, message: e.message } })
    })
  }

  next(): Promise<Msg> {
    const m = this.#inbox.shift()
    if (m !== undefined) return Promise.resolve(m)
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  async ask(m: Msg): Promise<Msg> {
    this.worker.postMessage(m)
    const r = await this.next()
    if (r.type === 'error') throw new Error(`worker: ${JSON.stringify(r.error)}`)
    return r
  }
}

async function start(f: Fixture, options: Record<string, unknown>): Promise<{ server: HostThreadServer; t: HostThread; ready: Msg }> {
  const server = serveHostThread({ fabric: f.fabric, fn: f.fn, iommu: f.iommu, hostBytes: HOST_BYTES })
  servers.push(server)
  const t = new HostThread(server.description, options)
  const ready = await t.next()
  if (ready.type !== 'ready') throw new Error(`worker: ${JSON.stringify(ready)}`)
  return { server, t, ready }
}

/** Counts this thread's timer ticks (and the longest gap) while `run` runs. */
async function ticking<T>(run: () => Promise<T>): Promise<{ value: T; ticks: number; maxGapMs: number; ms: number }> {
  let ticks = 0
  let maxGap = 0
  let last = performance.now()
  const t0 = last
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks++
  }, 5)
  try {
    const value = await run()
    return { value, ticks, maxGapMs: maxGap, ms: performance.now() - t0 }
  } finally {
    clearInterval(timer)
  }
}

/** The block at `lba` of the malloc bdev behind namespace 1, as the controller stored it. */
function stored(f: Fixture, lba: number): Uint8Array {
  const b = f.bdevs.get('ns1') as unknown as { address: number }
  return f.pm.bytes.subarray(b.address + lba * BS, b.address + (lba + 1) * BS)
}

/** Kernels scratch slots free in the memory (each thread attached to it holds one): claims them all, then lets them go. */
function freeScratchSlots(f: Fixture): number {
  const held: PhysicalMemory[] = []
  try {
    for (;;) held.push(attachPhysicalMemory(f.pm.describe()))
  } catch {
    return held.length
  } finally {
    for (const pm of held) pm.close()
  }
}

/** Free bytes of the host DRAM allocator this thread's drivers (and host threads' reservations) share. */
const hostAvailable = (f: Fixture) => hostAllocator(f.pm).available

const patternByte = (seed: number, lba: number, k: number) => (lba * 131 + k * 7 + seed) & 0xff

for (const mode of ['interrupt', 'poll'] as const) {
  describe(`the host driver on its own thread, ${mode === 'interrupt' ? 'MSI-X interrupts' : 'polled'}`, () => {
    it('brings the controller up, runs 4 KiB random writes at QD 32 with doorbells in batches, and writes and reads back a pattern, while this thread stays responsive', async () => {
      const f = await fixture({ namespaces: [{ blocks: BLOCKS, blockSize: BS }] })
      open.push(f)
      const { server, t, ready } = await start(f, { mode, ioQueues: 1, queueDepth: 64 })
      expect(ready).toMatchObject({ ioQueues: 1, queueDepth: 64, mode })
      expect((ready.namespaces as { nsid: number; blocks: number; blockSize: number }[])[0]).toMatchObject({ nsid: 1, blocks: BLOCKS, blockSize: BS })
      expect(server.attached).toBe(true)
      expect(server.counters.mmioReads).toBeGreaterThan(0)
      expect(server.counters.mapCalls).toBeGreaterThan(0)

      // perf: 4 KiB random writes at QD 32; this thread's timers keep ticking
      const before = { ...server.counters }
      const run = await ticking(() => t.ask({ type: 'perf', workload: 'randwrite', ioBytes: BS, queueDepth: 32, seconds: 0.3 }))
      const perf = run.value.result as NvmePerfResult
      expect(perf.failed).toBe(0)
      expect(perf.ios).toBeGreaterThan(1000)
      const writes = server.counters.postedWrites - before.postedWrites
      const batches = server.counters.postedBatches - before.postedBatches
      // every command's SQ tail and CQ head doorbells crossed; many per wake
      expect(writes).toBeGreaterThan(perf.ios / 32)
      expect(batches).toBeGreaterThan(0)
      expect(batches).toBeLessThan(writes)
      // no register reads or IOMMU maps per I/O: the buffers were mapped once
      expect(server.counters.mapCalls - before.mapCalls).toBeLessThanOrEqual(32)
      expect(server.counters.mmioReads - before.mmioReads).toBeLessThan(20)
      // the 5 ms timer ran through the run: this thread was not blocked
      expect(run.ticks).toBeGreaterThan(run.ms / 5 / 4)
      expect(run.maxGapMs).toBeLessThan(250)
      if (mode === 'interrupt') expect((run.value.driver as { interrupts: number }).interrupts).toBeGreaterThan(0)
      else expect((run.value.driver as { interrupts: number }).interrupts).toBe(0)

      // a pattern: 256 commands of 4 blocks at QD 16, written, then read back and checked by the worker
      const seed = mode === 'interrupt' ? 17 : 91
      const w = (await t.ask({ type: 'pattern', nsid: 1, lba: 1000, count: 256, blocks: 4, seed, qd: 16, write: true })).result as { failed: number; maxInFlight: number }
      expect(w).toMatchObject({ failed: 0, maxInFlight: 16 })
      // ...and on this thread: the bytes the controller stored in the RAM namespace
      for (const lba of [1000, 1001, 1511, 2023]) {
        const got = stored(f, lba)
        let bad = -1
        for (let k = 0; k < BS && bad < 0; k++) if (got[k] !== patternByte(seed, lba, k)) bad = k
        expect(bad, `LBA ${lba}`).toBe(-1)
      }
      const r = (await t.ask({ type: 'pattern', nsid: 1, lba: 1000, count: 256, blocks: 4, seed, qd: 16, write: false })).result as { failed: number; mismatch: number }
      expect(r).toMatchObject({ failed: 0, mismatch: -1 })

      // shutdown and disconnect: the worker's event loop empties and it exits by itself
      const closed = await t.ask({ type: 'shutdown' })
      expect(closed.type).toBe('closed')
      expect(await t.exited).toBe(0)
      expect(server.attached).toBe(false)
      expect(f.iommu.mappedPages(f.fn.rid)).toBe(0)
      server.close()
      expect(server.closed).toBe(true)
    })
  })
}

describe('the host thread channel', () => {
  it('errors of requests come back with their class and code; a second driver on the same channel is refused', async () => {
    const f = await fixture({ namespaces: [{ blocks: 1024, blockSize: BS }] })
    open.push(f)
    const { server, t } = await start(f, { mode: 'poll' })
    const p = (await t.ask({ type: 'probe' })).result as Record<string, { name: string; code: string; message: string }>
    expect(p.mmio).toMatchObject({ name: 'PcieError', code: 'PCIE_BAD_ACCESS' })
    expect(p.map).toMatchObject({ name: 'NvmeError', code: 'NVME_BAD_ARGUMENT' })
    expect(p.map!.message).toMatch(/outside the host thread's host DRAM/)
    expect(p.otherRid).toMatchObject({ name: 'NvmeError', code: 'NVME_BAD_ARGUMENT' })
    // the posted write past BAR0 was dropped here, before the read behind it was answered (CSTS.RDY)
    expect(server.counters.postedErrors).toBe(1)
    expect(server.firstPostedError).toMatchObject({ name: 'PcieError', code: 'PCIE_BAD_ACCESS' })
    expect(Number(p.afterDroppedWrite) & 1).toBe(1)
    const second = new HostThread(server.description, { mode: 'poll' })
    const m = await second.next()
    expect(m).toMatchObject({ type: 'error', error: { name: 'NvmeError', code: 'NVME_BAD_ARGUMENT' } })
    expect(await second.exited).toBe(0)
    await t.ask({ type: 'shutdown' })
    await t.exited
    server.close()
  })

  it('close() while the worker waits for an answer: the request wakes with NVME_CLOSED', async () => {
    const f = await fixture({ namespaces: [{ blocks: 1024, blockSize: BS }] })
    open.push(f)
    const { server, t } = await start(f, { mode: 'poll' })
    t.worker.postMessage({ type: 'read' })
    // hold this thread (it alone answers) until the worker's request is in the mailbox
    const limit = performance.now() + 10_000
    while (!server.pendingRequest && performance.now() < limit);
    expect(server.pendingRequest).toBe(true)
    server.close()
    const m = await t.next()
    expect(m).toMatchObject({ type: 'error', error: { name: 'NvmeError', code: 'NVME_CLOSED' } })
    await t.worker.terminate()
  })

  it('a worker terminated mid-run: close() returns at once, releases its mappings and host DRAM, and a new host thread drives the controller', async () => {
    const f = await fixture({ namespaces: [{ blocks: BLOCKS, blockSize: BS }] })
    open.push(f)
    const slots = freeScratchSlots(f)
    const hostFree = hostAvailable(f)
    for (const mode of ['interrupt', 'poll'] as const) {
      const { server, t } = await start(f, { mode, queueDepth: 64 })
      const base = server.counters.postedWrites
      t.worker.postMessage({ type: 'perf', workload: 'randwrite', ioBytes: BS, queueDepth: 32, seconds: 30 })
      // mid-run: commands in flight, doorbells crossing
      const limit = performance.now() + 10_000
      while (server.counters.postedWrites - base < 200 && performance.now() < limit) await new Promise((r) => setTimeout(r, 10))
      expect(server.counters.postedWrites - base).toBeGreaterThanOrEqual(200)
      await t.worker.terminate()
      const t0 = performance.now()
      server.close()
      expect(performance.now() - t0).toBeLessThan(100)
      expect(f.iommu.mappedPages(f.fn.rid)).toBe(0)
      // what a dead thread leaves in flight completes (or faults) on the controller
      await new Promise((r) => setTimeout(r, 50))
    }
    // the dead threads' kernels scratch slots and host DRAM came back
    expect(freeScratchSlots(f)).toBe(slots)
    expect(hostAvailable(f)).toBe(hostFree)
    // the same controller, a new thread: its init() resets the controller
    const { server, t } = await start(f, { mode: 'interrupt' })
    const r = (await t.ask({ type: 'pattern', nsid: 1, lba: 0, count: 64, blocks: 1, seed: 5, qd: 8, write: true })).result as { failed: number }
    expect(r.failed).toBe(0)
    await t.ask({ type: 'shutdown' })
    expect(await t.exited).toBe(0)
    server.close()
  })

  it('bad descriptions and misuse are NvmeError with a stable code', async () => {
    const f = await fixture({ namespaces: [{ blocks: 1024, blockSize: BS }] })
    open.push(f)
    const server = serveHostThread({ fabric: f.fabric, fn: f.fn, iommu: f.iommu, hostBytes: HOST_BYTES })
    servers.push(server)
    const d = server.description
    const code = async (p: () => Promise<unknown>) => {
      try {
        await p()
      } catch (e) {
        expect(e).toBeInstanceOf(NvmeError)
        return (e as NvmeError).code
      }
      return 'no error'
    }
    const c = (x: unknown) => code(() => connectHostThread(x as HostThreadDescription))
    expect(await c(null)).toBe('NVME_BAD_ARGUMENT')
    expect(await c({})).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, kind: 'something else' })).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, version: 2 })).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, channel: new SharedArrayBuffer(d.channel.byteLength) })).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, channel: new ArrayBuffer(d.channel.byteLength) })).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, physical: {} })).toBe('NVME_BAD_ARGUMENT')
    expect(await c({ ...d, host: { offset: 0, size: 0 } })).toBe('NVME_BAD_ARGUMENT')
    // on the serving thread itself it would wait for its own answers
    expect(await c(d)).toBe('NVME_BAD_ARGUMENT')
    // a driver that is not a host thread's
    const inProcess = await host(f, { mode: 'poll' })
    expect(await code(async () => disconnectHostThread(inProcess))).toBe('NVME_BAD_ARGUMENT')
    inProcess.stop()
    expect(await code(async () => serveHostThread({ fabric: f.fabric, fn: f.fn, iommu: f.iommu, ringCapacity: 1000 }))).toBe('NVME_BAD_ARGUMENT')
    expect(await code(async () => serveHostThread({ fabric: f.fabric, fn: f.fn, iommu: f.iommu, hostBytes: 1 << 30 }))).toBe('NVME_NO_SPACE')
    server.close()
    // closed: a connect on a worker finds it so
    const late = new HostThread(d, {})
    expect(await late.next()).toMatchObject({ type: 'error', error: { name: 'NvmeError', code: 'NVME_CLOSED' } })
    expect(await late.exited).toBe(0)
  })
})
