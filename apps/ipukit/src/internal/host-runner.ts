// Runs the host job where the host runs: on its own thread (the default: a worker with the
// NVMe host driver, connected to the IPU's NVMe function through serveHostThread, so the
// host's CPU time is not the IPU's) or on this thread (an in-process NvmeHostDriver, for
// tests and for comparison).
import { Worker } from 'node:worker_threads'
import type { Iommu } from '@ipukit/memory'
import { NvmeHostDriver, serveHostThread } from '@ipukit/nvme'
import type { PciFabric, PciFunction } from '@ipukit/pcie'
import { type HostJob, type HostJobControl, type HostJobResult, runHostJob } from './host-job.js'
import type { HostWorkerData, HostWorkerMessage } from './host-worker.js'

export interface HostRunner {
  fabric: PciFabric
  fn: PciFunction
  iommu: Iommu
  /** the driver on its own thread (true) or on this one */
  thread: boolean
  /** how the host driver learns of completions; default 'interrupt' (MSI-X) */
  mode?: 'interrupt' | 'poll'
}

export interface HostRunResult {
  result: HostJobResult
  /** the host thread's live heap growth from the warm write phase to the end (null: in-process, it is in the caller's) */
  hostHeapGrowth: number | null
}

const WORKER = new URL('./host-worker.js', import.meta.url)

export async function runHostJobIn(r: HostRunner, job: HostJob, ctl: HostJobControl, signal?: AbortSignal): Promise<HostRunResult> {
  const mode = r.mode ?? 'interrupt'
  if (!r.thread) {
    const d = new NvmeHostDriver({ fabric: r.fabric, fn: r.fn, iommu: r.iommu, mode, ioQueues: 1, queueDepth: Math.max(64, 2 * job.queueDepth) })
    const onAbort = () => {
      ctl.stopped = true
    }
    signal?.addEventListener('abort', onAbort)
    try {
      await d.init()
      if (signal?.aborted) ctl.stopped = true
      return { result: await runHostJob(d, job, ctl), hostHeapGrowth: null }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      await d.shutdown().catch(() => {})
    }
  }
  // host DRAM for the thread's driver: the queues, PRP list pages and one buffer per slot
  const hostBytes = 4 * 1024 * 1024 + job.queueDepth * (job.ioBytes + 8192)
  const server = serveHostThread({ fabric: r.fabric, fn: r.fn, iommu: r.iommu, hostBytes })
  const data: HostWorkerData = { description: server.description, job, mode, queueDepth: job.queueDepth }
  // execArgv []: the worker must not inherit a test runner's loaders; it runs the built module
  const w = new Worker(WORKER, { workerData: data, execArgv: [] })
  const onAbort = () => w.postMessage({ type: 'stop' })
  signal?.addEventListener('abort', onAbort)
  try {
    return await new Promise<HostRunResult>((resolve, reject) => {
      let result: HostRunResult | null = null
      let failure: Error | null = null
      w.on('message', (m: HostWorkerMessage) => {
        switch (m.type) {
          case 'ready':
            if (signal?.aborted) onAbort()
            break
          case 'progress':
            ctl.progress?.(m.phase, m.bytes)
            break
          case 'steady':
            ctl.steady?.()
            break
          case 'between':
            Promise.resolve(ctl.between?.()).then(
              () => w.postMessage({ type: 'go' }),
              () => w.postMessage({ type: 'stop' }),
            )
            break
          case 'result':
            result = { result: m.result, hostHeapGrowth: m.heapGrowth }
            break
          case 'error':
            failure = Object.assign(new Error(`the host: ${m.message}`), m.code !== undefined ? { code: m.code } : {})
            break
        }
      })
      w.on('error', (e) => {
        failure ??= new Error(`the host thread failed: ${e.message}`)
      })
      w.on('exit', (code) => {
        if (result !== null) resolve(result)
        else reject(failure ?? new Error(`the host thread exited (code ${code}) without a result`))
      })
    })
  } finally {
    signal?.removeEventListener('abort', onAbort)
    await w.terminate()
    server.close()
  }
}

