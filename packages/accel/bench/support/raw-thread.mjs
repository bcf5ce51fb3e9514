// A bare kernel loop on a thread of its own, no framework: the machine's ceiling for the
// `workers` module. It runs the kernel over its own working set (count buffers of size
// bytes, as accel-perf's queue slots) for the time it is asked, and answers bytes per second.
import { parentPort, workerData } from 'node:worker_threads'
import { createKernelsSync } from '@ipukit/kernels'

const { memory, base, size, count, key } = workerData
const k = createKernelsSync({ memory })
const xts = k.createXts(key)
parentPort.on('message', ({ kind, ms }) => {
  let bytes = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    for (let j = 0; j < count; j++) {
      const a = base + j * size
      if (kind === 'crc32c') k.crc32cAt(a, size)
      else xts.encryptAt(a, a, size, 4096, 0)
      bytes += size
    }
  }
  parentPort.postMessage(bytes / ((performance.now() - t0) / 1000))
})
