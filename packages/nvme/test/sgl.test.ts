// The SGL walker against SGLs built as Linux's nvme_pci_setup_sgls builds them and any
// valid chain (properties), hostile SGLs (each with its exact status) and random
// descriptors and segments (fuzz). Host memory is a fake: a DRAM array behind a map of
// readable 4 KiB IOVA pages; only the SGL segments are mapped, because the walker reads
// nothing else.
import { NvmeStatus } from '@ipukit/bdev'
import { IoVecList } from '@ipukit/memory'
import fc from 'fast-check'
import { beforeEach, describe, expect, it } from 'vitest'
import { type SglOptions, walkSgl } from '../src/internal/sgl.js'
import { FakeHost, fuzzRuns, pairs, prng, TWO32 } from './support/fake-host.js'

const host = new FakeHost()
const out = new IoVecList(2048)
const buckets = new IoVecList(2048)
const READ: SglOptions = { write: false }
const WRITE: SglOptions = { write: true }

interface Desc {
  /** SGL Identifier: type << 4 | sub type */
  id: number
  addr: number
  len: number
}

const db = (addr: number, len: number): Desc => ({ id: 0x00, addr, len })
const bb = (len: number): Desc => ({ id: 0x10, addr: 0, len })
const seg = (addr: number, len: number): Desc => ({ id: 0x20, addr, len })
const lastSeg = (addr: number, len: number): Desc => ({ id: 0x30, addr, len })

function encode(ds: Desc[]): Uint8Array {
  const b = new Uint8Array(ds.length * 16)
  const dv = new DataView(b.buffer)
  ds.forEach((d, i) => {
    dv.setUint32(i * 16, d.addr % TWO32, true)
    dv.setUint32(i * 16 + 4, Math.floor(d.addr / TWO32), true)
    dv.setUint32(i * 16 + 8, d.len, true)
    b[i * 16 + 15] = d.id
  })
  return b
}

/** Maps and writes a segment of descriptors at iova. */
function segment(iova: number, ds: Desc[]): void {
  const b = encode(ds)
  host.map(iova, b.length)
  host.write(iova, b)
}

function push(r: [number, number][], a: number, n: number): void {
  const last = r[r.length - 1]
  if (last !== undefined && last[0] + last[1] === a) last[1] += n
  else if (n > 0) r.push([a, n])
}

/** What the walk should give: the descriptors' ranges and buckets up to `length`, in order. */
function expected(ds: Desc[], length: number, write: boolean): { data: [number, number][]; buckets: [number, number][] } {
  const data: [number, number][] = []
  const bkts: [number, number][] = []
  let left = length
  for (const d of ds) {
    if (left === 0) break
    if (d.id === 0x10 && write) continue
    const n = Math.min(d.len, left)
    if (d.id === 0x10) push(bkts, length - left, n)
    else push(data, d.addr, n)
    left -= n
  }
  return { data, buckets: bkts }
}

/** Data blocks of a buffer up to 1 MiB: byte-granular, anywhere below 2^48, some contiguous, some NULL descriptors. */
function buffer(rnd: () => number, count: number, withBuckets: boolean): Desc[] {
  const ds: Desc[] = []
  const each = Math.max(1, Math.floor((1 << 20) / count))
  for (let i = 0; i < count; i++) {
    const r = rnd()
    const len = 1 + Math.floor(rnd() * each)
    const prev = ds[ds.length - 1]
    if (withBuckets && r < 0.15) ds.push(bb(len))
    else if (r < 0.2) ds.push(db(Math.floor(rnd() * 2 ** 48), 0))
    else if (prev !== undefined && prev.id === 0 && r < 0.4) ds.push(db(prev.addr + prev.len, len))
    else ds.push(db(Math.floor(rnd() * (2 ** 48 - 2 ** 21)), len))
  }
  return ds
}

/** Distinct 4 KiB pages for segments, above 4 GiB, each followed by `span - 1` free pages (for segments that cross pages). */
function pageAllocator(rnd: () => number, span = 1): () => number {
  const used = new Set<number>()
  return () => {
    for (;;) {
      const p = (1 + Math.floor(rnd() * 4096)) * (TWO32 / 4096) + Math.floor(rnd() * (TWO32 / 4096))
      let free = true
      for (let i = 0; i < span; i++) if (used.has(p + i)) free = false
      if (free) {
        for (let i = 0; i < span; i++) used.add(p + i)
        return p * 4096
      }
    }
  }
}

/**
 * The SGL Linux's nvme_pci_setup_sgls (before SGL chaining was dropped) builds: one data
 * descriptor inline in SGL1, or a list from the 256-byte pool (at a 256-byte offset in a
 * page) for up to 16 descriptors, else 4 KiB pages of 256 descriptors where a page that
 * needs more moves its last descriptor to the next page and links to it there. SGL1 and
 * each link are a Last Segment when the segment has fewer than 256 descriptors, else a
 * 4 KiB Segment. (Linux sizes a chained segment one descriptor short, `entries` rather
 * than entries + 1, a slip its 127-segment cap keeps from ever mattering; built right
 * here.)
 */
function linuxSgl(ds: Desc[], rnd: () => number): { sgl1: Uint8Array; pages: number } {
  if (ds.length === 1) return { sgl1: encode(ds), pages: 0 }
  const page = pageAllocator(rnd)
  const setSeg = (addr: number, entries: number) => (entries < 256 ? lastSeg(addr, entries * 16) : seg(addr, 4096))
  const first = page() + (ds.length <= 16 ? Math.floor(rnd() * 16) * 256 : 0)
  const addrs = [first]
  const lists: Desc[][] = [[]]
  const sgl1 = encode([setSeg(first, ds.length)])
  let cur = lists[0]!
  let entries = ds.length
  let k = 0
  do {
    if (cur.length === 256) {
      const next = page()
      const moved = cur[255]!
      cur[255] = setSeg(next, entries + 1)
      cur = [moved]
      lists.push(cur)
      addrs.push(next)
    }
    cur.push(ds[k++]!)
  } while (--entries > 0)
  lists.forEach((l, i) => segment(addrs[i]!, l))
  return { sgl1, pages: lists.length }
}

/**
 * Any valid chain: segments of 1..300 descriptors at qword-aligned addresses (crossing
 * pages), linked by Segment descriptors and a final Last Segment. Every segment but the
 * last adds bytes to the transfer (the walker refuses one that does not: see sgl.ts).
 */
function chainSgl(ds: Desc[], rnd: () => number, write: boolean): { sgl1: Uint8Array; chunks: number } {
  if (ds.length === 1 && rnd() < 0.5) return { sgl1: encode(ds), chunks: 0 }
  const page = pageAllocator(rnd, 3)
  const counts = (p: Desc[]) => p.some((d) => d.len > 0 && !(d.id === 0x10 && write))
  const parts: Desc[][] = []
  for (let i = 0; i < ds.length; ) {
    const n = 1 + Math.floor(rnd() * 300)
    const p = ds.slice(i, i + n)
    const prev = parts[parts.length - 1]
    if (prev !== undefined && !counts(prev)) prev.push(...p)
    else parts.push(p)
    i += n
  }
  const addrs = parts.map(() => page() + Math.floor(rnd() * 512) * 8)
  const link = (i: number) => {
    const n = parts[i]!.length + (i < parts.length - 1 ? 1 : 0)
    return i === parts.length - 1 ? lastSeg(addrs[i]!, n * 16) : seg(addrs[i]!, n * 16)
  }
  let chunks = 0
  parts.forEach((p, i) => {
    const full = i < parts.length - 1 ? [...p, link(i + 1)] : p
    chunks += Math.ceil(full.length / 256)
    segment(addrs[i]!, full)
  })
  return { sgl1: encode([link(0)]), chunks }
}

const total = (ds: Desc[], write: boolean) => ds.reduce((t, d) => t + (d.id === 0x10 && write ? 0 : d.len), 0)

beforeEach(() => {
  host.reset()
})

describe('walkSgl: SGLs as Linux builds them (property)', () => {
  it('returns exactly the buffer, inline, in one segment or chained across 4 KiB segments', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 700 }), fc.boolean(), fc.integer(), (count, write, seed) => {
        host.reset()
        const rnd = prng(seed)
        // Linux's descriptors are its DMA segments: none empty
        const ds = buffer(rnd, count, false).filter((d) => d.len > 0)
        if (ds.length === 0) ds.push(db(0x1000, 512))
        const { sgl1, pages } = linuxSgl(ds, rnd)
        const len = total(ds, write)
        const e = expected(ds, len, write)
        expect(walkSgl(sgl1, len, host.read, out, buckets, write ? WRITE : READ)).toBe(NvmeStatus.Success)
        expect(pairs(out)).toEqual(e.data)
        expect(out.total).toBe(len)
        expect(buckets.count).toBe(0)
        // one read per segment: each is at most 256 descriptors
        expect(host.reads).toBe(pages)
      }),
      { numRuns: fuzzRuns(120) },
    )
  })
})

describe('walkSgl: any valid chain (property)', () => {
  it('data blocks, NULL descriptors and bit buckets over segments of any size, for the exact length or less (the SGL may exceed it)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 900 }),
        fc.boolean(),
        fc.boolean(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        (count, write, exact, cut, seed) => {
          host.reset()
          const rnd = prng(seed)
          const ds = buffer(rnd, count, true)
          if (total(ds, write) === 0) ds.push(db(0x1000, 512))
          const { sgl1, chunks } = chainSgl(ds, rnd, write)
          const all = total(ds, write)
          const len = exact ? all : Math.max(1, Math.floor(all * cut))
          const e = expected(ds, len, write)
          const o: SglOptions = { write, allowBitBucket: true }
          expect(walkSgl(sgl1, len, host.read, out, buckets, o)).toBe(NvmeStatus.Success)
          expect(pairs(out)).toEqual(e.data)
          expect(pairs(buckets)).toEqual(e.buckets)
          expect(out.total + buckets.total).toBe(len)
          if (write) expect(buckets.count).toBe(0)
          // segments are read in 4 KiB chunks, and not past the length
          expect(host.reads).toBeLessThanOrEqual(chunks)
        },
      ),
      { numRuns: fuzzRuns(120) },
    )
  })
})

describe('walkSgl: the simple cases', () => {
  it('length 0 is success with empty lists, nothing read', () => {
    out.push(1, 1)
    expect(walkSgl(encode([lastSeg(0x5000, 16)]), 0, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(out.count + buckets.count + host.reads).toBe(0)
  })

  it('a Data Block in SGL1 describes the whole transfer', () => {
    expect(walkSgl(encode([db(0x1_2345_6789, 5000)]), 5000, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([[0x1_2345_6789, 5000]])
    expect(host.reads).toBe(0)
  })

  it('a segment of 600 descriptors is read in 4 KiB chunks: 3 reads', () => {
    const ds = Array.from({ length: 600 }, (_, i) => db(0x100_0000 + i * 1024, 512))
    segment(0x8_0000, ds)
    expect(walkSgl(encode([lastSeg(0x8_0000, 600 * 16)]), 600 * 512, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(out.count).toBe(600)
    expect(host.reads).toBe(3)
    expect(host.readBytes).toBe(600 * 16)
  })

  it('stops reading once the length is covered', () => {
    const ds = Array.from({ length: 600 }, (_, i) => db(0x100_0000 + i * 1024, 512))
    segment(0x8_0000, ds)
    expect(walkSgl(encode([lastSeg(0x8_0000, 600 * 16)]), 512 * 10, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(out.count).toBe(10)
    expect(host.reads).toBe(1)
  })

  it('a Segment (not Last Segment) whose segment ends with a data block ends the SGL there (as QEMU and SPDK take it)', () => {
    segment(0x8_0000, [db(0x10_0000, 4096), db(0x30_0000, 4096)])
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(out.count).toBe(2)
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 8193, host.read, out, buckets, READ)).toBe(NvmeStatus.DataSglLengthInvalid)
  })

  it('a data block in unmapped memory is not noticed here (only segments are read)', () => {
    segment(0x8_0000, [db(0xdead_0000, 4096)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 16)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
  })

  it('Bit Buckets in a read: recorded as (offset in the transfer, length), counted in the length', () => {
    segment(0x8_0000, [db(0x10_0000, 1000), bb(24), bb(8), db(0x20_0000, 500), bb(100)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 80)]), 1600, host.read, out, buckets, { write: false, allowBitBucket: true })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x10_0000, 1000],
      [0x20_0000, 500],
    ])
    expect(pairs(buckets)).toEqual([
      [1000, 32],
      [1532, 68],
    ])
  })
})

describe('walkSgl: hostile SGLs', () => {
  it('a segment that points at itself and adds nothing: Invalid SGL Segment Descriptor, after one read', () => {
    segment(0x8_0000, [seg(0x8_0000, 16)])
    expect(walkSgl(encode([seg(0x8_0000, 16)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
    expect(host.reads).toBe(1)
    // the same with NULL descriptors before the link
    segment(0x9_0000, [db(0, 0), db(0x1000, 0), seg(0x9_0000, 48)])
    expect(walkSgl(encode([seg(0x9_0000, 48)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
  })

  it('a segment that points at itself and adds data: repeats it until the length is covered, or until maxDescriptors', () => {
    segment(0x8_0000, [db(0x10_0000, 512), seg(0x8_0000, 32)])
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual(Array.from({ length: 8 }, () => [0x10_0000, 512]))
    expect(host.reads).toBe(8)
    host.reads = 0
    const capped: SglOptions = { write: false, maxDescriptors: 64 }
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 1 << 20, host.read, out, buckets, capped)).toBe(NvmeStatus.InvalidSglDescriptorCount)
    expect(host.reads).toBeLessThanOrEqual(32)
    // two segments pointing at each other: ends at the default cap (1 << 16 descriptors)
    segment(0x9_0000, [db(0x20_0000, 1), seg(0xa_0000, 32)])
    segment(0xa_0000, [db(0x30_0000, 1), seg(0x9_0000, 32)])
    host.reads = 0
    expect(walkSgl(encode([seg(0x9_0000, 32)]), 1 << 20, host.read, new IoVecList(1 << 16), buckets, READ)).toBe(NvmeStatus.InvalidSglDescriptorCount)
    expect(host.reads).toBe(1 << 15)
    // ... or, when the loop goes through a Last Segment, at once
    segment(0xa_0000, [db(0x30_0000, 1), lastSeg(0x9_0000, 32)])
    expect(walkSgl(encode([seg(0x9_0000, 32)]), 1 << 20, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
  })

  it('a (Last) Segment length not a multiple of 16, or zero: Invalid SGL Segment Descriptor', () => {
    segment(0x8_0000, [db(0x10_0000, 4096), db(0x20_0000, 4096)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 24)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
    expect(walkSgl(encode([seg(0x8_0000, 0)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
    // ... and as the link in a segment
    segment(0x9_0000, [db(0x10_0000, 4096), lastSeg(0x8_0000, 31)])
    expect(walkSgl(encode([seg(0x9_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
    expect(host.reads).toBe(1)
  })

  it('a segment not qword aligned: Invalid SGL Segment Descriptor', () => {
    segment(0x8_0000, [db(0x10_0000, 4096)])
    expect(walkSgl(encode([lastSeg(0x8_0004, 16)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
  })

  it('a Last Segment containing a (Last) Segment descriptor: Invalid SGL Segment Descriptor', () => {
    segment(0x9_0000, [db(0x10_0000, 4096)])
    segment(0x8_0000, [db(0x20_0000, 4096), seg(0x9_0000, 16)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
    segment(0x8_0000, [db(0x20_0000, 4096), lastSeg(0x9_0000, 16)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglSegmentDescriptor)
  })

  it('a Segment descriptor other than the last of its segment: Invalid Number of SGL Descriptors', () => {
    segment(0x9_0000, [db(0x10_0000, 4096)])
    segment(0x8_0000, [db(0x20_0000, 4096), lastSeg(0x9_0000, 16), db(0x30_0000, 4096)])
    expect(walkSgl(encode([seg(0x8_0000, 48)]), 3 * 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglDescriptorCount)
  })

  it('a Keyed Data Block (RDMA) over PCIe, a Transport Data Block, reserved and vendor specific types: SGL Descriptor Type Invalid', () => {
    for (const id of [0x40, 0x50, 0x60, 0xe0, 0xf0]) {
      expect(walkSgl(encode([{ id, addr: 0x10_0000, len: 4096 }]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
      segment(0x8_0000, [db(0x20_0000, 512), { id, addr: 0x10_0000, len: 4096 }])
      expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
    }
  })

  it('the Offset sub type (reserved for PCIe) or any other: SGL Descriptor Type Invalid, not SGL Offset Invalid', () => {
    expect(walkSgl(encode([{ id: 0x01, addr: 0, len: 4096 }]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
    expect(walkSgl(encode([{ id: 0x0a, addr: 0, len: 4096 }]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
    segment(0x8_0000, [db(0x20_0000, 4096)])
    expect(walkSgl(encode([{ id: 0x31, addr: 0x8_0000, len: 16 }]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
    expect(walkSgl(encode([{ id: 0x11, addr: 0, len: 4096 }]), 4096, host.read, out, buckets, { write: false, allowBitBucket: true })).toBe(
      NvmeStatus.SglDescriptorTypeInvalid,
    )
  })

  it('data blocks shorter than the transfer: Data SGL Length Invalid', () => {
    expect(walkSgl(encode([db(0x10_0000, 4095)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.DataSglLengthInvalid)
    segment(0x9_0000, [db(0x10_0000, 4096), bb(4096)])
    segment(0x8_0000, [db(0x20_0000, 4096), lastSeg(0x9_0000, 32)])
    const bits: SglOptions = { write: false, allowBitBucket: true }
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 3 * 4096 + 1, host.read, out, buckets, bits)).toBe(NvmeStatus.DataSglLengthInvalid)
    // in a write the bit bucket counts for nothing
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 3 * 4096, host.read, out, buckets, { write: true, allowBitBucket: true })).toBe(NvmeStatus.DataSglLengthInvalid)
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 2 * 4096, host.read, out, buckets, { write: true, allowBitBucket: true })).toBe(NvmeStatus.Success)
  })

  it('Address + Length beyond 2^64: Data SGL Length Invalid', () => {
    const top = new Uint8Array(16)
    top.fill(0xff, 0, 8)
    top[8] = 2
    expect(walkSgl(top, 2, host.read, out, buckets, READ)).toBe(NvmeStatus.DataSglLengthInvalid)
    top[8] = 1 // ends exactly at 2^64: allowed (and the IOMMU will refuse it later)
    expect(walkSgl(top, 1, host.read, out, buckets, READ)).toBe(NvmeStatus.Success)
    top[15] = 0x30
    top[8] = 0x20
    top[0] = 0xf0
    expect(walkSgl(top, 1, host.read, out, buckets, READ)).toBe(NvmeStatus.DataSglLengthInvalid)
  })

  it('a segment in memory the IOMMU refuses: Data Transfer Error', () => {
    expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.DataTransferError)
    segment(0x8_0000, [db(0x20_0000, 4096), lastSeg(0x9_0000, 16)])
    expect(walkSgl(encode([seg(0x8_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.DataTransferError)
    // a segment that runs off its mapped page into an unmapped one
    segment(0xa_0ff0, [db(0x20_0000, 4096)])
    expect(walkSgl(encode([lastSeg(0xa_0ff0, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.DataTransferError)
  })

  it('more descriptors than maxDescriptors: Invalid Number of SGL Descriptors', () => {
    const ds = Array.from({ length: 100 }, (_, i) => db(0x100_0000 + i * 1024, 512))
    segment(0x8_0000, ds)
    const sgl1 = encode([lastSeg(0x8_0000, 100 * 16)])
    expect(walkSgl(sgl1, 100 * 512, host.read, out, buckets, { write: false, maxDescriptors: 100 })).toBe(NvmeStatus.InvalidSglDescriptorCount)
    expect(walkSgl(sgl1, 100 * 512, host.read, out, buckets, { write: false, maxDescriptors: 101 })).toBe(NvmeStatus.Success)
    // a huge segment of NULL descriptors, read in 4 KiB chunks: the whole of it (SGL1 and
    // 65535 descriptors are the default cap) ends short, more ends at the cap
    host.map(0x100_0000, 1 << 20)
    host.reads = 0
    expect(walkSgl(encode([lastSeg(0x100_0000, (1 << 20) - 16)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.DataSglLengthInvalid)
    expect(host.reads).toBe(256)
    expect(walkSgl(encode([lastSeg(0x100_0000, 1 << 20)]), 4096, host.read, out, buckets, READ)).toBe(NvmeStatus.InvalidSglDescriptorCount)
    host.reads = 0
    const capped: SglOptions = { write: false, maxDescriptors: 1000 }
    expect(walkSgl(encode([lastSeg(0x100_0000, 1 << 20)]), 4096, host.read, out, buckets, capped)).toBe(NvmeStatus.InvalidSglDescriptorCount)
    expect(host.reads).toBe(4)
  })

  it('more data blocks than the output list holds: Invalid Number of SGL Descriptors, not a throw', () => {
    const ds = Array.from({ length: 10 }, (_, i) => db(0x100_0000 + i * 1024, 512))
    segment(0x8_0000, ds)
    expect(walkSgl(encode([lastSeg(0x8_0000, 160)]), 5120, host.read, new IoVecList(9), buckets, READ)).toBe(NvmeStatus.InvalidSglDescriptorCount)
  })

  it('a Bit Bucket in a write has no effect (§4.3.2: treated as if its length were 0)', () => {
    segment(0x8_0000, [db(0x10_0000, 4096), bb(4096), db(0x20_0000, 4096)])
    const sgl1 = encode([lastSeg(0x8_0000, 48)])
    expect(walkSgl(sgl1, 8192, host.read, out, buckets, { write: true, allowBitBucket: true })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([
      [0x10_0000, 4096],
      [0x20_0000, 4096],
    ])
    expect(buckets.count).toBe(0)
    // in a read it discards the middle 4 KiB
    expect(walkSgl(sgl1, 8192, host.read, out, buckets, { write: false, allowBitBucket: true })).toBe(NvmeStatus.Success)
    expect(pairs(out)).toEqual([[0x10_0000, 4096]])
    expect(pairs(buckets)).toEqual([[4096, 4096]])
  })

  it('a Bit Bucket when the controller does not support them: SGL Descriptor Type Invalid', () => {
    segment(0x8_0000, [db(0x10_0000, 4096), bb(4096)])
    expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 8192, host.read, out, buckets, READ)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
    expect(walkSgl(encode([lastSeg(0x8_0000, 32)]), 8192, host.read, out, buckets, WRITE)).toBe(NvmeStatus.SglDescriptorTypeInvalid)
  })

  it('dword granularity required: SGL Data Block Granularity Invalid', () => {
    const o: SglOptions = { write: false, dwordGranularity: true }
    expect(walkSgl(encode([db(0x10_0002, 4096)]), 4096, host.read, out, buckets, o)).toBe(NvmeStatus.SglDataBlockGranularityInvalid)
    expect(walkSgl(encode([db(0x10_0000, 4097)]), 4096, host.read, out, buckets, o)).toBe(NvmeStatus.SglDataBlockGranularityInvalid)
    expect(walkSgl(encode([db(0x10_0004, 4096)]), 4096, host.read, out, buckets, o)).toBe(NvmeStatus.Success)
  })
})

describe('walkSgl: fuzz', () => {
  const STATUSES = new Set<number>([
    NvmeStatus.Success,
    NvmeStatus.DataTransferError,
    NvmeStatus.InvalidSglSegmentDescriptor,
    NvmeStatus.InvalidSglDescriptorCount,
    NvmeStatus.DataSglLengthInvalid,
    NvmeStatus.SglDescriptorTypeInvalid,
    NvmeStatus.SglDataBlockGranularityInvalid,
  ])
  const WINDOW = 0x40_0000 // 16 KiB of segments at 4 MiB, random bytes biased to valid-looking descriptors
  const SIZE = 0x4000
  const raw = new Uint8Array(16)

  // Mostly data blocks of up to 4 KiB and short segments (1 to 4 descriptors) inside the
  // window, so that walks go deep; sometimes anything.
  const TYPES = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x20, 0x20, 0x30, 0x40, 0x01, 0x21, 0x50]
  function descriptor(rnd: () => number, into: Uint8Array, at: number): void {
    const dv = new DataView(into.buffer, into.byteOffset + at, 16)
    const id = rnd() < 0.95 ? TYPES[Math.floor(rnd() * TYPES.length)]! : Math.floor(rnd() * 256)
    const near = rnd() < 0.9
    const lo = near ? WINDOW + Math.floor(rnd() * SIZE) : Math.floor(rnd() * TWO32)
    dv.setUint32(0, near && rnd() < 0.95 ? lo & ~7 : lo, true)
    dv.setUint32(4, near ? 0 : rnd() < 0.5 ? 0xffffffff : Math.floor(rnd() * TWO32), true)
    const link = id >> 4 === 2 || id >> 4 === 3
    const r = rnd()
    const len = r < 0.9 ? (link ? (1 + Math.floor(rnd() * 4)) * 16 : Math.floor(rnd() * 4096)) : r < 0.95 ? Math.floor(rnd() * 8192) : Math.floor(rnd() * TWO32)
    dv.setUint32(8, len, true)
    for (let i = 12; i < 15; i++) into[at + i] = rnd() < 0.9 ? 0 : Math.floor(rnd() * 256)
    into[at + 15] = id
  }

  it('random descriptors and segments never throw, end with a known status, and take a bounded number of reads', () => {
    const bytes = new Uint8Array(SIZE + 64)
    fc.assert(
      fc.property(
        fc.integer(),
        fc.oneof(fc.integer({ min: 0, max: 1 << 16 }), fc.integer({ min: 0, max: 1 << 22 })),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 256 }),
        (seed, len, write, bits, max) => {
          host.reset()
          const rnd = prng(seed)
          // half the runs: random descriptors; the other half: a web of short segments (data
          // blocks, then a link to any segment, loops included) with a few bytes corrupted
          const starts: number[] = []
          const sizes: number[] = []
          if (rnd() < 0.5) {
            for (let i = 0; i < bytes.length; i += 16) descriptor(rnd, bytes, i)
            starts.push(Math.floor(rnd() * (SIZE / 16)) * 16)
          } else {
            for (let at = 0; at + 80 <= SIZE; ) {
              const k = 2 + Math.floor(rnd() * 4)
              starts.push(at)
              sizes.push(k)
              at += k * 16
            }
            const bdv = new DataView(bytes.buffer)
            starts.forEach((at, i) => {
              const k = sizes[i]!
              for (let j = 0; j < k - 1; j++) {
                const d = at + j * 16
                bdv.setUint32(d, Math.floor(rnd() * TWO32), true)
                bdv.setUint32(d + 4, Math.floor(rnd() * 0x10000), true)
                bdv.setUint32(d + 8, Math.floor(rnd() * 2048), true)
                bytes.fill(0, d + 12, d + 15)
                bytes[d + 15] = bits && rnd() < 0.2 ? 0x10 : 0x00
              }
              const d = at + (k - 1) * 16
              const t = Math.floor(rnd() * starts.length)
              bdv.setUint32(d, WINDOW + starts[t]!, true)
              bdv.setUint32(d + 4, 0, true)
              bdv.setUint32(d + 8, sizes[t]! * 16, true)
              bytes.fill(0, d + 12, d + 15)
              bytes[d + 15] = rnd() < 0.97 ? 0x20 : 0x30
            })
            for (let n = Math.floor(rnd() * 4); n > 0; n--) bytes[Math.floor(rnd() * SIZE)] = Math.floor(rnd() * 256)
          }
          host.map(WINDOW, bytes.length)
          host.write(WINDOW, bytes)
          // sometimes a page of the window unmapped
          if (rnd() < 0.15) host.unmap(WINDOW + Math.floor(rnd() * (SIZE / 4096)) * 4096, 4096)
          descriptor(rnd, raw, 0)
          // SGL1: mostly a Segment or Last Segment into the window
          if (rnd() < 0.7) {
            const dv = new DataView(raw.buffer)
            const t = Math.floor(rnd() * starts.length)
            dv.setUint32(0, WINDOW + starts[t]!, true)
            dv.setUint32(4, 0, true)
            dv.setUint32(8, (sizes[t] ?? 1 + Math.floor(rnd() * 4)) * 16, true)
            raw[15] = rnd() < (sizes.length > 0 ? 0.95 : 0.7) ? 0x20 : 0x30
          }
          const o: SglOptions = { write, allowBitBucket: bits, dwordGranularity: !bits && rnd() < 0.1, maxDescriptors: max }
          const small = new IoVecList(64)
          const st = walkSgl(raw, len, host.read, small, buckets, o)
          expect(STATUSES.has(st)).toBe(true)
          if (st === NvmeStatus.Success) expect(small.total + buckets.total).toBe(len)
          else expect(small.total + buckets.total).toBeLessThanOrEqual(len)
          // every read is of at least one descriptor, and each counts against the cap
          expect(host.reads).toBeLessThanOrEqual(max)
          expect(host.readBytes).toBeLessThanOrEqual(max * 16)
        },
      ),
      { numRuns: fuzzRuns(400) },
    )
  })
})
