// The host driver on its own thread against the host driver in process, in the same run:
// `node bench/host-thread.mjs` in packages/nvme, on the built package (not a *.bench.ts:
// `npm run bench` does not run it and it writes no results JSON; its numbers are quoted in
// the README). Two NVMe functions on one fabric, each on a RAM namespace of its own, the
// controllers on this thread; nvme0's driver runs here, nvme1's in a worker
// (connectHostThread). Interleaved rounds of runNvmePerf, 4 KiB random writes and reads at
// queue depth 32, polled and with MSI-X; medians (min–max) of the rounds, and what crossed
// the channel per command; the thread / in-process ratio is the median of each round's.
// BENCH_ROUNDS, BENCH_SECONDS as in nvme.bench.ts.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { connectHostThread, NvmeHostDriver, NvmePcieController, nvmeFunctionSpec, runNvmePerf, serveHostThread } from '../dist/index.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
const QD = 32
const BS = 4096
const BLOCKS = 16384

const perf = async (driver, workload) => {
  const r = await runNvmePerf({ driver, nsid: 1, workload, ioBytes: BS, queueDepth: QD, seconds: SECONDS })
  if (r.failed > 0) throw new Error(`${workload}: ${r.failed} failed, status ${r.firstFailure.toString(16)}`)
  return r
}

if (!isMainThread) {
  // the host thread: one driver per mode, each on a channel of its own
  const drivers = {}
  for (const [mode, description] of Object.entries(workerData.descriptions)) drivers[mode] = await connectHostThread(description, { mode, ioQueues: 1, queueDepth: 64 })
  parentPort.on('message', async (m) => {
    if (m.type === 'stop') {
      for (const d of Object.values(drivers)) d.stop()
      parentPort.close()
      return
    }
    const r = await perf(drivers[m.mode], m.workload)
    parentPort.postMessage({ iops: r.iops, p50: r.latencyUs.p50, p99: r.latencyUs.p99, ios: r.ios })
  })
  parentPort.postMessage({ type: 'ready' })
} else {
  const { createAccel } = await import('@ipukit/accel')
  const { Bdevs, createMallocBdev } = await import('@ipukit/bdev')
  const { createPhysicalMemory, Iommu } = await import('@ipukit/memory')
  const { PciFabric } = await import('@ipukit/pcie')
  const physical = createPhysicalMemory({ hostSize: 128 << 20, ipuSize: 512 << 20, kernels: { scratchSlots: 8 } })
  const iommu = new Iommu(physical)
  const fabric = new PciFabric({ physical, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  const names = ['nvme0', 'nvme1', 'nvme2', 'nvme3']
  for (const name of names) fabric.addEndpoint(hb.addRootPort({ name: `rp-${name}`, link: { gen: 4, width: 8 } }), { name, link: { gen: 4, width: 8 }, functions: [nvmeFunctionSpec({ vectors: 9 })] })
  fabric.enumerate()
  const accel = await createAccel({ physical, aesni: false, driver: 'ipu', taskCount: 1024, sequenceCount: 256 })
  const bdevs = new Bdevs(accel, { ioCount: 1024 })
  const ch = bdevs.channel()
  const ctrls = names.map((name, i) => {
    createMallocBdev(bdevs, { name: `ram${i}`, blockCount: BLOCKS, blockSize: BS })
    return new NvmePcieController({ fabric, fn: fabric.get(name), bdevs, ch, namespaces: [{ nsid: 1, bdev: `ram${i}` }], maxIoQueues: 8 })
  })
  // in process: nvme0 polled, nvme1 interrupts; on the host thread: nvme2 polled, nvme3 interrupts
  const local = { poll: new NvmeHostDriver({ fabric, fn: fabric.get('nvme0'), iommu, mode: 'poll', ioQueues: 1, queueDepth: 64 }), interrupt: new NvmeHostDriver({ fabric, fn: fabric.get('nvme1'), iommu, mode: 'interrupt', ioQueues: 1, queueDepth: 64 }) }
  for (const d of Object.values(local)) await d.init()
  const servers = { poll: serveHostThread({ fabric, fn: fabric.get('nvme2'), iommu }), interrupt: serveHostThread({ fabric, fn: fabric.get('nvme3'), iommu }) }
  const worker = new Worker(new URL(import.meta.url), { workerData: { descriptions: { poll: servers.poll.description, interrupt: servers.interrupt.description } } })
  const replies = []
  let waiting = null
  worker.on('message', (m) => (waiting ? (waiting(m), (waiting = null)) : replies.push(m)))
  worker.on('error', (e) => {
    console.error(e)
    process.exit(1)
  })
  const next = () => (replies.length > 0 ? Promise.resolve(replies.shift()) : new Promise((r) => (waiting = r)))
  await next()
  const remote = (mode, workload) => async () => {
    const s = servers[mode]
    const before = { ...s.counters }
    worker.postMessage({ mode, workload })
    const r = await next()
    const writes = s.counters.postedWrites - before.postedWrites
    const batches = s.counters.postedBatches - before.postedBatches
    return { ...r, writesPerIo: writes / r.ios, writesPerBatch: writes / batches }
  }
  const inproc = (mode, workload) => async () => {
    const r = await perf(local[mode], workload)
    return { iops: r.iops, p50: r.latencyUs.p50, p99: r.latencyUs.p99, ios: r.ios }
  }
  // fill the namespaces so reads read written blocks
  for (const w of ['randwrite']) {
    for (const m of ['poll', 'interrupt']) {
      await inproc(m, w)()
      await remote(m, w)()
    }
  }
  const cands = []
  for (const workload of ['randwrite', 'randread']) {
    for (const mode of ['poll', 'interrupt']) {
      cands.push({ name: `${workload}, ${mode === 'poll' ? 'polled' : 'MSI-X'}, driver in process`, run: inproc(mode, workload) })
      cands.push({ name: `${workload}, ${mode === 'poll' ? 'polled' : 'MSI-X'}, driver on its own thread`, run: remote(mode, workload) })
    }
  }
  const samples = cands.map(() => [])
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < cands.length; k++) {
      const i = (k + r) % cands.length
      samples[i].push(await cands[i].run())
    }
  }
  const med = (xs) => {
    const v = xs.slice().sort((a, b) => a - b)
    return { med: v[v.length >> 1], min: v[0], max: v[v.length - 1] }
  }
  const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))
  console.log(`${ROUNDS} interleaved rounds of ${SECONDS * 1000} ms, 4 KiB at QD ${QD}, one I/O queue pair; Node ${process.version}`)
  for (const [i, c] of cands.entries()) {
    const iops = med(samples[i].map((s) => s.iops / 1000))
    const p50 = med(samples[i].map((s) => s.p50))
    const p99 = med(samples[i].map((s) => s.p99))
    const extra = samples[i][0].writesPerIo === undefined ? '' : `  posted writes/IO ${med(samples[i].map((s) => s.writesPerIo)).med.toFixed(2)}, writes/wake ${med(samples[i].map((s) => s.writesPerBatch)).med.toFixed(1)}`
    // candidates come in pairs (in process, then on its own thread): the ratio within each round
    const ratio = i % 2 === 1 ? `  / in process ${med(samples[i].map((s, r) => s.iops / samples[i - 1][r].iops)).med.toFixed(2)}` : ''
    console.log(`${c.name.padEnd(48)} ${f(iops.med).padStart(5)} k IOPS (${f(iops.min)}–${f(iops.max)})  p50 ${f(p50.med)} µs  p99 ${f(p99.med)} µs${ratio}${extra}`)
  }
  worker.postMessage({ type: 'stop' })
  await new Promise((r) => worker.once('exit', r))
  for (const s of Object.values(servers)) s.close()
  for (const d of Object.values(local)) d.stop()
  for (const c of ctrls) c.core.close()
  await bdevs.close()
  await accel.close()
}
