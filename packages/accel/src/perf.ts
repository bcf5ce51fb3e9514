// accel-perf (SPDK examples/accel/perf): keeps `queueDepth` operations of one workload in
// flight for a while and reports ops/s, MB/s and latency percentiles. A workload is an
// opcode, or a named sequence:
//
//   write-path   encrypt -> dif_generate_copy -> copy (the host write of the design)
//   read-path    copy -> dif_verify_copy -> decrypt (and back)
//
// Buffers are allocated once per queue slot; with `verify`, every completion is checked
// against the single kernels (slower: for correctness runs, not for figures).
import { createDifContext, type DifContext } from '@ipukit/dif'
import { crc32c } from '@ipukit/kernels'
import { IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { type Accel, createAccel } from './accel.js'
import type { AccelChannel } from './channel.js'
import { AccelError } from './errors.js'
import type { AccelCryptoKey } from './keys.js'
import { AccelStatus, isOpcode, Opc, type Opcode } from './opcodes.js'
import type { AccelSequence } from './sequence.js'
import type { AccelDifError } from './task.js'

export type PerfWorkload = Opcode | 'write-path' | 'read-path'

export const PERF_WORKLOADS: readonly PerfWorkload[] = [
  'copy',
  'fill',
  'dualcast',
  'compare',
  'crc32c',
  'copy_crc32c',
  'compress',
  'decompress',
  'encrypt',
  'decrypt',
  'xor',
  'dif_verify',
  'dif_verify_copy',
  'dif_generate',
  'dif_generate_copy',
  'dix_generate',
  'dix_verify',
  'write-path',
  'read-path',
]

export interface PerfOptions {
  workload: PerfWorkload
  /** data bytes per operation (a multiple of the block size for crypto and DIF); default 4096 */
  transferSize?: number
  /** the crypto data unit and DIF block: 512 or 4096 bytes (8 bytes of PI each); default 4096 */
  blockSize?: 512 | 4096
  /** operations in flight; default 32 */
  queueDepth?: number
  /** seconds to run (after a 10% warm-up); default 1 */
  seconds?: number
  /** worker threads for the `workers` module (0: none); default 0 */
  workers?: number
  /** run the workload's opcodes on this module */
  module?: string
  /** the platform driver: 'ipu' or none; default none */
  driver?: 'ipu' | null
  /** check every result against the single kernels; default false */
  verify?: boolean
  /** an existing framework on `physical` (options workers/module/driver are then ignored) */
  accel?: Accel
}

export interface PerfResult {
  workload: PerfWorkload
  transferSize: number
  /** the crypto data unit and DIF block */
  blockSize: number
  queueDepth: number
  module: string
  driver: string
  seconds: number
  ops: number
  failed: number
  opsPerSecond: number
  /** data bytes per second, 10^6 */
  mbPerSecond: number
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
  /** per-domain bytes read and written over the run */
  domains: Record<string, { read: number; written: number }>
}

/** the data unit of crypto and DIF workloads unless blockSize says otherwise */
const BLOCK = 4096
const MD = 8

interface Slot {
  src: IoVecList
  dst: IoVecList
  dst2: IoVecList
  mid: IoVecList
  ext: IoVecList
  md: IoVecList
  srcs: IoVecList
  result: { value: number }
  started: number
  expect: Uint8Array | null
  /** the accel buffers of a path workload, while it runs */
  b1: number
  b2: number
  l1: IoVecList
  l2: IoVecList
  err: AccelDifError
}

/** Runs one accel-perf measurement. */
export async function runAccelPerf(physical: PhysicalMemory, o: PerfOptions): Promise<PerfResult> {
  const workload = o.workload
  if (!PERF_WORKLOADS.includes(workload)) throw new AccelError('ACCEL_BAD_ARGUMENT', `unknown workload '${String(workload)}' (have ${PERF_WORKLOADS.join(', ')})`)
  const size = o.transferSize ?? 4096
  const qd = o.queueDepth ?? 32
  const seconds = o.seconds ?? 1
  const crypto = workload === 'encrypt' || workload === 'decrypt' || workload === 'write-path' || workload === 'read-path'
  const dif = workload.startsWith('dif') || workload.startsWith('dix') || workload.endsWith('-path')
  if (!Number.isInteger(size) || size < 1 || size > 128 * 1024) throw new AccelError('ACCEL_BAD_ARGUMENT', `transferSize must be 1 to 131072 bytes, got ${size}`)
  const bs = o.blockSize ?? BLOCK
  if (bs !== 512 && bs !== 4096) throw new AccelError('ACCEL_BAD_ARGUMENT', `blockSize must be 512 or 4096, got ${String(bs)}`)
  if ((crypto || dif) && size % bs !== 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `${workload} works on ${bs}-byte blocks: transferSize must be a multiple`)
  if (!Number.isInteger(qd) || qd < 1 || qd > 1024) throw new AccelError('ACCEL_BAD_ARGUMENT', `queueDepth must be 1 to 1024, got ${qd}`)
  if (!(seconds > 0 && seconds <= 3600)) throw new AccelError('ACCEL_BAD_ARGUMENT', `seconds must be in (0, 3600], got ${seconds}`)

  const own = o.accel === undefined
  let accel: Accel
  if (o.accel !== undefined) accel = o.accel
  else {
    const assign: Partial<Record<Opcode, string>> = {}
    if (o.module !== undefined) {
      const ops: Opcode[] = isOpcode(workload) ? [workload] : ['encrypt', 'decrypt', 'dif_generate_copy', 'dif_verify_copy', 'copy']
      for (const op of ops) assign[op] = o.module
      if (assign.encrypt !== undefined || assign.decrypt !== undefined) assign.encrypt = assign.decrypt = o.module
      if (assign.compress !== undefined || assign.decompress !== undefined) assign.compress = assign.decompress = o.module
    }
    accel = await createAccel({ physical, workers: o.workers ?? 0, driver: o.driver ?? null, assign, taskCount: Math.max(64, 8 * qd), sequenceCount: Math.max(16, 2 * qd) })
  }
  const ch = accel.channel()
  try {
    return await measure(accel, ch, physical, o, workload, size, qd, seconds)
  } finally {
    ch.close()
    if (own) await accel.close()
  }
}

async function measure(accel: Accel, ch: AccelChannel, pm: PhysicalMemory, o: PerfOptions, workload: PerfWorkload, size: number, qd: number, seconds: number): Promise<PerfResult> {
  const block = o.blockSize ?? BLOCK
  const blocks = Math.max(1, size / block)
  const ext = blocks * (block + MD)
  const ctx: DifContext = createDifContext({ dataBlockSize: block, mdSize: MD, type: 1 })
  const dixCtx: DifContext = createDifContext({ dataBlockSize: block, mdSize: MD, type: 1, interleaved: false })
  const keyName = `accel-perf-${Math.random().toString(36).slice(2)}`
  const key: AccelCryptoKey = accel.keys.create({ name: keyName, key: Uint8Array.from({ length: 32 }, (_, i) => i + 1), key2: Uint8Array.from({ length: 32 }, (_, i) => 255 - i) })
  // per slot: src, dst, a second dst, an extended buffer, metadata (each at most ext bytes)
  const per = 8 * Math.ceil((ext + 4096) / 4096) * 4096
  const base = accel.allocShared(qd * per)
  try {
    return await measureWith(accel, ch, pm, o, workload, size, qd, seconds, base, per, blocks, ext, ctx, dixCtx, key)
  } finally {
    accel.freeShared(base)
    if (!key.destroyed) accel.keys.destroy(key)
  }
}

async function measureWith(
  accel: Accel,
  ch: AccelChannel,
  pm: PhysicalMemory,
  o: PerfOptions,
  workload: PerfWorkload,
  size: number,
  qd: number,
  seconds: number,
  base: number,
  per: number,
  blocks: number,
  ext: number,
  ctx: DifContext,
  dixCtx: DifContext,
  key: AccelCryptoKey,
): Promise<PerfResult> {
  const block = o.blockSize ?? BLOCK
  const slots: Slot[] = []
  const m = pm.bytes
  for (let i = 0; i < qd; i++) {
    const b = base + i * per
    const stride = per / 8
    const s: Slot = {
      src: new IoVecList(1).push(b, size),
      dst: new IoVecList(1).push(b + stride, size),
      dst2: new IoVecList(1).push(b + 2 * stride, size),
      mid: new IoVecList(1).push(b + 3 * stride, size),
      ext: new IoVecList(1).push(b + 4 * stride, ext),
      md: new IoVecList(1).push(b + 5 * stride, blocks * MD),
      srcs: new IoVecList(2).push(b, size).push(b + 6 * stride, size),
      result: { value: 0 },
      started: 0,
      expect: null,
      b1: 0,
      b2: 0,
      l1: new IoVecList(1),
      l2: new IoVecList(1),
      err: { kind: undefined, block: 0, expected: 0n, actual: 0n },
    }
    for (let k = 0; k < size; k++) m[b + k] = (k * 31 + i) & 0xff
    slots.push(s)
  }
  // inputs the verify and decompress workloads need
  const prepare = async (s: Slot) => {
    if (workload === 'dif_verify' || workload === 'dif_verify_copy' || workload === 'read-path') {
      const src = m.slice(s.src.addr[0]!, s.src.addr[0]! + size)
      let data = src
      if (workload === 'read-path') {
        data = new Uint8Array(size)
        key.xts.encrypt(src, data, block, 0)
      }
      const e = new Uint8Array(ext)
      ctx.generateCopy([e], [data], blocks)
      m.set(e, s.ext.addr[0]!)
    } else if (workload === 'dix_verify') {
      const md = new Uint8Array(blocks * MD)
      dixCtx.dixGenerate([m.subarray(s.src.addr[0]!, s.src.addr[0]! + size)], [md], blocks)
      m.set(md, s.md.addr[0]!)
    } else if (workload === 'decompress') {
      const { deflateRawSync } = await import('node:zlib')
      const z = deflateRawSync(m.slice(s.src.addr[0]!, s.src.addr[0]! + size))
      m.set(z, s.mid.addr[0]!)
      s.mid.len[0] = z.length
    } else if (workload === 'compare') m.copyWithin(s.dst.addr[0]!, s.src.addr[0]!, s.src.addr[0]! + size)
  }
  for (const s of slots) await prepare(s)
  const verify = o.verify === true
  const expectOf = (s: Slot): Uint8Array | null => {
    if (!verify) return null
    const src = m.slice(s.src.addr[0]!, s.src.addr[0]! + size)
    if (workload === 'copy' || workload === 'dualcast' || workload === 'copy_crc32c') return src
    if (workload === 'encrypt') {
      const out = new Uint8Array(size)
      key.xts.encrypt(src, out, block, 0)
      return out
    }
    if (workload === 'write-path') {
      const c = new Uint8Array(size)
      key.xts.encrypt(src, c, block, 0)
      const e = new Uint8Array(ext)
      ctx.generateCopy([e], [c], blocks)
      return e
    }
    if (workload === 'read-path' || workload === 'dif_verify_copy') return src
    return null
  }
  for (const s of slots) s.expect = expectOf(s)

  const issue = (s: Slot, cb: (s: Slot, st: number) => void): number => {
    const c = ch
    switch (workload) {
      case 'copy':
        return c.submitCopy(s.dst, s.src, cb, s)
      case 'fill':
        return c.submitFill(s.dst, 0xa5, cb, s)
      case 'dualcast':
        return c.submitDualcast(s.dst, s.dst2, s.src, cb, s)
      case 'compare':
        return c.submitCompare(s.dst, s.src, cb, s)
      case 'crc32c':
        return c.submitCrc32c(s.result, s.src, 0, cb, s)
      case 'copy_crc32c':
        return c.submitCopyCrc32c(s.result, s.dst, s.src, 0, cb, s)
      case 'compress':
        return c.submitCompress(s.result, s.ext, s.src, 1, cb, s)
      case 'decompress':
        return c.submitDecompress(s.result, s.dst, s.mid, cb, s)
      case 'encrypt':
        return c.submitEncrypt(key, s.dst, s.src, 0, block, cb, s)
      case 'decrypt':
        return c.submitDecrypt(key, s.dst, s.src, 0, block, cb, s)
      case 'xor':
        return c.submitXor(s.dst, s.srcs, cb, s)
      case 'dif_verify':
        return c.submitDifVerify(s.ext, blocks, ctx, { kind: undefined, block: 0, expected: 0n, actual: 0n }, undefined, cb, s)
      case 'dif_verify_copy':
        return c.submitDifVerifyCopy(s.dst, s.ext, blocks, ctx, { kind: undefined, block: 0, expected: 0n, actual: 0n }, undefined, cb, s)
      case 'dif_generate':
        return c.submitDifGenerate(s.ext, blocks, ctx, undefined, cb, s)
      case 'dif_generate_copy':
        return c.submitDifGenerateCopy(s.ext, s.src, blocks, ctx, undefined, cb, s)
      case 'dix_generate':
        return c.submitDixGenerate(s.src, s.md, blocks, dixCtx, undefined, cb, s)
      case 'dix_verify':
        return c.submitDixVerify(s.src, s.md, blocks, dixCtx, { kind: undefined, block: 0, expected: 0n, actual: 0n }, undefined, cb, s)
      case 'write-path':
      case 'read-path': {
        // the design's stack: accel buffers between the layers, elided and fused as they can be
        const seq: AccelSequence | null = c.sequence()
        if (seq === null) return AccelStatus.NoMemory
        const b1 = c.getBuf(size)
        const b2 = b1 === 0 ? 0 : c.getBuf(ext)
        if (b2 === 0) {
          if (b1 !== 0) c.putBuf(b1)
          seq.abort()
          return AccelStatus.NoMemory
        }
        s.b1 = b1
        s.b2 = b2
        s.l1.clear().push(b1, size)
        s.l2.clear().push(b2, ext)
        if (workload === 'write-path') {
          seq.appendEncrypt(key, s.l1, c.accelDomain, s.src, null, 0, block)
          seq.appendDifGenerateCopy(s.l2, c.accelDomain, s.l1, c.accelDomain, blocks, ctx)
          seq.appendCopy(s.ext, null, s.l2, c.accelDomain)
        } else {
          seq.appendCopy(s.l2, c.accelDomain, s.ext, null)
          seq.appendDifVerifyCopy(s.l1, c.accelDomain, s.l2, c.accelDomain, blocks, ctx, s.err)
          seq.appendDecrypt(key, s.dst, null, s.l1, c.accelDomain, 0, block)
        }
        seq.finish(cb, s)
        return AccelStatus.Ok
      }
    }
  }

  // The phases go by the clock, checked at each completion: a module that completes on
  // microtasks (software, aesni) keeps the loop busy and would starve timers. Every 5 ms
  // the restarts go through setImmediate, so the event loop (and a pool's messages) get a turn.
  let ops = 0
  let failed = 0
  let phase = 0 // 0 warm-up, 1 measuring, 2 draining
  const LAT_CAP = 1 << 21
  const latAll = new Float64Array(LAT_CAP)
  let nLat = 0
  let inflight = 0
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((r) => (resolveDone = r))
  const t0 = performance.now()
  const warmEnd = t0 + Math.max(20, seconds * 100)
  let measureStart = 0
  let elapsedMs = 0
  let lastYield = t0
  let domainsBefore = accel.stats().domains
  const parked: Slot[] = []
  let parkScheduled = false
  const unpark = () => {
    parkScheduled = false
    lastYield = performance.now()
    const n = parked.length
    for (let i = 0; i < n; i++) start(parked[i]!)
    parked.splice(0, n)
  }
  const onDone = (s: Slot, st: number) => {
    inflight--
    if (s.b1 !== 0) {
      ch.putBuf(s.b1)
      ch.putBuf(s.b2)
      s.b1 = s.b2 = 0
    }
    const now = performance.now()
    if (phase === 0 && now >= warmEnd) {
      phase = 1
      measureStart = now
      domainsBefore = accel.stats().domains
    } else if (phase === 1 && now - measureStart >= seconds * 1000) {
      phase = 2
      elapsedMs = now - measureStart
    }
    if (phase === 1) {
      if (st === AccelStatus.Ok) {
        ops++
        if (nLat < LAT_CAP) latAll[nLat++] = now - s.started
      } else failed++
    }
    if (st === AccelStatus.Ok && s.expect !== null) check(s)
    if (phase === 2) {
      if (inflight === 0 && parked.length === 0) resolveDone()
      return
    }
    if (now - lastYield < 5) return start(s)
    parked.push(s)
    if (!parkScheduled) {
      parkScheduled = true
      setImmediate(unpark)
    }
  }
  const check = (s: Slot) => {
    let out: Uint8Array
    if (workload === 'write-path') out = m.subarray(s.ext.addr[0]!, s.ext.addr[0]! + ext)
    else if (workload === 'read-path' || workload === 'dif_verify_copy' || workload === 'encrypt' || workload === 'copy' || workload === 'dualcast' || workload === 'copy_crc32c') out = m.subarray(s.dst.addr[0]!, s.dst.addr[0]! + size)
    else return
    if (!Buffer.from(out).equals(Buffer.from(s.expect!))) failed++
    if (workload === 'copy_crc32c' && (s.result.value ^ 0xffffffff) >>> 0 !== crc32c(s.expect!)) failed++
  }
  function start(s: Slot): void {
    if (phase === 2) {
      if (inflight === 0) resolveDone()
      return
    }
    s.started = performance.now()
    inflight++
    const rc = issue(s, onDone)
    if (rc !== AccelStatus.Ok) {
      // resources ran out: try again on the next turn
      inflight--
      parked.push(s)
      if (!parkScheduled) {
        parkScheduled = true
        setImmediate(unpark)
      }
    }
  }
  for (const s of slots) start(s)
  await done
  const elapsed = elapsedMs / 1000
  const lat = latAll.subarray(0, nLat)
  lat.sort((a, b) => a - b)
  const pct = (p: number) => (lat.length === 0 ? 0 : Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! * 1000 * 10) / 10)
  const domains: PerfResult['domains'] = {}
  const after = accel.stats().domains
  for (const [id, d] of Object.entries(after)) domains[id] = { read: d.read - (domainsBefore[id]?.read ?? 0), written: d.written - (domainsBefore[id]?.written ?? 0) }
  const mod = accel.moduleFor(Opc[isOpcode(workload) ? workload : 'encrypt']).name
  return {
    workload,
    transferSize: size,
    blockSize: block,
    queueDepth: qd,
    module: o.module ?? mod,
    driver: accel.driver?.name ?? 'none',
    seconds: elapsed,
    ops,
    failed,
    opsPerSecond: ops / elapsed,
    mbPerSecond: (ops * size) / elapsed / 1e6,
    latencyUs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), p999: pct(0.999), max: lat.length === 0 ? 0 : Math.round(lat[lat.length - 1]! * 1000) },
    domains,
  }
}

/** One line for a terminal. */
export function formatPerf(r: PerfResult): string {
  const l = r.latencyUs
  return (
    `${r.workload} ${r.transferSize} B qd ${r.queueDepth} on ${r.module}${r.driver !== 'none' ? ` (driver ${r.driver})` : ''}: ` +
    `${Math.round(r.opsPerSecond).toLocaleString('en-US')} ops/s, ${r.mbPerSecond.toFixed(1)} MB/s, ` +
    `latency us p50 ${l.p50} p90 ${l.p90} p99 ${l.p99} p99.9 ${l.p999} max ${l.max}` +
    (r.failed > 0 ? `, ${r.failed} FAILED` : '')
  )
}
