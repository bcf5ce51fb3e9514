// Data buffers for the data path, as SPDK's iobuf: a small and a large pool of fixed-size
// buffers in IPU DRAM, shared by every thread, and a cache per thread in front of them.
//
// - A buffer is its address (a number): get and put create no JavaScript objects.
// - The shared pools are lock-free rings in the control region (Vyukov's bounded MPMC
//   queue: each cell carries a sequence number, producers and consumers claim positions
//   with compare-and-swap). Threads refill and flush their caches in batches.
// - Every buffer has an ownership bit (set while a user holds it), so a buffer put twice
//   is caught at once instead of being handed to two users later.
// - Exhaustion is a value: get answers 0 ("retry later") and, given an entry, queues it;
//   the entry's callback receives a buffer when one is put back on this thread, or when
//   poll() finds one in the shared pool. Callbacks follow the completion convention.
import { rangeError, typeError } from '@ipukit/kernels'
import { type Completion, defer } from './completion.js'
import type { IobufLayout, PhysicalMemory } from './physical-memory.js'
import { MemoryError } from './status.js'

/** What get() answers when no buffer is free: retry later (or wait with an entry). */
export const IOBUF_RETRY = 0

/**
 * A waiter for a buffer. Create one per outstanding request and reuse it; its callback
 * receives (entry, address) once a buffer is available.
 */
export class IobufEntry<T = unknown> {
  readonly cb: Completion<IobufEntry<T>>
  /** anything the owner wants to carry */
  data: T
  /** @internal */ next: IobufEntry<T> | null = null
  /** @internal */ waiting = false
  /** @internal */ pool = 0

  constructor(cb: (entry: IobufEntry<T>, address: number) => void, data: T) {
    if (typeof cb !== 'function') throw typeError('cb must be a function')
    this.cb = cb
    this.data = data
  }
}

// entries of any payload share one queue
type AnyEntry = IobufEntry<any>

const HEAD = 0 // word index of the ring's consumer position
const TAIL = 8 // producer position, 32 bytes on
const CELLS = 16 // words from the ring base to the cells (64 bytes)

/** One shared pool: its ring and ownership bitmap, seen through this thread's views. */
class SharedPool {
  readonly base: number
  readonly size: number
  readonly count: number
  readonly mask: number
  readonly #w: Int32Array
  readonly #ringWord: number
  readonly #ownedWord: number

  constructor(words: Int32Array, base: number, size: number, count: number, ringAt: number, cap: number, ownedAt: number) {
    this.base = base
    this.size = size
    this.count = count
    this.mask = cap - 1
    this.#w = words
    this.#ringWord = ringAt / 4
    this.#ownedWord = ownedAt / 4
  }

  /** Fresh rings: every buffer free, in order. Run once, by the memory's creator. */
  init(): void {
    const w = this.#w
    const r = this.#ringWord
    for (let i = 0; i <= this.mask; i++) w[r + CELLS + 2 * i] = i
    Atomics.store(w, r + HEAD, 0)
    Atomics.store(w, r + TAIL, 0)
    for (let i = 0; i < this.count; i++) if (!this.push(this.base + i * this.size)) throw new Error('pool ring too small')
    w.fill(0, this.#ownedWord, this.#ownedWord + Math.ceil(this.count / 32))
  }

  push(address: number): boolean {
    const w = this.#w
    const r = this.#ringWord
    let pos = Atomics.load(w, r + TAIL)
    for (;;) {
      const cell = r + CELLS + 2 * (pos & this.mask)
      const dif = (Atomics.load(w, cell) - pos) | 0
      if (dif === 0) {
        if (Atomics.compareExchange(w, r + TAIL, pos, (pos + 1) | 0) === pos) {
          w[cell + 1] = address
          Atomics.store(w, cell, (pos + 1) | 0)
          return true
        }
        pos = Atomics.load(w, r + TAIL)
      } else if (dif < 0) return false
      else pos = Atomics.load(w, r + TAIL)
    }
  }

  /** A free buffer's address, or 0. */
  pop(): number {
    const w = this.#w
    const r = this.#ringWord
    let pos = Atomics.load(w, r + HEAD)
    for (;;) {
      const cell = r + CELLS + 2 * (pos & this.mask)
      const dif = (Atomics.load(w, cell) - ((pos + 1) | 0)) | 0
      if (dif === 0) {
        if (Atomics.compareExchange(w, r + HEAD, pos, (pos + 1) | 0) === pos) {
          const address = w[cell + 1]! >>> 0
          Atomics.store(w, cell, (pos + this.mask + 1) | 0)
          return address
        }
        pos = Atomics.load(w, r + HEAD)
      } else if (dif < 0) return 0
      else pos = Atomics.load(w, r + HEAD)
    }
  }

  /** Marks a buffer as handed out; false if it already was (a pool corruption). */
  own(address: number): boolean {
    const i = (address - this.base) / this.size
    const bit = 1 << (i & 31)
    return (Atomics.or(this.#w, this.#ownedWord + (i >> 5), bit) & bit) === 0
  }

  /** Marks a buffer as returned; false if it was not handed out (a double put). */
  disown(address: number): boolean {
    const i = (address - this.base) / this.size
    const bit = 1 << (i & 31)
    return (Atomics.and(this.#w, this.#ownedWord + (i >> 5), ~bit) & bit) !== 0
  }

  /** Whether a buffer is handed out. */
  owned(address: number): boolean {
    const i = (address - this.base) / this.size
    return (Atomics.load(this.#w, this.#ownedWord + (i >> 5)) & (1 << (i & 31))) !== 0
  }

  /** Whether `address` is the start of one of this pool's buffers. */
  holds(address: number): boolean {
    const off = address - this.base
    return off >= 0 && off < this.count * this.size && off % this.size === 0
  }

  /** Free buffers in the shared ring (a snapshot). */
  get free(): number {
    return (Atomics.load(this.#w, this.#ringWord + TAIL) - Atomics.load(this.#w, this.#ringWord + HEAD)) | 0
  }
}

function pools(pm: PhysicalMemory): [SharedPool, SharedPool] {
  const io: IobufLayout = pm.layout.iobuf
  const words = new Int32Array(pm.memory.buffer)
  return [
    new SharedPool(words, io.smallBase, io.smallSize, io.smallCount, io.smallRing, io.smallRingCap, io.smallOwned),
    new SharedPool(words, io.largeBase, io.largeSize, io.largeCount, io.largeRing, io.largeRingCap, io.largeOwned),
  ]
}

/** Fills the shared pools of a fresh memory (createPhysicalMemory calls it). */
export function initIobuf(pm: PhysicalMemory): void {
  for (const p of pools(pm)) p.init()
}

export interface IobufStats {
  /** get() answered from this thread's cache */
  cacheHits: number
  /** the cache was refilled from the shared pool */
  refills: number
  /** get() found nothing (and returned IOBUF_RETRY) */
  retries: number
  /** waiters served */
  resumed: number
}

/**
 * One thread's window on the pools (SPDK's spdk_iobuf_channel): a cache of free buffers of
 * each size, and the queue of requests waiting for one.
 */
export class IobufChannel {
  readonly physical: PhysicalMemory
  readonly smallSize: number
  readonly largeSize: number
  readonly stats: IobufStats = { cacheHits: 0, refills: 0, retries: 0, resumed: 0 }
  readonly #pools: [SharedPool, SharedPool]
  readonly #cache: [Uint32Array, Uint32Array]
  readonly #cached = [0, 0]
  readonly #limit: [number, number]
  readonly #waitHead: [AnyEntry | null, AnyEntry | null] = [null, null]
  readonly #waitTail: [AnyEntry | null, AnyEntry | null] = [null, null]
  #closed = false

  constructor(physical: PhysicalMemory) {
    this.physical = physical
    const io = physical.layout.iobuf
    this.smallSize = io.smallSize
    this.largeSize = io.largeSize
    this.#pools = pools(physical)
    this.#limit = [io.smallCache, io.largeCache]
    // room for a full cache plus one batch coming back before it is flushed
    this.#cache = [new Uint32Array(2 * io.smallCache + 1), new Uint32Array(2 * io.largeCache + 1)]
  }

  /** Which pool serves `length` bytes: 0 small, 1 large. */
  #which(length: number): 0 | 1 {
    if (length <= this.smallSize) return 0
    if (length <= this.largeSize) return 1
    throw rangeError(`length ${length} exceeds the large buffer size (${this.largeSize})`)
  }

  /**
   * A buffer of at least `length` bytes (its address), or IOBUF_RETRY (0) when none is
   * free. With an `entry`, a retry also queues it: its callback gets a buffer later.
   */
  get(length: number, entry?: AnyEntry): number {
    if (this.#closed) throw new MemoryError('MEMORY_CLOSED', 'this iobuf channel was closed')
    const p = this.#which(length)
    // waiters go first: a get may not overtake them
    let a = this.#waitHead[p] === null ? this.#take(p) : 0
    if (a !== 0) {
      if (!this.#pools[p].own(a)) throw new MemoryError('MEMORY_DOUBLE_PUT', `buffer ${a} was in the free pool while handed out`)
      return a
    }
    this.stats.retries++
    if (entry !== undefined) this.#enqueue(p, entry)
    return IOBUF_RETRY
  }

  #take(p: 0 | 1): number {
    const cache = this.#cache[p]
    let n = this.#cached[p]!
    if (n === 0) {
      // refill half a cache in one go (at least one buffer)
      const want = Math.max(1, this.#limit[p] >> 1)
      const pool = this.#pools[p]
      while (n < want) {
        const a = pool.pop()
        if (a === 0) break
        cache[n++] = a
      }
      this.stats.refills++
      if (n === 0) return 0
    } else this.stats.cacheHits++
    n--
    this.#cached[p] = n
    return cache[n]!
  }

  /** Returns a buffer. A waiter on this thread receives it directly. */
  put(address: number): void {
    if (this.#closed) throw new MemoryError('MEMORY_CLOSED', 'this iobuf channel was closed')
    const which = this.#pools[0].holds(address) ? 0 : this.#pools[1].holds(address) ? 1 : -1
    if (which === -1) throw rangeError(`${address} is not an iobuf buffer`)
    const p = which as 0 | 1
    const waiter = this.#waitHead[p]
    if (waiter !== null) {
      // ownership passes straight to the waiter (a buffer not handed out is still refused)
      if (!this.#pools[p].owned(address)) throw new MemoryError('MEMORY_DOUBLE_PUT', `buffer ${address} was put back twice`)
      this.#dequeue(p)
      this.stats.resumed++
      defer(waiter.cb, waiter, address)
      return
    }
    if (!this.#pools[p].disown(address)) throw new MemoryError('MEMORY_DOUBLE_PUT', `buffer ${address} was put back twice`)
    const cache = this.#cache[p]
    let n = this.#cached[p]!
    cache[n++] = address
    if (n > this.#limit[p]) {
      // flush down to half a cache
      const pool = this.#pools[p]
      const keep = this.#limit[p] >> 1
      while (n > keep) pool.push(cache[--n]!)
    }
    this.#cached[p] = n
  }

  /**
   * Serves waiting entries from the shared pools (buffers other threads returned). Call
   * it from the thread's poller; returns how many entries got a buffer.
   */
  poll(): number {
    let served = 0
    for (const p of [0, 1] as const) {
      while (this.#waitHead[p] !== null) {
        const a = this.#take(p)
        if (a === 0) break
        if (!this.#pools[p].own(a)) throw new MemoryError('MEMORY_DOUBLE_PUT', `buffer ${a} was in the free pool while handed out`)
        const e = this.#dequeue(p)!
        this.stats.resumed++
        served++
        defer(e.cb, e, a)
      }
    }
    return served
  }

  /** Takes a waiting entry out of the queue (for a request that is aborted). */
  abort(entry: AnyEntry): boolean {
    const e = entry
    if (!e.waiting) return false
    const p = e.pool as 0 | 1
    let prev: AnyEntry | null = null
    for (let cur = this.#waitHead[p]; cur !== null; prev = cur, cur = cur.next) {
      if (cur === e) {
        if (prev === null) this.#waitHead[p] = e.next
        else prev.next = e.next
        if (this.#waitTail[p] === e) this.#waitTail[p] = prev
        e.next = null
        e.waiting = false
        return true
      }
    }
    return false
  }

  #enqueue(p: 0 | 1, e: AnyEntry): void {
    if (e.waiting) throw rangeError('this entry is already waiting for a buffer')
    e.waiting = true
    e.pool = p
    e.next = null
    if (this.#waitTail[p] === null) this.#waitHead[p] = e
    else this.#waitTail[p]!.next = e
    this.#waitTail[p] = e
  }

  #dequeue(p: 0 | 1): AnyEntry | null {
    const e = this.#waitHead[p]
    if (e === null) return null
    this.#waitHead[p] = e.next
    if (this.#waitHead[p] === null) this.#waitTail[p] = null
    e.next = null
    e.waiting = false
    return e
  }

  /** Entries waiting for a small (0) or large (1) buffer. */
  waiting(pool: 0 | 1): number {
    let n = 0
    for (let e = this.#waitHead[pool]; e !== null; e = e.next) n++
    return n
  }

  /** Buffers in this thread's cache, small and large. */
  get cached(): [number, number] {
    return [this.#cached[0]!, this.#cached[1]!]
  }

  /** Free buffers in the shared pools (not counting any thread's cache). */
  get sharedFree(): [number, number] {
    return [this.#pools[0].free, this.#pools[1].free]
  }

  /** Returns the cached buffers to the shared pools. Waiting entries must be aborted first. */
  close(): void {
    if (this.#closed) return
    if (this.#waitHead[0] !== null || this.#waitHead[1] !== null) throw rangeError('entries are still waiting: abort them first')
    for (const p of [0, 1] as const) {
      const cache = this.#cache[p]
      for (let n = this.#cached[p]!; n > 0; ) this.#pools[p].push(cache[--n]!)
      this.#cached[p] = 0
    }
    this.#closed = true
  }
}

