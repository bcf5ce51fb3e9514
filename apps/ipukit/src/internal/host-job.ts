// The host's side of `ipukit run`: write a data set through the NVMe driver, read it back and
// compare. It runs where the driver runs (its own worker thread in the app; in-process in
// some tests): a closed loop of `queueDepth` commands of `ioBytes`, sequential over the data
// set, one host buffer per slot, allocated once. Nothing is allocated per I/O: each slot
// keeps its segment list, its Buffer views of its host buffer and of its expected bytes, and
// latencies go to a preallocated array.
//
// The data: a file's bytes (--input; the last block padded with zeros on the device, only
// the file's bytes compared), or generated: a 1 MiB + 3.5 KiB pseudo-random source read
// cyclically (so no two nearby blocks are alike), each 512-byte piece stamped with its
// offset in the data set (so a block written to or read from the wrong place never
// compares equal).
import { closeSync, openSync, readSync } from 'node:fs'
import type { Completion, HostBuffer, NvmeHostDriver } from '@ipukit/nvme'

export interface HostJob {
  nsid: number
  /** bytes of data: a multiple of the namespace's block size (generated), or the file's size */
  size: number
  ioBytes: number
  queueDepth: number
  /** a file whose bytes are the data; else generated from `seed` */
  input?: string
  seed: number
}

export interface PhaseResult {
  /** data bytes moved (the file's bytes with --input) */
  bytes: number
  ios: number
  seconds: number
  failed: number
  /** the first failure's NVMe status, or 0 */
  firstFailure: number
  /** the LBA of the first failure, or -1 */
  firstFailureLba: number
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
  interrupted: boolean
}

export interface VerifyResult {
  checkedBytes: number
  /** I/Os whose data differed */
  mismatches: number
  /** byte offset in the data set of the first difference, or -1 */
  firstMismatch: number
}

export interface HostJobResult {
  write: PhaseResult
  read: PhaseResult | null
  verify: VerifyResult
}

export type Phase = 'write' | 'read'

export interface HostJobControl {
  /** called at most every 100 ms, and at each phase's end */
  progress?(phase: Phase, bytes: number): void
  /** set to stop submitting; what is in flight completes */
  stopped?: boolean
  /** called once, after `warmupIos` completions of the write phase (for heap samples) */
  steady?(): void
  /** called between the write and the read phase, with nothing in flight (for per-phase counters) */
  between?(): Promise<void> | void
}

const SRC = (1 << 20) + 3584
const STAMP = 512

interface Slot {
  buf: HostBuffer
  /** the whole buffer as a Buffer (the host DRAM it views) */
  view: Buffer
  expected: Buffer
  segs: [number, number][]
  offset: number
  len: number
  started: number
  q: number
}

function source(seed: number): Buffer {
  const b = Buffer.alloc(SRC)
  let s = seed >>> 0 || 0x9e3779b9
  for (let i = 0; i + 4 <= SRC; i += 4) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    b.writeUInt32LE(s >>> 0, i)
  }
  return b
}

/** Fills `out[0, len)` with the generated data at data-set offset `at` (a multiple of 512). */
export function generate(src: Buffer, out: Buffer, at: number, len: number): void {
  let o = 0
  while (o < len) {
    const from = (at + o) % SRC
    const n = Math.min(len - o, SRC - from)
    src.copy(out, o, from, from + n)
    o += n
  }
  for (let p = 0; p < len; p += STAMP) out.writeDoubleLE(at + p, p)
}

/** The generated data set's bytes [at, at + len): for tests and for checking a target's file. */
export function generatedData(seed: number, at: number, len: number): Buffer {
  const out = Buffer.alloc(len)
  generate(source(seed), out, at, len)
  return out
}

function percentiles(lat: Float64Array, n: number): PhaseResult['latencyUs'] {
  if (n === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
  const a = lat.subarray(0, n).sort()
  const q = (p: number) => a[Math.min(n - 1, Math.floor(p * n))]!
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: a[n - 1]! }
}

export async function runHostJob(d: NvmeHostDriver, job: HostJob, ctl: HostJobControl = {}): Promise<HostJobResult> {
  const ns = d.namespaces.get(job.nsid)
  if (ns === undefined) throw new Error(`namespace ${job.nsid} is not active on the device`)
  const bs = ns.blockSize
  if (ns.mdSize !== 0) throw new Error(`the device's namespace has ${ns.mdSize} bytes of metadata per block; the host writes data-only blocks`)
  const { ioBytes, queueDepth: qd } = job
  if (ioBytes % bs !== 0) throw new Error(`the I/O size ${ioBytes} is not a multiple of the ${bs}-byte block`)
  const deviceBytes = Math.ceil(job.size / bs) * bs
  if (deviceBytes / bs > ns.blocks) throw new Error(`the data (${job.size} bytes) does not fit the device's ${ns.blocks} blocks of ${bs}`)
  const fd = job.input !== undefined ? openSync(job.input, 'r') : -1
  const src = fd < 0 ? source(job.seed) : null
  const queues = d.ioQueues
  const slots: Slot[] = []
  for (let i = 0; i < qd; i++) {
    const buf = d.allocBuffer(ioBytes)
    const view = Buffer.from(buf.bytes.buffer, buf.bytes.byteOffset, ioBytes)
    slots.push({ buf, view, expected: Buffer.alloc(ioBytes), segs: [[buf.iova, ioBytes]], offset: 0, len: 0, started: 0, q: i % queues })
  }
  const total = Math.ceil(deviceBytes / ioBytes)
  const lat = new Float64Array(total)
  /** fills `out` with the data at `at`; with a file, zeros past its end */
  const fill = (out: Buffer, at: number, len: number) => {
    if (src !== null) return generate(src, out, at, len)
    const n = readSync(fd, out, 0, Math.min(len, job.size - at), at)
    if (n < len) out.fill(0, n, len)
  }
  const verify: VerifyResult = { checkedBytes: 0, mismatches: 0, firstMismatch: -1 }
  try {
    const write = await phase(d, job, slots, lat, total, deviceBytes, true, fill, verify, ctl)
    const go = write.failed === 0 && !write.interrupted
    if (go) await ctl.between?.()
    const read = go && ctl.stopped !== true ? await phase(d, job, slots, lat, total, deviceBytes, false, fill, verify, ctl) : null
    return { write, read, verify }
  } finally {
    for (const s of slots) d.freeBuffer(s.buf)
    if (fd >= 0) closeSync(fd)
  }
}

function phase(
  d: NvmeHostDriver,
  job: HostJob,
  slots: Slot[],
  lat: Float64Array,
  total: number,
  deviceBytes: number,
  write: boolean,
  fill: (out: Buffer, at: number, len: number) => void,
  verify: VerifyResult,
  ctl: HostJobControl,
): Promise<PhaseResult> {
  const ns = d.namespaces.get(job.nsid)!
  const bs = ns.blockSize
  const name: Phase = write ? 'write' : 'read'
  return new Promise((resolve) => {
    let next = 0
    let done = 0
    let inflight = 0
    let failed = 0
    let firstFailure = 0
    let firstFailureLba = -1
    let lastProgress = 0
    let steadyCalled = !write
    const warmup = Math.min(total - 1, Math.max(slots.length, Math.floor(total / 20)))
    const t0 = performance.now()
    const finish = () => {
      const seconds = (performance.now() - t0) / 1000
      ctl.progress?.(name, Math.min(done * job.ioBytes, job.size))
      resolve({
        bytes: Math.min(done * job.ioBytes, job.size),
        ios: done,
        seconds,
        failed,
        firstFailure,
        firstFailureLba,
        latencyUs: percentiles(lat, done),
        interrupted: next < total && ctl.stopped === true,
      })
    }
    const submit = (s: Slot): boolean => {
      if (next >= total || ctl.stopped === true || failed > 0) return false
      const k = next++
      s.offset = k * job.ioBytes
      s.len = Math.min(job.ioBytes, deviceBytes - s.offset)
      if (s.segs[0]![1] !== s.len) s.segs = [[s.buf.iova, s.len]]
      if (write) fill(s.view, s.offset, s.len)
      s.started = performance.now()
      const rc = d.rw(s.q, write, job.nsid, s.offset / bs, s.len / bs, s.segs, completed, s)
      if (rc !== 0) {
        failed++
        if (firstFailure === 0) firstFailure = -rc
        return false
      }
      inflight++
      return true
    }
    const completed = (s: Slot, c: Completion): void => {
      inflight--
      const now = performance.now()
      lat[done] = (now - s.started) * 1000
      done++
      if (c.status !== 0) {
        failed++
        if (firstFailure === 0) {
          firstFailure = c.status
          firstFailureLba = s.offset / bs
        }
      } else if (!write) {
        const real = Math.min(s.len, job.size - s.offset)
        fill(s.expected, s.offset, real)
        if (s.view.compare(s.expected, 0, real, 0, real) !== 0) {
          verify.mismatches++
          if (verify.firstMismatch < 0) for (let i = 0; i < real; i++) if (s.view[i] !== s.expected[i]) {
            verify.firstMismatch = s.offset + i
            break
          }
        }
        verify.checkedBytes += real
      }
      if (!steadyCalled && done >= warmup) {
        steadyCalled = true
        ctl.steady?.()
      }
      if (now - lastProgress > 100) {
        lastProgress = now
        ctl.progress?.(name, Math.min(done * job.ioBytes, job.size))
      }
      if (!submit(s) && inflight === 0) finish()
    }
    let any = false
    for (const s of slots) if (submit(s)) any = true
    if (!any) finish()
  })
}

