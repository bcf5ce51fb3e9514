// `ipukit perf`: a host workload against any NVMe/TCP target, in the manner of SPDK's
// spdk_nvme_perf. One NvmfHost (an admin queue and --io-queues I/O queues), -q I/Os kept in
// flight (spread round robin over the queues), each of -o bytes: sequential or random
// offsets aligned to the I/O size, reads, writes or a mix with -M percent reads. Latency is
// counted from submission to completion into a log-linear histogram (128 steps per power of
// two: within 0.8 %), per direction, with exact minimum, maximum and average; no allocation
// per I/O in this loop (the slots, their SQE builders and buffers are made up front; the
// random offsets and the read/write coin are xorshift generators with fixed seeds, so two
// runs do the same I/O).
//
// Namespaces with protection information: by default the controller acts on it (PRACT=1:
// it generates the PI on writes and checks and strips it on reads, PRCHK=GUARD|REFTAG;
// GUARD for Type 3), so the host moves plain data (data and the rest of the metadata when
// the metadata is larger than the PI). `-e PRACT=0` moves each block's metadata as it is,
// unchecked.
import { type HostCompletion, HOST_ABORTED, type NvmfNamespace, NvmfHost, nqnProblem } from '@ipukit/nvmf'
import { createPhysicalMemory, IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { CliError, usage } from './errors.js'
import { connectError, describeStatus } from './connect-error.js'
import { fmt } from './flags.js'

export type PerfWorkload = 'read' | 'write' | 'randread' | 'randwrite' | 'randrw'
export const PERF_WORKLOADS: readonly PerfWorkload[] = ['read', 'write', 'randread', 'randwrite', 'randrw']

/** PRINFO of each read and write (NVM Command Set §3.2.3 CDW12 bits 29:26). */
export interface PerfMetadata {
  /** Protection Information Action: the controller inserts (write) and strips (read) the PI */
  pract: 0 | 1
  prchk: { guard: boolean; appTag: boolean; refTag: boolean }
}

export interface PerfOptions {
  target: { host: string; port: number; nqn: string }
  /** I/Os in flight, over all I/O queues; default 32 */
  queueDepth?: number
  /** bytes of data per I/O, a multiple of the namespace's block size; default 4096 */
  ioSize?: number
  /** default randread */
  workload?: PerfWorkload
  /** randrw: percent reads; default 50 */
  readPercent?: number
  /** seconds measured; default 5 */
  seconds?: number
  /** seconds run before measuring; default 0 */
  warmupSeconds?: number
  /** I/O queues (connections); default 1 */
  ioQueues?: number
  hdgst?: boolean
  ddgst?: boolean
  /** default the first active namespace */
  nsid?: number
  /** default nqn.2014-08.org.nvmexpress:uuid:<random> */
  hostnqn?: string
  /** default: none on a namespace without PI; PRACT=1 with GUARD|REFTAG (GUARD for Type 3) on one with */
  metadata?: PerfMetadata
  /** ms for the TCP connection and each bring-up command; default 5000 */
  connectTimeoutMs?: number
  /** aborting stops the run early; the result says so (interrupted: the signal's reason) */
  signal?: AbortSignal
  /** once connected, before the first I/O */
  onStart?: (info: PerfStart) => void
}

export interface PerfStart {
  url: string
  cntlid: number
  nsid: number
  namespace: PerfNamespace
  ioQueues: number
  connectMs: number
  metadata: string
}

export interface PerfNamespace {
  nsid: number
  blocks: number
  blockSize: number
  mdSize: number
  pi: { type: number; format: number; location: string }
}

export interface PerfLatency {
  average: number
  min: number
  max: number
  p50: number
  p90: number
  p99: number
  p999: number
}

export interface PerfStats {
  ios: number
  /** data bytes (metadata not counted) */
  bytes: number
  iops: number
  mibPerSecond: number
  /** microseconds, submission to completion */
  latencyUs: PerfLatency
}

export interface PerfFailure {
  status: number
  /** "281h Unrecovered Read Error" */
  name: string
  op: 'read' | 'write'
  lba: number
  blocks: number
}

export interface PerfResult {
  tool: 'ipukit perf'
  target: { url: string; host: string; port: number; nqn: string; hostnqn: string; cntlid: number }
  namespace: PerfNamespace
  options: { workload: PerfWorkload; queueDepth: number; ioSize: number; readPercent: number; seconds: number; warmupSeconds: number; ioQueues: number; hdgst: boolean; ddgst: boolean; metadata: string }
  /** the span measured, s */
  seconds: number
  /** why it ended early: 'SIGINT', 'SIGTERM', 'failure'; null when it ran its time */
  interrupted: string | null
  /** the most I/Os that were in flight at once (less than queueDepth when the target's queues are shorter) */
  maxInFlight: number
  read: PerfStats
  write: PerfStats
  total: PerfStats
  failed: number
  firstFailure: PerfFailure | null
}

// ---- latency histogram ----

const SUB_BITS = 7
const SUB = 1 << SUB_BITS
const BUCKETS = (64 - SUB_BITS + 1) * SUB

function bucketOf(v: number): number {
  if (v < 2 * SUB) return v
  const msb = v < 2 ** 32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / 2 ** 32))
  const shift = msb - SUB_BITS
  return (shift + 1) * SUB + (Math.floor(v / 2 ** shift) - SUB)
}

function bucketMid(i: number): number {
  if (i < 2 * SUB) return i
  const shift = Math.floor(i / SUB) - 1
  const lo = (SUB + (i % SUB)) * 2 ** shift
  return lo + (2 ** shift - 1) / 2
}

/** Latencies in nanoseconds: log-linear buckets, exact count, sum, min and max. */
export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS)
  n = 0
  sum = 0
  min = Number.POSITIVE_INFINITY
  max = 0

  record(ns: number): void {
    const v = ns <= 0 ? 0 : Math.round(ns)
    this.n++
    this.sum += v
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
    this.counts[bucketOf(v)]!++
  }

  add(o: LatencyHistogram): this {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += o.counts[i]!
    this.n += o.n
    this.sum += o.sum
    this.min = Math.min(this.min, o.min)
    this.max = Math.max(this.max, o.max)
    return this
  }

  /** The value at or below which a fraction p of the samples fall (ns). */
  percentile(p: number): number {
    if (this.n === 0) return 0
    const want = Math.max(1, Math.ceil(p * this.n))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= want) return Math.min(this.max, Math.max(this.min, bucketMid(i)))
    }
    return this.max
  }

  latencyUs(): PerfLatency {
    const us = (ns: number) => Math.round(ns / 10) / 100
    if (this.n === 0) return { average: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0, p999: 0 }
    return { average: us(this.sum / this.n), min: us(this.min), max: us(this.max), p50: us(this.percentile(0.5)), p90: us(this.percentile(0.9)), p99: us(this.percentile(0.99)), p999: us(this.percentile(0.999)) }
  }
}

// ---- flags ----

/** -e / --metadata: "PRACT=0|1,PRCHK=GUARD|REFTAG|APPTAG" (spdk_nvme_perf's syntax); PRCHK=NONE for no checks. */
export function parseMetadata(v: string): PerfMetadata {
  const m: PerfMetadata = { pract: 0, prchk: { guard: false, appTag: false, refTag: false } }
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, val = ''] = part.split('=').map((s) => s.trim().toUpperCase()) as [string, string?]
    if (k === 'PRACT') {
      if (val !== '0' && val !== '1') throw new Error(`PRACT must be 0 or 1, got '${val}'`)
      m.pract = val === '1' ? 1 : 0
    } else if (k === 'PRCHK') {
      for (const c of val.split('|').map((s) => s.trim())) {
        if (c === 'GUARD') m.prchk.guard = true
        else if (c === 'REFTAG') m.prchk.refTag = true
        else if (c === 'APPTAG') m.prchk.appTag = true
        else if (c !== 'NONE') throw new Error(`PRCHK takes GUARD, REFTAG, APPTAG or NONE joined by |, got '${c}'`)
      }
    } else throw new Error(`expected PRACT=0|1 and PRCHK=GUARD|REFTAG|APPTAG, got '${part}'`)
  }
  return m
}

export function metadataString(m: PerfMetadata | null): string {
  if (m === null) return 'none'
  const c = [m.prchk.guard && 'GUARD', m.prchk.refTag && 'REFTAG', m.prchk.appTag && 'APPTAG'].filter(Boolean).join('|')
  return `PRACT=${m.pract},PRCHK=${c === '' ? 'NONE' : c}`
}

// ---- the run ----

class Slot {
  started = 0
  lba = 0
  write = false
  readonly build: (v: DataView) => void
  constructor(
    readonly queue: number,
    readonly list: IoVecList,
    nsid: number,
    blocks: number,
    prinfo: number,
  ) {
    const cdw12 = ((blocks - 1) & 0xffff) | prinfo
    this.build = (v) => {
      const lba = this.lba
      v.setUint8(0, this.write ? 0x01 : 0x02)
      v.setUint32(4, nsid, true)
      v.setUint32(40, lba % 0x1_0000_0000, true)
      v.setUint32(44, Math.floor(lba / 0x1_0000_0000), true)
      v.setUint32(48, cdw12 >>> 0, true)
      // ILBRT: the LBA's low 32 bits (Type 1 must; Types 2 and 3 take it as the initial ref tag)
      v.setUint32(56, lba % 0x1_0000_0000, true)
    }
  }
}

function urlOf(t: { host: string; port: number; nqn: string }): string {
  return `nvme+tcp://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${t.nqn}`
}

function checkInt(flag: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw usage(`${flag} must be a whole number from ${lo} to ${hi}, got ${v}`)
  return v
}

/** Runs the workload; resolves to what was measured (also when stopped early or an I/O failed: see interrupted and firstFailure). */
export async function runPerf(o: PerfOptions): Promise<PerfResult> {
  const qd = checkInt('-q', o.queueDepth ?? 32, 1, 4096)
  const ioSize = o.ioSize ?? 4096
  if (!Number.isSafeInteger(ioSize) || ioSize < 512) throw usage(`-o must be at least 512 bytes, got ${ioSize}`)
  const workload = o.workload ?? 'randread'
  if (!PERF_WORKLOADS.includes(workload)) throw usage(`-w must be one of ${PERF_WORKLOADS.join(', ')}, got '${String(workload)}'`)
  const readPercent = checkInt('-M', o.readPercent ?? 50, 0, 100)
  const seconds = o.seconds ?? 5
  if (!(seconds > 0 && seconds <= 86_400)) throw usage(`-t must be more than 0 and at most 86400 seconds, got ${seconds}`)
  const warmup = o.warmupSeconds ?? 0
  if (!(warmup >= 0 && warmup <= 3600)) throw usage(`--warmup must be from 0 to 3600 seconds, got ${warmup}`)
  const ioQueuesWanted = checkInt('--io-queues', o.ioQueues ?? 1, 1, 128)
  const hdgst = o.hdgst === true
  const ddgst = o.ddgst === true
  const perQueue = Math.ceil(qd / ioQueuesWanted)
  const url = urlOf(o.target)
  const nqnWhy = nqnProblem(o.target.nqn)
  if (nqnWhy !== null) throw usage(`-r ${url}: the subsystem NQN '${o.target.nqn}' ${nqnWhy}`)
  if (o.hostnqn !== undefined && nqnProblem(o.hostnqn) !== null) throw usage(`--hostnqn '${o.hostnqn}' ${nqnProblem(o.hostnqn)}`)

  // the I/O buffers: one per slot, the most bytes an I/O moves (data and metadata; 64 KiB blocks of 4 KiB metadata at most)
  const maxBufLen = Math.min(ioSize * 2, ioSize + (ioSize / 512) * 4096)
  const bufBytes = qd * maxBufLen
  const queueBytes = (ioQueuesWanted + 1) * (64 * 1024 + (perQueue + 1) * 512) + 8192
  const ipuSize = Math.ceil((bufBytes + queueBytes + (24 << 20)) / (1 << 20)) * (1 << 20)
  if (ipuSize > 3 * 1024 ** 3) throw usage(`-q ${qd} × -o ${fmt(ioSize)} needs ${fmt(bufBytes)} of buffers; at most ${fmt(3 * 1024 ** 3)} fit (one 4 GiB wasm32 address space)`)
  let physical: PhysicalMemory | null = null
  let host: NvmfHost | null = null
  const allocs: number[] = []
  const cleanup = async () => {
    if (host !== null) await host.close().catch(() => {})
    for (const a of allocs) physical?.ipuAllocator.free(a)
    physical?.close()
  }
  try {
    physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize, iobuf: { smallCount: 64, largeCount: 8, smallCache: 8, largeCache: 2 } })
    try {
      host = new NvmfHost({
        physical,
        traddr: o.target.host,
        trsvcid: o.target.port,
        subnqn: o.target.nqn,
        ...(o.hostnqn !== undefined && { hostnqn: o.hostnqn }),
        ioQueues: ioQueuesWanted,
        queueDepth: Math.min(4096, perQueue + 1),
        hdgst,
        ddgst,
        connectTimeoutMs: o.connectTimeoutMs ?? 5000,
        // a target that goes away mid-run: a few quick reconnect attempts, then the I/O fails (Host Pathing Error)
        reconnectDelayMs: 500,
        ctrlLossTimeoutMs: 3000,
        ioTimeoutMs: 10_000,
      })
    } catch (e) {
      throw connectError(e, o.target, o.hostnqn ?? '')
    }
    const h = host
    const t0 = performance.now()
    try {
      await h.connect()
    } catch (e) {
      throw connectError(e, o.target, h.hostnqn)
    }
    const connectMs = performance.now() - t0
    o.signal?.throwIfAborted()

    // the namespace
    if (h.namespaces.size === 0) throw new CliError('CLI_TARGET', `${o.target.nqn} at ${o.target.host}:${o.target.port} has no namespace`)
    const nsid = o.nsid ?? Math.min(...h.namespaces.keys())
    const ns: NvmfNamespace | undefined = h.namespaces.get(nsid)
    if (ns === undefined) throw new CliError('CLI_TARGET', `${o.target.nqn} has no namespace ${nsid} (it has ${[...h.namespaces.keys()].join(', ')})`)
    const pi = ns.pi ?? { type: 0, format: 16, location: 'last' }
    const piBytes = pi.format === 16 ? 8 : 16
    let md: PerfMetadata | null
    if (o.metadata !== undefined) {
      md = o.metadata
      const checks = md.prchk.guard || md.prchk.appTag || md.prchk.refTag
      if (pi.type === 0 && (md.pract === 1 || checks)) throw usage(`-e ${metadataString(md)}: namespace ${nsid} has no protection information`)
      if (md.pract === 0 && checks) throw usage(`-e ${metadataString(md)}: with PRACT=0 the host would have to generate the PI itself, which perf does not; use PRACT=1`)
    } else md = pi.type === 0 ? null : { pract: 1, prchk: { guard: true, appTag: false, refTag: pi.type !== 3 } }
    const prinfo = md === null ? 0 : (md.pract << 29) | (md.prchk.guard ? 1 << 28 : 0) | (md.prchk.appTag ? 1 << 27 : 0) | (md.prchk.refTag ? 1 << 26 : 0)
    if (ioSize % ns.blockSize !== 0) throw usage(`-o ${ioSize} is not a multiple of namespace ${nsid}'s block size (${ns.blockSize} bytes)`)
    const ioBlocks = ioSize / ns.blockSize
    if (ioBlocks > 65536) throw usage(`-o ${fmt(ioSize)} is more than 65536 blocks of ${ns.blockSize} bytes (the most one command carries)`)
    if (ioBlocks > ns.blocks) throw usage(`-o ${fmt(ioSize)} is larger than namespace ${nsid} (${ns.blocks} blocks of ${ns.blockSize} bytes)`)
    const hostBlockLen = ns.mdSize === 0 || (md?.pract === 1 && ns.mdSize === piBytes) ? ns.blockSize : ns.blockSize + ns.mdSize
    const bufLen = ioBlocks * hostBlockLen
    if (bufLen > h.maxTransfer) throw usage(`-o ${fmt(ioSize)} moves ${bufLen} bytes per I/O, more than the target's largest transfer (MDTS: ${fmt(h.maxTransfer)})`)
    if (bufLen > maxBufLen) throw usage(`-o ${fmt(ioSize)} with ${ns.mdSize} bytes of metadata per block is more than perf buffers`)
    const ioQueues = h.ioQueues
    if (ioQueues === 0) throw new CliError('CLI_TARGET', `${o.target.nqn} granted no I/O queue`)

    // the slots, their buffers (writes carry a pattern), their queues
    const slots: Slot[] = []
    for (let i = 0; i < qd; i++) {
      const a = physical.ipuAllocator.alloc(bufLen)
      if (a < 0) throw new CliError('CLI_FAILED', `no memory for ${qd} buffers of ${bufLen} bytes`)
      allocs.push(a)
      physical.bytes.fill(0xa5 ^ (i & 0xff), a, a + bufLen)
      slots.push(new Slot(i % ioQueues, new IoVecList(1).push(a, bufLen), nsid, ioBlocks, prinfo))
    }
    o.onStart?.({ url, cntlid: h.cntlid, nsid, namespace: { nsid, blocks: ns.blocks, blockSize: ns.blockSize, mdSize: ns.mdSize, pi: { ...pi } }, ioQueues, connectMs, metadata: metadataString(md) })

    // offsets and the read/write coin: xorshift32, fixed seeds
    const random = workload.startsWith('rand')
    const span = Math.floor(ns.blocks / ioBlocks)
    let seq = 0
    let seedLba = 0x9e3779b9 | 0
    let seedCoin = 0x2545f491 | 0
    const mix = workload === 'randrw'
    const fixedWrite = workload === 'write' || workload === 'randwrite'
    const nextLba = (): number => {
      if (!random) {
        const at = seq
        seq = seq + 1 === span ? 0 : seq + 1
        return at * ioBlocks
      }
      seedLba ^= seedLba << 13
      seedLba ^= seedLba >>> 17
      seedLba ^= seedLba << 5
      return ((seedLba >>> 0) % span) * ioBlocks
    }
    const coinWrite = (): boolean => {
      seedCoin ^= seedCoin << 13
      seedCoin ^= seedCoin >>> 17
      seedCoin ^= seedCoin << 5
      return (seedCoin >>> 0) % 100 >= readPercent
    }

    const hist = { read: new LatencyHistogram(), write: new LatencyHistogram() }
    let phase = warmup > 0 ? 0 : 1 // 0 warm-up, 1 measuring, 2 stopping
    let tStart = 0
    let tEnd = 0
    let lastOk = 0
    let inflight = 0
    let maxInFlight = 0
    let failed = 0
    let first: PerfFailure | null = null
    let interrupted: string | null = null
    let drained: () => void = () => {}
    const drainedP = new Promise<void>((r) => (drained = r))
    const timers: ReturnType<typeof setTimeout>[] = []
    const stop = (why: string | null) => {
      if (phase === 2) return
      const now = performance.now()
      // after a failure, the span ends at the last success: a target that went away is not counted as time it served
      if (phase === 1) tEnd = why === 'failure' && lastOk > tStart ? lastOk : now
      else tStart = tEnd = now
      phase = 2
      interrupted = why
      for (const t of timers) clearTimeout(t)
      if (inflight === 0) drained()
    }
    const submit = (s: Slot): void => {
      s.write = mix ? coinWrite() : fixedWrite
      s.lba = nextLba()
      s.started = performance.now()
      if (h.io(s.queue, s.build, s.list, !s.write, done, s) !== 0) return // the queue is full (shorter than asked): this slot idles
      if (++inflight > maxInFlight) maxInFlight = inflight
    }
    const done = (s: Slot, c: HostCompletion): void => {
      inflight--
      const now = performance.now()
      if (c.status !== 0) {
        // our own close of what would not drain is not a failure of the target's
        if (!(phase === 2 && c.status === HOST_ABORTED)) {
          if (failed++ === 0) first = { status: c.status, name: describeStatus(c.status), op: s.write ? 'write' : 'read', lba: s.lba, blocks: ioBlocks }
          if (phase !== 2) stop('failure')
        }
      } else if (phase === 1) {
        if (now - tStart >= seconds * 1000) stop(null)
        else {
          ;(s.write ? hist.write : hist.read).record((now - s.started) * 1e6)
          lastOk = now
        }
      }
      if (phase === 2) {
        if (inflight === 0) drained()
        return
      }
      submit(s)
    }
    const onAbort = () => stop(String(o.signal?.reason ?? 'interrupted'))
    o.signal?.addEventListener('abort', onAbort, { once: true })
    const begin = performance.now()
    if (phase === 1) tStart = begin
    else
      timers.push(
        setTimeout(() => {
          if (phase === 0) {
            phase = 1
            tStart = performance.now()
          }
        }, warmup * 1000),
      )
    // a target that stops answering: the time still ends (the drain below waits for the host's own timeouts)
    timers.push(setTimeout(() => stop(null), (warmup + seconds) * 1000 + 50))
    for (const s of slots) if (phase !== 2) submit(s)
    await Promise.race([drainedP, new Promise<void>((r) => setTimeout(r, 20_000 + (warmup + seconds) * 1000).unref())])
    if (phase !== 2) stop(null)
    // what would not drain (a target that went silent and is not yet given up on): closed, counted as aborted
    await Promise.race([drainedP, new Promise<void>((r) => setTimeout(r, 15_000).unref())])
    o.signal?.removeEventListener('abort', onAbort)

    const secs = Math.max(0, (tEnd - tStart) / 1000)
    const stats = (hh: LatencyHistogram): PerfStats => ({
      ios: hh.n,
      bytes: hh.n * ioSize,
      iops: secs > 0 ? hh.n / secs : 0,
      mibPerSecond: secs > 0 ? (hh.n * ioSize) / secs / 1024 ** 2 : 0,
      latencyUs: hh.latencyUs(),
    })
    const total = new LatencyHistogram().add(hist.read).add(hist.write)
    return {
      tool: 'ipukit perf',
      target: { url, host: o.target.host, port: o.target.port, nqn: o.target.nqn, hostnqn: h.hostnqn, cntlid: h.cntlid },
      namespace: { nsid, blocks: ns.blocks, blockSize: ns.blockSize, mdSize: ns.mdSize, pi: { ...pi } },
      options: { workload, queueDepth: qd, ioSize, readPercent: workload === 'randrw' ? readPercent : workload.endsWith('read') ? 100 : 0, seconds, warmupSeconds: warmup, ioQueues, hdgst, ddgst, metadata: metadataString(md) },
      seconds: Math.round(secs * 1e6) / 1e6,
      interrupted,
      maxInFlight,
      read: stats(hist.read),
      write: stats(hist.write),
      total: stats(total),
      failed,
      firstFailure: first,
    }
  } finally {
    await cleanup()
  }
}

// ---- the summary ----

const f2 = (n: number, w: number) => n.toFixed(2).padStart(w)

/** An spdk_nvme_perf-like summary: IOPS, MiB/s and latency per direction and in total. */
export function formatPerf(r: PerfResult): string {
  const ns = r.namespace
  const pi = ns.pi.type === 0 ? 'no PI' : `PI type ${ns.pi.type} (${ns.pi.format}b guard, ${ns.pi.location}), ${r.options.metadata}`
  const mix = r.options.workload === 'randrw' ? ` (${r.options.readPercent}% reads)` : ''
  const lines = [
    `ipukit perf: ${r.options.workload}${mix}, ${r.options.ioSize}-byte I/O, queue depth ${r.options.queueDepth} over ${r.options.ioQueues} I/O queue${r.options.ioQueues === 1 ? '' : 's'}, ${r.options.seconds} s${r.options.warmupSeconds > 0 ? ` after ${r.options.warmupSeconds} s warm-up` : ''}`,
    `target ${r.target.url} (controller ${r.target.cntlid}), namespace ${ns.nsid}: ${ns.blocks} blocks of ${ns.blockSize}${ns.mdSize > 0 ? ` + ${ns.mdSize}` : ''} bytes, ${pi}; header digest ${r.options.hdgst ? 'on' : 'off'}, data digest ${r.options.ddgst ? 'on' : 'off'}`,
  ]
  const rule = '='.repeat(110)
  lines.push(rule)
  const title = ' latency (us) '
  const dashes = 66 - 2 - title.length
  lines.push(`${''.padEnd(33)}${'-'.repeat(Math.floor(dashes / 2))}${title}${'-'.repeat(Math.ceil(dashes / 2))}`)
  lines.push(`${'op'.padEnd(8)}${'IOPS'.padStart(12)}${'MiB/s'.padStart(11)}${'Average'.padStart(11)}${'min'.padStart(11)}${'max'.padStart(11)}${'p50'.padStart(11)}${'p99'.padStart(11)}${'p99.9'.padStart(11)}${'I/Os'.padStart(12)}`)
  const row = (name: string, s: PerfStats) => `${name.padEnd(8)}${f2(s.iops, 12)}${f2(s.mibPerSecond, 11)}${f2(s.latencyUs.average, 11)}${f2(s.latencyUs.min, 11)}${f2(s.latencyUs.max, 11)}${f2(s.latencyUs.p50, 11)}${f2(s.latencyUs.p99, 11)}${f2(s.latencyUs.p999, 11)}${String(s.ios).padStart(12)}`
  if (r.read.ios > 0 || r.options.readPercent > 0) lines.push(row('read', r.read))
  if (r.write.ios > 0 || r.options.readPercent < 100) lines.push(row('write', r.write))
  lines.push(rule)
  lines.push(row('total', r.total))
  if (r.maxInFlight < r.options.queueDepth && r.interrupted !== 'failure') lines.push(`note: at most ${r.maxInFlight} I/Os were in flight: the target's queues are shorter than -q ${r.options.queueDepth} over ${r.options.ioQueues} queue(s)`)
  if (r.interrupted !== null && r.interrupted !== 'failure') lines.push(`stopped early (${r.interrupted}) after ${r.seconds.toFixed(2)} s`)
  if (r.firstFailure !== null) lines.push(`${r.failed} I/O${r.failed === 1 ? '' : 's'} failed; the first: ${r.firstFailure.op} of ${r.firstFailure.blocks} blocks at LBA ${r.firstFailure.lba}, status ${r.firstFailure.name}`)
  return `${lines.join('\n')}\n`
}
