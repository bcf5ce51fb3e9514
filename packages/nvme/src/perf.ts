// nvmeperf, the host's side of bdevperf (SPDK examples/nvme/perf): keeps `queueDepth`
// commands of one size in flight through the host driver (spread over its I/O queues) for a
// while, and reports IOPS, MB/s and latency percentiles, submission to completion callback
// as the host sees them. Offsets are random (aligned to the I/O size) or sequential. One host
// buffer per queue slot, allocated once; nothing is allocated per command.
import type { Completion, HostBuffer, NvmeHostDriver } from './host.js'
import { perfOffsets, runClosedLoop } from '@ipukit/bdev'
import { NvmeError } from './errors.js'

export type NvmePerfWorkload = 'read' | 'write' | 'randread' | 'randwrite'

export interface NvmePerfOptions {
  driver: NvmeHostDriver
  nsid: number
  workload: NvmePerfWorkload
  /** bytes per command: a multiple of the namespace's block size */
  ioBytes: number
  queueDepth: number
  /** seconds to measure, after a warm-up of a tenth of it (at least 20 ms) */
  seconds: number
  /** the I/O queues to spread the commands over; default all of the driver's */
  queues?: number
  /** the buffer of queue slot i (ioBytes at least); default one the driver allocates, freed at the end */
  buffer?: (slot: number) => HostBuffer
}

export interface NvmePerfResult {
  workload: NvmePerfWorkload
  nsid: number
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
  /** submission to completion, µs */
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
}

interface Slot {
  buf: HostBuffer
  segs: [number, number][]
  q: number
  started: number
  /** the closed loop's completion, for this slot */
  done: ((slot: Slot, status: number) => void) | null
}

const WORKLOADS: readonly string[] = ['read', 'write', 'randread', 'randwrite']

const completed = (s: Slot, c: Completion) => s.done!(s, c.status)

/** Runs one measurement. */
export async function runNvmePerf(o: NvmePerfOptions): Promise<NvmePerfResult> {
  const { driver: d, nsid, workload, ioBytes, queueDepth: qd, seconds } = o
  const ns = d.namespaces.get(nsid)
  if (ns === undefined) throw new NvmeError('NVME_BAD_ARGUMENT', `namespace ${nsid} is not active (have ${[...d.namespaces.keys()].join(', ') || 'none'})`)
  if (!WORKLOADS.includes(workload)) throw new NvmeError('NVME_BAD_ARGUMENT', `workload must be read, write, randread or randwrite, got '${String(workload)}'`)
  const blockLen = ns.blockSize + ns.mdSize
  if (!Number.isInteger(ioBytes) || ioBytes < blockLen || ioBytes % blockLen !== 0) throw new NvmeError('NVME_BAD_ARGUMENT', `ioBytes must be a positive multiple of the ${blockLen}-byte block, got ${ioBytes}`)
  const blocks = ioBytes / blockLen
  if (blocks > ns.blocks) throw new NvmeError('NVME_BAD_ARGUMENT', `an I/O of ${blocks} blocks does not fit the namespace's ${ns.blocks}`)
  const queues = o.queues ?? d.ioQueues
  if (!Number.isInteger(queues) || queues < 1 || queues > d.ioQueues) throw new NvmeError('NVME_BAD_ARGUMENT', `queues must be 1 to ${d.ioQueues}, got ${queues}`)
  const perQueue = Math.ceil(qd / queues)
  if (!Number.isInteger(qd) || qd < 1 || perQueue > d.queueDepth - 1) throw new NvmeError('NVME_BAD_ARGUMENT', `queueDepth must be 1 to ${(d.queueDepth - 1) * queues} on ${queues} queue(s) of ${d.queueDepth} entries, got ${qd}`)
  if (!(seconds > 0 && seconds <= 3600)) throw new NvmeError('NVME_BAD_ARGUMENT', `seconds must be in (0, 3600], got ${seconds}`)
  const write = workload === 'write' || workload === 'randwrite'
  const owned: HostBuffer[] = []
  const slots: Slot[] = []
  for (let i = 0; i < qd; i++) {
    let buf: HostBuffer
    if (o.buffer !== undefined) {
      buf = o.buffer(i)
      if (buf.length < ioBytes) throw new NvmeError('NVME_BAD_ARGUMENT', `buffer(${i}) holds ${buf.length} bytes; a command of ${ioBytes} needs them all`)
    } else owned.push((buf = d.allocBuffer(ioBytes)))
    slots.push({ buf, segs: [[buf.iova, ioBytes]], q: i % queues, started: 0, done: null })
  }
  const offset = perfOffsets(workload === 'randread' || workload === 'randwrite', ns.blocks, blocks)
  try {
    const r = await runClosedLoop(slots, seconds, (s, done) => {
      s.done = done
      return d.rw(s.q, write, nsid, offset(), blocks, s.segs, completed, s)
    })
    return {
      workload,
      nsid,
      ioBytes,
      queueDepth: qd,
      seconds: r.seconds,
      ios: r.ios,
      failed: r.failed,
      firstFailure: r.firstFailure,
      iops: r.ios / r.seconds,
      mbPerSecond: (r.ios * blocks * ns.blockSize) / r.seconds / 1e6,
      latencyUs: r.latencyUs,
    }
  } finally {
    for (const b of owned) d.freeBuffer(b)
  }
}
