// The benchmark harness shared by the ipukit packages. A small throughput harness. Every candidate is first checked against the others (they
// must produce the same output), then timed in interleaved rounds: each sample times every
// candidate once, in a rotating order, so the machine's slow and fast phases (this is a
// shared 2-vCPU VM) fall on all of them alike. We report the median MB/s (10^6 bytes of
// input per second) and the extremes; compare rows of one run as ratios.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'

export type Kind = 'ipukit' | 'peer' | 'ceiling'

export interface Candidate {
  name: string
  kind: Kind
  /** one operation over `bytes` bytes */
  run: () => void
  /** the operation's output, compared across candidates that return one */
  output?: () => unknown
}

export interface Row {
  name: string
  kind: Kind
  medianMBps: number
  minMBps: number
  maxMBps: number
}

export interface SizeResult {
  /** bytes per operation (MB/s counts these) */
  bytes: number
  /** column heading, when the size alone does not say what was measured */
  label?: string
  rows: Row[]
}

export interface KernelResult {
  /** file name (without .json) under bench/results/, and the table's sort key */
  kernel: string
  /** position of this table in the README (ascending) */
  order?: number
  /** what the numbers count: MB/s (the default: 10^6 bytes per second), M or k ops/s, or µs (latency: lower is better) */
  unit?: 'MB/s' | 'M ops/s' | 'k ops/s' | 'µs'
  title: string
  date: string
  machine: { cpu: string; cores: number; node: string; v8: string }
  /** how the figures were taken; `description` replaces the default header sentence */
  method: { samples: number; sampleMs: number; description?: string }
  sizes: SizeResult[]
  /** goals are minimums, except `atMost` ones (heap bytes, overheads) */
  targets: { text: string; value: number; goal: number; met: boolean; atMost?: boolean }[]
  notes: string[]
}

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 11)
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 40)

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((v, i) => v === b[i])
  }
  return a === b
}

export function measure(bytes: number, candidates: Candidate[]): SizeResult {
  // 1. agreement
  const withOutput = candidates.filter((c) => c.output)
  const first = withOutput[0]
  if (first) {
    const want = first.output!()
    for (const c of withOutput.slice(1)) {
      const got = c.output!()
      if (!same(want, got)) throw new Error(`${c.name} disagrees with ${first.name} at ${bytes} bytes: ${String(got)} vs ${String(want)}`)
    }
  }
  // 2. calibration: iterations so that one sample takes about SAMPLE_MS
  const iters = candidates.map((c) => {
    for (let i = 0; i < 3; i++) c.run() // warm up the JIT tiers
    let n = 1
    for (;;) {
      const t = performance.now()
      for (let i = 0; i < n; i++) c.run()
      const dt = performance.now() - t
      if (dt >= SAMPLE_MS / 4 || n >= 1 << 24) return Math.max(1, Math.round((n * SAMPLE_MS) / Math.max(dt, 0.001)))
      n *= 2
    }
  })
  // 3. interleaved samples
  const samples = candidates.map(() => [] as number[])
  for (let s = 0; s < SAMPLES; s++) {
    for (let j = 0; j < candidates.length; j++) {
      const i = (j + s) % candidates.length
      const c = candidates[i]!
      const n = iters[i]!
      const t = performance.now()
      for (let r = 0; r < n; r++) c.run()
      const dt = (performance.now() - t) / 1000
      samples[i]!.push((bytes * n) / dt / 1e6)
    }
  }
  const rows = candidates.map((c, i) => {
    const v = samples[i]!.slice().sort((a, b) => a - b)
    return { name: c.name, kind: c.kind, medianMBps: v[v.length >> 1]!, minMBps: v[0]!, maxMBps: v[v.length - 1]! }
  })
  return { bytes, rows }
}

export const SIZES = [512, 4096, 128 * 1024, 1024 * 1024]

export function sizeLabel(n: number): string {
  return n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`
}

export function printSize(title: string, r: SizeResult, unit: 'MB/s' | 'M ops/s' = 'MB/s'): void {
  const heading = r.label ?? sizeLabel(r.bytes)
  const base = r.rows.find((x) => x.kind === 'ipukit')
  const lines = r.rows.map(
    (x) =>
      `  ${x.name.padEnd(44)} ${x.medianMBps.toFixed(unit === 'MB/s' ? 0 : 2).padStart(7)} ${unit}  (${x.minMBps.toFixed(unit === 'MB/s' ? 0 : 2)}–${x.maxMBps.toFixed(unit === 'MB/s' ? 0 : 2)})` +
      (base && x !== base ? `  ipukit ×${(base.medianMBps / x.medianMBps).toFixed(2)}` : ''),
  )
  console.log(`${title} — ${heading}\n${lines.join('\n')}`)
}

export function machine(): KernelResult['machine'] {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? ''
    if (flags) cpu += flags.includes(' avx512f') ? ' (AVX-512)' : flags.includes(' avx2') ? ' (AVX2)' : ''
  } catch {
    // not Linux
  }
  return { cpu, cores: cpus().length, node: process.version, v8: process.versions.v8 }
}

export function ratio(r: SizeResult, a: string, b: string): number {
  const x = r.rows.find((row) => row.name === a)
  const y = r.rows.find((row) => row.name === b)
  if (!x || !y) throw new Error(`no row ${x ? b : a}`)
  return x.medianMBps / y.medianMBps
}

export function median(r: SizeResult, name: string): number {
  const x = r.rows.find((row) => row.name === name)
  if (!x) throw new Error(`no row ${name}`)
  return x.medianMBps
}

/** Writes bench/results/<kernel>.json under the package that runs the benchmark (the cwd). */
export function save(result: KernelResult): void {
  const resultsDir = join(process.cwd(), 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${result.kernel}.json`), `${JSON.stringify(result, null, 2)}\n`)
  for (const t of result.targets) console.log(`target: ${t.text}: ${t.value.toFixed(2)} (goal ${t.goal}) ${t.met ? 'met' : 'MISSED'}`)
}

export const method = { samples: SAMPLES, sampleMs: SAMPLE_MS }

/** Deterministic test data of n bytes (filled in a plain loop: a fresh, ordinary Uint8Array). */
export function benchData(n: number): Uint8Array {
  const data = new Uint8Array(n)
  for (let i = 0; i < n; i++) data[i] = (Math.imul(i, 2654435761) >>> 13) & 0xff
  return data
}

/**
 * The memcpy ceiling: TypedArray.prototype.set of n bytes between two 64-byte-aligned
 * places of one buffer. Alignment is fixed on purpose: on this machine a copy whose source
 * and destination differ by an odd amount mod 16 runs near 3 GB/s instead of 20–50 (the
 * CPU's `rep movsb` misaligned path), and separately allocated arrays fall either way
 * from run to run.
 */
export function memcpyCeiling(n: number): Candidate {
  const stride = Math.ceil(n / 64) * 64 + 64
  const pair = new Uint8Array(2 * stride)
  pair.set(benchData(n))
  const src = pair.subarray(0, n)
  return { name: 'memcpy (TypedArray.prototype.set)', kind: 'ceiling', run: () => pair.set(src, stride) }
}

/**
 * Bytes of JavaScript heap one call of `fn` allocates, in steady state: `fn` runs `n` times
 * in batches, and each batch's growth of the young generation is read from V8's heap
 * space statistics. Batches that a scavenge interrupted (the young generation shrank) are
 * dropped; the result is the median over the rest, per call.
 */
export async function allocationPerCall(fn: () => void, n = 1_000_000, batch = 10_000): Promise<number> {
  const v8 = await import('node:v8')
  const young = () => {
    let used = 0
    for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') used += s.space_used_size
    return used
  }
  const sample = (f: () => void): number => {
    for (let i = 0; i < batch; i++) f() // warm up (JIT tiers, lazily made objects)
    const per: number[] = []
    for (let done = 0; done < n; done += batch) {
      const before = young()
      for (let i = 0; i < batch; i++) f()
      const grown = young() - before
      if (grown >= 0) per.push(grown)
    }
    per.sort((a, b) => a - b)
    return per.length === 0 ? Number.NaN : per[per.length >> 1]!
  }
  // reading the statistics allocates a little itself: measure that with an empty body
  const empty = sample(() => {})
  const grown = sample(fn)
  return Math.max(0, grown - empty) / batch
}

/**
 * The raw TCP ceiling: `chunkBytes` writes into a sink on 127.0.0.1:`port` (a process that
 * reads everything and ends its side once the writer has ended) for `seconds`, back-pressure
 * respected; timed until the sink closes, so what is counted was delivered.
 */
export async function streamToSink(port: number, chunkBytes: number, seconds: number): Promise<{ bytes: number; seconds: number }> {
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true })
  s.on('data', () => {})
  await new Promise((r, j) => {
    s.once('connect', r)
    s.once('error', j)
  })
  const chunk = Buffer.alloc(chunkBytes, 0x5a)
  let bytes = 0
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (performance.now() - t0 < seconds * 1000) {
        bytes += chunk.length
        if (!s.write(chunk)) return void s.once('drain', pump)
      }
      resolve()
    }
    pump()
  })
  await new Promise<void>((r) => {
    s.once('close', () => r())
    s.end()
  })
  return { bytes, seconds: (performance.now() - t0) / 1000 }
}
