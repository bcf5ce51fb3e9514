// Worker for test/threads.test.ts: attaches to the shared memory it is given and runs
// kernels on the regions it is told to, as fast as it can, then reports what it got.
// It loads the built package (dist/), as a real worker would.
import { parentPort, workerData } from 'node:worker_threads'
import { createKernelsSync } from '../../dist/index.js'

const { memory, jobs, key, go } = workerData
const k = createKernelsSync({ memory })
const xts = k.createXts(new Uint8Array(key))
// wait until every worker is attached, then start together
const flag = new Int32Array(go)
Atomics.add(flag, 1, 1)
Atomics.wait(flag, 0, 0)
const results = []
for (let round = 0; round < 60; round++) {
  for (const j of jobs) {
    if (j.kind === 'crc32c') results.push(k.crc32cAt(j.address, j.length))
    else if (j.kind === 'crc16') results.push(k.crc16T10DifAt(j.address, j.length))
    else if (j.kind === 'crc64') results.push(k.crc64NvmeAt(j.address, j.length).toString(16))
    else if (round === 0) {
      // encrypt once in place (a second round would encrypt the ciphertext)
      xts.encryptAt(j.address, j.address, j.length, 4096, j.unit)
      results.push('xts')
    }
  }
}
xts.destroy()
k.close()
parentPort.postMessage({ slot: k.slot, results })
