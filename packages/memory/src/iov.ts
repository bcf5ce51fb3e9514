// Scatter-gather lists in typed arrays: addresses (up to 2^53, for IOVAs and virtual
// addresses) and lengths, with a count. A list is allocated once and refilled per
// request; nothing here allocates per operation.
import { checkInt, rangeError } from '@ipukit/kernels'
import { MemoryError } from './status.js'

/** A reusable list of (address, length) pairs. The address space is the list's domain's. */
export class IoVecList {
  readonly addr: Float64Array
  readonly len: Float64Array
  count = 0

  constructor(capacity = 64) {
    checkInt('capacity', capacity, 1, 1 << 24)
    this.addr = new Float64Array(capacity)
    this.len = new Float64Array(capacity)
  }

  get capacity(): number {
    return this.addr.length
  }

  /** Appends a pair (empty ones are skipped). Throws when the list is full. */
  push(address: number, length: number): this {
    if (length === 0) return this
    if (this.count === this.addr.length) {
      throw new MemoryError('MEMORY_LIST_FULL', `iovec list is full (${this.addr.length} entries)`)
    }
    this.addr[this.count] = address
    this.len[this.count] = length
    this.count++
    return this
  }

  /** Appends, merging with the last pair when it ends where this one starts. */
  pushMerged(address: number, length: number): this {
    const n = this.count
    if (n > 0 && this.addr[n - 1]! + this.len[n - 1]! === address) {
      this.len[n - 1] = this.len[n - 1]! + length
      return this
    }
    return this.push(address, length)
  }

  clear(): this {
    this.count = 0
    return this
  }

  /** Total bytes. */
  get total(): number {
    let t = 0
    for (let i = 0; i < this.count; i++) t += this.len[i]!
    return t
  }

  /** Copies another list's pairs into this one. */
  copyFrom(other: IoVecList): this {
    this.clear()
    for (let i = 0; i < other.count; i++) this.push(other.addr[i]!, other.len[i]!)
    return this
  }

  /** A list of the given pairs, e.g. IoVecList.of([addr, len], [addr, len]). */
  static of(...pairs: [number, number][]): IoVecList {
    const l = new IoVecList(Math.max(1, pairs.length))
    for (const [a, n] of pairs) l.push(a, n)
    return l
  }
}

/**
 * A position in a list, to walk it across split points: `take(max)` yields the next
 * contiguous piece in `pieceAddr` / `pieceLen` (no objects are created).
 */
export class IovCursor {
  list: IoVecList
  index = 0
  offset = 0
  pieceAddr = 0
  pieceLen = 0

  constructor(list: IoVecList) {
    this.list = list
  }

  reset(list: IoVecList = this.list): this {
    this.list = list
    this.index = 0
    this.offset = 0
    return this
  }

  /** Bytes left. */
  get remaining(): number {
    let t = 0
    for (let i = this.index; i < this.list.count; i++) t += this.list.len[i]!
    return t - this.offset
  }

  /** The next contiguous piece of at most `max` bytes; false at the end. */
  take(max: number): boolean {
    const l = this.list
    while (this.index < l.count) {
      const left = l.len[this.index]! - this.offset
      if (left > 0) {
        const n = left < max ? left : max
        this.pieceAddr = l.addr[this.index]! + this.offset
        this.pieceLen = n
        this.offset += n
        if (this.offset === l.len[this.index]!) {
          this.index++
          this.offset = 0
        }
        return true
      }
      this.index++
      this.offset = 0
    }
    this.pieceLen = 0
    return false
  }
}

const srcCursor = new IovCursor(new IoVecList(1))
const dstCursor = new IovCursor(new IoVecList(1))

/**
 * Copies min(dst.total, src.total) bytes between two lists of physical addresses in
 * `bytes` (one memory), in order across both lists' split points. Returns the bytes copied.
 */
export function iovCopy(bytes: Uint8Array, dst: IoVecList, src: IoVecList): number {
  srcCursor.reset(src)
  dstCursor.reset(dst)
  let copied = 0
  let sAddr = 0
  let sLeft = 0
  while (true) {
    if (sLeft === 0) {
      if (!srcCursor.take(Infinity)) break
      sAddr = srcCursor.pieceAddr
      sLeft = srcCursor.pieceLen
    }
    if (!dstCursor.take(sLeft)) break
    const n = dstCursor.pieceLen
    bytes.copyWithin(dstCursor.pieceAddr, sAddr, sAddr + n)
    sAddr += n
    sLeft -= n
    copied += n
  }
  return copied
}

/** Zero-fills every byte a list of physical addresses describes. */
export function iovZero(bytes: Uint8Array, list: IoVecList): void {
  for (let i = 0; i < list.count; i++) bytes.fill(0, list.addr[i]!, list.addr[i]! + list.len[i]!)
}

/** Checks that every pair of a list lies in [lo, hi). */
export function checkIovs(name: string, list: IoVecList, lo: number, hi: number): void {
  for (let i = 0; i < list.count; i++) {
    const a = list.addr[i]!
    const n = list.len[i]!
    if (!(a >= lo && a + n <= hi)) {
      throw rangeError(`${name}[${i}] = [${a}, ${a + n}) is outside [${lo}, ${hi})`)
    }
  }
}
