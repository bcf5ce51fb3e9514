// The host thread of test/host-thread.test.ts: a worker that connects an NvmeHostDriver to
// the controller on the test's thread (connectHostThread, the built package) and runs what
// the test asks: perf runs, a pattern written and read back at a queue depth, probes of the
// errors that cross the channel, shutdown.
import { parentPort, workerData } from 'node:worker_threads'
import { connectHostThread, disconnectHostThread, runNvmePerf } from '../../dist/index.js'

const { description, options } = workerData
const port = parentPort

/** byte k of the block at LBA `lba`, for the pattern `seed` */
const patternByte = (seed, lba, k) => (lba * 131 + k * 7 + seed) & 0xff

function fill(bytes, seed, lba, blocks, blockSize) {
  for (let b = 0; b < blocks; b++) for (let k = 0; k < blockSize; k++) bytes[b * blockSize + k] = patternByte(seed, lba + b, k)
}

function check(bytes, seed, lba, blocks, blockSize) {
  for (let b = 0; b < blocks; b++) for (let k = 0; k < blockSize; k++) if (bytes[b * blockSize + k] !== patternByte(seed, lba + b, k)) return lba + b
  return -1
}

/** Writes (or reads and checks) `count` commands of `blocks` blocks from `lba` on, `qd` at a time. */
async function pattern(d, { nsid, lba, count, blocks, seed, qd, write }) {
  const ns = d.namespaces.get(nsid)
  const bytes = blocks * ns.blockSize
  const bufs = Array.from({ length: qd }, () => d.allocBuffer(bytes))
  let next = 0
  let failed = 0
  let firstStatus = 0
  let mismatch = -1
  let maxInFlight = 0
  let inFlight = 0
  await new Promise((resolve) => {
    const start = (slot) => {
      if (next >= count) {
        if (inFlight === 0) resolve()
        return
      }
      const at = lba + next++ * blocks
      const buf = bufs[slot]
      if (write) fill(buf.bytes, seed, at, blocks, ns.blockSize)
      else buf.bytes.fill(0)
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const rc = d.rw(0, write, nsid, at, blocks, [[buf.iova, bytes]], (s, c) => {
        inFlight--
        if (c.status !== 0) {
          if (failed++ === 0) firstStatus = c.status
        } else if (!write && mismatch < 0) mismatch = check(buf.bytes, seed, at, blocks, ns.blockSize)
        start(s)
      }, slot)
      if (rc !== 0) throw new Error(`rw returned ${rc}`)
    }
    for (let s = 0; s < qd; s++) start(s)
  })
  for (const b of bufs) d.freeBuffer(b)
  return { failed, firstStatus, mismatch, maxInFlight }
}

function describeError(e) {
  return { name: e?.name, code: e?.code, message: String(e?.message ?? e) }
}

/** Errors that come back from the serving thread keep their class and code. */
function probe(d) {
  const out = {}
  try {
    d.bar.read(0x5000, 4) // past BAR0's 16 KiB
  } catch (e) {
    out.mmio = describeError(e)
  }
  try {
    d.iommu.map(d.fn.rid, 2 ** 40, description.host.offset + description.host.size, 4096, 3) // past this thread's host DRAM
  } catch (e) {
    out.map = describeError(e)
  }
  try {
    d.iommu.map(d.fn.rid + 1, 2 ** 40, 0, 4096, 3)
  } catch (e) {
    out.otherRid = describeError(e)
  }
  // a posted write the fabric refuses is dropped on the serving side (and counted there); the read after it is ordered behind it
  d.bar.write(0x5000, 4, 1)
  out.afterDroppedWrite = d.bar.read(0x1c, 4)
  return out
}

let driver
try {
  driver = await connectHostThread(description, options)
} catch (e) {
  port.postMessage({ type: 'error', error: describeError(e) })
  port.close()
}

if (driver !== undefined) {
  const d = driver
  port.on('message', async (m) => {
    try {
      switch (m.type) {
        case 'perf': {
          const r = await runNvmePerf({ driver: d, nsid: 1, workload: m.workload, ioBytes: m.ioBytes, queueDepth: m.queueDepth, seconds: m.seconds })
          port.postMessage({ type: 'perf', result: r, driver: { ...d.counters }, channel: { ...d.fabric.counters } })
          break
        }
        case 'pattern':
          port.postMessage({ type: 'pattern', result: await pattern(d, m) })
          break
        case 'probe':
          port.postMessage({ type: 'probe', result: probe(d) })
          break
        case 'read':
          // one register read: a request the test may leave unanswered
          port.postMessage({ type: 'read', value: d.bar.read(0x1c, 4) })
          break
        case 'shutdown':
          await d.shutdown()
          disconnectHostThread(d)
          port.postMessage({ type: 'closed', channel: { ...d.fabric.counters } })
          port.close()
          break
        default:
          throw new Error(`unknown message ${m.type}`)
      }
    } catch (e) {
      port.postMessage({ type: 'error', error: describeError(e) })
    }
  })
  port.postMessage({
    type: 'ready',
    namespaces: [...d.namespaces.values()],
    ioQueues: d.ioQueues,
    queueDepth: d.queueDepth,
    mode: d.mode,
  })
}
