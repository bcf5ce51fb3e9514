// The SGL walker: turns a command's SGL (NVMe Base, "Scatter Gather List (SGL)": §4.3.2 in
// the 2.1 numbering, cited so below) into host IOVA ranges. As for PRPs, no data moves: the
// only host memory read is the SGL segments themselves, through the function's IOMMU
// context; a Data Block into memory the IOMMU refuses faults later, when the data moves.
//
// A descriptor is 16 bytes (§4.3.2, Generic SGL Descriptor Format):
//
//   bytes 7:0    Address (u64)         byte 15   SGL Identifier
//   bytes 11:8   Length (u32)                    bits 7:4 type, bits 3:0 sub type
//   bytes 14:12  reserved
//
// SGL1 (the DPTR field of the SQE) is the first segment: either a single data descriptor
// that describes the whole transfer, or a (Last) Segment descriptor pointing to a segment
// in host memory, an array of descriptors whose last one may point to the next segment.
// A Last Segment descriptor points to the last segment, which holds no more pointers.
//
// Bounds: every descriptor read counts against `maxDescriptors` (and reads are at most one
// per CHUNK descriptors or per segment), a segment that adds no bytes to the transfer is
// refused, and the walk stops as soon as the transfer length is covered (§4.3.2: "The
// controller is not required to examine for errors any SGL descriptor that is not used for
// data transfer"), so a segment chain that loops terminates.
import { NvmeStatus } from '@ipukit/bdev'
import type { IoVecList } from '@ipukit/memory'
import type { HostRead } from './prp.js'

export type { HostRead } from './prp.js'

export interface SglOptions {
  /** at most this many descriptors walked per command (SGL1 included); default 1 << 16 */
  maxDescriptors?: number
  /** host-to-controller (a write: the SGL is a source buffer) or controller-to-host (a read: a destination buffer) */
  write: boolean
  /** SGLS bit 16: Bit Bucket descriptors are supported (default false: they are an unsupported type) */
  allowBitBucket?: boolean
  /** SGLS bits 1:0 = 10b: Data Blocks need dword alignment and granularity (default false: byte granularity, SGLS = 01b) */
  dwordGranularity?: boolean
}

/** SGL Descriptor Type (§4.3.2, SGL Descriptor Type figure). */
export const SglType = {
  DataBlock: 0x0,
  BitBucket: 0x1,
  Segment: 0x2,
  LastSegment: 0x3,
  KeyedDataBlock: 0x4,
  TransportDataBlock: 0x5,
  VendorSpecific: 0xf,
} as const

/** SGL Descriptor Sub Type: Address is the only one NVMe over PCIe defines (Offset, 1h, is reserved for PCIe). */
export const SglSubType = { Address: 0x0, Offset: 0x1 } as const

/** Descriptors read from host memory per read: 4 KiB, as QEMU's nvme_map_sgl reads segments. */
const CHUNK = 256
const DESC = 16
const TWO32 = 0x1_0000_0000
const DEFAULT_MAX_DESCRIPTORS = 1 << 16

const scratch = new Uint8Array(CHUNK * DESC)
const dv = new DataView(scratch.buffer)
// a view of the first n descriptors, made once per n
const views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(CHUNK + 1)

function descriptors(n: number): Uint8Array {
  let v = views[n]
  if (v === undefined) v = views[n] = scratch.subarray(0, n * DESC)
  return v
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
}

/** Appends a range, merged with the last one when contiguous; false when the list is full. */
function append(l: IoVecList, addr: number, len: number): boolean {
  const c = l.count
  if (c > 0 && l.addr[c - 1]! + l.len[c - 1]! === addr) {
    l.len[c - 1] = l.len[c - 1]! + len
    return true
  }
  if (c === l.capacity) return false
  l.push(addr, len)
  return true
}

/**
 * One data descriptor (anything but a (Last) Segment), with `left` bytes of the transfer
 * not yet described, `at` bytes in: a Data Block adds its range to `out`, a Bit Bucket in a
 * read adds (offset in the transfer, length) to `buckets`. Returns the bytes of the
 * transfer it describes, or minus an NVMe status.
 */
function data(id: number, lo: number, hi: number, len: number, left: number, at: number, out: IoVecList, buckets: IoVecList, o: SglOptions): number {
  const type = id >> 4
  if (type === SglType.DataBlock) {
    // §4.3.2, SGL Descriptor Sub Type: Offset (1h) "For NVMe over PCIe implementations,
    // this Sub Type is reserved", and a reserved sub type "shall be processed as having an
    // SGL Descriptor Type error" (so not SGL Offset Invalid, which is for fabrics'
    // in-capsule data).
    if ((id & 0xf) !== SglSubType.Address) return -NvmeStatus.SglDescriptorTypeInvalid
    // §4.3.2: with dword granularity the controller "should abort the command with a
    // status code of SGL Data Block Granularity Invalid" (2.2; 2.1 also allows Invalid
    // Field in Command)
    if (o.dwordGranularity === true && ((lo | len) & 3) !== 0) return -NvmeStatus.SglDataBlockGranularityInvalid
    // §4.3.2, SGL Data Block descriptor: Address + Length > 2^64 "shall be processed as
    // having a Data SGL Length Invalid ... error"
    if (hi === 0xffffffff && lo + len > TWO32) return -NvmeStatus.DataSglLengthInvalid
    const n = len < left ? len : left
    // more fragments than the controller takes: the host exceeded its descriptor budget
    if (n !== 0 && !append(out, hi * TWO32 + lo, n)) return -NvmeStatus.InvalidSglDescriptorCount
    return n
  }
  if (type === SglType.BitBucket) {
    // Unsupported (SGLS bit 16 clear): "an unsupported value ... shall be processed as
    // having an SGL Descriptor Type error". Its sub type "shall be cleared to 0h".
    if (o.allowBitBucket !== true || (id & 0xf) !== 0) return -NvmeStatus.SglDescriptorTypeInvalid
    // §4.3.2, SGL Bit Bucket descriptor: in a source data buffer (a write) "the Bit Bucket
    // Descriptor shall be treated as if this field were cleared to 0h (i.e., the Bit Bucket
    // Descriptor has no effect)"; in a destination buffer (a read) its length is discarded
    // source data and counts in the transfer length. (QEMU skips them in writes too.)
    if (o.write) return 0
    const n = len < left ? len : left
    if (n !== 0 && !append(buckets, at, n)) return -NvmeStatus.InvalidSglDescriptorCount
    return n
  }
  // Keyed Data Blocks need a transport with keys (RDMA), Transport Data Blocks a transport
  // binding that defines them; NVMe over PCIe has neither. Reserved and vendor specific
  // types are unsupported too: SGL Descriptor Type Invalid.
  return -NvmeStatus.SglDescriptorTypeInvalid
}

/**
 * Walks the SGL1 descriptor (16 bytes at sgl1[0..16) — the DPTR field of the SQE) for
 * `length` bytes. Data Block ranges go to `out` (host IOVAs). For reads, Bit Bucket
 * descriptors are recorded in `buckets` as (offset in the transfer, length) pairs: those
 * bytes of the controller's data are discarded, not written to the host. Both lists are
 * cleared first and contiguous pairs merged; on an error they hold partial lists, to be
 * discarded. Returns an NVMe status (0 = success).
 *
 * An SGL longer than the transfer is accepted and used up to `length` (§4.3.2: the SGL
 * length "shall be equal to or exceed the requested data transfer length"), so the
 * controller reports SGLS bit 18 (LLDTS in 2.1+) set.
 */
export function walkSgl(sgl1: Uint8Array, length: number, read: HostRead, out: IoVecList, buckets: IoVecList, o: SglOptions): number {
  if (sgl1.length < DESC) throw new RangeError(`sgl1 must hold a 16-byte descriptor, got ${sgl1.length} bytes`)
  out.clear()
  buckets.clear()
  if (length === 0) return NvmeStatus.Success
  let left = length
  const max = o.maxDescriptors ?? DEFAULT_MAX_DESCRIPTORS
  let id = sgl1[15]!
  let lo = u32(sgl1, 0)
  let hi = u32(sgl1, 4)
  let len = u32(sgl1, 8)
  let type = id >> 4
  if (type !== SglType.Segment && type !== SglType.LastSegment) {
    // a single descriptor describing the whole transfer
    const r = data(id, lo, hi, len, left, 0, out, buckets, o)
    if (r < 0) return -r
    return r === left ? NvmeStatus.Success : NvmeStatus.DataSglLengthInvalid
  }
  let walked = 1
  for (;;) {
    // `id`, `lo`, `hi`, `len` hold a (Last) Segment descriptor: check it, then walk the
    // segment it points to.
    // A sub type other than Address (Offset is reserved for PCIe): SGL Descriptor Type.
    if ((id & 0xf) !== SglSubType.Address) return NvmeStatus.SglDescriptorTypeInvalid
    // §4.3.2, SGL (Last) Segment descriptor, Length: "shall be a non-zero value and a
    // multiple of 16". No status is named; Invalid SGL Segment Descriptor ("an invalid SGL
    // Last Segment or SGL Segment descriptor") fits, and is what QEMU returns.
    if (len === 0 || len % DESC !== 0) return NvmeStatus.InvalidSglSegmentDescriptor
    // "An SGL segment is a qword aligned data structure": a segment that is not is
    // refused the same way (QEMU does not check).
    if ((lo & 7) !== 0) return NvmeStatus.InvalidSglSegmentDescriptor
    // Address + Length > 2^64: Data SGL Length Invalid (as for Data Blocks)
    if (hi === 0xffffffff && lo + len > TWO32) return NvmeStatus.DataSglLengthInvalid
    const last = type === SglType.LastSegment
    const count = len / DESC
    let addr = hi * TWO32 + lo
    const before = left
    let next = false
    for (let i = 0; i < count && !next; ) {
      if (walked >= max) return NvmeStatus.InvalidSglDescriptorCount
      let n = count - i
      if (n > CHUNK) n = CHUNK
      if (n > max - walked) n = max - walked
      if (read(addr, descriptors(n)) !== 0) return NvmeStatus.DataTransferError
      walked += n
      for (let j = 0; j < n; j++, i++) {
        const off = j * DESC
        id = scratch[off + 15]!
        lo = dv.getUint32(off, true)
        hi = dv.getUint32(off + 4, true)
        len = dv.getUint32(off + 8, true)
        type = id >> 4
        if (type === SglType.Segment || type === SglType.LastSegment) {
          // §4.3.2, SGL Validation Error Conditions (Figure 113 in 2.2): "A last SGL
          // segment contains an SGL Segment descriptor or an SGL Last Segment descriptor":
          // Invalid SGL Segment Descriptor; one "in other than the last descriptor in the
          // segment": Invalid Number of SGL Descriptors. (QEMU returns the same, but for a
          // link in the middle of a last segment, which it reports as Invalid Number.)
          if (last) return NvmeStatus.InvalidSglSegmentDescriptor
          if (i !== count - 1) return NvmeStatus.InvalidSglDescriptorCount
          next = true
          break
        }
        const r = data(id, lo, hi, len, left, length - left, out, buckets, o)
        if (r < 0) return -r
        left -= r
        if (left === 0) return NvmeStatus.Success
      }
      addr += n * DESC
    }
    // A segment that ends with a data descriptor ends the SGL (even if it was linked by a
    // Segment, not a Last Segment, descriptor, as QEMU and SPDK take it): it was too short.
    if (!next) return NvmeStatus.DataSglLengthInvalid
    // A segment that only links to the next one adds nothing: refused, as QEMU does, so
    // that a chain looping through empty segments ends at once (the spec does not forbid
    // one, but no host needs it; maxDescriptors would stop it anyway).
    if (left === before) return NvmeStatus.InvalidSglSegmentDescriptor
  }
}
