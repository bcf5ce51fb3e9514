// NVMe/TCP over loopback, on the built package: the ipukit host in this process, the ipukit
// target in another (bench/support/target.mjs: each side has a core of the two), a RAM
// namespace of 4 KiB blocks. Every candidate in interleaved rounds (each round runs every
// candidate once, in a rotating order); medians of the rounds.
//
//   4 KiB random writes and reads at queue depth 32: IOPS and latency percentiles,
//   128 KiB sequential writes and reads at queue depth 32: MB/s, digests off and on.
//   The ceiling, in the same run, between the same two processes: raw loopback TCP, a
//   sink taking 128 KiB writes (MB/s), and 72-byte requests answered with 4 KiB + 24-byte
//   replies at 32 in flight (the packets of a 4 KiB read, with no NVMe in them: ops/s).
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { runClosedLoop } from '@ipukit/bdev'
import { type KernelResult, machine, save, type SizeResult, streamToSink } from '@ipukit/bench-utils'
import { createPhysicalMemory, IoVecList } from '@ipukit/memory'
import { test } from 'vitest'
import { NvmfHost } from '../dist/index.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
const QD = 32
const BLOCKS = 16384
const BS = 4096

interface Run {
  iops: number
  mbps: number
  lat: { p50: number; p99: number; p999: number }
}

test('nvmf', async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./support/target.mjs', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] })
  const ports = await new Promise<{ nvmf: number; sink: number; responder: number }>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`the target process exited (${c})`)))
    child.stdout!.once('data', (b: Buffer) => resolve(JSON.parse(b.toString())))
  })
  try {
    const physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 128 << 20, kernels: { scratchSlots: 8 } })
    const hosts = await Promise.all(
      [false, true].map(async (dg) => {
        const h = new NvmfHost({ physical, traddr: '127.0.0.1', trsvcid: ports.nvmf, subnqn: 'nqn.2026-12.io.ipukit:bench', hdgst: dg, ddgst: dg, queueDepth: 64 })
        await h.connect()
        return h
      }),
    )
    const bufs = Array.from({ length: QD }, () => physical.ipuAllocator.alloc(131072))
    for (const b of bufs) physical.bytes.fill(0x5a, b, b + 131072)
    const perf = (h: NvmfHost, write: boolean, random: boolean, bytes: number) => async (): Promise<Run> => {
      const blocks = bytes / BS
      const span = BLOCKS / blocks
      let seq = 0
      let seed = 0x9e3779b9
      const slots = bufs.map((b) => ({ started: 0, list: new IoVecList(1).push(b, bytes), done: null as ((s: never, st: number) => void) | null }))
      const cb = (s: (typeof slots)[number], c: { status: number }) => s.done!(s as never, c.status)
      const r = await runClosedLoop(slots, SECONDS, (s, done) => {
        s.done = done as never
        let at: number
        if (random) {
          seed ^= seed << 13
          seed ^= seed >>> 17
          seed ^= seed << 5
          at = ((seed >>> 0) % span) * blocks
        } else at = (seq++ % span) * blocks
        return h.rw(0, write, 1, at, blocks, s.list, cb, s)
      })
      if (r.failed > 0) throw new Error(`${write ? 'write' : 'read'} ${bytes}: ${r.failed} failed, status ${r.firstFailure.toString(16)}`)
      return { iops: r.ios / r.seconds, mbps: (r.ios * bytes) / r.seconds / 1e6, lat: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, p999: r.latencyUs.p999 } }
    }
    // the raw TCP ceilings
    const sinkRun = async (): Promise<Run> => {
      const { bytes, seconds: secs } = await streamToSink(ports.sink, 1 << 20, SECONDS)
      return { iops: bytes / 131072 / secs, mbps: bytes / secs / 1e6, lat: { p50: 0, p99: 0, p999: 0 } }
    }
    const rrRun = async (): Promise<Run> => {
      const REPLY = 4096 + 24
      const req = Buffer.alloc(72, 1)
      let got = 0
      let done = 0
      let sent = 0
      let stop = false
      let t0 = 0
      let resolve: () => void = () => {}
      const finished = new Promise<void>((r) => (resolve = r))
      const s: net.Socket = net.connect({
        port: ports.responder,
        host: '127.0.0.1',
        noDelay: true,
        onread: {
          buffer: Buffer.allocUnsafe(256 << 10),
          callback: (n: number) => {
            got += n
            let k = 0
            while (got >= REPLY) {
              got -= REPLY
              k++
            }
            done += k
            if (!stop && performance.now() - t0 >= SECONDS * 1000) stop = true
            if (stop) {
              if (done >= sent) resolve()
              return true
            }
            if (k > 0) {
              s.cork()
              for (let i = 0; i < k; i++) s.write(req)
              sent += k
              s.uncork()
            }
            return true
          },
        },
      } as net.NetConnectOpts)
      await new Promise((r) => s.once('connect', r))
      t0 = performance.now()
      s.cork()
      for (let i = 0; i < QD; i++) s.write(req)
      sent = QD
      s.uncork()
      await finished
      const secs = (performance.now() - t0) / 1000
      s.destroy()
      return { iops: done / secs, mbps: (done * 4096) / secs / 1e6, lat: { p50: 0, p99: 0, p999: 0 } }
    }
    // fill the namespace so reads read written blocks
    await perf(hosts[0]!, true, false, 131072)()

    const [plain, dgst] = hosts as [NvmfHost, NvmfHost]
    const ROWS = ['ipukit host -> ipukit target, digests off', 'ipukit host -> ipukit target, header and data digests', 'raw loopback TCP between the same processes'] as const
    const columns = [
      { label: '4 KiB random write', size: 4096, runs: [perf(plain, true, true, 4096), perf(dgst, true, true, 4096), rrRun] },
      { label: '4 KiB random read', size: 4096, runs: [perf(plain, false, true, 4096), perf(dgst, false, true, 4096), rrRun] },
      { label: '128 KiB sequential write', size: 131072, runs: [perf(plain, true, false, 131072), perf(dgst, true, false, 131072), sinkRun] },
      { label: '128 KiB sequential read', size: 131072, runs: [perf(plain, false, false, 131072), perf(dgst, false, false, 131072), sinkRun] },
    ]
    const samples = columns.map((c) => c.runs.map(() => [] as Run[]))
    for (let r = 0; r < ROUNDS; r++) {
      const order = columns.flatMap((c, i) => c.runs.map((_, j) => [i, j] as const))
      for (let k = 0; k < order.length; k++) {
        const [i, j] = order[(k + r * 3) % order.length]!
        samples[i]![j]!.push(await columns[i]!.runs[j]!())
      }
    }
    const stat = (xs: number[]) => {
      const v = xs.slice().sort((a, b) => a - b)
      return { medianMBps: v[v.length >> 1]!, minMBps: v[0]!, maxMBps: v[v.length - 1]! }
    }
    const kind = (j: number) => (j === 2 ? ('ceiling' as const) : ('ipukit' as const))
    const table = (cols: number[], value: (r: Run) => number, rows = 3): SizeResult[] =>
      cols.map((i) => ({ bytes: columns[i]!.size, label: columns[i]!.label, rows: columns[i]!.runs.slice(0, rows).map((_, j) => ({ name: ROWS[j]!, kind: kind(j), ...stat(samples[i]![j]!.map(value)) })) }))
    const iops = table([0, 1], (r) => r.iops / 1000)
    const mbps = table([2, 3], (r) => r.mbps)
    const latency: SizeResult[] = []
    for (const i of [0, 1]) {
      for (const [p, key] of [['p50', 'p50'], ['p99', 'p99'], ['p99.9', 'p999']] as const) {
        latency.push({ bytes: 4096, label: `${columns[i]!.label.replace('4 KiB random ', '')} ${p}`, rows: [0, 1].map((j) => ({ name: ROWS[j]!, kind: 'ipukit' as const, ...stat(samples[i]![j]!.map((r) => r.lat[key])) })) })
      }
    }
    for (const [title, unit, t] of [['4 KiB', 'k IOPS', iops], ['128 KiB', 'MB/s', mbps], ['latency', 'µs', latency]] as const) {
      console.log(title)
      for (const s of t) console.log(`  ${s.label}\n${s.rows.map((r) => `    ${r.name.padEnd(56)} ${r.medianMBps.toFixed(1).padStart(8)} ${unit}  (${r.minMBps.toFixed(1)}–${r.maxMBps.toFixed(1)})`).join('\n')}`)
    }
    const med = (t: SizeResult[], label: string, row: number) => t.find((s) => s.label === label)!.rows[row]!.medianMBps
    const notes: string[] = []
    for (const w of ['write', 'read']) notes.push(`4 KiB random ${w}: digests off / raw TCP request-response ${(med(iops, `4 KiB random ${w}`, 0) / med(iops, `4 KiB random ${w}`, 2)).toFixed(2)}, digests on / off ${(med(iops, `4 KiB random ${w}`, 1) / med(iops, `4 KiB random ${w}`, 0)).toFixed(2)}`)
    const seqNotes: string[] = []
    for (const w of ['write', 'read']) seqNotes.push(`128 KiB sequential ${w}: digests off / raw TCP ${(med(mbps, `128 KiB sequential ${w}`, 0) / med(mbps, `128 KiB sequential ${w}`, 2)).toFixed(2)}, digests on / off ${(med(mbps, `128 KiB sequential ${w}`, 1) / med(mbps, `128 KiB sequential ${w}`, 0)).toFixed(2)}`)
    const method = { samples: ROUNDS, sampleMs: SECONDS * 1000, description: `${ROUNDS} interleaved rounds of about ${SECONDS * 1000} ms per candidate; the host (runClosedLoop over NvmfHost.rw, one I/O queue, queue depth ${QD}) in the bench process, the target (RAM namespace, 4 KiB blocks) and the raw TCP servers in a second process` }
    const base = { date: new Date().toISOString(), machine: machine(), method }
    const targets: KernelResult['targets'] = []
    save({ kernel: 'nvmf-iops', order: 1, title: 'NVMe/TCP over loopback, 4 KiB random I/O at queue depth 32', unit: 'k ops/s', ...base, sizes: iops, targets, notes })
    save({ kernel: 'nvmf-latency', order: 2, title: 'NVMe/TCP over loopback, 4 KiB random I/O latency at queue depth 32', unit: 'µs', ...base, sizes: latency, targets: [], notes: [] })
    save({ kernel: 'nvmf-sequential', order: 3, title: 'NVMe/TCP over loopback, 128 KiB sequential I/O at queue depth 32', unit: 'MB/s', ...base, sizes: mbps, targets: [], notes: seqNotes })
    for (const h of hosts) await h.close()
  } finally {
    child.kill('SIGTERM')
  }
})
