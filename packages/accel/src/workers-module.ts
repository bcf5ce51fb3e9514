// The `workers` module: WASM kernels on worker threads (a piscina pool). The data never
// moves: every buffer and descriptor is in the shared memory, and so are the queues. Each
// worker serves a ring (./internal/ring.ts) of (descriptor, token) entries:
//
//   submit     the operations of one turn of the event loop are queued, then written into
//              the rings (each to the worker with the fewest bytes outstanding), and a
//              worker is woken (one futex notify) only if it sleeps
//   complete   workers post tokens into their completion queues and ring one shared bell;
//              this thread waits on it with Atomics.waitAsync and reaps every queue per
//              wake, so a wake carries as many completions as have piled up
//
// Piscina owns the threads (start, replacement of one that dies, termination): each runs
// one long task, the serving loop, for its whole life. Work too small to be worth a thread
// hop (a couple of operations of a few KiB with nothing in flight) runs inline here.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { releaseScratchSlotOf } from '@ipukit/kernels'
import { Piscina } from 'piscina'
import type { Accel } from './accel.js'
import { D } from './descriptor.js'
import { BELL_BYTES, cqWord, RING, ringBytes } from './internal/ring.js'
import type { AccelCipher } from './keys.js'
import type { AccelModule, TaskDone } from './module.js'
import { AccelStatus } from './opcodes.js'
import type { SoftwareModule } from './software-module.js'
import { TaskList } from './internal/task-list.js'
import type { AccelTask } from './task.js'
import type { ServeTask } from './worker.js'

export interface WorkersOptions {
  /** worker threads; default 2 */
  threads?: number
  /** run inline when nothing is in flight and a turn brings at most this many operations... */
  inlineOps?: number
  /** ...of at most this many bytes in all; defaults 2 and 16 KiB (0 disables inline work) */
  inlineBytes?: number
  /** operations outstanding per worker at most (a power of two); default 1024 */
  ringCapacity?: number
  /** polls of an empty queue before a worker sleeps; default 2000 (a few microseconds) */
  spin?: number
  /** a worker posts its completions after this many bytes of work or operations; defaults 1 MiB and 32 */
  publishBytes?: number
  publishOps?: number
}

/** Words of the slot record: a count, then one kernels scratch slot per worker started. */
const SLOT_RECORDS = 64

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }
const waitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number) => WaitAsyncResult }).waitAsync

/** The worker script: dist/worker.js (this file's sibling once built). */
function workerFile(): string {
  const here = new URL('./worker.js', import.meta.url)
  if (existsSync(fileURLToPath(here))) return fileURLToPath(here)
  // running from the TypeScript sources (tests): use the built worker
  return fileURLToPath(new URL('../dist/worker.js', import.meta.url))
}

export interface WorkersCounters {
  /** turns whose operations went into the rings */
  submissions: number
  /** operations that went to a worker */
  batchedOps: number
  /** operations run in this thread */
  inlineOps: number
  /** futex wakes of sleeping workers */
  workerWakes: number
  /** wakes of this thread by the bell (each reaps every completion queue) */
  completionWakes: number
  /** operations failed because their worker died */
  lostOps: number
}

export class WorkersModule implements AccelModule {
  readonly name = 'workers'
  readonly priority = 10
  readonly usesDescriptors = true
  readonly threads: number
  readonly counters: WorkersCounters = { submissions: 0, batchedOps: 0, inlineOps: 0, workerWakes: 0, completionWakes: 0, lostOps: 0 }
  readonly #inlineOps: number
  readonly #inlineBytes: number
  readonly #cap: number
  readonly #spin: number
  readonly #publishBytes: number
  readonly #publishOps: number
  #pool: Piscina<ServeTask, number> | undefined
  #memory: WebAssembly.Memory | undefined
  #i32 = new Int32Array(0)
  #u32 = new Uint32Array(0)
  #slots = 0
  #software: SoftwareModule | undefined
  #done: TaskDone | undefined
  /** per worker: ring address, local copies of its indices, outstanding work */
  #rings: number[] = []
  #sqTail = new Int32Array(0)
  #cqHead = new Int32Array(0)
  #outOps = new Int32Array(0)
  #outBytes = new Float64Array(0)
  #touched = new Uint8Array(0)
  #serving: Promise<void>[] = []
  /** in-flight tasks by token, and the free tokens */
  #byToken: (AccelTask | null)[] = []
  #freeTokens = new Int32Array(0)
  #nFree = 0
  #bell = 0
  #seen = 0
  #armed = false
  #closing = false
  readonly #queue = new TaskList()
  #queuedBytes = 0
  #scheduled = false
  #inflight = 0
  readonly #flush = (): void => this.#doFlush()
  readonly #onBell = (): void => this.#bellRang()

  constructor(options: WorkersOptions = {}) {
    this.threads = options.threads ?? 2
    this.#inlineOps = options.inlineOps ?? 2
    this.#inlineBytes = options.inlineBytes ?? 16384
    this.#cap = options.ringCapacity ?? 1024
    this.#spin = options.spin ?? 2000
    this.#publishBytes = options.publishBytes ?? 1024 * 1024
    this.#publishOps = options.publishOps ?? 32
    for (const [k, v, lo, hi] of [
      ['threads', this.threads, 1, 64],
      ['inlineOps', this.#inlineOps, 0, 4096],
      ['inlineBytes', this.#inlineBytes, 0, 2 ** 30],
      ['ringCapacity', this.#cap, 2, 1 << 16],
      ['spin', this.#spin, 0, 1 << 30],
      ['publishBytes', this.#publishBytes, 1, 2 ** 31],
      ['publishOps', this.#publishOps, 1, 1 << 16],
    ] as const) {
      if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`workers.${k} must be an integer in [${lo}, ${hi}], got ${v}`)
    }
    if ((this.#cap & (this.#cap - 1)) !== 0) throw new RangeError(`workers.ringCapacity must be a power of two, got ${this.#cap}`)
  }

  async init(accel: Accel): Promise<void> {
    if (waitAsync === undefined) throw new Error('the workers module needs Atomics.waitAsync (Node 16 or later)')
    const pm = accel.physical
    this.#memory = pm.memory
    this.#i32 = new Int32Array(pm.memory.buffer)
    this.#u32 = new Uint32Array(pm.memory.buffer)
    this.#software = accel.module('software') as SoftwareModule
    const n = this.threads
    const per = ringBytes(this.#cap)
    const base = accel.allocShared(BELL_BYTES + n * per)
    new Uint8Array(pm.memory.buffer, base, BELL_BYTES + n * per).fill(0)
    this.#bell = base
    this.#rings = Array.from({ length: n }, (_, i) => base + BELL_BYTES + i * per)
    this.#sqTail = new Int32Array(n)
    this.#cqHead = new Int32Array(n)
    this.#outOps = new Int32Array(n)
    this.#outBytes = new Float64Array(n)
    this.#touched = new Uint8Array(n)
    this.#byToken = new Array<AccelTask | null>(n * this.#cap).fill(null)
    this.#freeTokens = new Int32Array(n * this.#cap)
    for (let i = 0; i < n * this.#cap; i++) this.#freeTokens[i] = n * this.#cap - 1 - i
    this.#nFree = n * this.#cap
    // each worker notes its kernels scratch slot here, so fini() can release the slots of
    // threads that were terminated
    this.#slots = accel.allocShared(4 * SLOT_RECORDS)
    new Int32Array(pm.memory.buffer, this.#slots, SLOT_RECORDS).fill(0)
    this.#pool = new Piscina<ServeTask, number>({
      filename: workerFile(),
      minThreads: n,
      maxThreads: n,
      idleTimeout: 2 ** 31 - 1,
      workerData: { description: pm.describe(), slots: this.#slots, records: SLOT_RECORDS },
      // no loader flags of the parent (a test runner's) in the workers: they run plain dist/
      execArgv: [],
    })
    for (let i = 0; i < n; i++) this.#serving.push(this.#serve(i))
  }

  /** Starts worker i's serving loop; if the thread dies, fails its operations and starts another. */
  #serve(i: number): Promise<void> {
    const task: ServeTask = { ring: this.#rings[i]!, capacity: this.#cap, bell: this.#bell, spin: this.#spin, publishBytes: this.#publishBytes, publishOps: this.#publishOps }
    return this.#pool!.run(task).then(
      () => {},
      () => {
        if (this.#closing) return
        this.#lost(i)
        this.#serving[i] = this.#serve(i)
      },
    )
  }

  /** Worker i died: its completed operations complete, the rest fail; its ring starts over. */
  #lost(i: number): void {
    this.#reap(i)
    const r = this.#rings[i]! >>> 2
    const mask = this.#cap - 1
    const done = this.#done!
    for (let k = this.#cqHead[i]!; k !== this.#sqTail[i]!; k = (k + 1) | 0) {
      const token = this.#u32[r + RING.sq + 2 * (k & mask) + 1]!
      const t = this.#take(i, token)
      this.counters.lostOps++
      done(t, AccelStatus.Io)
    }
    new Int32Array(this.#memory!.buffer, this.#rings[i]!, ringBytes(this.#cap) / 4).fill(0, 0, RING.sq)
    this.#sqTail[i] = 0
    this.#cqHead[i] = 0
  }

  async fini(): Promise<void> {
    if (this.#pool === undefined) return
    this.#closing = true
    for (const ring of this.#rings) {
      const r = ring >>> 2
      Atomics.store(this.#i32, r + RING.shutdown, 1)
      Atomics.notify(this.#i32, r + RING.sqTail)
    }
    await Promise.all(this.#serving)
    await this.#pool.destroy()
    this.#pool = undefined
    const rec = new Int32Array(this.#memory!.buffer, this.#slots, SLOT_RECORDS)
    const n = Math.min(Atomics.load(rec, 0), SLOT_RECORDS - 1)
    for (let i = 1; i <= n; i++) releaseScratchSlotOf(this.#memory!, rec[i]!)
  }

  supportsOpcode(): boolean {
    return true
  }

  canAccess(): boolean {
    return false
  }

  supportsCipher(cipher: AccelCipher, keyBits: number): boolean {
    return cipher === 'AES_XTS' && (keyBits === 128 || keyBits === 256)
  }

  /** Operations handed to workers and not yet reaped. */
  get inflight(): number {
    return this.#inflight
  }

  submit(task: AccelTask, done: TaskDone): void {
    this.#done = done
    this.#queue.push(task)
    this.#queuedBytes += task.nbytes
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flush)
    }
  }

  #doFlush(): void {
    this.#scheduled = false
    const q = this.#queue
    if (q.length === 0) return
    const done = this.#done!
    if (this.#inflight === 0 && q.length <= this.#inlineOps && this.#queuedBytes <= this.#inlineBytes) {
      // not worth a thread hop: run here (still completing after submit returned)
      const n = q.length
      for (let i = 0; i < n; i++) done(q.at(i), this.#software!.runNow(q.at(i).desc))
      this.counters.inlineOps += n
      q.removeFirst(n)
      this.#queuedBytes = 0
      return
    }
    const nw = this.threads
    const cap = this.#cap
    const mask = cap - 1
    const u = this.#u32
    let i = 0
    for (; i < q.length; i++) {
      // the worker with the least work outstanding that has room
      let w = -1
      for (let k = 0; k < nw; k++) {
        if (this.#outOps[k]! < cap && (w < 0 || this.#outBytes[k]! < this.#outBytes[w]!)) w = k
      }
      if (w < 0) break // every ring is full: the rest waits for completions
      const t = q.at(i)
      const token = this.#freeTokens[--this.#nFree]!
      this.#byToken[token] = t
      const e = (this.#rings[w]! >>> 2) + RING.sq + 2 * (this.#sqTail[w]! & mask)
      u[e] = t.desc
      u[e + 1] = token
      this.#sqTail[w] = (this.#sqTail[w]! + 1) | 0
      this.#outOps[w]!++
      this.#outBytes[w]! += t.nbytes
      this.#queuedBytes -= t.nbytes
      this.#touched[w] = 1
      this.#inflight++
    }
    if (i > 0) {
      q.removeFirst(i)
      this.counters.submissions++
      this.counters.batchedOps += i
    }
    for (let w = 0; w < nw; w++) {
      if (this.#touched[w] === 0) continue
      this.#touched[w] = 0
      const r = this.#rings[w]! >>> 2
      Atomics.store(this.#i32, r + RING.sqTail, this.#sqTail[w]!)
      if (Atomics.load(this.#i32, r + RING.sleeping) !== 0) {
        Atomics.notify(this.#i32, r + RING.sqTail, 1)
        this.counters.workerWakes++
      }
    }
    this.#arm()
  }

  /** Waits for the bell (unless nothing is in flight). */
  #arm(): void {
    if (this.#armed || this.#inflight === 0) return
    const res = waitAsync!(this.#i32, this.#bell >>> 2, this.#seen)
    this.#armed = true
    if (res.async) void res.value.then(this.#onBell)
    // it rang since the last reap: reap on the next turn (a full turn, so I/O gets one too)
    else setImmediate(this.#onBell)
  }

  #bellRang(): void {
    this.#armed = false
    this.counters.completionWakes++
    // read the bell before reaping: a completion posted after this read rings it again
    this.#seen = Atomics.load(this.#i32, this.#bell >>> 2)
    for (let w = 0; w < this.threads; w++) this.#reap(w)
    // operations that waited for room in a full ring
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flush)
    }
    this.#arm()
  }

  #take(w: number, token: number): AccelTask {
    const t = this.#byToken[token]!
    this.#byToken[token] = null
    this.#freeTokens[this.#nFree++] = token
    this.#outOps[w]!--
    this.#outBytes[w]! -= t.nbytes
    this.#inflight--
    return t
  }

  /** Completes what worker w has posted. */
  #reap(w: number): void {
    const r = this.#rings[w]! >>> 2
    const tail = Atomics.load(this.#i32, r + RING.cqTail)
    let head = this.#cqHead[w]!
    if (head === tail) return
    const mask = this.#cap - 1
    const cq = r + cqWord(this.#cap)
    const done = this.#done!
    while (head !== tail) {
      const t = this.#take(w, this.#u32[cq + (head & mask)]!)
      head = (head + 1) | 0
      this.#cqHead[w] = head
      const st = this.#i32[(t.desc + D.status) >>> 2]!
      // a descriptor the worker never finished still holds the status it was given (1)
      done(t, st > 0 ? AccelStatus.Invalid : st)
    }
    Atomics.store(this.#i32, r + RING.cqHead, head)
  }
}
