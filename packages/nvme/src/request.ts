// An NVMe command on its way through the controller: the 64-byte SQE (the controller's own
// copy, fetched from the submission queue or received in a capsule), its data as iovecs in
// a memory domain (host IOVAs for PCIe, local buffers for NVMe/TCP), and its completion
// (dword 0, dword 1 and the status). Requests are pooled by the transport and reused.
import { type AccelDifError, type AccelSequence, difErrorHolder } from '@ipukit/accel'
import { IoVecList, type MemoryDomain } from '@ipukit/memory'

export type RequestDone = (req: NvmeRequest) => void

export class NvmeRequest {
  /** the submission queue: 0 is the admin queue */
  qid = 0
  /** the command, copied in (a real controller fetches it; the host may reuse its slot) */
  readonly cmd = new Uint8Array(64)
  readonly view = new DataView(this.cmd.buffer)
  /** the data pointer as an SGL descriptor (DPTR, bytes 24-39) */
  readonly sgl1 = this.cmd.subarray(24, 40)
  /** the data: the bytes the command transfers, in `domain` (null: local memory) */
  readonly iovs = new IoVecList(256)
  domain: MemoryDomain | null = null
  /** bytes of the read's data to discard (SGL bit buckets): (offset, length) pairs */
  readonly buckets = new IoVecList(16)
  /** @internal a bit-bucketed read's host destinations, while the data lands in `bounce` */
  hostIovs: IoVecList | null = null
  /** @internal the bounce buffer of a bit-bucketed read (an iobuf buffer), 0 when none */
  bounce = 0
  // ---- completion ----
  cdw0 = 0
  cdw1 = 0
  /** an NVMe status (SCT << 8 | SC); 0 success */
  status = 0
  /** set the Do Not Retry bit (the same command would fail again) */
  dnr = false
  // ---- for the error log ----
  nsid = 0
  lba = 0
  /** the byte and bit of the command a field error is in (0xffff: none) */
  errorLocation = 0xffff
  /** the transport's callback, and what it keeps */
  done: RequestDone | null = null
  transport: unknown = null
  // ---- the core's scratch ----
  /** @internal bytes the command moves (set by the transport from transferLength) */
  length = 0
  /** @internal buffers the core holds (iobuf or accel), 0 when none */
  readonly bufs = new Float64Array(4)
  /** @internal iovec lists for the core's own buffers */
  readonly lists: [IoVecList, IoVecList] = [new IoVecList(64), new IoVecList(64)]
  /** @internal PI error holder for the controller's own checks */
  readonly err: AccelDifError = difErrorHolder()
  /** @internal progress counters (DSM ranges, flush of every namespace) */
  pending = 0
  progress = 0
  /** @internal the namespace the command addresses */
  ns: unknown = null
  /** @internal aborted while waiting (an AER, a command queued for resources) */
  aborted = false
  /** @internal Dataset Management ranges copied out of the command's data: (slba, blocks) pairs */
  readonly ranges = new Float64Array(512)
  /** @internal the controller running it */
  owner: unknown = null
  /** @internal the bdev I/O options and DIF call options, reused */
  readonly bdevOpts: { seq: AccelSequence | null; fua: boolean; difError: AccelDifError | null } = { seq: null, fua: false, difError: null }
  readonly difCall: { lba: number; initRefTag: number | undefined } = { lba: 0, initRefTag: undefined }

  /** Prepares the request for a new command (the transport copies the command in). */
  reset(qid: number): this {
    this.qid = qid
    this.iovs.clear()
    this.buckets.clear()
    this.bounce = 0
    this.domain = null
    this.cdw0 = 0
    this.cdw1 = 0
    this.status = 0
    this.dnr = false
    this.nsid = 0
    this.lba = 0
    this.errorLocation = 0xffff
    this.length = 0
    this.bufs.fill(0)
    this.pending = 0
    this.progress = 0
    this.ns = null
    this.aborted = false
    return this
  }

  get opcode(): number {
    return this.cmd[0]!
  }

  /** Command Identifier (CDW0 bits 31:16) */
  get cid(): number {
    return this.view.getUint16(2, true)
  }

  /** PSDT (CDW0 bits 15:14): 0 PRP, 1 SGL with MPTR a pointer, 2 SGL with MPTR an SGL */
  get psdt(): number {
    return (this.cmd[1]! >> 6) & 3
  }

  get fuse(): number {
    return this.cmd[1]! & 3
  }

  /** Namespace Identifier (the command's, not the one logged) */
  get cmdNsid(): number {
    return this.view.getUint32(4, true)
  }

  /** CDW n (2..15), a u32 */
  cdw(n: number): number {
    return this.view.getUint32(4 * n, true)
  }

  /** a 64-bit command field at byte `at` as a number (exact below 2^53) */
  u64(at: number): number {
    return this.view.getUint32(at + 4, true) * 0x100000000 + this.view.getUint32(at, true)
  }
}
