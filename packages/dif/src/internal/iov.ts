// Scatter-gather lists: what callers pass, how they are checked, and how their bytes reach
// the engine: by address when they lie in the kernels' memory, else through staging.
import type { Kernels } from '@ipukit/kernels'
import { rangeError, typeError } from './errors.js'

/**
 * An iovec in SPDK's sense: `len` bytes at address `base` of the kernels' memory (above
 * its kernel region). Uint8Array views are accepted too, wherever they live.
 */
export interface IoVec {
  readonly base: number
  readonly len: number
}

/**
 * A scatter-gather list held in arrays (such as @ipukit/memory's IoVecList): `count`
 * pairs of addresses in the kernels' memory and lengths. The fastest form to pass: no
 * object per iovec.
 */
export interface IoVecArrays {
  readonly addr: ArrayLike<number>
  readonly len: ArrayLike<number>
  readonly count: number
}

/** A scatter-gather list: one buffer, buffers in order (any split points), or arrays. */
export type IoVecs = Uint8Array | IoVec | readonly (Uint8Array | IoVec)[] | IoVecArrays

type Entry = Uint8Array | IoVec

function isArrays(list: IoVecs): list is IoVecArrays {
  return !(list instanceof Uint8Array) && !Array.isArray(list) && typeof (list as IoVecArrays).count === 'number'
}

export function count(list: IoVecs): number {
  return Array.isArray(list) ? list.length : isArrays(list) ? list.count : 1
}

export function entry(list: IoVecs, i: number): Entry {
  if (Array.isArray(list)) return (list as readonly Entry[])[i]!
  if (isArrays(list)) return { base: list.addr[i]!, len: list.len[i]! }
  return list as Entry
}

function isView(e: Entry): e is Uint8Array {
  return e instanceof Uint8Array
}

/**
 * Checks every entry and returns the list's total length, and whether all of it lies in
 * the kernels' memory (then the engine reads it in place).
 */
const inspected = { length: 0, inMemory: true, count: 0 }

/**
 * Checks every entry and returns the list's total length, its number of entries, and
 * whether all of it lies in the kernels' memory (then the engine reads it in place). When
 * `pairs` is given, the entries' (address, length) pairs are written into it as far as it
 * holds them, in the same pass. The result object is reused: read it before the next call.
 * Per entry this is a few comparisons and no allocation: requests may carry thousands of
 * iovecs.
 */
export function inspect(
  k: Kernels,
  name: string,
  list: IoVecs,
  pairs?: Uint32Array,
): { readonly length: number; readonly inMemory: boolean; readonly count: number } {
  if (list === null || typeof list !== 'object') throw typeError(`${name} must be a Uint8Array, an iovec or an array of them`)
  const buffer = k.memory.buffer
  const lo = k.layout.end
  const hi = buffer.byteLength
  let length = 0
  let inMemory = true
  if (isArrays(list)) return inspectArrays(k, name, list, lo, hi, pairs)
  const many = Array.isArray(list)
  const n = many ? list.length : 1
  const room = pairs === undefined ? 0 : pairs.length >> 1
  let count = 0
  for (let i = 0; i < n; i++) {
    const e = many ? (list as readonly Entry[])[i] : (list as Entry)
    let base: number
    let len: number
    if (e instanceof Uint8Array) {
      base = e.byteOffset
      len = e.byteLength
      if (e.buffer !== buffer) inMemory = false
      else if (len > 0 && base < lo) k.addressOf(`${name}[${i}]`, e) // throws
    } else if (e !== null && typeof e === 'object' && typeof e.base === 'number' && typeof e.len === 'number') {
      base = e.base
      len = e.len
      if (!(Number.isInteger(base) && Number.isInteger(len) && len >= 0 && (len === 0 || (base >= lo && base + len <= hi)))) {
        k.checkRange(`${name}[${i}]`, base, len) // throws with the reason
        throw rangeError(`${name}[${i}] is not a valid iovec`)
      }
    } else {
      throw typeError(`${name}[${i}] must be a Uint8Array or an iovec { base, len }`)
    }
    if (len > 0) {
      if (count < room) {
        pairs![2 * count] = base
        pairs![2 * count + 1] = len
      }
      count++
    }
    length += len
  }
  inspected.length = length
  inspected.inMemory = inMemory
  inspected.count = count
  return inspected
}

export function entryLength(e: Entry): number {
  return isView(e) ? e.byteLength : e.len
}

function inspectArrays(k: Kernels, name: string, list: IoVecArrays, lo: number, hi: number, pairs: Uint32Array | undefined) {
  const { addr, len, count: n } = list
  if (!(Number.isInteger(n) && n >= 0 && n <= addr.length && n <= len.length)) throw rangeError(`${name}.count must be an integer in [0, ${Math.min(addr.length, len.length)}]`)
  const room = pairs === undefined ? 0 : pairs.length >> 1
  let length = 0
  let count = 0
  for (let i = 0; i < n; i++) {
    const base = addr[i]!
    const l = len[i]!
    if (!(Number.isInteger(base) && Number.isInteger(l) && l >= 0 && (l === 0 || (base >= lo && base + l <= hi)))) {
      k.checkRange(`${name}[${i}]`, base, l) // throws with the reason
      throw rangeError(`${name}[${i}] is not a valid iovec`)
    }
    if (l > 0) {
      if (count < room) {
        pairs![2 * count] = base
        pairs![2 * count + 1] = l
      }
      count++
    }
    length += l
  }
  inspected.length = length
  inspected.inMemory = true
  inspected.count = count
  return inspected
}

/** A sequential position in a list, for feeding batches or staging chunks. */
export class ListCursor {
  list: IoVecs = new Uint8Array(0)
  index = 0
  offset = 0

  reset(list: IoVecs): void {
    this.list = list
    this.index = 0
    this.offset = 0
  }

  /**
   * Copies the next `n` bytes of the list into memory at `to` (dir 'in'), or from memory at
   * `to` back into the list (dir 'out'), advancing the cursor.
   */
  move(k: Kernels, to: number, n: number, dir: 'in' | 'out'): void {
    const bytes = k.bytes
    while (n > 0) {
      const e = entry(this.list, this.index)
      const len = entryLength(e)
      const take = Math.min(len - this.offset, n)
      if (take > 0) {
        if (isView(e)) {
          if (dir === 'in') bytes.set(e.subarray(this.offset, this.offset + take), to)
          else e.set(bytes.subarray(to, to + take), this.offset)
        } else if (dir === 'in') bytes.copyWithin(to, e.base + this.offset, e.base + this.offset + take)
        else bytes.copyWithin(e.base + this.offset, to, to + take)
        to += take
        n -= take
        this.offset += take
      }
      if (this.offset === len) {
        this.index++
        this.offset = 0
      }
    }
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    while (n > 0) {
      const len = entryLength(entry(this.list, this.index))
      const take = Math.min(len - this.offset, n)
      n -= take
      this.offset += take
      if (this.offset === len) {
        this.index++
        this.offset = 0
      }
    }
  }

  /** The byte at the cursor's position plus `ahead` (without moving). */
  locate(k: Kernels, ahead: number): { get(): number; set(v: number): void } {
    let i = this.index
    let off = this.offset + ahead
    for (;;) {
      const e = entry(this.list, i)
      const len = entryLength(e)
      if (off < len) {
        if (isView(e)) {
          const at = off
          return { get: () => e[at]!, set: (v) => void (e[at] = v) }
        }
        const at = e.base + off
        return { get: () => k.bytes[at]!, set: (v) => void (k.bytes[at] = v) }
      }
      off -= len
      i++
    }
  }

  /** Fills `area` with up to area.length / 2 (address, length) pairs from the cursor on. */
  fill(area: Uint32Array): number {
    const list = this.list
    if (isArrays(list)) {
      const cap = area.length >> 1
      let pairs = 0
      let i = this.index
      while (i < list.count && pairs < cap) {
        const len = list.len[i]! - this.offset
        if (len > 0) {
          area[pairs * 2] = list.addr[i]! + this.offset
          area[pairs * 2 + 1] = len
          pairs++
        }
        i++
        this.offset = 0
      }
      this.index = i
      return pairs
    }
    const many = Array.isArray(list)
    const n = many ? list.length : 1
    const cap = area.length >> 1
    let pairs = 0
    let i = this.index
    let off = this.offset
    while (i < n && pairs < cap) {
      const e = many ? (list as readonly Entry[])[i]! : (list as Entry)
      const view = e instanceof Uint8Array
      const len = (view ? e.byteLength : (e as IoVec).len) - off
      if (len > 0) {
        area[pairs * 2] = (view ? e.byteOffset : (e as IoVec).base) + off
        area[pairs * 2 + 1] = len
        pairs++
      }
      i++
      off = 0
    }
    this.index = i
    this.offset = off
    return pairs
  }

  get done(): boolean {
    return this.index >= count(this.list)
  }
}
