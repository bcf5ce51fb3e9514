// The PRP walker against PRPs built as Linux's nvme_pci_setup_prps builds them (property),
// hostile PRPs (each with its exact status) and random list pages (fuzz). Host memory is a
// fake: a DRAM array behind a map of readable 4 KiB IOVA pages; only the PRP list pages are
// mapped, because the walker reads nothing else.
import { NvmeStatus } from '@ipukit/bdev'
import { IoVecList } from '@ipukit/memory'
import fc from 'fast-check'
import { beforeEach, describe, expect, it } from 'vitest'
import { walkPrp } from '../src/internal/prp.js'
import { FakeHost, fuzzRuns, pairs, prng, TWO32 } from './support/fake-host.js'

const host = new FakeHost()
const out = new IoVecList(1024)

function merged(ranges: [number, number][]): [number, number][] {
  const r: [number, number][] = []
  for (const [a, n] of ranges) {
    const last = r[r.length - 1]
    if (last !== undefined && last[0] + last[1] === a) last[1] += n
    else if (n > 0) r.push([a, n])
  }
  return r
}

/**
 * Lays out PRP list entries as Linux's nvme_pci_setup_prps does: a list from the 256-byte
 * pool (at a 256-byte offset in a page) when it has at most 32 entries, else full pages
 * from the page pool, where a page that needs to hold more than its slots gets its last
 * slot moved to the next page and replaced by that page's address. `offset` overrides
 * where the first list starts in its page (any qword-aligned offset: also exercises link
 * slots at the very start of a page). Returns PRP2 and the list pages used.
 */
function buildList(entries: number[], ps: number, rnd: () => number, offset?: number): { prp2: number; listPages: number } {
  const used = new Set<number>()
  const newPage = () => {
    // distinct pages above 4 GiB, to exercise the upper halves of the entries
    for (;;) {
      const a = (1 + Math.floor(rnd() * 4096)) * TWO32 + Math.floor(rnd() * (TWO32 / ps)) * ps
      if (!used.has(a)) {
        used.add(a)
        return a
      }
    }
  }
  let start = newPage()
  if (offset !== undefined) start += offset
  else if (entries.length <= 32) start += Math.floor(rnd() * (ps / 256)) * 256
  const prp2 = start
  let listPages = 1
  let at = start
  let i = 0
  for (;;) {
    const avail = (ps - (at % ps)) / 8
    const left = entries.length - i
    if (left <= avail) {
      host.writeEntries(at, entries.slice(i))
      return { prp2, listPages }
    }
    const next = newPage()
    host.writeEntries(at, [...entries.slice(i, i + avail - 1), next])
    i += avail - 1
    at = next
    listPages++
  }
}

interface Layout {
  prp1: number
  prp2: number
  expect: [number, number][]
  listPages: number
}

/** A buffer of `len` bytes at page offset `off`, scattered over random pages (some runs contiguous), with its PRPs. */
function layout(ps: number, len: number, off: number, rnd: () => number, listOffset?: number): Layout {
  const npages = Math.ceil((off + len) / ps)
  const bases: number[] = []
  for (let i = 0; i < npages; i++) {
    const prev = bases[i - 1]
    // data pages anywhere below 2^48 (never read by the walker), often contiguous
    bases.push(prev !== undefined && rnd() < 0.4 ? prev + ps : Math.floor(rnd() * (2 ** 48 / ps)) * ps)
  }
  const ranges: [number, number][] = []
  let left = len
  for (let i = 0; i < npages; i++) {
    const start = i === 0 ? off : 0
    const n = Math.min(ps - start, left)
    ranges.push([bases[i]! + start, n])
    left -= n
  }
  const prp1 = bases[0]! + off
  if (npages === 1) return { prp1, prp2: 0, expect: merged(ranges), listPages: 0 }
  if (npages === 2) return { prp1, prp2: bases[1]!, expect: merged(ranges), listPages: 0 }
  const { prp2, listPages } = buildList(bases.slice(1), ps, rnd, listOffset)
  return { prp1, prp2, expect: merged(ranges), listPages }
}

beforeEach(() => {
  host.reset()
})

describe('walkPrp: PRPs as Linux builds them (property)', () => {
  it('returns exactly the buffer, for any offset, length up to 1 MiB, scatter and page size', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4096, 4096, 4096, 8192, 65536),
        fc.integer({ min: 1, max: 1 << 20 }),
        fc.nat(),
        fc.boolean(),
        fc.integer(),
        (ps, len, off, aligned, seed) => {
          host.reset()
          const rnd = prng(seed)
          const o = aligned ? 0 : (off % (ps / 4)) * 4
          const l = layout(ps, len, o, rnd)
          expect(walkPrp(l.prp1, l.prp2, len, host.read, out, { pageSize: ps })).toBe(NvmeStatus.Success)
          expect(pairs(out)).toEqual(l.expect)
          expect(out.total).toBe(len)
          // one read per list page, of the entries needed only
          expect(host.reads).toBe(l.listPages)
        },
      ),
      { numRuns: fuzzRuns(150) },
    )
  })

  it('also for a first list at any qword-aligned offset (lists that chain after a few slots, or at once)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3 * 4096, max: 1 << 20 }), fc.nat(), fc.integer(), (len, slot, seed) => {
        host.reset()
        const rnd = prng(seed)
        const l = layout(4096, len, 0, rnd, (slot % 512) * 8)
        expect(walkPrp(l.prp1, l.prp2, len, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
        expect(pairs(out)).toEqual(l.expect)
        expect(host.reads).toBe(l.listPages)
      }),
      { numRuns: fuzzRuns(100) },
    )
  })
})

describe('walkPrp: the simple cases', () => {
  it('length 0 is success with an empty list, nothing read', () => {
    out.push(1, 1)
    expect(walkPrp(0x1003, 0x77, 0, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(out.count).toBe(0)
    expect(host.reads).toBe(0)
  })

  it('one page: PRP2 is not looked at', () => {
    expect(walkPrp(0x10_0010, 0x1234567, 4096 - 16, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([[0x10_0010, 4080]])
  })

  it('two pages: PRP2 is the second page, merged when contiguous', () => {
    expect(walkPrp(0x10_0800, 0x20_0000, 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x10_0800, 2048],
      [0x20_0000, 2048],
    ])
    expect(walkPrp(0x10_0800, 0x10_1000, 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([[0x10_0800, 4096]])
    expect(host.reads).toBe(0)
  })

  it('64-bit entries: the upper halves count', () => {
    const list = 0x12_3456_7000
    host.writeEntries(list, [0xab_cdef_1000, 0xab_cdef_2000, 0x1f_ffff_f000_0000])
    expect(walkPrp(0x7_0000_0ffc, list, 4 + 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x7_0000_0ffc, 4],
      [0xab_cdef_1000, 8192],
      [0x1f_ffff_f000_0000, 4096],
    ])
  })

  it('a data page the IOMMU refuses is not noticed here (only list pages are read; the fault comes with the DMA)', () => {
    host.writeEntries(0x5000, [0xdead_0000, 0xbeef_0000])
    expect(host.pages.has(0xdead0)).toBe(false)
    expect(walkPrp(0x9999_0000, 0x5000, 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(out.count).toBe(3)
  })

  it('throws on a page size CC.MPS cannot give', () => {
    expect(() => walkPrp(0, 0, 1, host.read, out, { pageSize: 2048 })).toThrow(RangeError)
    expect(() => walkPrp(0, 0, 1, host.read, out, { pageSize: 12288 })).toThrow(RangeError)
    expect(() => walkPrp(0, 0, 1, host.read, out, { pageSize: 1 << 17 })).toThrow(RangeError)
  })
})

describe('walkPrp: hostile PRPs', () => {
  it('PRP1 not dword aligned: PRP Offset Invalid', () => {
    expect(walkPrp(0x1002, 0, 16, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
    expect(walkPrp(0x1001, 0x3000, 8192, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
  })

  it('PRP2 as the second page with an offset: PRP Offset Invalid', () => {
    expect(walkPrp(0x1000, 0x3008, 8192, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
    // the offset is in CC.MPS units: 0x3000 is not a 64 KiB page
    expect(walkPrp(0x1_0000, 0x3000, 65536 + 1, host.read, out, { pageSize: 65536 })).toBe(NvmeStatus.PrpOffsetInvalid)
  })

  it('PRP2 as a list pointer not qword aligned: PRP Offset Invalid, nothing read', () => {
    host.writeEntries(0x5000, [0x2000, 0x3000])
    expect(walkPrp(0x1000, 0x5004, 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
    expect(host.reads).toBe(0)
  })

  it('a PRP list entry with an offset: PRP Offset Invalid', () => {
    host.writeEntries(0x5000, [0x2000, 0x3200, 0x4000])
    expect(walkPrp(0x1000, 0x5000, 4 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
    // ... even one of 4 bytes (only PRP1 may have an offset)
    host.writeEntries(0x5000, [0x2004, 0x3000, 0x4000])
    expect(walkPrp(0x1000, 0x5000, 4 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
  })

  it('a link to the next list page with an offset: PRP Offset Invalid', () => {
    // a list starting in the last slot of its page: that slot is the link
    host.writeEntries(0x5ff8, [0x8100])
    expect(walkPrp(0x1000, 0x5ff8, 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.PrpOffsetInvalid)
    expect(host.reads).toBe(1)
  })

  it('a PRP list page the IOMMU refuses: Data Transfer Error', () => {
    expect(walkPrp(0x1000, 0x5000, 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.DataTransferError)
    // a second list page unmapped (the first chains to it)
    const first = Array.from({ length: 511 }, (_, i) => 0x100_0000 + i * 4096)
    host.writeEntries(0x5000, [...first, 0x9000])
    expect(walkPrp(0x1000, 0x5000, 4096 + 600 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.DataTransferError)
    expect(host.reads).toBe(3)
  })

  it('only the entries needed are read: a short list in the first 4 KiB of a 64 KiB page, the rest unmapped, is fine', () => {
    host.writeEntries(0x10_0000, [0x20_0000, 0x30_0000])
    expect(host.pages.has(0x101)).toBe(false)
    expect(walkPrp(0x1_0000, 0x10_0000, 3 * 65536, host.read, out, { pageSize: 65536 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x1_0000, 65536],
      [0x20_0000, 65536],
      [0x30_0000, 65536],
    ])
    expect(host.readBytes).toBe(16)
  })

  it('a PRP list that links back to itself: terminates, covers the length with repeated pages, reads a bounded amount', () => {
    const list = 0x40_0000
    const data = Array.from({ length: 511 }, (_, i) => 0x800_0000 + i * 8192)
    host.writeEntries(list, [...data, list])
    const len = 4096 + 4000 * 4096 // 4000 entries: the list is walked ~8 times
    const big = new IoVecList(8192)
    expect(walkPrp(0x1000, list, len, host.read, big, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(big.total).toBe(len)
    expect(big.count).toBe(4001)
    expect(big.addr[1]).toBe(data[0])
    expect(big.addr[512]).toBe(data[0])
    expect(host.reads).toBe(Math.ceil(4000 / 511))
    expect(host.readBytes).toBeLessThanOrEqual(8 * (4000 + Math.ceil(4000 / 511)))
  })

  it('a list that links to itself from its only slot: terminates (the next read is a whole page)', () => {
    host.writeEntries(0x7ff8, [0x7000])
    host.writeEntries(0x7000, Array.from({ length: 511 }, (_, i) => 0x100_0000 + i * 4096))
    expect(walkPrp(0x1000, 0x7ff8, 4096 + 3 * 4096, host.read, out, { pageSize: 4096 })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x1000, 4096],
      [0x100_0000, 3 * 4096],
    ])
    expect(host.reads).toBe(2)
  })

  it('more list pages than maxListPages: Invalid Field in Command', () => {
    const list = 0x40_0000
    host.writeEntries(list, [...Array.from({ length: 511 }, (_, i) => 0x800_0000 + i * 8192), list])
    expect(walkPrp(0x1000, list, 4096 + 1022 * 4096, host.read, new IoVecList(2048), { pageSize: 4096, maxListPages: 2 })).toBe(NvmeStatus.Success)
    // 511 + 512 entries fit in two list pages, one more needs a third
    expect(walkPrp(0x1000, list, 4096 + 1023 * 4096, host.read, new IoVecList(2048), { pageSize: 4096, maxListPages: 2 })).toBe(NvmeStatus.Success)
    expect(walkPrp(0x1000, list, 4096 + 1024 * 4096, host.read, new IoVecList(2048), { pageSize: 4096, maxListPages: 2 })).toBe(NvmeStatus.InvalidField)
  })

  it('an output list too small for the ranges: Internal Error, not a throw', () => {
    host.writeEntries(0x5000, [0x10_0000, 0x30_0000, 0x50_0000])
    expect(walkPrp(0x1000, 0x5000, 4 * 4096, host.read, new IoVecList(3), { pageSize: 4096 })).toBe(NvmeStatus.InternalError)
    expect(walkPrp(0x1000, 0x5000, 4 * 4096, host.read, new IoVecList(4), { pageSize: 4096 })).toBe(NvmeStatus.Success)
  })
})

describe('walkPrp: fuzz', () => {
  it('random list pages never throw, and the reads stay within the entries the length implies', () => {
    fc.assert(
      fc.property(fc.constantFrom(4096, 8192, 65536), fc.integer({ min: 1, max: 8 << 20 }), fc.integer(), (ps, len, seed) => {
        host.reset()
        const rnd = prng(seed)
        // four list pages of random entries, biased to link among themselves and to page-aligned data
        const pages = [0, 1, 2, 3].map((i) => (0x10 + i * 0x10) * ps)
        for (const p of pages) {
          const e: number[] = []
          for (let i = 0; i < ps / 8; i++) {
            const r = rnd()
            // the last slot (where a link goes) mostly links to one of the four pages
            if (i === ps / 8 - 1 && r < 0.85) e.push(pages[Math.floor(rnd() * 4)]!)
            else if (r < 0.0005) e.push(Math.floor(rnd() * TWO32) * TWO32 + Math.floor(rnd() * TWO32))
            else if (r < 0.02) e.push(pages[Math.floor(rnd() * 4)]! + (rnd() < 0.02 ? Math.floor(rnd() * (ps / 8)) * 8 : 0))
            else e.push(Math.floor(rnd() * 2 ** 20) * ps + (rnd() < 0.001 ? 4 : 0))
          }
          host.writeEntries(p, e)
        }
        const prp1 = Math.floor(rnd() * 2 ** 30) * 4 + (rnd() < 0.03 ? 1 : 0)
        const prp2 = rnd() < 0.9 ? pages[Math.floor(rnd() * 4)]! + Math.floor(rnd() * (ps / 8)) * 8 : Math.floor(rnd() * 2 ** 40)
        const big = new IoVecList(Math.ceil(len / ps) + 2)
        const st = walkPrp(prp1, prp2, len, host.read, big, { pageSize: ps })
        expect([NvmeStatus.Success, NvmeStatus.PrpOffsetInvalid, NvmeStatus.DataTransferError]).toContain(st)
        if (st === NvmeStatus.Success) expect(big.total).toBe(len)
        // every read is of data entries the length needs plus at most one link, and every
        // list page after the first holds ps / 8 - 1 data entries
        const entries = Math.ceil(len / ps)
        expect(host.readBytes).toBeLessThanOrEqual(8 * (entries + host.reads))
        expect(host.reads).toBeLessThanOrEqual(2 + Math.ceil(entries / (ps / 8 - 1)))
      }),
      { numRuns: fuzzRuns(200) },
    )
  })
})
