// The shared-memory rings between the `workers` module (the submitting thread) and each of
// its worker threads: a submission queue of (descriptor, token) pairs and a completion queue
// of tokens, in the shared memory, so handing work to a thread costs a few stores and, only
// when the thread sleeps, one futex wake. Nothing is posted as a message per operation.
//
//   ring (bytes from its base; every control word on its own 64-byte line)
//     0   sqTail     written by the submitter: entries [sqHead, sqTail) wait for the worker
//    64   sqHead     written by the worker (for monitoring)
//   128   cqTail     written by the worker: tokens [cqHead, cqTail) are done
//   192   cqHead     written by the submitter
//   256   sleeping   1 while the worker is about to wait or waits on sqTail (a futex)
//   320   shutdown   1: the worker returns from its loop
//   384   served     operations the worker ran (monitoring)
//   448   (spare)
//   512   SQ         capacity x (descriptor u32, token u32)
//   512 + 8 cap      CQ         capacity x token u32
//
// Protocol (no lost wake-up: both sides use sequentially consistent Atomics):
//   submitter: write entries; Atomics.store(sqTail); if Atomics.load(sleeping) notify(sqTail)
//   worker:    idle -> store(sleeping, 1); if load(sqTail) == head: wait(sqTail, head);
//              store(sleeping, 0). After running operations it stores cqTail, adds 1 to
//              the shared bell word and notifies it: the submitter waits on the bell with
//              Atomics.waitAsync, so one wake reaps the completions of every worker.
// The submitter keeps at most `capacity` operations outstanding per ring, so the CQ, which
// holds no more than what was submitted and not reaped, cannot overflow.

export const RING = {
  sqTail: 0,
  sqHead: 16,
  cqTail: 32,
  cqHead: 48,
  sleeping: 64,
  shutdown: 80,
  served: 96,
  /** word offset of the SQ */
  sq: 128,
} as const

/** Bytes of a ring of `capacity` entries (a power of two). */
export function ringBytes(capacity: number): number {
  return 512 + 12 * capacity
}

/** Word offset of a ring's CQ. */
export function cqWord(capacity: number): number {
  return RING.sq + 2 * capacity
}

/** The bell block: one word all workers ring, on a line of its own. */
export const BELL_BYTES = 64
