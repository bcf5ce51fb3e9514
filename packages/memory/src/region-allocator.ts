// A page-granular allocator over one region (device memory, IPU DRAM), in the manner of
// Linux's genalloc behind p2pmem: a bitmap of 4 KiB pages, first fit from a rotating hint.
// It is a control-path structure of one thread; the data path uses the iobuf pools.
import { checkInt, rangeError } from '@ipukit/kernels'
import { PAGE, type Region } from './physical-memory.js'
import { MemoryError } from './status.js'

export class RegionAllocator {
  readonly region: Region
  /** first byte and byte count this allocator hands out (page-aligned) */
  readonly base: number
  readonly size: number
  readonly #used: Uint8Array
  readonly #live = new Map<number, number>() // address -> pages
  #hint = 0
  #free: number

  constructor(region: Region, offset = 0, size = region.size - offset) {
    checkInt('offset', offset, 0, region.size)
    checkInt('size', size, 0, region.size - offset)
    this.region = region
    this.base = Math.ceil((region.base + offset) / PAGE) * PAGE
    this.size = Math.floor((region.base + offset + size - this.base) / PAGE) * PAGE
    this.#used = new Uint8Array(this.size / PAGE)
    this.#free = this.#used.length
  }

  /** Free bytes. */
  get available(): number {
    return this.#free * PAGE
  }

  /**
   * `size` bytes (rounded up to pages), aligned to `align` (a power of two, at least a page).
   * Returns the address, or -1 when no run of free pages is large enough.
   */
  alloc(size: number, align = PAGE): number {
    checkInt('size', size, 1, this.size || 1)
    checkInt('align', align, PAGE, 2 ** 30)
    if ((align & (align - 1)) !== 0) throw rangeError(`align must be a power of two, got ${align}`)
    const pages = Math.ceil(size / PAGE)
    const n = this.#used.length
    // the first page index at or after p whose address is aligned
    const aligned = (p: number) => {
      const addr = this.base + p * PAGE
      return p + (Math.ceil(addr / align) * align - addr) / PAGE
    }
    const search = (from: number): number => {
      let i = aligned(from)
      while (i + pages <= n) {
        let j = 0
        while (j < pages && this.#used[i + j] === 0) j++
        if (j === pages) return i
        i = aligned(i + j + 1)
      }
      return -1
    }
    let i = search(this.#hint)
    if (i < 0 && this.#hint > 0) i = search(0)
    if (i < 0) return -1
    this.#used.fill(1, i, i + pages)
    this.#free -= pages
    this.#hint = i + pages < n ? i + pages : 0
    const address = this.base + i * PAGE
    this.#live.set(address, pages)
    return address
  }

  /** Frees an allocation; throws if `address` is not the start of a live one. */
  free(address: number): void {
    const pages = this.#live.get(address)
    if (pages === undefined) {
      throw new MemoryError('MEMORY_BAD_FREE', `${address} is not the start of an allocation of this allocator`)
    }
    this.#live.delete(address)
    const i = (address - this.base) / PAGE
    this.#used.fill(0, i, i + pages)
    this.#free += pages
  }

  /** Bytes of the allocation starting at `address`, or 0. */
  sizeOf(address: number): number {
    return (this.#live.get(address) ?? 0) * PAGE
  }
}
