// The host thread of `ipukit run`: a worker that connects an NvmeHostDriver to the IPU's NVMe
// function over the host thread channel (connectHostThread) and runs the host job on it.
//
// Messages, parent → worker: { type: 'stop' } (finish what is in flight, submit no more).
// Worker → parent: 'ready' (the driver is up), 'progress' (at most every 100 ms), 'steady'
// (the write phase is warm: the parent samples its heap), 'result', or 'error'. Then the
// worker shuts the controller down (CC.SHN), disconnects and ends.
import { parentPort, workerData } from 'node:worker_threads'
import { connectHostThread, disconnectHostThread, type HostThreadDescription, type NvmeHostDriver } from '@ipukit/nvme'
import { liveHeap } from './heap.js'
import { type HostJob, type HostJobControl, runHostJob } from './host-job.js'

export interface HostWorkerData {
  description: HostThreadDescription
  job: HostJob
  mode: 'interrupt' | 'poll'
  queueDepth: number
}

export type HostWorkerMessage =
  | { type: 'ready' }
  | { type: 'progress'; phase: 'write' | 'read'; bytes: number }
  | { type: 'steady' }
  | { type: 'between' }
  | { type: 'result'; result: Awaited<ReturnType<typeof runHostJob>>; heapGrowth: number }
  | { type: 'error'; message: string; code?: string }

const port = parentPort!
const data = workerData as HostWorkerData
const post = (m: HostWorkerMessage) => port.postMessage(m)
const ctl: HostJobControl = {}
let resume: (() => void) | null = null
port.on('message', (m: { type: string }) => {
  if (m.type === 'stop') ctl.stopped = true
  if (m.type === 'stop' || m.type === 'go') {
    resume?.()
    resume = null
  }
})

let driver: NvmeHostDriver | undefined
try {
  driver = await connectHostThread(data.description, { mode: data.mode, ioQueues: 1, queueDepth: Math.max(64, 2 * data.queueDepth) })
  post({ type: 'ready' })
  let steadyHeap = 0
  ctl.progress = (phase, bytes) => post({ type: 'progress', phase, bytes })
  ctl.steady = () => {
    steadyHeap = liveHeap()
    post({ type: 'steady' })
  }
  ctl.between = () =>
    new Promise<void>((res) => {
      resume = res
      post({ type: 'between' })
    })
  const result = await runHostJob(driver, data.job, ctl)
  post({ type: 'result', result, heapGrowth: steadyHeap > 0 ? liveHeap() - steadyHeap : 0 })
} catch (e) {
  post({ type: 'error', message: (e as Error)?.message ?? String(e), ...((e as { code?: string })?.code !== undefined && { code: (e as { code: string }).code }) })
} finally {
  if (driver !== undefined) {
    try {
      await driver.shutdown()
    } catch {
      // the controller may already be gone (the run failed there): disconnecting is what matters
    }
    disconnectHostThread(driver)
  }
  port.close()
}
