// The PRP walker: turns a command's PRP1/PRP2 (NVMe Base, "Physical Region Page Entry and
// List": §4.3.1 in the 2.1 numbering, cited so below) into host IOVA ranges. No data moves
// here: the only host memory read is the PRP list pages themselves, through the function's
// IOMMU context, so a data page the IOMMU refuses is not noticed here but when the data is
// moved (as on real hardware, where the controller fetches the list and DMAs the data
// separately).
//
//   PRP1   first data page, may start at an offset in the page (dword aligned)
//   PRP2   unused when the data fits in PRP1's page;
//          the second data page (offset 0) when it fits in two pages;
//          else a pointer to a PRP list (qword aligned, may have an offset), whose
//          entries (offset 0) are the following pages; when more entries are needed than
//          fit in the rest of a list page, the last entry of that page points to the next
//          list page (page aligned)
//
// The number of entries is implied by the transfer length (§4.3.1: "The total number of
// PRP entries required by a command is implied by the command parameters and memory page
// size"), so the walk is bounded by it: every list page but the first holds at least
// pageSize / 8 - 1 data entries, and a list that links back to itself just repeats pages
// until the length is covered (the DMA a real controller would do), never reading more
// than ceil(length / pageSize) entries plus one link per list page.
import { NvmeStatus } from '@ipukit/bdev'
import type { IoVecList } from '@ipukit/memory'

/**
 * Reads `out.length` bytes of host memory at IOVA `iova` (through the function's IOMMU
 * context); returns 0, or a non-zero value when the IOMMU refuses (unmapped, not readable).
 */
export type HostRead = (iova: number, out: Uint8Array) => number

export interface PrpOptions {
  /** the memory page size, CC.MPS: 4096..65536, a power of two */
  pageSize: number
  /** at most this many PRP list pages per command (default: as many as the length needs) */
  maxListPages?: number
}

const MAX_PAGE = 65536
const TWO32 = 0x1_0000_0000

// One list page's worth of entries, read into one reusable buffer: a read takes a view of
// the first n entries, made once per n (so nothing is allocated once every size was seen).
const scratch = new Uint8Array(MAX_PAGE)
const dv = new DataView(scratch.buffer)
const views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(MAX_PAGE / 8 + 1)

function entries(n: number): Uint8Array {
  let v = views[n]
  if (v === undefined) v = views[n] = scratch.subarray(0, n * 8)
  return v
}

/** Appends a range, merged with the last one when contiguous; false when the list is full. */
function append(out: IoVecList, addr: number, len: number): boolean {
  const c = out.count
  if (c > 0 && out.addr[c - 1]! + out.len[c - 1]! === addr) {
    out.len[c - 1] = out.len[c - 1]! + len
    return true
  }
  if (c === out.capacity) return false
  out.push(addr, len)
  return true
}

/**
 * Walks PRP1/PRP2 for `length` bytes into `out` (host IOVAs, cleared first; contiguous
 * pages merged); returns an NVMe status (0 = success). On an error `out` holds a partial
 * list, to be discarded. `out` needs room for ceil(length / pageSize) + 1 ranges at worst
 * (fewer when pages are contiguous); a list too small completes with Internal Error.
 */
export function walkPrp(prp1: number, prp2: number, length: number, read: HostRead, out: IoVecList, o: PrpOptions): number {
  const ps = o.pageSize
  if (!(ps >= 4096 && ps <= MAX_PAGE && (ps & (ps - 1)) === 0)) throw new RangeError(`pageSize must be a power of two in [4096, 65536], got ${ps}`)
  out.clear()
  if (length === 0) return NvmeStatus.Success
  // §4.3.1, PRP Entry (PBAO): "The Offset shall be dword aligned"; the controller "may
  // report an error of PRP Offset Invalid if bits 1:0 are not cleared to 00b" (or act as
  // if they were). We report it: a host that sets them is broken (Linux requires 4-byte
  // DMA alignment, blk_queue_dma_alignment(q, 3)), and DMA to the unmasked address would
  // be wrong either way. QEMU does not check and uses the address as given; SPDK's
  // vfio-user target does not check either.
  if (prp1 % 4 !== 0) return NvmeStatus.PrpOffsetInvalid
  const first = Math.min(length, ps - (prp1 % ps))
  if (!append(out, prp1, first)) return NvmeStatus.InternalError
  let left = length - first
  if (left === 0) return NvmeStatus.Success
  if (left <= ps) {
    // §4.3.1: "If a second PRP entry is present within a command, it shall have a memory
    // page offset of 0h ... the controller should return an error of PRP Offset Invalid"
    if (prp2 % ps !== 0) return NvmeStatus.PrpOffsetInvalid
    return append(out, prp2, left) ? NvmeStatus.Success : NvmeStatus.InternalError
  }
  // PRP2 is a list pointer: "shall be qword aligned and may also have a non-zero offset
  // within the memory page" (§4.3.1). A misaligned one is an invalid PRP offset (QEMU
  // instead reads from the misaligned address).
  if (prp2 % 8 !== 0) return NvmeStatus.PrpOffsetInvalid
  const maxPages = o.maxListPages ?? Infinity
  const mask = ps - 1
  let list = prp2
  for (let pages = 1; ; pages++) {
    // Too many list pages means a transfer larger than the controller takes (as MDTS
    // would refuse): Invalid Field in Command.
    if (pages > maxPages) return NvmeStatus.InvalidField
    const avail = (ps - (list % ps)) / 8
    const need = Math.ceil(left / ps)
    // Only the entries needed, from where the list starts: a host may allocate a short
    // list at an offset (Linux's 256-byte pool), the rest of its page need not be mapped.
    const n = need <= avail ? need : avail
    if (read(list, entries(n)) !== 0) return NvmeStatus.DataTransferError
    // When more entries are needed than this page has left, its last one is a link.
    const data = need <= avail ? n : n - 1
    for (let i = 0; i < data; i++) {
      const lo = dv.getUint32(i * 8, true)
      // §4.3.1: "PRP entries contained within a PRP List shall have a memory page offset
      // of 0h ... the controller should return an error of PRP Offset Invalid"
      if ((lo & mask) !== 0) return NvmeStatus.PrpOffsetInvalid
      const len = left < ps ? left : ps
      if (!append(out, dv.getUint32(i * 8 + 4, true) * TWO32 + lo, len)) return NvmeStatus.InternalError
      left -= len
    }
    if (left === 0) return NvmeStatus.Success
    // §4.3.1: "The next PRP List page shall be memory page aligned" (QEMU: PRP Offset
    // Invalid too).
    const lo = dv.getUint32((n - 1) * 8, true)
    if ((lo & mask) !== 0) return NvmeStatus.PrpOffsetInvalid
    list = dv.getUint32((n - 1) * 8 + 4, true) * TWO32 + lo
  }
}
