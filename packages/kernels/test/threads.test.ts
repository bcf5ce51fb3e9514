// Two worker threads run the kernels on one shared memory at the same time, each on its own
// instance and scratch slot; their results must equal one thread's. The workers load the
// built package (dist/), so this runs after `pnpm build`, as turbo orders it.
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { createKernelMemory, createKernelsSync } from '../src/index.js'

const workerUrl = new URL('./support/thread-worker.mjs', import.meta.url)

describe('worker threads on one shared memory', () => {
  it('compute what one thread computes, concurrently', async () => {
    expect(existsSync(new URL('../dist/index.js', import.meta.url)), 'build the package first (pnpm build)').toBe(true)
    const memory = createKernelMemory({ extraBytes: 24 << 20, scratchSlots: 3, keySlots: 3 })
    const main = createKernelsSync({ memory })
    const base = main.layout.end
    const bytes = new Uint8Array(memory.buffer)
    const size = 1 << 20
    // four 1 MiB regions per worker, plus one region each for XTS
    bytes.set(new Uint8Array(randomBytes(10 * size)), base)
    type Job = { kind: 'crc32c' | 'crc16' | 'crc64' | 'xts'; address: number; length: number; unit?: number }
    const jobsFor = (w: number): Job[] => [
      { kind: 'crc32c', address: base + (w * 4 + 0) * size, length: size - w * 7 },
      { kind: 'crc16', address: base + (w * 4 + 1) * size, length: size - 333 },
      { kind: 'crc64', address: base + (w * 4 + 2) * size, length: size },
      { kind: 'crc32c', address: base + (w * 4 + 3) * size + 5, length: 70_000 },
      { kind: 'xts', address: base + (8 + w) * size, length: size, unit: 1000 * w },
    ]
    const key = new Uint8Array(randomBytes(64))
    // what one thread gets, computed before the workers touch anything
    const expected = [0, 1].map((w) => {
      const out: (number | string)[] = []
      for (let round = 0; round < 60; round++) {
        for (const j of jobsFor(w)) {
          if (j.kind === 'crc32c') out.push(main.crc32cAt(j.address, j.length))
          else if (j.kind === 'crc16') out.push(main.crc16T10DifAt(j.address, j.length))
          else if (j.kind === 'crc64') out.push(main.crc64NvmeAt(j.address, j.length).toString(16))
          else if (round === 0) out.push('xts')
        }
      }
      return out
    })
    const xtsRegion = (w: number) => bytes.slice(base + (8 + w) * size, base + (9 + w) * size)
    const plain = [xtsRegion(0), xtsRegion(1)]
    const go = new SharedArrayBuffer(8)
    const flag = new Int32Array(go)
    const workers = [0, 1].map((w) => new Worker(workerUrl, { workerData: { memory, jobs: jobsFor(w), key, go } }))
    const done = workers.map(
      (worker) =>
        new Promise<{ slot: number; results: (number | string)[] }>((resolve, reject) => {
          worker.once('message', resolve)
          worker.once('error', reject)
        }),
    )
    while (Atomics.load(flag, 1) < 2) await new Promise((r) => setTimeout(r, 5))
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
    const got = await Promise.all(done)
    await Promise.all(workers.map((w) => w.terminate()))
    expect(new Set([main.slot, got[0]!.slot, got[1]!.slot]).size).toBe(3)
    expect(got[0]!.results).toEqual(expected[0])
    expect(got[1]!.results).toEqual(expected[1])
    // the workers' in-place encryption equals this thread's
    const x = main.createXts(key)
    for (const w of [0, 1]) {
      const want = x.encrypt(plain[w]!, new Uint8Array(size), 4096, 1000 * w)
      expect(Buffer.from(xtsRegion(w)).equals(want), `worker ${w} xts`).toBe(true)
    }
    x.destroy()
    // the workers closed their instances and destroyed their keys: slots are free again
    const again = [createKernelsSync({ memory }), createKernelsSync({ memory })]
    expect(again.map((k) => k.slot).sort()).toEqual([got[0]!.slot, got[1]!.slot].sort())
  })
})
