// accel-perf in one process, on the built package (as users run it), every candidate in
// interleaved rounds (each round runs every candidate once, in a rotating order, so the
// shared machine's slow and fast phases fall on all of them alike); medians of the rounds,
// and ratios of one run.
//
//   workers     crc32c and encrypt at 128 KiB, queue depth 64: the `workers` module with 1
//               and 2 threads, beside bare kernel loops on 1 and 2 threads of their own
//               (the machine's ceiling for two threads)
//   dispatch    crc32c at 4 KiB, queue depth 128: the `workers` module's rings beside
//               piscina with one task per operation, the `software` module inline, and bare
//               kernel calls
//   aesni       XTS-256 with 4 KiB data units: the `aesni` module beside node:crypto with one
//               createCipheriv per data unit, the WASM cipher, and one node:crypto call
//               over a whole buffer (one tweak: a ceiling, not sector semantics)
//   fused       the write path (encrypt -> dif_generate_copy -> copy) with the ipu driver
//               (fused: one pass) and without it, beside encrypt alone on the same module
import { execFile } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type KernelResult, machine, type Row, save, type SizeResult } from '@ipukit/bench-utils'
import { createPhysicalMemory } from '@ipukit/memory'
import { Piscina } from 'piscina'
import { test } from 'vitest'
import { type Accel, type AccelOptions, createAccel, type PerfResult, runAccelPerf, type PerfWorkload, type WorkersModule } from '../dist/index.js'

const execFileP = promisify(execFile)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
/** BENCH_ONLY=workers,dispatch,aesni,fused runs some of the tables (the others keep their JSON) */
const ONLY = process.env.BENCH_ONLY?.split(',')
const runs = (table: string) => ONLY === undefined || ONLY.includes(table)
const KEY = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 1) & 0xff)

interface Candidate {
  name: string
  kind: Row['kind']
  /** one sample: a rate (MB/s, or ops/s for the dispatch table) */
  run: () => Promise<number>
}

async function rounds(title: string, groups: { label: string; candidates: Candidate[] }[], scale = 1): Promise<SizeResult[]> {
  const all = groups.flatMap((g) => g.candidates)
  const samples = new Map<Candidate, number[]>(all.map((c) => [c, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < all.length; j++) {
      const c = all[(j + r) % all.length]!
      samples.get(c)!.push((await c.run()) / scale)
    }
  }
  return groups.map((g) => {
    const rows = g.candidates.map((c) => {
      const v = samples.get(c)!.slice().sort((a, b) => a - b)
      return { name: c.name, kind: c.kind, medianMBps: v[v.length >> 1]!, minMBps: v[0]!, maxMBps: v[v.length - 1]! }
    })
    const base = rows.find((x) => x.kind === 'ipukit')!
    console.log(`${title} — ${g.label}\n${rows.map((x) => `  ${x.name.padEnd(58)} ${x.medianMBps.toFixed(1).padStart(9)}  (${x.minMBps.toFixed(1)}–${x.maxMBps.toFixed(1)})${x !== base ? `  ipukit ×${(base.medianMBps / x.medianMBps).toFixed(2)}` : ''}`).join('\n')}`)
    return { bytes: 0, label: g.label, rows }
  })
}

const med = (r: SizeResult, name: string) => r.rows.find((x) => x.name === name)!.medianMBps

function result(kernel: string, order: number, title: string, unit: NonNullable<KernelResult['unit']>, sizes: SizeResult[], targets: KernelResult['targets'], notes: string[]): KernelResult {
  return { kernel, order, title, unit, date: new Date().toISOString(), machine: machine(), method: { samples: ROUNDS, sampleMs: SECONDS * 1000, description: `${ROUNDS} interleaved rounds of about ${SECONDS * 1000} ms per candidate, each a run of runAccelPerf (or a bare loop), on the calling thread and up to two worker threads` }, sizes, targets, notes }
}

test('accel-perf', async () => {
  const physical = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 640 << 20, kernels: { scratchSlots: 24, keySlots: 64 } })
  const opts = (o: Omit<AccelOptions, 'physical'>): AccelOptions => ({ physical, taskCount: 2048, sequenceCount: 512, aesni: false, ...o })
  const fw: Record<string, Accel> = {
    sw: await createAccel(opts({})),
    swIpu: await createAccel(opts({ driver: 'ipu' })),
    w1: await createAccel(opts({ workers: 1 })),
    w2: await createAccel(opts({ workers: 2 })),
    w2Ipu: await createAccel(opts({ workers: 2, driver: 'ipu' })),
    aesni: await createAccel(opts({ aesni: true })),
  }
  const perf = (accel: Accel, workload: PerfWorkload, transferSize: number, queueDepth: number, keep?: (r: PerfResult) => void) => async () => {
    const r = await runAccelPerf(physical, { accel, workload, transferSize, queueDepth, seconds: SECONDS })
    if (r.failed > 0) throw new Error(`${workload} on ${r.module}: ${r.failed} operations failed`)
    keep?.(r)
    return workload === 'crc32c' && transferSize === 4096 ? r.opsPerSecond : r.mbPerSecond
  }

  if (runs('workers')) await workersTable()
  if (runs('dispatch')) await dispatchTable()
  if (runs('aesni')) await aesniTable()
  if (runs('fused')) await fusedTable()
  for (const a of Object.values(fw)) await a.close()

  // ---- workers: scaling beside bare kernel threads, the machine's ceiling ----
  async function workersTable(): Promise<void> {
    const N = 128 * 1024
    const SLOTS = 64
    const raw = await Promise.all(
      [0, 1].map(
        (i) =>
          new Promise<Worker>((resolve) => {
            const base = fw.sw!.allocShared(SLOTS * N)
            physical.bytes.fill(i + 1, base, base + SLOTS * N)
            const w = new Worker(fileURLToPath(new URL('./support/raw-thread.mjs', import.meta.url)), { workerData: { memory: physical.memory, base, size: N, count: SLOTS, key: KEY }, execArgv: [] })
            w.once('online', () => resolve(w))
          }),
      ),
    )
    const rawRun = (kind: string, threads: number) => async () => {
      const rates = await Promise.all(raw.slice(0, threads).map((w) => new Promise<number>((resolve) => (w.once('message', resolve), w.postMessage({ kind, ms: SECONDS * 1000 })))))
      return rates.reduce((a, b) => a + b, 0) / 1e6
    }
    const scaling = await rounds('workers module scaling, MB/s', [
      {
        label: 'crc32c, 128 KiB, qd 64',
        candidates: [
          { name: 'ipukit workers, 1 thread', kind: 'ipukit', run: perf(fw.w1!, 'crc32c', N, 64) },
          { name: 'ipukit workers, 2 threads', kind: 'ipukit', run: perf(fw.w2!, 'crc32c', N, 64) },
          { name: 'bare kernel loop, 1 thread', kind: 'ceiling', run: rawRun('crc32c', 1) },
          { name: 'bare kernel loop, 2 threads', kind: 'ceiling', run: rawRun('crc32c', 2) },
        ],
      },
      {
        label: 'encrypt (XTS-256), 128 KiB, qd 64',
        candidates: [
          { name: 'ipukit workers, 1 thread', kind: 'ipukit', run: perf(fw.w1!, 'encrypt', N, 64) },
          { name: 'ipukit workers, 2 threads', kind: 'ipukit', run: perf(fw.w2!, 'encrypt', N, 64) },
          { name: 'bare kernel loop, 1 thread', kind: 'ceiling', run: rawRun('encrypt', 1) },
          { name: 'bare kernel loop, 2 threads', kind: 'ceiling', run: rawRun('encrypt', 2) },
        ],
      },
    ])
    for (const w of raw) await w.terminate()
    const sc = (r: SizeResult, a: string, b: string) => med(r, a) / med(r, b)
    const [crcS, encS] = scaling as [SizeResult, SizeResult]
    const scaleTargets: KernelResult['targets'] = []
    for (const [what, r] of [['crc32c', crcS], ['encrypt', encS]] as const) {
      const w = sc(r, 'ipukit workers, 2 threads', 'ipukit workers, 1 thread')
      const machineScale = sc(r, 'bare kernel loop, 2 threads', 'bare kernel loop, 1 thread')
      scaleTargets.push({ text: `${what}: 2 workers / 1 worker`, value: w, goal: 1.7, met: w >= 1.7 })
      scaleTargets.push({ text: `${what}: the machine's own 2 threads / 1 thread (bare loops)`, value: machineScale, goal: 1.7, met: machineScale >= 1.7 })
      scaleTargets.push({ text: `${what}: workers' scaling / the machine's`, value: w / machineScale, goal: 0.9, met: w / machineScale >= 0.9 })
    }
    save(
      result('accel-workers', 1, 'Workers module scaling', 'MB/s', scaling, scaleTargets, [
        'The bare loops are the same kernels on two threads of their own with nothing else running: what two threads of this machine give. When they scale by less than 2, the two vCPUs share a core (SMT siblings, or a host that shares them), and the workers cannot scale further than that.',
      ]),
    )
  }

  // ---- dispatch: 4 KiB crc32c at qd 128 ----
  async function dispatchTable(): Promise<void> {
    const pool = new Piscina<{ address: number; length: number }, number>({
      filename: fileURLToPath(new URL('./support/piscina-crc32c.mjs', import.meta.url)),
      minThreads: 2,
      maxThreads: 2,
      workerData: { memory: physical.memory },
      execArgv: [],
    })
    const D = 4096
    const QD = 128
    const pBase = fw.sw!.allocShared(QD * D)
    await Promise.all(Array.from({ length: 4 }, (_, i) => pool.run({ address: pBase + i * D, length: D })))
    const piscinaRun = async () => {
      let ops = 0
      const t0 = performance.now()
      const end = t0 + SECONDS * 1000
      await Promise.all(
        Array.from({ length: QD }, async (_, i) => {
          while (performance.now() < end) {
            await pool.run({ address: pBase + i * D, length: D })
            ops++
          }
        }),
      )
      return ops / ((performance.now() - t0) / 1000)
    }
    const bareCalls = async () => {
      const k = physical.kernels
      let ops = 0
      const t0 = performance.now()
      while (performance.now() - t0 < SECONDS * 1000) {
        for (let i = 0; i < QD; i++) k.crc32cAt(pBase + i * D, D)
        ops += QD
      }
      return ops / ((performance.now() - t0) / 1000)
    }
    const wm = fw.w2!.module('workers') as WorkersModule
    const c0 = { ...wm.counters }
    const [dispatch] = (await rounds(
      'dispatch, k ops/s',
      [
        {
          label: 'crc32c, 4 KiB, qd 128',
          candidates: [
            { name: 'ipukit workers, 2 threads (shared-memory rings)', kind: 'ipukit', run: perf(fw.w2!, 'crc32c', D, QD) },
            { name: 'piscina, one task per operation, 2 threads', kind: 'peer', run: piscinaRun },
            { name: 'ipukit software module (inline, calling thread)', kind: 'ipukit', run: perf(fw.sw!, 'crc32c', D, QD) },
            { name: 'bare kernel calls, no framework', kind: 'ceiling', run: bareCalls },
          ],
        },
      ],
      1000,
    )) as [SizeResult]
    const batched = wm.counters.batchedOps - c0.batchedOps
    const inline = wm.counters.inlineOps - c0.inlineOps
    const wakes = wm.counters.completionWakes - c0.completionWakes
    await pool.destroy()
    const alloc = await allocations()
    const wOps = med(dispatch, 'ipukit workers, 2 threads (shared-memory rings)')
    const vsPiscina = wOps / med(dispatch, 'piscina, one task per operation, 2 threads')
    save(
      result(
        'accel-dispatch',
        2,
        'Dispatch to worker threads',
        'k ops/s',
        [dispatch],
        [
          { text: 'workers module, 4 KiB crc32c at qd 128, k ops/s', value: wOps, goal: 150, met: wOps >= 150 },
          { text: 'workers module / piscina with one task per operation', value: vsPiscina, goal: 6, met: vsPiscina >= 6 },
          { text: 'heap bytes allocated per one-shot crc32c, software module (steady state, built package)', value: alloc.crc, goal: 0, met: alloc.crc <= 0, atMost: true },
          { text: 'heap bytes allocated per write-path sequence with its accel buffers, ipu driver (steady state, built package)', value: alloc.write, goal: 0, met: alloc.write <= 0, atMost: true },
        ],
        [
          `Of the workers module's operations in these rounds, ${batched} went to the worker threads and ${inline} ran inline; the calling thread was woken ${wakes} times to reap them, ${(batched / Math.max(1, wakes)).toFixed(1)} completions per wake.`,
          'At 4 KiB a CRC-32C costs well under a microsecond, so every row but the bare calls measures per-operation overhead: the framework on the calling thread (sequence, descriptor, completion) is what the workers module and the software module share.',
        ],
      ),
    )
  }

  /** Heap bytes per operation in steady state, measured on the built package (support/allocations.mjs). */
  async function allocations(): Promise<{ crc: number; write: number }> {
    const { stdout } = await execFileP(process.execPath, [fileURLToPath(new URL('./support/allocations.mjs', import.meta.url))])
    return JSON.parse(stdout) as { crc: number; write: number }
  }

  // ---- aesni: XTS-256 with 4 KiB data units ----
  async function aesniTable(): Promise<void> {
    const A = 128 * 1024
    const aBase = fw.sw!.allocShared(2 * A)
    physical.bytes.fill(0x5a, aBase, aBase + A)
    const iv = Buffer.alloc(16)
    const nodePerUnit = async () => {
      const m = physical.bytes
      const k = Buffer.from(KEY)
      let bytes = 0
      const t0 = performance.now()
      while (performance.now() - t0 < SECONDS * 1000) {
        for (let u = 0; u < A / 4096; u++) {
          iv.fill(0)
          iv.writeUInt32LE(u, 0)
          const c = createCipheriv('aes-256-xts', k, iv)
          m.set(c.update(m.subarray(aBase + u * 4096, aBase + (u + 1) * 4096)), aBase + A + u * 4096)
          c.final()
        }
        bytes += A
        // let the event loop breathe between buffers, as a real caller would
        if ((bytes & ((1 << 23) - 1)) === 0) await new Promise((r) => setImmediate(r))
      }
      return bytes / ((performance.now() - t0) / 1000) / 1e6
    }
    const nodeOneCall = async () => {
      const m = physical.bytes
      const k = Buffer.from(KEY)
      iv.fill(0)
      let bytes = 0
      const t0 = performance.now()
      while (performance.now() - t0 < SECONDS * 1000) {
        const c = createCipheriv('aes-256-xts', k, iv)
        m.set(c.update(m.subarray(aBase, aBase + A)), aBase + A)
        c.final()
        bytes += A
        if ((bytes & ((1 << 23) - 1)) === 0) await new Promise((r) => setImmediate(r))
      }
      return bytes / ((performance.now() - t0) / 1000) / 1e6
    }
    const [aes] = (await rounds('aesni, MB/s', [
      {
        label: 'XTS-256, 4 KiB data units',
        candidates: [
          { name: 'ipukit aesni, 128 KiB operations, qd 32', kind: 'ipukit', run: perf(fw.aesni!, 'encrypt', A, 32) },
          { name: 'ipukit aesni, 4 KiB operations, qd 32', kind: 'ipukit', run: perf(fw.aesni!, 'encrypt', 4096, 32) },
          { name: 'ipukit software (WASM bitsliced), 128 KiB operations', kind: 'ipukit', run: perf(fw.sw!, 'encrypt', A, 32) },
          { name: 'node:crypto, one createCipheriv per data unit', kind: 'peer', run: nodePerUnit },
          { name: 'node:crypto, one call per 128 KiB (one tweak)', kind: 'ceiling', run: nodeOneCall },
        ],
      },
    ])) as [SizeResult]
    const aesVsNode = med(aes, 'ipukit aesni, 128 KiB operations, qd 32') / med(aes, 'node:crypto, one createCipheriv per data unit')
    const aes4VsNode = med(aes, 'ipukit aesni, 4 KiB operations, qd 32') / med(aes, 'node:crypto, one createCipheriv per data unit')
    save(
      result(
        'accel-aesni',
        3,
        'AES-NI through node:crypto',
        'MB/s',
        [aes],
        [
          { text: 'aesni (128 KiB operations) / node:crypto with one createCipheriv per data unit', value: aesVsNode, goal: 2, met: aesVsNode >= 2 },
        ],
        [
          `With 4 KiB operations (one data unit each) aesni runs at ${aes4VsNode.toFixed(2)}x node:crypto's per-unit calls: the operations of a turn share a batch, so OpenSSL's cost is still paid per batch; what is left is the framework's work per operation (a sequence, a descriptor, a completion).`,
          "aesni runs a batch's data units as two AES-ECB calls (the tweaks under key2, then the whole batch under key1) around two WASM SIMD tweak passes, so OpenSSL's per-call cost is paid per batch, not per data unit. node:crypto's update() returns a fresh Buffer, so this module allocates per batch; the WASM modules do not.",
        ],
      ),
    )
  }

  // ---- fused: the write path ----
  async function fusedTable(): Promise<void> {
    const F = 128 * 1024
    const fused = await rounds('fused write path, MB/s', [
      {
        label: 'software module (calling thread)',
        candidates: [
          { name: 'ipukit write-path, ipu driver (encrypt + dif_generate_copy fused)', kind: 'ipukit', run: perf(fw.swIpu!, 'write-path', F, 32) },
          { name: 'write-path, no driver (two passes, copy elided)', kind: 'peer', run: perf(fw.sw!, 'write-path', F, 32) },
          { name: 'encrypt alone', kind: 'ceiling', run: perf(fw.sw!, 'encrypt', F, 32) },
        ],
      },
      {
        label: 'workers module (2 threads)',
        candidates: [
          { name: 'ipukit write-path, ipu driver (encrypt + dif_generate_copy fused)', kind: 'ipukit', run: perf(fw.w2Ipu!, 'write-path', F, 32) },
          { name: 'write-path, no driver (two passes, copy elided)', kind: 'peer', run: perf(fw.w2!, 'write-path', F, 32) },
          { name: 'encrypt alone', kind: 'ceiling', run: perf(fw.w2!, 'encrypt', F, 32) },
        ],
      },
    ])
    const fusedTargets: KernelResult['targets'] = []
    const names = ['software', 'workers'] as const
    fused.forEach((r, i) => {
      const v = med(r, 'ipukit write-path, ipu driver (encrypt + dif_generate_copy fused)') / med(r, 'encrypt alone')
      fusedTargets.push({ text: `${names[i]}: fused write path / encrypt alone`, value: v, goal: 0.85, met: v >= 0.85 })
    })
    save(
      result('accel-fused', 4, 'Fused write path', 'MB/s', fused, fusedTargets, [
        'MB/s counts data bytes (128 KiB per operation; the output is 4096 + 8 blocks with Type 1 PI). The write path appends encrypt into an accel buffer, dif_generate_copy into a second, and a copy into the send buffer; the optimizer elides the copy, and the ipu driver fuses the rest into one kernel pass that writes ciphertext and PI straight into the send buffer.',
      ]),
    )
  }
})
