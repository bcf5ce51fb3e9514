// A fake host for the walkers' unit tests: a DRAM array behind a map of readable 4 KiB IOVA
// pages (only what the walkers read needs mapping), a seeded PRNG, and helpers shared by
// test/prp.test.ts and test/sgl.test.ts.
import type { IoVecList } from '@ipukit/memory'
import type { HostRead } from '../../src/internal/prp.js'

export { fuzzRuns } from '../helpers.js'

export const TWO32 = 0x1_0000_0000
const IOMMU_PAGE = 4096

/** Host DRAM behind an IOMMU that maps 4 KiB IOVA pages to DRAM pages. */
export class FakeHost {
  readonly dram = new Uint8Array(8 << 20)
  readonly pages = new Map<number, number>()
  next = 0
  reads = 0
  readBytes = 0

  reset(): void {
    this.pages.clear()
    this.next = 0
    this.reads = 0
    this.readBytes = 0
  }

  /** Maps the pages of [iova, iova + len) to fresh DRAM. */
  map(iova: number, len: number): void {
    for (let p = Math.floor(iova / IOMMU_PAGE); p * IOMMU_PAGE < iova + len; p++) {
      if (this.pages.has(p)) continue
      if (this.next + IOMMU_PAGE > this.dram.length) throw new Error('fake host DRAM is full')
      this.pages.set(p, this.next)
      this.dram.fill(0, this.next, this.next + IOMMU_PAGE)
      this.next += IOMMU_PAGE
    }
  }

  unmap(iova: number, len: number): void {
    for (let p = Math.floor(iova / IOMMU_PAGE); p * IOMMU_PAGE < iova + len; p++) this.pages.delete(p)
  }

  #copy(iova: number, bytes: Uint8Array, toHost: boolean): number {
    for (let done = 0; done < bytes.length; ) {
      const a = iova + done
      const base = this.pages.get(Math.floor(a / IOMMU_PAGE))
      if (base === undefined) return 1
      const off = a % IOMMU_PAGE
      const n = Math.min(IOMMU_PAGE - off, bytes.length - done)
      if (toHost) this.dram.set(bytes.subarray(done, done + n), base + off)
      else bytes.set(this.dram.subarray(base + off, base + off + n), done)
      done += n
    }
    return 0
  }

  /** Writes through the map (for the test to build lists). */
  write(iova: number, bytes: Uint8Array): void {
    if (this.#copy(iova, bytes, true) !== 0) throw new Error(`write to unmapped IOVA ${iova.toString(16)}`)
  }

  /** The walker's HostRead: checks every page the read touches. */
  read: HostRead = (iova, out) => {
    this.reads++
    this.readBytes += out.length
    for (let p = Math.floor(iova / IOMMU_PAGE); p * IOMMU_PAGE < iova + out.length; p++) if (!this.pages.has(p)) return 1
    return this.#copy(iova, out, false)
  }

  /** Maps and writes a list of u64 entries at iova. */
  writeEntries(iova: number, entries: number[]): void {
    const b = new Uint8Array(entries.length * 8)
    const dv = new DataView(b.buffer)
    entries.forEach((e, i) => {
      dv.setUint32(i * 8, e % TWO32, true)
      dv.setUint32(i * 8 + 4, Math.floor(e / TWO32), true)
    })
    this.map(iova, b.length)
    this.write(iova, b)
  }
}

/** mulberry32: a seeded PRNG so that one fast-check integer drives a whole layout. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / TWO32
  }
}


/** An iovec list as (address, length) pairs. */
export function pairs(l: IoVecList): [number, number][] {
  const r: [number, number][] = []
  for (let i = 0; i < l.count; i++) r.push([l.addr[i]!, l.len[i]!])
  return r
}
