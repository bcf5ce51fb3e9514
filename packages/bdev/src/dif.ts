// The dif bdev: NVMe protection information inserted and stripped over a base bdev whose
// blocks carry metadata with PI (its PI type, format and location are the base's). The bdev
// above sees data-only blocks:
//
//   write   dif_generate_copy from the caller's data-only blocks into an accel buffer of
//           extended blocks (data, then metadata with the PI), written to the base with the
//           I/O's sequence: encrypt above and this step fuse into one pass when the ipu
//           platform driver sees them together
//   read    read extended blocks into an accel buffer, then dif_verify_copy into the
//           caller's iovecs; a failed check completes with the NVMe status of the field that
//           failed (guard, app tag or ref tag), and the caller's error holder names the block
//   write_zeroes  zeros with real PI (generated), a chunk at a time
//   unmap, flush, reset   to the base (deallocated blocks read as zeros with escape PI)
//
// Ref tags (Type 1 and 2): the low bits of the LBA (32 for the 16b guard, 48 for 64b, 64 for
// 32b). Type 3 writes the constant initial ref tag and does not check it.
import { createDifContext, type DifCallOptions, type DifChecks, type DifContext, refTagBits } from '@ipukit/dif'
import type { BdevDesc, BdevIo, BdevIoType, Bdevs } from './bdev.js'
import { BdevError } from './errors.js'
import { childDone, forward, stack, VirtualBdev } from './internal/vbdev.js'
import { NvmeStatus, piStatus } from './status.js'

export interface DifBdevOptions {
  name: string
  /** the base bdev's name: its blocks carry metadata with PI (pi.type 1, 2 or 3) */
  base: string
  /** the application tag written and checked; default 0 */
  appTag?: number
  /** bits of the app tag checked; default 0xFFFF */
  appTagMask?: number
  /** the fields verify checks and generate fills; default all */
  checks?: DifChecks
  uuid?: string
}

export class DifBdev extends VirtualBdev {
  readonly module = 'dif'
  readonly ctx: DifContext
  readonly #refBits: number

  /** @internal use createDifBdev */
  constructor(bdevs: Bdevs, desc: BdevDesc, o: DifBdevOptions) {
    const b = desc.bdev
    if (b.pi.type === 0) throw new BdevError('BDEV_BAD_ARGUMENT', `${o.name}: the dif bdev needs a base with PI; ${b.name} has ${b.mdSize === 0 ? 'no metadata' : 'metadata without PI (pi.type 0)'}`)
    const perBuffer = Math.floor(bdevs.accel.physical.layout.iobuf.largeSize / b.blockLen)
    super(bdevs, desc, {
      name: o.name,
      blockSize: b.blockSize,
      blockCount: b.blockCount,
      maxIoBlocks: b.maxIoBlocks > 0 ? Math.min(b.maxIoBlocks, perBuffer) : perBuffer,
      ...(o.uuid !== undefined && { uuid: o.uuid }),
    })
    try {
      this.ctx = createDifContext({
        dataBlockSize: b.blockSize,
        mdSize: b.mdSize,
        type: b.pi.type,
        piFormat: b.pi.format,
        piLocation: b.pi.location,
        appTag: o.appTag ?? 0,
        appTagMask: o.appTagMask ?? 0xffff,
        ...(o.checks !== undefined && { checks: o.checks }),
        kernels: bdevs.accel.physical.kernels,
      })
    } catch (e) {
      throw new BdevError('BDEV_BAD_ARGUMENT', `${o.name}: ${(e as Error).message}`, { cause: e })
    }
    this.#refBits = refTagBits(b.pi.format)
  }

  ioTypeSupported(type: BdevIoType): boolean {
    return type === 'write_zeroes' ? this.base.ioTypeSupported('write') : this.base.ioTypeSupported(type)
  }

  /** @internal the per-call DIF options of an I/O at `lba` */
  call(io: BdevIo, lba: number): DifCallOptions {
    const c = io.difCall
    c.lba = lba
    // Type 1 takes the ref tag from the LBA itself; Type 2 from the command: the LBA here too
    c.initRefTag = this.ctx.type === 2 ? (this.#refBits >= 53 ? lba : lba % 2 ** this.#refBits) : undefined
    return c as DifCallOptions
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case 'read':
        return read(io)
      case 'write':
        return write(io)
      case 'write_zeroes':
        io.progress = 0
        return zeroChunk(io)
      default:
        return forward(io, passDown)
    }
  }

  override driverSpecific(): Record<string, unknown> {
    return { dif: { base: this.base.name, type: this.ctx.type, piFormat: this.ctx.piFormat, piLocation: this.ctx.piLocation, appTag: this.ctx.appTag, appTagMask: this.ctx.appTagMask, checks: this.ctx.checks } }
  }
}

/** An extended-block accel buffer for `blocks` blocks in bufs[0] / lists[0]; false: retry later. */
function extBuffer(io: BdevIo, blocks: number): boolean {
  if (io.bufs[0] !== 0) return true
  const b = io.bdev as DifBdev
  const n = blocks * b.base.blockLen
  io.bufs[0] = io.ch.accel.getBuf(n)
  if (io.bufs[0] === 0) return false
  io.lists[0].clear().push(io.bufs[0]!, n)
  return true
}

function read(io: BdevIo): void {
  const b = io.bdev as DifBdev
  const ch = io.ch.accel
  if (!extBuffer(io, io.numBlocks)) return io.ch.retry(io, read)
  if (io.seq === null) {
    io.seq = ch.sequence()
    if (io.seq === null) return io.ch.retry(io, read)
  }
  io.err.kind = undefined
  if (io.seq.appendDifVerifyCopy(io.iovs!, io.domain, io.lists[0], ch.accelDomain, io.numBlocks, b.ctx, io.err, b.call(io, io.offsetBlocks)) !== 0) return io.ch.retry(io, read)
  forward(io, readBelow)
}

function readBelow(io: BdevIo): number {
  const o = io.childOpts
  o.seq = io.seq
  o.fua = false
  o.difError = null
  return (io.bdev as DifBdev).baseDesc.readv(io.ch, io.lists[0], io.ch.accel.accelDomain, io.offsetBlocks, io.numBlocks, readDone, io, o)
}

function readDone(io: BdevIo, status: number): void {
  io.ch.accel.putBuf(io.bufs[0]!)
  io.bufs[0] = 0
  if (status !== NvmeStatus.Success && io.err.kind !== undefined) {
    // our verify failed: the field's own status, and the block for the caller
    status = piStatus(io.err.kind)
    const h = io.difError
    if (h !== null) {
      h.kind = io.err.kind
      h.block = io.err.block
      h.expected = io.err.expected
      h.actual = io.err.actual
    }
  }
  io.finishNow(status)
}

function write(io: BdevIo): void {
  const b = io.bdev as DifBdev
  const ch = io.ch.accel
  if (!extBuffer(io, io.numBlocks)) return io.ch.retry(io, write)
  if (io.seq === null) {
    io.seq = ch.sequence()
    if (io.seq === null) return io.ch.retry(io, write)
  }
  if (io.seq.appendDifGenerateCopy(io.lists[0], ch.accelDomain, io.iovs!, io.domain, io.numBlocks, b.ctx, b.call(io, io.offsetBlocks)) !== 0) return io.ch.retry(io, write)
  forward(io, writeBelow)
}

function writeBelow(io: BdevIo): number {
  const o = io.childOpts
  o.seq = io.seq
  o.fua = io.fua
  o.difError = null
  return (io.bdev as DifBdev).baseDesc.writev(io.ch, io.lists[0], io.ch.accel.accelDomain, io.offsetBlocks, io.numBlocks, written, io, o)
}

function written(io: BdevIo, status: number): void {
  io.ch.accel.putBuf(io.bufs[0]!)
  io.bufs[0] = 0
  io.finishNow(status)
}

// ---- write_zeroes: zeros with generated PI, one accel buffer of blocks at a time ----

function zeroChunk(io: BdevIo): void {
  const b = io.bdev as DifBdev
  const ch = io.ch.accel
  const blocks = Math.min(b.maxIoBlocks, io.numBlocks - io.progress)
  if (!extBuffer(io, blocks)) return io.ch.retry(io, zeroChunk)
  if (io.bufs[1] === 0) {
    io.bufs[1] = ch.getBuf(blocks * b.blockSize)
    if (io.bufs[1] === 0) return io.ch.retry(io, zeroChunk)
  }
  const seq = ch.sequence()
  if (seq === null) return io.ch.retry(io, zeroChunk)
  const data = io.lists[1].clear().push(io.bufs[1]!, blocks * b.blockSize)
  const ext = io.lists[0].clear().push(io.bufs[0]!, blocks * b.base.blockLen)
  if (seq.appendFill(data, ch.accelDomain, 0) !== 0 || seq.appendDifGenerateCopy(ext, ch.accelDomain, data, ch.accelDomain, blocks, b.ctx, b.call(io, io.offsetBlocks + io.progress)) !== 0) {
    seq.abort()
    return io.ch.retry(io, zeroChunk)
  }
  io.seq = seq
  io.pending = blocks
  forward(io, zeroBelow)
}

function zeroBelow(io: BdevIo): number {
  const o = io.childOpts
  o.seq = io.seq
  o.fua = false
  o.difError = null
  return (io.bdev as DifBdev).baseDesc.writev(io.ch, io.lists[0], io.ch.accel.accelDomain, io.offsetBlocks + io.progress, io.pending, zeroed, io, o)
}

function zeroed(io: BdevIo, status: number): void {
  io.seq = null
  if (status === NvmeStatus.Success) {
    io.progress += io.pending
    if (io.progress < io.numBlocks) return zeroChunk(io)
  }
  const ch = io.ch.accel
  ch.putBuf(io.bufs[0]!)
  ch.putBuf(io.bufs[1]!)
  io.bufs[0] = 0
  io.bufs[1] = 0
  io.finishNow(status)
}

function passDown(io: BdevIo): number {
  const d = (io.bdev as DifBdev).baseDesc
  switch (io.type) {
    case 'unmap':
      return d.unmap(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    case 'flush':
      return d.flush(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    default:
      return d.reset(io.ch, childDone, io)
  }
}

/** Creates a dif bdev over `base` (whose metadata carries PI) and claims it. */
export function createDifBdev(bdevs: Bdevs, options: DifBdevOptions): DifBdev {
  return stack(bdevs, options.name, options.base, 'dif', (desc) => new DifBdev(bdevs, desc, options))
}
