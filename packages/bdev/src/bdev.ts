// Block devices (SPDK include/spdk/bdev.h and bdev_module.h): a bdev has a geometry (block
// size, metadata size, PI settings, block count) and takes I/O; modules stack, each one a
// bdev over a base bdev it claims. An I/O carries iovecs in a memory domain and, optionally,
// an accel sequence that layers append to on the way down (the crypto bdev its encrypt, the
// dif bdev its dif_generate_copy); the bottom bdev finishes the sequence into its own
// buffers, so the platform driver sees the whole chain and can fuse it:
//
//   caller ── writev(iovs in host domain) ──▶ crypto ──▶ dif ──▶ malloc / file
//                                             append     append   append copy, finish
//                                             encrypt    dif_gen  (elided: dif_generate_copy
//                                                        _copy     writes the storage itself)
//
// Reads append top-down too (decrypt, dif_verify_copy, then the bottom's copy) and the
// bottom reverses the sequence before finishing it, so it runs bottom-up.
//
// Completions follow @ipukit/memory's convention: `cb(arg, status)` later, never inside the
// call, with an NVMe status (./status.ts). Submissions return 0, or -12 (ENOMEM) when the
// channel has no free I/O object: retry after a completion. Misuse throws BdevError.
import { randomUUID } from 'node:crypto'
import { type Accel, type AccelChannel, type AccelDifError, type AccelSequence, difErrorHolder } from '@ipukit/accel'
import { type DifType, piSizeOf, type PiFormat } from '@ipukit/dif'
import { defer, IobufEntry, IoVecList, type MemoryDomain } from '@ipukit/memory'
import { BdevError } from './errors.js'
import { NvmeStatus } from './status.js'

export type BdevIoType = 'read' | 'write' | 'flush' | 'unmap' | 'write_zeroes' | 'reset'
export const BDEV_IO_TYPES: readonly BdevIoType[] = ['read', 'write', 'flush', 'unmap', 'write_zeroes', 'reset']

/** What a submission returns when the channel has no free I/O object (ENOMEM): retry later. */
export const BDEV_NO_IO = -12

/** Protection information of a bdev's metadata (NVMe: the PI type and format of the LBA format). */
export interface BdevPi {
  /** 0: none */
  readonly type: DifType
  readonly format: PiFormat
  /** where the PI sits in each block's metadata (NVMe DPS.PIP: first 8/16 bytes, or the last) */
  readonly location: 'first' | 'last'
}

export const PI_NONE: BdevPi = Object.freeze({ type: 0, format: 16, location: 'last' })

/** The geometry a module declares for its bdev. */
export interface BdevGeometry {
  name: string
  /** default: a random UUID */
  uuid?: string
  /** data bytes per block: a power of two, 512 to 65536 */
  blockSize: number
  /** metadata bytes per block, interleaved after each block's data (extended LBA); default 0 */
  mdSize?: number
  pi?: Partial<BdevPi>
  blockCount: number
  /** most blocks one I/O may carry (larger ones are split, 0: no limit) */
  maxIoBlocks?: number
}

export type BdevEvent = 'remove'
export type BdevEventCallback = (event: BdevEvent, bdev: Bdev) => void
export type BdevCompletion<T> = (arg: T, status: number) => void

export interface BdevIoOptions {
  /**
   * the accel sequence the layers above appended to: the bdev layer owns it from the
   * submission on; the bottom bdev finishes it, or it is aborted if the I/O fails first
   */
  seq?: AccelSequence | null
  /** force unit access: the write is durable when it completes */
  fua?: boolean
  /** receives the failing block and fields when a PI check fails on the way */
  difError?: AccelDifError | null
}

export interface BdevOpStats {
  ops: number
  bytes: number
}

export interface BdevStats {
  read: BdevOpStats
  write: BdevOpStats
  unmap: BdevOpStats
  writeZeroes: BdevOpStats
  flush: BdevOpStats
  reset: BdevOpStats
  /** I/Os that completed with a status other than success */
  failed: number
}

/** A bdev's description, as SPDK's bdev_get_bdevs gives it. */
export interface BdevInfo {
  name: string
  module: string
  uuid: string
  blockSize: number
  mdSize: number
  pi: BdevPi
  blockCount: number
  maxIoBlocks: number
  claimed: string | null
  supportedIoTypes: Record<BdevIoType, boolean>
  driverSpecific: Record<string, unknown>
}

const emptyStats = (): BdevStats => ({
  read: { ops: 0, bytes: 0 },
  write: { ops: 0, bytes: 0 },
  unmap: { ops: 0, bytes: 0 },
  writeZeroes: { ops: 0, bytes: 0 },
  flush: { ops: 0, bytes: 0 },
  reset: { ops: 0, bytes: 0 },
  failed: 0,
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function checkInt(what: string, v: unknown, lo: number, hi: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new BdevError('BDEV_BAD_ARGUMENT', `${what} must be an integer in [${lo}, ${hi}], got ${String(v)}`)
}

export abstract class Bdev {
  abstract readonly module: string
  readonly name: string
  readonly uuid: string
  readonly blockSize: number
  readonly mdSize: number
  readonly pi: BdevPi
  readonly blockCount: number
  readonly maxIoBlocks: number
  readonly stats: BdevStats = emptyStats()
  /** @internal */ registry: Bdevs | null = null
  /** @internal */ readonly descs = new Set<BdevDesc>()
  /** @internal the module holding the write claim, and its descriptor */
  claimedBy: string | null = null
  /** @internal */ claimDesc: BdevDesc | null = null
  /** @internal I/O submitted and not completed */
  outstanding = 0
  /** @internal unregister() was called */
  removing = false
  /** @internal resolves destruct once the last descriptor closed and the last I/O completed */
  drained: (() => void) | null = null

  protected constructor(g: BdevGeometry) {
    if (g === null || typeof g !== 'object') throw new BdevError('BDEV_BAD_ARGUMENT', 'geometry must be an object')
    if (typeof g.name !== 'string' || g.name === '' || g.name.length > 255) throw new BdevError('BDEV_BAD_ARGUMENT', 'name must be a non-empty string of at most 255 characters')
    checkInt(`${g.name}: blockSize`, g.blockSize, 512, 65536)
    if ((g.blockSize & (g.blockSize - 1)) !== 0) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: blockSize must be a power of two, got ${g.blockSize}`)
    const md = g.mdSize ?? 0
    checkInt(`${g.name}: mdSize`, md, 0, 4096)
    checkInt(`${g.name}: blockCount`, g.blockCount, 1, Number.MAX_SAFE_INTEGER)
    const max = g.maxIoBlocks ?? 0
    checkInt(`${g.name}: maxIoBlocks`, max, 0, Number.MAX_SAFE_INTEGER)
    const pi: BdevPi = { type: g.pi?.type ?? 0, format: g.pi?.format ?? 16, location: g.pi?.location ?? 'last' }
    if (![0, 1, 2, 3].includes(pi.type)) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: PI type must be 0 to 3, got ${String(pi.type)}`)
    if (![16, 32, 64].includes(pi.format)) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: PI format must be 16, 32 or 64, got ${String(pi.format)}`)
    if (pi.location !== 'first' && pi.location !== 'last') throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: PI location must be 'first' or 'last'`)
    if (pi.type !== 0) {
      if (md < piSizeOf(pi.format)) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: PI format ${pi.format} needs at least ${piSizeOf(pi.format)} bytes of metadata, have ${md}`)
      // SPDK and NVMe: the 32b and 64b guards come with 4 KiB or larger data blocks
      if (pi.format !== 16 && g.blockSize % 4096 !== 0) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: PI format ${pi.format} needs a data block size that is a multiple of 4096, got ${g.blockSize}`)
    }
    const uuid = g.uuid ?? randomUUID()
    if (typeof uuid !== 'string' || !UUID.test(uuid)) throw new BdevError('BDEV_BAD_ARGUMENT', `${g.name}: uuid must be a UUID string, got ${String(uuid)}`)
    this.name = g.name
    this.uuid = uuid.toLowerCase()
    this.blockSize = g.blockSize
    this.mdSize = md
    this.pi = Object.freeze(pi)
    this.blockCount = g.blockCount
    this.maxIoBlocks = max
  }

  /** Bytes per block in I/O buffers: data, then metadata. */
  get blockLen(): number {
    return this.blockSize + this.mdSize
  }

  abstract ioTypeSupported(type: BdevIoType): boolean

  /**
   * Executes `io` (SPDK submit_request). Complete it with io.complete(status); that defers,
   * so it may be called at once. The I/O is range-checked, of a supported type, and no
   * larger than maxIoBlocks.
   */
  abstract submit(io: BdevIo): void

  /** Releases the module's resources, once unregistered, every descriptor closed and every I/O completed. */
  destruct(): Promise<void> | void {}

  /** Module-specific fields for listings (SPDK's driver_specific). */
  driverSpecific(): Record<string, unknown> {
    return {}
  }

  info(): BdevInfo {
    return {
      name: this.name,
      module: this.module,
      uuid: this.uuid,
      blockSize: this.blockSize,
      mdSize: this.mdSize,
      pi: this.pi,
      blockCount: this.blockCount,
      maxIoBlocks: this.maxIoBlocks,
      claimed: this.claimedBy,
      supportedIoTypes: Object.fromEntries(BDEV_IO_TYPES.map((t) => [t, this.ioTypeSupported(t)])) as Record<BdevIoType, boolean>,
      driverSpecific: this.driverSpecific(),
    }
  }
}

/** One I/O (SPDK struct spdk_bdev_io), pooled per channel; modules keep their state in its scratch fields. */
export class BdevIo {
  type: BdevIoType = 'read'
  bdev!: Bdev
  ch!: BdevChannel
  offsetBlocks = 0
  numBlocks = 0
  /** the data: numBlocks x blockLen bytes (read and write), in `domain` (null: local memory) */
  iovs: IoVecList | null = null
  domain: MemoryDomain | null = null
  seq: AccelSequence | null = null
  fua = false
  /** the caller's PI error holder, if it gave one */
  difError: AccelDifError | null = null
  /** the I/O this one was split from or stacked under (null for a caller's I/O) */
  parent: BdevIo | null = null
  // ---- module scratch, reused from I/O to I/O ----
  /** iovec lists (accel buffers, bounce buffers, a child's piece of its parent's iovecs) */
  readonly lists: [IoVecList, IoVecList] = [new IoVecList(64), new IoVecList(64)]
  /** addresses a module holds (accel buffers, iobuf buffers), 0 when none */
  readonly bufs = new Float64Array(4)
  /** a PI error holder for the module's own verify step */
  readonly err: AccelDifError = difErrorHolder()
  /** the per-call DIF options (the LBA, and the initial ref tag where the LBA does not give it), reused */
  readonly difCall: { lba: number; initRefTag: number | undefined } = { lba: 0, initRefTag: undefined }
  /** options for the I/O a stacked module submits below, reused */
  readonly childOpts: { seq: AccelSequence | null; fua: boolean; difError: AccelDifError | null } = { seq: null, fua: false, difError: null }
  /** progress of split or chunked work */
  pending = 0
  progress = 0
  status = 0
  /** waits for iobuf buffers (modules with bounce buffers) */
  readonly iobufEntry: IobufEntry<BdevIo>
  #cb: BdevCompletion<unknown> | null = null
  #arg: unknown = null

  constructor() {
    this.iobufEntry = new IobufEntry<BdevIo>(iobufArrived, this)
  }

  /** @internal */
  start(type: BdevIoType, bdev: Bdev, ch: BdevChannel, offsetBlocks: number, numBlocks: number, iovs: IoVecList | null, domain: MemoryDomain | null, cb: BdevCompletion<unknown>, arg: unknown): void {
    this.type = type
    this.bdev = bdev
    this.ch = ch
    this.offsetBlocks = offsetBlocks
    this.numBlocks = numBlocks
    this.iovs = iovs
    this.domain = domain
    this.#cb = cb
    this.#arg = arg
    this.seq = null
    this.fua = false
    this.difError = null
    this.parent = null
    this.pending = 0
    this.progress = 0
    this.status = 0
    this.bufs.fill(0)
  }

  /** Completes the I/O with an NVMe status, after the current call returns. */
  complete(status: number): void {
    defer(completeIo, this, status)
  }

  /** @internal a module waiting for iobuf buffers sets this; it runs when one arrives */
  onBuffer: ((io: BdevIo, address: number) => void) | null = null

  /**
   * Completes the I/O now: only from inside a completion callback (a stacked module's
   * child completed), where the call that started the I/O has long returned.
   */
  finishNow(status: number): void {
    const bdev = this.bdev
    const s = bdev.stats
    // a piece of a split I/O is counted with its parent
    if (this.parent === null || this.parent.bdev !== bdev) {
      const st = this.type === 'read' ? s.read : this.type === 'write' ? s.write : this.type === 'unmap' ? s.unmap : this.type === 'write_zeroes' ? s.writeZeroes : this.type === 'flush' ? s.flush : s.reset
      if (status === NvmeStatus.Success) {
        st.ops++
        st.bytes += this.numBlocks * bdev.blockSize
      } else s.failed++
    }
    const cb = this.#cb!
    const arg = this.#arg
    this.#cb = null
    this.#arg = null
    this.iovs = null
    this.domain = null
    // a sequence still here never ran (the I/O failed before its bottom finished it): the
    // bdev layer owns it once submitted, so it goes back to its pool now
    if (this.seq !== null) this.seq.abort()
    this.seq = null
    this.onBuffer = null
    this.ch.releaseIo(this)
    bdev.outstanding--
    if (bdev.outstanding === 0 && bdev.drained !== null && bdev.descs.size === 0) bdev.drained()
    cb(arg, status)
  }
}

function completeIo(io: BdevIo, status: number): void {
  io.finishNow(status)
}

function iobufArrived(entry: IobufEntry<BdevIo>, address: number): void {
  const io = entry.data
  io.onBuffer!(io, address)
}

/** One thread's I/O resources (SPDK's bdev io channel): the I/O pool and the accel channel. */
export class BdevChannel {
  readonly bdevs: Bdevs
  readonly accel: AccelChannel
  readonly #free: BdevIo[] = []
  #nFree = 0
  readonly #size: number
  #closed = false
  /** work waiting for resources (I/O objects, accel tasks or buffers), retried on a later turn */
  readonly #retryFns: ((io: BdevIo) => void)[] = []
  readonly #retryIos: BdevIo[] = []
  #retryScheduled = false
  readonly #runRetries = (): void => this.#doRetries()

  /** @internal use Bdevs.channel() */
  constructor(bdevs: Bdevs, accel: AccelChannel, ioCount: number) {
    this.bdevs = bdevs
    this.accel = accel
    this.#size = ioCount
    for (let i = 0; i < ioCount; i++) this.#free.push(new BdevIo())
    this.#nFree = ioCount
  }

  /** I/O objects free (all of them when nothing is in flight). */
  get freeIos(): number {
    return this.#nFree
  }

  get ioCount(): number {
    return this.#size
  }

  /** @internal */
  takeIo(): BdevIo | null {
    if (this.#closed) throw new BdevError('BDEV_STATE', 'this bdev channel was closed')
    if (this.#nFree === 0) return null
    return this.#free[--this.#nFree]!
  }

  /** @internal */
  releaseIo(io: BdevIo): void {
    this.#free[this.#nFree++] = io
  }

  /**
   * Runs fn(io) on a later turn of the event loop: for a module that found a pool empty
   * (SPDK queues such I/O on the channel's io_wait list). Allocation-free in steady state.
   */
  retry(io: BdevIo, fn: (io: BdevIo) => void): void {
    this.#retryFns.push(fn)
    this.#retryIos.push(io)
    if (!this.#retryScheduled) {
      this.#retryScheduled = true
      setImmediate(this.#runRetries)
    }
  }

  #doRetries(): void {
    this.#retryScheduled = false
    const n = this.#retryFns.length
    for (let i = 0; i < n; i++) this.#retryFns[i]!(this.#retryIos[i]!)
    // the ones queued again while running stay, behind
    this.#retryFns.copyWithin(0, n)
    this.#retryIos.copyWithin(0, n)
    this.#retryFns.length -= n
    this.#retryIos.length -= n
  }

  /** Closes the accel channel. Outstanding I/O must have completed. */
  close(): void {
    if (this.#closed) return
    if (this.#nFree !== this.#size) throw new BdevError('BDEV_STATE', `${this.#size - this.#nFree} I/Os are still in flight on this channel`)
    this.#closed = true
    this.accel.close()
    this.bdevs.channelClosed(this)
  }
}

/** An open bdev (SPDK spdk_bdev_desc): I/O goes through it. */
export class BdevDesc {
  readonly bdev: Bdev
  readonly write: boolean
  readonly #onEvent: BdevEventCallback | undefined
  #closed = false

  /** @internal use Bdevs.open() */
  constructor(bdev: Bdev, write: boolean, onEvent: BdevEventCallback | undefined) {
    this.bdev = bdev
    this.write = write
    this.#onEvent = onEvent
  }

  get closed(): boolean {
    return this.#closed
  }

  /** @internal */
  event(e: BdevEvent): void {
    if (this.#closed) return
    if (this.#onEvent !== undefined) this.#onEvent(e, this.bdev)
  }

  /** Reads numBlocks blocks at offsetBlocks into iovs (numBlocks x blockLen bytes, in `domain`). */
  readv<T>(ch: BdevChannel, iovs: IoVecList, domain: MemoryDomain | null, offsetBlocks: number, numBlocks: number, cb: BdevCompletion<T>, arg: T, opts?: BdevIoOptions): number {
    return this.#rw('read', ch, iovs, domain, offsetBlocks, numBlocks, cb, arg, opts)
  }

  /** Writes numBlocks blocks from iovs at offsetBlocks. */
  writev<T>(ch: BdevChannel, iovs: IoVecList, domain: MemoryDomain | null, offsetBlocks: number, numBlocks: number, cb: BdevCompletion<T>, arg: T, opts?: BdevIoOptions): number {
    return this.#rw('write', ch, iovs, domain, offsetBlocks, numBlocks, cb, arg, opts)
  }

  /** Zeroes blocks (reads return zeros afterwards). */
  writeZeroes<T>(ch: BdevChannel, offsetBlocks: number, numBlocks: number, cb: BdevCompletion<T>, arg: T): number {
    return this.#range('write_zeroes', ch, offsetBlocks, numBlocks, cb, arg)
  }

  /** Deallocates blocks (NVMe Dataset Management, deallocate): their contents are no longer kept. */
  unmap<T>(ch: BdevChannel, offsetBlocks: number, numBlocks: number, cb: BdevCompletion<T>, arg: T): number {
    return this.#range('unmap', ch, offsetBlocks, numBlocks, cb, arg)
  }

  /** Makes completed writes durable (a volatile write cache is written back). */
  flush<T>(ch: BdevChannel, offsetBlocks: number, numBlocks: number, cb: BdevCompletion<T>, arg: T): number {
    return this.#range('flush', ch, offsetBlocks, numBlocks, cb, arg)
  }

  /** Resets the bdev: completes once the I/O submitted before it has completed. */
  reset<T>(ch: BdevChannel, cb: BdevCompletion<T>, arg: T): number {
    return this.#range('reset', ch, 0, 0, cb, arg)
  }

  #live(write: boolean): void {
    if (this.#closed) throw new BdevError('BDEV_STATE', `the descriptor of ${this.bdev.name} was closed`)
    if (write && !this.write) throw new BdevError('BDEV_READ_ONLY', `${this.bdev.name} was opened read-only`)
  }

  #rw<T>(type: 'read' | 'write', ch: BdevChannel, iovs: IoVecList, domain: MemoryDomain | null, off: number, num: number, cb: BdevCompletion<T>, arg: T, opts: BdevIoOptions | undefined): number {
    this.#live(type === 'write')
    const b = this.bdev
    if (iovs === null || typeof iovs !== 'object' || typeof iovs.total !== 'number') throw new BdevError('BDEV_BAD_ARGUMENT', 'iovs must be an IoVecList')
    checkInt('numBlocks', num, 1, Number.MAX_SAFE_INTEGER)
    checkInt('offsetBlocks', off, 0, Number.MAX_SAFE_INTEGER)
    if (typeof cb !== 'function') throw new BdevError('BDEV_BAD_ARGUMENT', 'cb must be a function')
    const total = iovs.total
    if (total !== num * b.blockLen) throw new BdevError('BDEV_BAD_ARGUMENT', `${b.name}: ${num} blocks of ${b.blockLen} bytes need ${num * b.blockLen} bytes of iovecs, have ${total}`)
    const seq = opts?.seq ?? null
    if (seq !== null && b.maxIoBlocks > 0 && num > b.maxIoBlocks) {
      throw new BdevError('BDEV_BAD_ARGUMENT', `${b.name}: an I/O with an accel sequence may carry at most ${b.maxIoBlocks} blocks (maxIoBlocks), got ${num}`)
    }
    const io = ch.takeIo()
    if (io === null) return BDEV_NO_IO
    io.start(type, b, ch, off, num, iovs, domain, cb as BdevCompletion<unknown>, arg)
    io.seq = seq
    io.fua = opts?.fua === true
    io.difError = opts?.difError ?? null
    b.outstanding++
    dispatch(io)
    return 0
  }

  #range<T>(type: BdevIoType, ch: BdevChannel, off: number, num: number, cb: BdevCompletion<T>, arg: T): number {
    this.#live(type !== 'reset' && type !== 'flush')
    checkInt('numBlocks', num, 0, Number.MAX_SAFE_INTEGER)
    checkInt('offsetBlocks', off, 0, Number.MAX_SAFE_INTEGER)
    if (typeof cb !== 'function') throw new BdevError('BDEV_BAD_ARGUMENT', 'cb must be a function')
    const io = ch.takeIo()
    if (io === null) return BDEV_NO_IO
    io.start(type, this.bdev, ch, off, num, null, null, cb as BdevCompletion<unknown>, arg)
    this.bdev.outstanding++
    dispatch(io)
    return 0
  }

  /** Closes the descriptor (its claim too). Its I/O in flight still completes. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const b = this.bdev
    b.descs.delete(this)
    if (b.claimDesc === this) {
      b.claimDesc = null
      b.claimedBy = null
    }
    if (b.descs.size === 0 && b.outstanding === 0 && b.drained !== null) b.drained()
  }
}

/** The checks every I/O passes before its module sees it; then the split, if it needs one. */
function dispatch(io: BdevIo): void {
  const b = io.bdev
  if (b.removing) return io.complete(NvmeStatus.InvalidNamespaceOrFormat)
  if (!b.ioTypeSupported(io.type)) return io.complete(NvmeStatus.InvalidOpcode)
  if (io.offsetBlocks + io.numBlocks > b.blockCount) return io.complete(NvmeStatus.LbaOutOfRange)
  if ((io.type === 'read' || io.type === 'write') && b.maxIoBlocks > 0 && io.numBlocks > b.maxIoBlocks) return split(io)
  b.submit(io)
}

/**
 * Splits a read or write larger than the bdev's maxIoBlocks into pieces, all submitted at
 * once; the I/O completes when the last one does, with the first failure. (An I/O with a
 * sequence is not split: the caller keeps within maxIoBlocks.)
 */
function split(io: BdevIo): void {
  const b = io.bdev
  const max = b.maxIoBlocks
  io.pending = Math.ceil(io.numBlocks / max)
  io.status = NvmeStatus.Success
  io.progress = 0
  splitMore(io)
}

function splitMore(io: BdevIo): void {
  const b = io.bdev
  const max = b.maxIoBlocks
  while (io.progress < io.numBlocks) {
    const child = io.ch.takeIo()
    if (child === null) return io.ch.retry(io, splitMore)
    const n = Math.min(max, io.numBlocks - io.progress)
    const piece = child.lists[1]
    sliceIovs(io.iovs!, io.progress * b.blockLen, n * b.blockLen, piece)
    child.start(io.type, b, io.ch, io.offsetBlocks + io.progress, n, piece, io.domain, pieceDone as BdevCompletion<unknown>, io)
    child.parent = io
    child.fua = io.fua
    child.difError = io.difError
    io.progress += n
    b.outstanding++
    b.submit(child)
  }
}

function pieceDone(parent: BdevIo, status: number): void {
  if (status !== NvmeStatus.Success && parent.status === NvmeStatus.Success) parent.status = status
  if (--parent.pending === 0) parent.complete(parent.status)
}

/** Copies the pairs of `src` covering bytes [offset, offset + length) into `out`. */
export function sliceIovs(src: IoVecList, offset: number, length: number, out: IoVecList): IoVecList {
  out.clear()
  let skip = offset
  let left = length
  for (let i = 0; i < src.count && left > 0; i++) {
    const n = src.len[i]!
    if (skip >= n) {
      skip -= n
      continue
    }
    const take = Math.min(n - skip, left)
    out.push(src.addr[i]! + skip, take)
    left -= take
    skip = 0
  }
  if (left > 0) throw new BdevError('BDEV_BAD_ARGUMENT', `iovecs hold ${src.total} bytes, fewer than ${offset + length}`)
  return out
}

export interface OpenOptions {
  write?: boolean
  /** hot remove: 'remove' when the bdev is being unregistered; close the descriptor */
  onEvent?: BdevEventCallback
}

/** The bdevs of a framework (SPDK's bdev subsystem): registration, opening, claims, removal. */
export class Bdevs {
  readonly accel: Accel
  readonly #bdevs = new Map<string, Bdev>()
  readonly #channels = new Set<BdevChannel>()
  readonly #ioCount: number

  constructor(accel: Accel, options: { ioCount?: number } = {}) {
    if (accel === null || typeof accel !== 'object' || typeof accel.channel !== 'function') throw new BdevError('BDEV_BAD_ARGUMENT', 'accel must be a started @ipukit/accel framework')
    this.accel = accel
    this.#ioCount = options.ioCount ?? 1024
    checkInt('ioCount', this.#ioCount, 1, 1 << 20)
  }

  /** @internal modules call this from their create functions */
  register(bdev: Bdev): void {
    if (this.#bdevs.has(bdev.name)) throw new BdevError('BDEV_EXISTS', `a bdev named '${bdev.name}' exists`)
    bdev.registry = this
    this.#bdevs.set(bdev.name, bdev)
  }

  get(name: string): Bdev | undefined {
    return this.#bdevs.get(name)
  }

  /** The bdevs, in registration order. */
  list(): Bdev[] {
    return [...this.#bdevs.values()]
  }

  /** Opens a bdev (SPDK spdk_bdev_open_ext). A write open fails while a module holds its claim. */
  open(name: string, options: OpenOptions = {}): BdevDesc {
    const b = this.#bdevs.get(name)
    if (b === undefined) throw new BdevError('BDEV_NOT_FOUND', `no bdev named '${name}'${this.#bdevs.size > 0 ? ` (have ${[...this.#bdevs.keys()].join(', ')})` : ''}`)
    if (b.removing) throw new BdevError('BDEV_STATE', `${name} is being removed`)
    const write = options.write === true
    if (write && b.claimedBy !== null) throw new BdevError('BDEV_CLAIMED', `${name} is claimed by ${b.claimedBy}: it has one writer`)
    const d = new BdevDesc(b, write, options.onEvent)
    b.descs.add(d)
    return d
  }

  /**
   * Claims a bdev for a module through its descriptor (SPDK spdk_bdev_module_claim_bdev,
   * exclusive write): the descriptor becomes the bdev's only writer.
   */
  claim(desc: BdevDesc, module: string): void {
    const b = desc.bdev
    if (desc.closed) throw new BdevError('BDEV_STATE', `the descriptor of ${b.name} was closed`)
    if (b.claimedBy !== null) throw new BdevError('BDEV_CLAIMED', `${b.name} is claimed by ${b.claimedBy}`)
    if (!desc.write) throw new BdevError('BDEV_READ_ONLY', `claim ${b.name} through a descriptor opened for writing`)
    for (const d of b.descs) if (d !== desc && d.write) throw new BdevError('BDEV_CLAIMED', `${b.name} has another writer: close it before ${module} claims it`)
    b.claimedBy = module
    b.claimDesc = desc
  }

  /**
   * Hot remove (SPDK spdk_bdev_unregister): every open descriptor gets 'remove' and must
   * close; bdevs stacked on this one remove themselves the same way. New I/O completes
   * with Invalid Namespace or Format. Resolves once the module has freed its resources.
   */
  async unregister(name: string): Promise<void> {
    const b = this.#bdevs.get(name)
    if (b === undefined) throw new BdevError('BDEV_NOT_FOUND', `no bdev named '${name}'`)
    if (b.removing) return new Promise((resolve) => waitDrained(b, resolve))
    b.removing = true
    for (const d of [...b.descs]) d.event('remove')
    await new Promise<void>((resolve) => waitDrained(b, resolve))
    this.#bdevs.delete(name)
    b.registry = null
    await b.destruct()
  }

  /** A channel for the calling thread, with its own accel channel (spdk_bdev_get_io_channel). */
  channel(): BdevChannel {
    const ch = new BdevChannel(this, this.accel.channel(), this.#ioCount)
    this.#channels.add(ch)
    return ch
  }

  /** @internal */
  channelClosed(ch: BdevChannel): void {
    this.#channels.delete(ch)
  }

  /** Unregisters every bdev, top of each stack first, and closes the channels. */
  async close(): Promise<void> {
    while (this.#bdevs.size > 0) {
      // a bdev nobody has open (the tops of the stacks), or else any
      const top = [...this.#bdevs.values()].find((b) => b.descs.size === 0) ?? [...this.#bdevs.values()][0]!
      await this.unregister(top.name)
    }
    for (const ch of [...this.#channels]) ch.close()
  }
}

function waitDrained(b: Bdev, resolve: () => void): void {
  if (b.descs.size === 0 && b.outstanding === 0) return resolve()
  const prev = b.drained
  b.drained = () => {
    b.drained = null
    prev?.()
    resolve()
  }
}
