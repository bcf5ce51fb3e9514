// The `workers` module's thread (a piscina worker). It attaches to the shared memory, takes
// a kernels scratch slot of its own, and serves one ring (./internal/ring.ts): it runs the
// descriptors the submitter queues, in order, and posts their tokens back. The piscina task
// that starts the loop returns only at shutdown, so piscina carries one message per thread
// lifetime, not one per operation; it still owns the threads (start, replace, terminate).
import { workerData } from 'node:worker_threads'
import { attachPhysicalMemory, type PhysicalMemoryDescription } from '@ipukit/memory'
import { D } from './descriptor.js'
import { Executor } from './executor.js'
import { cqWord, RING } from './internal/ring.js'

interface WorkerData {
  description: PhysicalMemoryDescription
  /** slot records: a count, then the kernels scratch slot of each thread started */
  slots: number
  records: number
}

const { description, slots, records } = workerData as WorkerData
const physical = attachPhysicalMemory(description)
const exec = new Executor(physical.kernels)
const i32 = new Int32Array(physical.memory.buffer)
const u32 = new Uint32Array(physical.memory.buffer)
// note this thread's scratch slot: the pool's owner releases it after terminating the thread
{
  const rec = new Int32Array(physical.memory.buffer, slots, records)
  const i = Atomics.add(rec, 0, 1) + 1
  if (i < records) Atomics.store(rec, i, physical.kernels.slot)
}

export interface ServeTask {
  /** the ring's address */
  ring: number
  capacity: number
  /** the bell word's address */
  bell: number
  /** Atomics.load polls of an empty SQ before sleeping */
  spin: number
  /** publish completions after this many bytes of work, or this many operations */
  publishBytes: number
  publishOps: number
}

/** Serves a ring until its shutdown word is set; returns the operations it ran. */
export default function serve(t: ServeTask): number {
  const r = t.ring >>> 2
  const mask = t.capacity - 1
  const sq = r + RING.sq
  const cq = r + cqWord(t.capacity)
  const bell = t.bell >>> 2
  let head = Atomics.load(i32, r + RING.sqHead)
  let cqTail = Atomics.load(i32, r + RING.cqTail)
  let ran = 0
  const publish = () => {
    Atomics.store(i32, r + RING.cqTail, cqTail)
    Atomics.add(i32, bell, 1)
    Atomics.notify(i32, bell)
  }
  for (;;) {
    let tail = Atomics.load(i32, r + RING.sqTail)
    if (tail === head) {
      for (let k = 0; k < t.spin && tail === head; k++) tail = Atomics.load(i32, r + RING.sqTail)
      if (tail === head) {
        if (Atomics.load(i32, r + RING.shutdown) !== 0) break
        Atomics.store(i32, r + RING.sleeping, 1)
        if (Atomics.load(i32, r + RING.sqTail) === head && Atomics.load(i32, r + RING.shutdown) === 0) Atomics.wait(i32, r + RING.sqTail, head)
        Atomics.store(i32, r + RING.sleeping, 0)
        continue
      }
    }
    let bytes = 0
    let ops = 0
    while (head !== tail) {
      const e = sq + 2 * (head & mask)
      const desc = u32[e]!
      exec.run(desc)
      u32[cq + (cqTail & mask)] = u32[e + 1]!
      cqTail = (cqTail + 1) | 0
      head = (head + 1) | 0
      ran++
      bytes += u32[(desc + D.nbytes) >>> 2]!
      if (++ops >= t.publishOps || bytes >= t.publishBytes) {
        publish()
        bytes = 0
        ops = 0
      }
      if (head === tail) tail = Atomics.load(i32, r + RING.sqTail)
    }
    Atomics.store(i32, r + RING.sqHead, head)
    Atomics.store(i32, r + RING.served, ran)
    if (ops > 0) publish()
  }
  return ran
}
