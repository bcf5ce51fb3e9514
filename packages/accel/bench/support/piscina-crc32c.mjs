// The dispatch peer: piscina as it is usually used, one task per operation. The task runs
// CRC-32C on bytes already in the shared memory (no copy), so what is measured is the cost
// of a task's round trip.
import { workerData } from 'node:worker_threads'
import { createKernelsSync } from '@ipukit/kernels'

const k = createKernelsSync({ memory: workerData.memory })
export default function crc32c({ address, length }) {
  return k.crc32cAt(address, length)
}
