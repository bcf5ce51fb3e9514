// A list of tasks that never gives its backing store back. A JS array truncated to length
// 0 drops its elements' storage, so the next push allocates a new one: for a sequence that
// is opened, filled and released per I/O, that is an allocation per I/O. This list keeps a
// count instead, and clears the slots it stops using (no task stays reachable from it).
import type { AccelTask } from '../task.js'

export class TaskList {
  readonly #items: (AccelTask | null)[] = []
  #length = 0

  get length(): number {
    return this.#length
  }

  at(i: number): AccelTask {
    return this.#items[i]!
  }

  set(i: number, t: AccelTask): void {
    this.#items[i] = t
  }

  push(t: AccelTask): void {
    if (this.#length === this.#items.length) this.#items.push(t)
    else this.#items[this.#length] = t
    this.#length++
  }

  /** The last task (the list must not be empty). */
  last(): AccelTask {
    return this.#items[this.#length - 1]!
  }

  /** Removes and returns task i, shifting the rest down. */
  removeAt(i: number): AccelTask {
    const items = this.#items
    const t = items[i]!
    for (let j = i; j + 1 < this.#length; j++) items[j] = items[j + 1]!
    items[--this.#length] = null
    return t
  }

  /** Drops the first n tasks, moving the rest to the front. */
  removeFirst(n: number): void {
    const items = this.#items
    const left = this.#length - n
    for (let i = 0; i < left; i++) items[i] = items[i + n]!
    this.truncate(left)
  }

  /** Keeps the first n tasks. */
  truncate(n: number): void {
    for (let i = n; i < this.#length; i++) this.#items[i] = null
    this.#length = n
  }

  reverse(): void {
    const items = this.#items
    for (let i = 0, j = this.#length - 1; i < j; i++, j--) {
      const t = items[i]!
      items[i] = items[j]!
      items[j] = t
    }
  }

  clear(): void {
    this.truncate(0)
  }

  /** A copy as an array (for tests and debugging; allocates). */
  toArray(): AccelTask[] {
    return this.#items.slice(0, this.#length) as AccelTask[]
  }
}
