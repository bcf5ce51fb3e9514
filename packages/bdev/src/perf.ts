// bdevperf (SPDK examples/bdev/bdevperf): keeps `queueDepth` I/Os of one size in flight on
// a bdev for a while and reports IOPS, MB/s and latency percentiles. Offsets are random
// (aligned to the I/O size) or sequential; buffers come from the caller, one per queue slot,
// so they may live in any memory domain (host memory through the IOMMU, to measure the
// data path as a host drives it).
import type { IoVecList, MemoryDomain } from '@ipukit/memory'
import type { BdevChannel, BdevDesc } from './bdev.js'
import { BdevError } from './errors.js'

export type BdevPerfWorkload = 'read' | 'write' | 'randread' | 'randwrite'

export interface BdevPerfOptions {
  desc: BdevDesc
  ch: BdevChannel
  workload: BdevPerfWorkload
  /** blocks per I/O */
  ioBlocks: number
  queueDepth: number
  /** seconds to measure, after a warm-up of a tenth of it (at least 20 ms) */
  seconds: number
  /** the buffer of queue slot i: ioBlocks x blockLen bytes */
  buffer: (slot: number) => { iovs: IoVecList; domain: MemoryDomain | null }
}

export interface BdevPerfResult {
  workload: BdevPerfWorkload
  bdev: string
  ioBytes: number
  queueDepth: number
  seconds: number
  ios: number
  failed: number
  /** the first failure's status, if any */
  firstFailure: number
  iops: number
  /** data bytes per second, 10^6 */
  mbPerSecond: number
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
}

interface Slot {
  iovs: IoVecList
  domain: MemoryDomain | null
  started: number
}

/** Runs one bdevperf measurement. */
export async function runBdevPerf(o: BdevPerfOptions): Promise<BdevPerfResult> {
  const { desc, ch, workload, ioBlocks, queueDepth: qd, seconds } = o
  const b = desc.bdev
  if (!['read', 'write', 'randread', 'randwrite'].includes(workload)) throw new BdevError('BDEV_BAD_ARGUMENT', `workload must be read, write, randread or randwrite, got '${String(workload)}'`)
  if (!Number.isInteger(ioBlocks) || ioBlocks < 1 || ioBlocks > b.blockCount) throw new BdevError('BDEV_BAD_ARGUMENT', `ioBlocks must be 1 to ${b.blockCount}, got ${ioBlocks}`)
  if (!Number.isInteger(qd) || qd < 1 || qd > ch.ioCount) throw new BdevError('BDEV_BAD_ARGUMENT', `queueDepth must be 1 to ${ch.ioCount}, got ${qd}`)
  if (!(seconds > 0 && seconds <= 3600)) throw new BdevError('BDEV_BAD_ARGUMENT', `seconds must be in (0, 3600], got ${seconds}`)
  const write = workload === 'write' || workload === 'randwrite'
  const slots: Slot[] = []
  for (let i = 0; i < qd; i++) {
    const s = o.buffer(i)
    if (s.iovs.total !== ioBlocks * b.blockLen) throw new BdevError('BDEV_BAD_ARGUMENT', `buffer(${i}) holds ${s.iovs.total} bytes; an I/O of ${ioBlocks} blocks needs ${ioBlocks * b.blockLen}`)
    slots.push({ iovs: s.iovs, domain: s.domain, started: 0 })
  }
  const offset = perfOffsets(workload === 'randread' || workload === 'randwrite', b.blockCount, ioBlocks)
  const r = await runClosedLoop(slots, seconds, (s, done) => {
    const at = offset()
    return write ? desc.writev(ch, s.iovs, s.domain, at, ioBlocks, done, s) : desc.readv(ch, s.iovs, s.domain, at, ioBlocks, done, s)
  })
  const secs = r.seconds
  return {
    workload,
    bdev: b.name,
    ioBytes: ioBlocks * b.blockSize,
    queueDepth: qd,
    seconds: secs,
    ios: r.ios,
    failed: r.failed,
    firstFailure: r.firstFailure,
    iops: r.ios / secs,
    mbPerSecond: (r.ios * ioBlocks * b.blockSize) / secs / 1e6,
    latencyUs: r.latencyUs,
  }
}

/**
 * Offsets of `ioBlocks`-block I/Os in `blockCount` blocks, aligned to the I/O size: random
 * (xorshift, the same sequence every run) or sequential, wrapping around.
 */
export function perfOffsets(random: boolean, blockCount: number, ioBlocks: number): () => number {
  const span = Math.floor(blockCount / ioBlocks)
  let next = 0
  let seed = 0x9e3779b9
  return () => {
    if (!random) {
      const at = next
      next = (next + 1) % span
      return at * ioBlocks
    }
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return ((seed >>> 0) % span) * ioBlocks
  }
}

export interface ClosedLoopResult {
  /** completions counted (successes), failures, and the first failure's status */
  ios: number
  failed: number
  firstFailure: number
  /** the measured span, after the warm-up */
  seconds: number
  /** submission to completion */
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
}

/**
 * The closed loop of bdevperf and nvme perf: each slot keeps one I/O in flight, started
 * again as it completes, for a warm-up (a tenth of `seconds`, at least 20 ms) and then
 * `seconds` measured. `submit(slot, done)` starts the slot's I/O and returns 0, or nonzero
 * when there is no room (the slot waits a turn); `done(slot, status)` is its completion, 0
 * for success. Completions that start I/Os on microtasks would starve timers and sockets, so
 * the loop yields to the event loop every 5 ms.
 */
export async function runClosedLoop<S extends { started: number }>(slots: readonly S[], seconds: number, submit: (slot: S, done: (slot: S, status: number) => void) => number): Promise<ClosedLoopResult> {
  let ios = 0
  let failed = 0
  let firstFailure = 0
  let phase = 0
  const LAT = 1 << 20
  const lat = new Float64Array(LAT)
  let nLat = 0
  let inflight = 0
  const t0 = performance.now()
  const warmEnd = t0 + Math.max(20, seconds * 100)
  let measureStart = 0
  let elapsed = 0
  let lastYield = t0
  const parked: S[] = []
  let parkScheduled = false
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((r) => (resolveDone = r))
  const park = (s: S) => {
    parked.push(s)
    if (!parkScheduled) {
      parkScheduled = true
      setImmediate(unpark)
    }
  }
  const unpark = () => {
    parkScheduled = false
    lastYield = performance.now()
    const n = parked.length
    for (let i = 0; i < n; i++) start(parked[i]!)
    parked.splice(0, n)
  }
  const onDone = (s: S, status: number) => {
    inflight--
    const now = performance.now()
    if (phase === 0 && now >= warmEnd) {
      phase = 1
      measureStart = now
    } else if (phase === 1 && now - measureStart >= seconds * 1000) {
      phase = 2
      elapsed = now - measureStart
    }
    if (phase === 1) {
      if (status === 0) {
        ios++
        if (nLat < LAT) lat[nLat++] = now - s.started
      } else {
        if (failed === 0) firstFailure = status
        failed++
      }
    }
    if (phase === 2) {
      if (inflight === 0) resolveDone()
      return
    }
    if (now - lastYield < 5) start(s)
    else park(s)
  }
  function start(s: S): void {
    if (phase === 2) {
      if (inflight === 0) resolveDone()
      return
    }
    s.started = performance.now()
    inflight++
    if (submit(s, onDone) !== 0) {
      inflight--
      park(s)
    }
  }
  for (const s of slots) start(s)
  await done
  const l = lat.subarray(0, nLat).sort()
  const pct = (p: number) => (l.length === 0 ? 0 : Math.round(l[Math.min(l.length - 1, Math.floor(p * l.length))]! * 10000) / 10)
  return {
    ios,
    failed,
    firstFailure,
    seconds: elapsed / 1000,
    latencyUs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: l.length === 0 ? 0 : Math.round(l[l.length - 1]! * 1000) },
  }
}
