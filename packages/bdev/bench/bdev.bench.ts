// bdevperf through the stacks, on the built package, every candidate in interleaved rounds
// (each round runs every candidate once, in a rotating order); medians of the rounds.
//
//   malloc, crypto -> malloc, crypto -> dif -> malloc: random writes and reads of 4 KiB and
//   128 KiB at queue depth 32, buffers in IPU memory, on the software module with the ipu
//   platform driver (one thread); beside the accel sequence the stack builds, run alone
//   (runAccelPerf's write-path and read-path): the ceiling for the stack's own overhead.
//   The crypto -> dif -> malloc rows again with the buffers in host memory, reached through
//   the NVMe function's IOMMU context, and that path's bytes per memory domain.
import { type Accel, createAccel, runAccelPerf } from '@ipukit/accel'
import { type KernelResult, machine, save, type SizeResult } from '@ipukit/bench-utils'
import { createPhysicalMemory, Iommu, IoVecList } from '@ipukit/memory'
import { PciFabric } from '@ipukit/pcie'
import { test } from 'vitest'
import { Bdevs, createCryptoBdev, createDifBdev, createMallocBdev, runBdevPerf } from '../dist/index.js'
import type { BdevDesc } from '../dist/index.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.4)
const QD = 32
const BS = 4096
const BLOCKS = 16384

test('bdevperf', async () => {
  const physical = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 512 << 20, kernels: { scratchSlots: 8 } })
  const iommu = new Iommu(physical)
  const fabric = new PciFabric({ physical, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 8 } }), { name: 'ipu-nvme', link: { gen: 4, width: 8 }, functions: [{ vendorId: 0x1b36, deviceId: 0x0010 }] })
  fabric.enumerate()
  const nvme = fabric.get('ipu-nvme')
  iommu.map(nvme.rid, 0x100_0000, 0, 16 << 20, 3)
  const host = fabric.busMaster(nvme)
  const accel: Accel = await createAccel({ physical, aesni: false, driver: 'ipu', taskCount: 1024, sequenceCount: 256 })
  const bdevs = new Bdevs(accel, { ioCount: 512 })
  const ch = bdevs.channel()
  accel.keys.create({ name: 'k', key: 'a1'.repeat(32), key2: '1a'.repeat(32) })
  createMallocBdev(bdevs, { name: 'plain', blockCount: BLOCKS, blockSize: BS })
  createMallocBdev(bdevs, { name: 'ram1', blockCount: BLOCKS, blockSize: BS })
  createCryptoBdev(bdevs, { name: 'crypt1', base: 'ram1', key: 'k' })
  createMallocBdev(bdevs, { name: 'ram2', blockCount: BLOCKS, blockSize: BS, mdSize: 8, pi: { type: 1 } })
  createDifBdev(bdevs, { name: 'dif2', base: 'ram2' })
  createCryptoBdev(bdevs, { name: 'crypt2', base: 'dif2', key: 'k' })
  const descs: Record<string, BdevDesc> = Object.fromEntries(['plain', 'crypt1', 'crypt2'].map((n) => [n, bdevs.open(n, { write: true })]))
  // a buffer per queue slot, 128 KiB each: in IPU memory, and in host memory
  const local = physical.ipuAllocator.alloc(QD * 131072)
  const lists = (ioBytes: number, inHost: boolean) => Array.from({ length: QD }, (_, i) => (inHost ? IoVecList.of([0x100_0000 + i * 131072, ioBytes]) : IoVecList.of([local + i * 131072, ioBytes])))
  physical.bytes.fill(0x3c, local, local + QD * 131072)
  const perf = (name: string, workload: 'randwrite' | 'randread', ioBytes: number, inHost = false) => {
    const ls = lists(ioBytes, inHost)
    return async () => {
      const r = await runBdevPerf({ desc: descs[name]!, ch, workload, ioBlocks: ioBytes / BS, queueDepth: QD, seconds: SECONDS, buffer: (i) => ({ iovs: ls[i]!, domain: inHost ? host : null }) })
      if (r.failed > 0) throw new Error(`${name} ${workload}: ${r.failed} I/Os failed, the first with status ${r.firstFailure}`)
      return r.mbPerSecond
    }
  }
  const alone = (workload: 'write-path' | 'read-path', ioBytes: number) => async () => {
    const r = await runAccelPerf(physical, { accel, workload, transferSize: ioBytes, queueDepth: QD, seconds: SECONDS })
    if (r.failed > 0) throw new Error(`${workload}: ${r.failed} failed`)
    return r.mbPerSecond
  }
  // fill the disks once, so reads read written blocks
  for (const n of ['plain', 'crypt1', 'crypt2']) await perf(n, 'randwrite', 131072)()

  const ROWS = ['ipukit malloc', 'ipukit crypto -> malloc', 'ipukit crypto -> dif -> malloc', 'ipukit crypto -> dif -> malloc, host buffers (IOMMU)', 'the accel sequence alone (write-path / read-path)'] as const
  const columns = [4096, 131072].flatMap((size) =>
    (['randwrite', 'randread'] as const).map((w) => ({
      label: `${size >> 10} KiB ${w === 'randwrite' ? 'write' : 'read'}`,
      size,
      runs: [perf('plain', w, size), perf('crypt1', w, size), perf('crypt2', w, size), perf('crypt2', w, size, true), alone(w === 'randwrite' ? 'write-path' : 'read-path', size)],
    })),
  )
  const samples = columns.map((c) => c.runs.map(() => [] as number[]))
  for (let r = 0; r < ROUNDS; r++) {
    const order = columns.flatMap((c, i) => c.runs.map((_, j) => [i, j] as const))
    for (let k = 0; k < order.length; k++) {
      const [i, j] = order[(k + r * 3) % order.length]!
      samples[i]![j]!.push(await columns[i]!.runs[j]!())
    }
  }
  const mbps: SizeResult[] = columns.map((c, i) => ({
    bytes: c.size,
    label: c.label,
    rows: ROWS.map((name, j) => {
      const v = samples[i]![j]!.slice().sort((a, b) => a - b)
      return { name, kind: j === 4 ? ('ceiling' as const) : ('ipukit' as const), medianMBps: v[v.length >> 1]!, minMBps: v[0]!, maxMBps: v[v.length - 1]! }
    }),
  }))
  const iops: SizeResult[] = mbps.map((s) => ({ ...s, rows: s.rows.map((r) => ({ ...r, medianMBps: (r.medianMBps * 1e6) / s.bytes / 1000, minMBps: (r.minMBps * 1e6) / s.bytes / 1000, maxMBps: (r.maxMBps * 1e6) / s.bytes / 1000 })) }))
  for (const s of mbps) console.log(`${s.label}\n${s.rows.map((r) => `  ${r.name.padEnd(56)} ${r.medianMBps.toFixed(0).padStart(6)} MB/s  (${r.minMBps.toFixed(0)}–${r.maxMBps.toFixed(0)})`).join('\n')}`)

  // the fused path's bytes per memory domain, per 128 KiB write from host memory
  const before = accel.stats().domains
  const ls = lists(131072, true)
  const r = await runBdevPerf({ desc: descs.crypt2!, ch, workload: 'randwrite', ioBlocks: 32, queueDepth: QD, seconds: 0.2, buffer: (i) => ({ iovs: ls[i]!, domain: host }) })
  const after = accel.stats().domains
  // the warm-up and the I/Os still in flight when the clock stops also count: per I/O by total bytes
  const hostRead = after[`bus:${nvme.name}`]!.read - (before[`bus:${nvme.name}`]?.read ?? 0)
  const writes = hostRead / 131072
  const per = (id: string, k: 'read' | 'written') => ((after[id]?.[k] ?? 0) - (before[id]?.[k] ?? 0)) / writes
  const counters = `bytes per 128 KiB write from host memory through crypto -> dif -> malloc (${writes} writes, ${r.ios} timed): host ${per(`bus:${nvme.name}`, 'read')} read, ${per(`bus:${nvme.name}`, 'written')} written; IPU memory ${per('system', 'read')} read, ${per('system', 'written')} written (128 KiB of data + 32 x 8 bytes of PI); accel buffers ${per('accel', 'read') + per('accel', 'written')}: one pass`

  const med = (label: string, row: string) => mbps.find((s) => s.label === label)!.rows.find((x) => x.name === row)!.medianMBps
  const targets: KernelResult['targets'] = []
  for (const size of ['4 KiB', '128 KiB']) {
    const v = med(`${size} write`, 'ipukit crypto -> dif -> malloc') / med(`${size} write`, 'the accel sequence alone (write-path / read-path)')
    targets.push({ text: `${size}: crypto -> dif -> malloc write / the accel write-path alone`, value: v, goal: 0.8, met: v >= 0.8 })
  }
  const method = { samples: ROUNDS, sampleMs: SECONDS * 1000, description: `${ROUNDS} interleaved rounds of about ${SECONDS * 1000} ms per candidate, each a run of runBdevPerf (or runAccelPerf), queue depth ${QD}, on one thread (the software module, the ipu platform driver)` }
  const base = { date: new Date().toISOString(), machine: machine(), method }
  save({ kernel: 'bdev', order: 1, title: 'bdevperf, random I/O at queue depth 32', unit: 'MB/s', ...base, sizes: mbps, targets, notes: [counters] })
  save({ kernel: 'bdev-iops', order: 2, title: 'bdevperf, random I/O at queue depth 32, in IOPS', unit: 'k ops/s', ...base, sizes: iops, targets: [], notes: [] })
  for (const d of Object.values(descs)) d.close()
  await bdevs.close()
  await accel.close()
})
