// The host driver and the PCIe controller in one process, on RAM namespaces, on the built
// package; every candidate in interleaved rounds (each round runs every candidate once, in a
// rotating order); medians of the rounds.
//
//   4 KiB random writes and reads at queue depth 32: IOPS and latency percentiles, with
//   completions polled and by MSI-X interrupt, beside bdevperf on the same kind of malloc
//   bdev from host buffers through the IOMMU: the bdev's work without the queues, the
//   doorbells, the PRPs and the CQEs, which is the ceiling of the controller's own cost.
//   128 KiB sequential writes and reads: MB/s, beside TypedArray.prototype.set of 128 KiB
//   (host buffer to RAM disk), the copy that is the whole of the work.
//
// Everything runs on one thread: the host, the controller, the bdevs.
import { createAccel } from '@ipukit/accel'
import { Bdevs, createMallocBdev, runBdevPerf } from '@ipukit/bdev'
import { type KernelResult, machine, save, type SizeResult } from '@ipukit/bench-utils'
import { createPhysicalMemory, Iommu, IoVecList } from '@ipukit/memory'
import { PciFabric } from '@ipukit/pcie'
import { test } from 'vitest'
import { NvmeHostDriver, NvmePcieController, nvmeFunctionSpec, runNvmePerf } from '../dist/index.js'
import type { NvmePerfResult } from '../dist/index.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
const QD = 32
const BS = 4096
const BLOCKS = 16384 // 64 MiB per namespace

test('nvme', async () => {
  const physical = createPhysicalMemory({ hostSize: 64 << 20, ipuSize: 512 << 20, kernels: { scratchSlots: 8 } })
  const iommu = new Iommu(physical)
  const fabric = new PciFabric({ physical, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  for (const name of ['nvme0', 'nvme1']) fabric.addEndpoint(hb.addRootPort({ name: `rp-${name}`, link: { gen: 4, width: 8 } }), { name, link: { gen: 4, width: 8 }, functions: [nvmeFunctionSpec({ vectors: 9 })] })
  fabric.enumerate()
  const accel = await createAccel({ physical, aesni: false, driver: 'ipu', taskCount: 1024, sequenceCount: 256 })
  const bdevs = new Bdevs(accel, { ioCount: 1024 })
  const ch = bdevs.channel()
  for (const n of ['ram0', 'ram1', 'ram2']) createMallocBdev(bdevs, { name: n, blockCount: BLOCKS, blockSize: BS })
  const ctrls = ['nvme0', 'nvme1'].map((name, i) => new NvmePcieController({ fabric, fn: fabric.get(name), bdevs, ch, namespaces: [{ nsid: 1, bdev: `ram${i}` }], maxIoQueues: 8 }))
  const polled = new NvmeHostDriver({ fabric, fn: fabric.get('nvme0'), iommu, mode: 'poll', ioQueues: 1, queueDepth: 64 })
  const irq = new NvmeHostDriver({ fabric, fn: fabric.get('nvme1'), iommu, mode: 'interrupt', ioQueues: 1, queueDepth: 64 })
  await polled.init()
  await irq.init()
  // bdevperf's buffers: host memory the NVMe function reaches through the IOMMU
  const fn0 = fabric.get('nvme0')
  const perfBufs = Array.from({ length: QD }, () => polled.allocBuffer(131072))
  const desc = bdevs.open('ram2', { write: true })
  const dom = fabric.busMaster(fn0)
  const bdevperf = (workload: 'randwrite' | 'randread' | 'write' | 'read', ioBytes: number) => {
    const ls = perfBufs.map((b) => IoVecList.of([b.iova, ioBytes]))
    return async (): Promise<NvmePerfResult> => {
      const r = await runBdevPerf({ desc, ch, workload, ioBlocks: ioBytes / BS, queueDepth: QD, seconds: SECONDS, buffer: (i) => ({ iovs: ls[i]!, domain: dom }) })
      if (r.failed > 0) throw new Error(`bdevperf ${workload}: ${r.failed} failed, status ${r.firstFailure}`)
      return { ...r, nsid: 0 }
    }
  }
  const nvmeperf = (driver: NvmeHostDriver, workload: 'randwrite' | 'randread' | 'write' | 'read', ioBytes: number, qd = QD) => async () => {
    const r = await runNvmePerf({ driver, nsid: 1, workload, ioBytes, queueDepth: qd, seconds: SECONDS })
    if (r.failed > 0) throw new Error(`nvmeperf ${workload}: ${r.failed} failed, status ${r.firstFailure.toString(16)}`)
    return r
  }
  // the copy ceiling: TypedArray.prototype.set of 128 KiB from the host buffers into a
  // memory the size of a namespace, sequentially (as the RAM disk's writes land: past the
  // caches, at the DRAM's copy bandwidth)
  const SPAN = BLOCKS * BS
  const ipuAt = physical.ipuAllocator.alloc(SPAN)
  const copy = async (): Promise<NvmePerfResult> => {
    const src = perfBufs.map((b) => b.bytes.subarray(0, 131072))
    const t0 = performance.now()
    let n = 0
    while (performance.now() - t0 < SECONDS * 1000) {
      for (let i = 0; i < QD; i++) physical.bytes.set(src[i]!, ipuAt + (((n + i) * 131072) % SPAN))
      n += QD
    }
    const s = (performance.now() - t0) / 1000
    return { workload: 'write', nsid: 0, ioBytes: 131072, queueDepth: QD, seconds: s, ios: n, failed: 0, firstFailure: 0, iops: n / s, mbPerSecond: (n * 131072) / s / 1e6, latencyUs: { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 } }
  }
  // fill the namespaces so reads read written blocks
  for (const d of [polled, irq]) await nvmeperf(d, 'write', 131072)()
  await bdevperf('write', 131072)()

  const ROWS4 = ['ipukit host driver -> NVMe PCIe controller, polled', 'ipukit host driver -> NVMe PCIe controller, MSI-X interrupts', 'bdevperf on the RAM bdev, host buffers (IOMMU)'] as const
  const ROWS128 = [...ROWS4, 'TypedArray.prototype.set, 128 KiB into 64 MiB'] as const
  const columns = [
    { label: '4 KiB random write', size: 4096, rows: ROWS4, runs: [nvmeperf(polled, 'randwrite', 4096), nvmeperf(irq, 'randwrite', 4096), bdevperf('randwrite', 4096)] },
    { label: '4 KiB random read', size: 4096, rows: ROWS4, runs: [nvmeperf(polled, 'randread', 4096), nvmeperf(irq, 'randread', 4096), bdevperf('randread', 4096)] },
    { label: '4 KiB random read, QD 1', size: 4096, rows: ROWS4, runs: [nvmeperf(polled, 'randread', 4096, 1), nvmeperf(irq, 'randread', 4096, 1)] },
    { label: '128 KiB sequential write', size: 131072, rows: ROWS128, runs: [nvmeperf(polled, 'write', 131072), nvmeperf(irq, 'write', 131072), bdevperf('write', 131072), copy] },
    { label: '128 KiB sequential read', size: 131072, rows: ROWS128, runs: [nvmeperf(polled, 'read', 131072), nvmeperf(irq, 'read', 131072), bdevperf('read', 131072), copy] },
  ]
  const samples = columns.map((c) => c.runs.map(() => [] as NvmePerfResult[]))
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
  const kindOf = (name: string) => (name.startsWith('ipukit') ? ('ipukit' as const) : ('ceiling' as const))
  const table = (cols: number[], value: (r: NvmePerfResult) => number): SizeResult[] =>
    cols.map((i) => ({ bytes: columns[i]!.size, label: columns[i]!.label, rows: columns[i]!.runs.map((_, j) => ({ name: columns[i]!.rows[j]!, kind: kindOf(columns[i]!.rows[j]!), ...stat(samples[i]![j]!.map(value)) })) }))
  const iops = table([0, 1, 2], (r) => r.iops / 1000)
  const mbps = table([3, 4], (r) => r.mbPerSecond)
  // latency: every percentile's median over the rounds, one column per workload and percentile
  const latency: SizeResult[] = []
  for (const i of [0, 1, 2]) {
    for (const [p, key] of [['p50', 'p50'], ['p99', 'p99'], ['p99.9', 'p999']] as const) {
      latency.push({
        bytes: 4096,
        label: `${columns[i]!.label.replace('4 KiB random ', '')} ${p}`,
        rows: columns[i]!.runs.map((_, j) => ({ name: columns[i]!.rows[j]!, kind: kindOf(columns[i]!.rows[j]!), ...stat(samples[i]![j]!.map((r) => r.latencyUs[key])) })),
      })
    }
  }
  const print = (title: string, unit: string, t: SizeResult[]) => {
    console.log(title)
    for (const s of t) console.log(`  ${s.label}\n${s.rows.map((r) => `    ${r.name.padEnd(64)} ${r.medianMBps.toFixed(1).padStart(8)} ${unit}  (${r.minMBps.toFixed(1)}–${r.maxMBps.toFixed(1)})`).join('\n')}`)
  }
  print('4 KiB IOPS', 'k IOPS', iops)
  print('128 KiB sequential', 'MB/s', mbps)
  print('latency', 'µs', latency)

  const med = (t: SizeResult[], label: string, row: string) => t.find((s) => s.label === label)!.rows.find((x) => x.name === row)!.medianMBps
  const targets: KernelResult['targets'] = []
  for (const w of ['write', 'read']) {
    const v = med(iops, `4 KiB random ${w}`, ROWS4[0])
    targets.push({ text: `4 KiB random ${w} at QD 32, polled, on one core: k IOPS`, value: v, goal: 250, met: v >= 250 })
  }
  const notes: string[] = []
  for (const w of ['write', 'read']) notes.push(`4 KiB random ${w}: polled driver -> controller / bdevperf alone ${(med(iops, `4 KiB random ${w}`, ROWS4[0]) / med(iops, `4 KiB random ${w}`, ROWS4[2])).toFixed(2)}, interrupts / polled ${(med(iops, `4 KiB random ${w}`, ROWS4[1]) / med(iops, `4 KiB random ${w}`, ROWS4[0])).toFixed(2)}`)
  for (const w of ['write', 'read']) notes.push(`128 KiB sequential ${w}: polled driver -> controller / TypedArray.prototype.set ${(med(mbps, `128 KiB sequential ${w}`, ROWS128[0]) / med(mbps, `128 KiB sequential ${w}`, ROWS128[3])).toFixed(2)}`)
  const method = { samples: ROUNDS, sampleMs: SECONDS * 1000, description: `${ROUNDS} interleaved rounds of about ${SECONDS * 1000} ms per candidate, each a run of runNvmePerf (or runBdevPerf), queue depth ${QD} unless a column says otherwise, one I/O queue pair, host and controller on one thread (the software accel module, the ipu platform driver)` }
  const base = { date: new Date().toISOString(), machine: machine(), method }
  save({ kernel: 'nvme-iops', order: 1, title: 'host driver -> PCIe controller, 4 KiB random I/O', unit: 'k ops/s', ...base, sizes: iops, targets, notes: notes.slice(0, 2) })
  save({ kernel: 'nvme-latency', order: 2, title: 'host driver -> PCIe controller, 4 KiB random I/O latency, submission to completion', unit: 'µs', ...base, sizes: latency, targets: [], notes: [] })
  save({ kernel: 'nvme-sequential', order: 3, title: 'host driver -> PCIe controller, 128 KiB sequential I/O at queue depth 32', unit: 'MB/s', ...base, sizes: mbps, targets: [], notes: notes.slice(2) })
  desc.close()
  polled.stop()
  irq.stop()
  for (const c of ctrls) c.core.close()
  await bdevs.close()
  await accel.close()
})
