// Buffer pools: exhaustion is a value, waiters resume when buffers come back, no buffer is
// ever handed out twice (also with two worker threads on the shared memory), and error
// paths give buffers back.
import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import {
  AccelMemoryDomain,
  createPhysicalMemory,
  drainCompletions,
  IOBUF_RETRY,
  IobufChannel,
  IobufEntry,
  IoVecList,
  MemoryError,
  Status,
} from '../src/index.js'

const small = (count: number, cache = 4) =>
  createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 2 << 20, iobuf: { smallSize: 4096, smallCount: count, largeSize: 65536, largeCount: 4, smallCache: cache, largeCache: 2 } })

describe('iobuf', () => {
  it('hands out distinct buffers of the right pool until empty, then answers RETRY without throwing', () => {
    const pm = small(10)
    const ch = new IobufChannel(pm)
    const got = new Set<number>()
    for (let i = 0; i < 10; i++) {
      const a = ch.get(100)
      expect(a).not.toBe(IOBUF_RETRY)
      expect(a % 4096).toBe(0)
      got.add(a)
    }
    expect(got.size).toBe(10)
    expect(ch.get(4096)).toBe(IOBUF_RETRY)
    expect(ch.stats.retries).toBe(1)
    const big = ch.get(4097)
    expect(big).toBeGreaterThanOrEqual(pm.layout.iobuf.largeBase)
    expect(() => ch.get(65537)).toThrow(RangeError)
    for (const a of got) ch.put(a)
    ch.put(big)
    expect(ch.get(1)).not.toBe(IOBUF_RETRY)
  })

  it('refuses a buffer put twice, and addresses that are not buffers', () => {
    const pm = small(4)
    const ch = new IobufChannel(pm)
    const a = ch.get(10)
    ch.put(a)
    let err: unknown
    try {
      ch.put(a)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(MemoryError)
    expect((err as MemoryError).code).toBe('MEMORY_DOUBLE_PUT')
    expect(() => ch.put(a + 1)).toThrow(/not an iobuf buffer/)
  })

  it('queues waiters in order and resumes them, asynchronously, as buffers come back', async () => {
    const pm = small(2, 0)
    const ch = new IobufChannel(pm)
    const a = ch.get(1)
    const b = ch.get(1)
    const served: [string, number][] = []
    const mk = (name: string) => new IobufEntry((e: IobufEntry<string>, addr: number) => served.push([e.data, addr]), name)
    const w1 = mk('w1')
    const w2 = mk('w2')
    const w3 = mk('w3')
    expect(ch.get(1, w1)).toBe(IOBUF_RETRY)
    expect(ch.get(1, w2)).toBe(IOBUF_RETRY)
    expect(ch.get(1, w3)).toBe(IOBUF_RETRY)
    expect(ch.waiting(0)).toBe(3)
    expect(() => ch.get(1, w1)).toThrow(/already waiting/)
    expect(ch.abort(w2)).toBe(true)
    ch.put(a)
    expect(served).toEqual([]) // never inside put()
    await Promise.resolve()
    expect(served).toEqual([['w1', a]])
    ch.put(b)
    drainCompletions()
    expect(served).toEqual([
      ['w1', a],
      ['w3', b],
    ])
    expect(ch.waiting(0)).toBe(0)
    // the waiters own their buffers now: putting them back works once
    ch.put(a)
    ch.put(b)
    expect(() => ch.put(b)).toThrow(MemoryError)
  })

  it('serves waiters from buffers another thread returned (poll)', async () => {
    const pm = small(2, 0)
    const mine = new IobufChannel(pm)
    const theirs = new IobufChannel(pm)
    const a = theirs.get(1)
    const b = theirs.get(1)
    let got = 0
    const e = new IobufEntry((_e, addr: number) => (got = addr), null)
    expect(mine.get(1, e)).toBe(IOBUF_RETRY)
    theirs.put(a)
    await Promise.resolve()
    expect(got).toBe(0) // a waiter on another channel is not woken by this put
    expect(mine.poll()).toBe(1)
    await Promise.resolve()
    expect(got).toBe(a)
    theirs.put(b)
    mine.put(a)
  })

  it('gives buffers back on error paths: a failed accel translation keeps nothing', () => {
    const pm = small(2, 0)
    const ch = new IobufChannel(pm)
    const accel = new AccelMemoryDomain(pm, ch, { buffers: 8 })
    const x = accel.allocBuffer(1000)
    const y = accel.allocBuffer(1000)
    const z = accel.allocBuffer(1000)
    const out = new IoVecList(4)
    // two buffers in the pool, three to back: the third fails and the first two go back
    expect(accel.translate(IoVecList.of([x, 1000], [y, 1000], [z, 1000]), out)).toBe(Status.NoMemory)
    expect(out.count).toBe(0)
    expect(accel.isBacked(x) || accel.isBacked(y)).toBe(false)
    expect(ch.sharedFree[0] + ch.cached[0]).toBe(2)
    // an iovec outside a live buffer is refused the same way
    expect(accel.translate(IoVecList.of([x, 10], [z + 2000, 1]), out)).toBe(Status.Invalid)
    expect(accel.isBacked(x)).toBe(false)
    // and a partly backed request keeps what was backed before it
    expect(accel.translate(IoVecList.of([x, 10]), out)).toBe(Status.Ok)
    out.clear()
    expect(accel.translate(IoVecList.of([x, 10], [y, 10], [z, 10]), out)).toBe(Status.NoMemory)
    expect(accel.isBacked(x)).toBe(true)
    expect(accel.isBacked(y)).toBe(false)
  })
})

describe('two worker threads on one pool', () => {
  it('never hand out one buffer twice', async () => {
    expect(existsSync(new URL('../dist/index.js', import.meta.url)), 'build the package first').toBe(true)
    const pm = small(64, 8)
    // an ownership map independent of the pool's own: one i32 per buffer, claimed by CAS
    const claims = new Int32Array(new SharedArrayBuffer(4 * 64))
    const errors = new Int32Array(new SharedArrayBuffer(8))
    const run = (id: number) =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(new URL('./support/iobuf-worker.mjs', import.meta.url), {
          workerData: { memory: pm.describe(), claims, errors, id, rounds: 20000 },
          // plain Node resolution (dist/), not the test runner's source condition
          execArgv: [],
        })
        w.once('message', resolve)
        w.once('error', reject)
      })
    const [a, b] = await Promise.all([run(1), run(2)])
    expect(errors[0]).toBe(0) // a buffer found already claimed
    expect(errors[1]).toBe(0) // the pool refused a legitimate put
    expect(a + b).toBeGreaterThan(1000) // buffers did go back and forth
    const ch = new IobufChannel(pm)
    const all = new Set<number>()
    for (let x = ch.get(1); x !== IOBUF_RETRY; x = ch.get(1)) all.add(x)
    expect(all.size).toBe(64) // every buffer came back
  })
})
