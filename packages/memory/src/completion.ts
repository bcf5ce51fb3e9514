// The data path's completion convention: a callback `(arg, value)` with a caller-owned
// argument, always run after the call that started the operation has returned (never
// inside it), in submission order. The callbacks wait in one ring per thread, drained by
// a single microtask scheduled when the ring stops being empty: no object is created per
// operation (bench/completion.bench.ts measures what a completion costs).

/** A completion: `arg` is what the caller passed, `value` a status (or a buffer address). */
export type Completion<T> = (arg: T, value: number) => void

class CompletionQueue {
  #fns: (Completion<never> | undefined)[] = new Array(1024)
  #args: unknown[] = new Array(1024)
  #vals = new Float64Array(1024)
  #head = 0
  #count = 0
  #scheduled = false
  readonly #drain = (): void => {
    // only the microtask clears the flag: a drain() called by hand leaves the scheduled
    // microtask in place, so steady use schedules no new ones
    this.#scheduled = false
    this.drain()
  }

  defer<T>(fn: Completion<T>, arg: T, value: number): void {
    if (this.#count === this.#fns.length) this.#grow()
    const i = (this.#head + this.#count) % this.#fns.length
    this.#fns[i] = fn as Completion<never>
    this.#args[i] = arg
    this.#vals[i] = value
    this.#count++
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#drain)
    }
  }

  /** Runs every waiting completion now (the microtask does this on its own). */
  drain(): number {
    let ran = 0
    while (this.#count > 0) {
      const i = this.#head
      const fn = this.#fns[i]!
      const arg = this.#args[i] as never
      const v = this.#vals[i]!
      this.#fns[i] = undefined
      this.#args[i] = undefined
      this.#head = (i + 1) % this.#fns.length
      this.#count--
      ran++
      fn(arg, v)
    }
    return ran
  }

  get pending(): number {
    return this.#count
  }

  #grow(): void {
    const n = this.#fns.length
    const fns = new Array<Completion<never> | undefined>(n * 2)
    const args = new Array<unknown>(n * 2)
    const vals = new Float64Array(n * 2)
    for (let k = 0; k < this.#count; k++) {
      const i = (this.#head + k) % n
      fns[k] = this.#fns[i]
      args[k] = this.#args[i]
      vals[k] = this.#vals[i]!
    }
    this.#fns = fns
    this.#args = args
    this.#vals = vals
    this.#head = 0
  }
}

const queue = new CompletionQueue()

/** Schedules `fn(arg, value)` after the current call stack (see the module comment). */
export function defer<T>(fn: Completion<T>, arg: T, value: number): void {
  queue.defer(fn, arg, value)
}

/** Runs the waiting completions now; returns how many ran. */
export function drainCompletions(): number {
  return queue.drain()
}

/** Completions scheduled and not yet run. */
export function pendingCompletions(): number {
  return queue.pending
}
