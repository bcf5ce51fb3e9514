// The file bdev (SPDK bdev_aio): a file on disk, in the extended-LBA layout when the blocks
// carry metadata: block i, its data then its metadata, at offset i x (blockSize + mdSize),
// so another program can read the file block by block.
//
//   write   the I/O's sequence runs into iobuf buffers (copy elision makes its last step,
//           say a fused encrypt + dif_generate_copy, write them directly), then one
//           positional writev puts them in the file
//   read    one positional readv into iobuf buffers, then the sequence runs from them
//   flush   fdatasync; a write with FUA is followed by one before it completes. A write that
//           has completed is in the kernel's page cache, so a killed process loses nothing it
//           was told was written; a flush makes it survive power loss too.
//   unmap, write_zeroes   zeros written (with all-ones PI fields when the blocks carry PI:
//           the escape value a verify skips), as is the space the file grows by
//
// Errors of the file system become NVMe statuses: ENOSPC (and EDQUOT, EFBIG) Capacity
// Exceeded, EROFS Namespace Write Protected, EACCES and EPERM Access Denied, anything else
// Write Fault or Unrecovered Read Error; `lastError` keeps the last one for the logs.
// Node's fs calls allocate a request object per call, and the buffers are passed as views:
// this module allocates per I/O what they need, and nothing else.
import { closeSync, constants, fdatasync, fstatSync, ftruncate, openSync, readv, writeSync, writev } from 'node:fs'
import { piSizeOf } from '@ipukit/dif'
import type { IoVecList } from '@ipukit/memory'
import { Bdev, type BdevIo, type BdevIoType, type BdevPi, type Bdevs } from './bdev.js'
import { BdevError } from './errors.js'
import { runSequence } from './internal/exec.js'
import { NvmeStatus } from './status.js'

export interface FileBdevOptions {
  name: string
  path: string
  /** data bytes per block; default 512 */
  blockSize?: number
  /** interleaved metadata bytes per block; default 0 */
  mdSize?: number
  pi?: Partial<BdevPi>
  /**
   * Blocks of the bdev. The file is created if missing and grown to hold them (the new
   * blocks written as deallocated ones); a larger file is used up to here. Default: the
   * whole blocks the file holds.
   */
  blockCount?: number
  readonly?: boolean
  /** O_DIRECT (Linux): no page cache. Needs blocks of a multiple of 512 bytes with metadata included. */
  direct?: boolean
  uuid?: string
}

export interface FileError {
  readonly code: string
  readonly message: string
  readonly operation: 'read' | 'write' | 'flush'
}

/** Bytes of the pattern buffer for zeroing: whole blocks, about 256 KiB, page-aligned in IPU DRAM (O_DIRECT needs alignment). */
const ZERO_CHUNK = 256 * 1024

export class FileBdev extends Bdev {
  readonly module = 'aio'
  readonly path: string
  readonly readonly: boolean
  readonly direct: boolean
  /** the last error the file system returned */
  lastError: FileError | null = null
  readonly #fd: number
  readonly #bdevs: Bdevs
  #zeros: Uint8Array | null = null
  #zerosAt = -1
  #closed = false

  /** @internal use createFileBdev */
  constructor(bdevs: Bdevs, o: FileBdevOptions, fd: number, blockCount: number) {
    super({ name: o.name, blockCount, blockSize: o.blockSize ?? 512, mdSize: o.mdSize ?? 0, ...(o.pi !== undefined && { pi: o.pi }), ...(o.uuid !== undefined && { uuid: o.uuid }) })
    this.#bdevs = bdevs
    this.#fd = fd
    this.path = o.path
    this.readonly = o.readonly === true
    this.direct = o.direct === true
  }

  get fd(): number {
    return this.#fd
  }

  ioTypeSupported(type: BdevIoType): boolean {
    return this.readonly ? type === 'read' || type === 'flush' || type === 'reset' : true
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case 'read':
        return buffers(io, io.numBlocks * this.blockLen, readFile)
      case 'write':
        return buffers(io, io.numBlocks * this.blockLen, copyIn)
      case 'flush':
        return fdatasync(this.#fd, (e) => flushed(io, e))
      case 'unmap':
      case 'write_zeroes':
        io.progress = 0
        return zeroMore(io)
      case 'reset':
        return io.complete(NvmeStatus.Success)
    }
  }

  /** @internal a chunk of deallocated blocks: zeros, and all-ones PI when the blocks carry PI */
  zeros(): Uint8Array {
    if (this.#zeros === null) {
      const blocks = Math.max(1, Math.floor(ZERO_CHUNK / this.blockLen))
      const pm = this.#bdevs.accel.physical
      const at = pm.ipuAllocator.alloc(blocks * this.blockLen)
      if (at < 0) throw new BdevError('BDEV_NO_SPACE', `${this.name}: IPU DRAM has no ${blocks * this.blockLen} bytes for the zeroing pattern`)
      this.#zerosAt = at
      const z = new Uint8Array(pm.memory.buffer, at, blocks * this.blockLen)
      z.fill(0)
      if (this.pi.type !== 0) {
        const pi = piSizeOf(this.pi.format)
        const at = this.blockSize + (this.pi.location === 'first' ? 0 : this.mdSize - pi)
        for (let b = 0; b < blocks; b++) z.fill(0xff, b * this.blockLen + at, b * this.blockLen + at + pi)
      }
      this.#zeros = z
    }
    return this.#zeros
  }

  /** @internal */
  failed(e: NodeJS.ErrnoException, operation: FileError['operation']): number {
    this.lastError = { code: e.code ?? 'EIO', message: e.message, operation }
    return fsStatus(e.code, operation !== 'read')
  }

  override destruct(): void {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
    if (this.#zerosAt >= 0) this.#bdevs.accel.physical.ipuAllocator.free(this.#zerosAt)
  }

  override driverSpecific(): Record<string, unknown> {
    return { aio: { filename: this.path, readonly: this.readonly, direct: this.direct } }
  }

  /** @internal the views of a list of buffers, for fs */
  views(l: IoVecList): Uint8Array[] {
    const buf = this.#bdevs.accel.physical.memory.buffer
    const out: Uint8Array[] = []
    for (let i = 0; i < l.count; i++) out.push(new Uint8Array(buf, l.addr[i]!, l.len[i]!))
    return out
  }
}

function fsStatus(code: string | undefined, write: boolean): number {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return NvmeStatus.CapacityExceeded
    case 'EROFS':
      return NvmeStatus.NamespaceWriteProtected
    case 'EACCES':
    case 'EPERM':
      return NvmeStatus.AccessDenied
    default:
      return write ? NvmeStatus.WriteFault : NvmeStatus.UnrecoveredReadError
  }
}

// ---- iobuf buffers for an I/O: lists[0], as many as its bytes need ----

function buffers(io: BdevIo, bytes: number, then: (io: BdevIo) => void): void {
  const l = io.lists[0]
  if (io.pending === 0) {
    l.clear()
    io.pending = 1
  }
  const pool = io.ch.accel.iobuf
  let have = l.total
  while (have < bytes) {
    const want = Math.min(pool.largeSize, bytes - have)
    const a = pool.get(want, io.iobufEntry)
    if (a === 0) {
      // queued: the entry's callback gets the next buffer put back
      io.onBuffer = (again, address) => {
        again.lists[0].push(address, Math.min(pool.largeSize, bytes - again.lists[0].total))
        buffers(again, bytes, then)
      }
      return
    }
    l.push(a, want)
    have += want
  }
  io.pending = 0
  then(io)
}

function release(io: BdevIo): void {
  const l = io.lists[0]
  const pool = io.ch.accel.iobuf
  for (let i = 0; i < l.count; i++) pool.put(l.addr[i]!)
  l.clear()
}

// ---- write: sequence into the buffers, then writev ----

function copyIn(io: BdevIo): void {
  runSequence(io, io.lists[0], copiedIn)
}

function copiedIn(io: BdevIo, status: number): void {
  if (status !== NvmeStatus.Success) {
    release(io)
    return io.finishNow(status)
  }
  io.progress = 0
  writeFile(io)
}

function writeFile(io: BdevIo): void {
  const b = io.bdev as FileBdev
  const views = b.views(io.lists[0])
  // after a short write, the rest
  let skip = io.progress
  while (skip > 0 && views.length > 0) {
    const v = views[0]!
    if (skip >= v.length) {
      views.shift()
      skip -= v.length
    } else {
      views[0] = v.subarray(skip)
      skip = 0
    }
  }
  writev(b.fd, views, io.offsetBlocks * b.blockLen + io.progress, (e, n) => fileWritten(io, e, n))
}

function fileWritten(io: BdevIo, e: NodeJS.ErrnoException | null, n: number): void {
  const b = io.bdev as FileBdev
  if (e !== null) {
    release(io)
    return io.finishNow(b.failed(e, 'write'))
  }
  io.progress += n
  const total = io.numBlocks * b.blockLen
  if (io.progress < total) {
    if (n === 0) {
      release(io)
      b.lastError = { code: 'EIO', message: 'the file took no bytes', operation: 'write' }
      return io.finishNow(NvmeStatus.WriteFault)
    }
    return writeFile(io)
  }
  release(io)
  if (io.fua) return fdatasync(b.fd, (err) => flushed(io, err))
  io.finishNow(NvmeStatus.Success)
}

function flushed(io: BdevIo, e: NodeJS.ErrnoException | null): void {
  if (e !== null) return io.finishNow((io.bdev as FileBdev).failed(e, 'flush'))
  io.finishNow(NvmeStatus.Success)
}

// ---- read: readv into the buffers, then the sequence from them ----

function readFile(io: BdevIo): void {
  const b = io.bdev as FileBdev
  readv(b.fd, b.views(io.lists[0]), io.offsetBlocks * b.blockLen, (e, n) => fileRead(io, e, n))
}

function fileRead(io: BdevIo, e: NodeJS.ErrnoException | null, n: number): void {
  const b = io.bdev as FileBdev
  if (e !== null || n !== io.numBlocks * b.blockLen) {
    release(io)
    // a short read: the file is shorter than the bdev (someone truncated it)
    if (e === null) b.lastError = { code: 'EIO', message: `read ${n} of ${io.numBlocks * b.blockLen} bytes: the file ends early`, operation: 'read' }
    return io.finishNow(e !== null ? b.failed(e, 'read') : NvmeStatus.UnrecoveredReadError)
  }
  runSequence(io, io.lists[0], copiedOut)
}

function copiedOut(io: BdevIo, status: number): void {
  release(io)
  io.finishNow(status)
}

// ---- unmap and write_zeroes: the zeros pattern, a chunk at a time ----

function zeroMore(io: BdevIo): void {
  const b = io.bdev as FileBdev
  const z = b.zeros()
  const perChunk = z.length / b.blockLen
  const blocks = Math.min(perChunk, io.numBlocks - io.progress)
  writev(b.fd, [blocks === perChunk ? z : z.subarray(0, blocks * b.blockLen)], (io.offsetBlocks + io.progress) * b.blockLen, (e, n) => {
    if (e !== null) return io.finishNow(b.failed(e, 'write'))
    if (n !== blocks * b.blockLen) {
      b.lastError = { code: 'EIO', message: `wrote ${n} of ${blocks * b.blockLen} bytes`, operation: 'write' }
      return io.finishNow(NvmeStatus.WriteFault)
    }
    io.progress += blocks
    if (io.progress < io.numBlocks) return zeroMore(io)
    io.finishNow(NvmeStatus.Success)
  })
}

/** Writes deallocated blocks [from, to) synchronously (creation and growth). */
function initialize(fd: number, b: { blockLen: number; zeros(): Uint8Array }, from: number, to: number): void {
  const z = b.zeros()
  const per = z.length / b.blockLen
  for (let at = from; at < to; at += per) {
    const n = Math.min(per, to - at)
    let off = 0
    while (off < n * b.blockLen) off += writeSyncAt(fd, z.subarray(off, n * b.blockLen), at * b.blockLen + off)
  }
}

function writeSyncAt(fd: number, data: Uint8Array, position: number): number {
  const n = writeSync(fd, data, 0, data.length, position)
  if (n === 0) throw new Error('the file took no bytes')
  return n
}

/** Opens (or creates) a file as a bdev and registers it (SPDK bdev_aio_create). */
export async function createFileBdev(bdevs: Bdevs, options: FileBdevOptions): Promise<FileBdev> {
  const o = options
  if (o === null || typeof o !== 'object') throw new BdevError('BDEV_BAD_ARGUMENT', 'options must be an object')
  if (typeof o.name !== 'string' || o.name === '') throw new BdevError('BDEV_BAD_ARGUMENT', 'name must be a non-empty string')
  if (bdevs.get(o.name) !== undefined) throw new BdevError('BDEV_EXISTS', `a bdev named '${o.name}' exists`)
  if (typeof o.path !== 'string' || o.path === '') throw new BdevError('BDEV_BAD_ARGUMENT', `${o.name}: path must be a non-empty string`)
  const blockLen = (o.blockSize ?? 512) + (o.mdSize ?? 0)
  if (o.direct === true) {
    if (constants.O_DIRECT === undefined) throw new BdevError('BDEV_FILE', `${o.name}: direct I/O (O_DIRECT) is not available on ${process.platform}`)
    if (blockLen % 512 !== 0) throw new BdevError('BDEV_FILE', `${o.name}: direct I/O needs blocks of a multiple of 512 bytes, metadata included; ${blockLen} is not`)
  }
  let flags = o.readonly === true ? constants.O_RDONLY : constants.O_RDWR
  if (o.blockCount !== undefined && o.readonly !== true) flags |= constants.O_CREAT
  if (o.direct === true) flags |= constants.O_DIRECT!
  let fd: number
  try {
    fd = openSync(o.path, flags, 0o644)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (o.direct === true && code === 'EINVAL') throw new BdevError('BDEV_FILE', `${o.name}: the file system holding ${o.path} does not support direct I/O (O_DIRECT)`, { cause: e })
    throw new BdevError('BDEV_FILE', `${o.name}: cannot open ${o.path}: ${(e as Error).message}`, { cause: e })
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) {
      // a device (a block device, /dev/full in tests): its size is its own; take blockCount as given
      if (o.blockCount === undefined) throw new BdevError('BDEV_FILE', `${o.name}: ${o.path} is not a regular file: give blockCount`)
      const b = new FileBdev(bdevs, o, fd, o.blockCount)
      bdevs.register(b)
      return b
    }
    const size = st.size
    const have = Math.floor(size / blockLen)
    const count = o.blockCount ?? have
    if (count < 1) throw new BdevError('BDEV_FILE', `${o.name}: ${o.path} holds no whole block of ${blockLen} bytes (${size} bytes); give blockCount to size it`)
    const b = new FileBdev(bdevs, o, fd, count)
    if (count > have) {
      if (o.readonly === true) throw new BdevError('BDEV_FILE', `${o.name}: ${o.path} holds ${have} blocks, fewer than the ${count} asked, and is opened read-only`)
      // the blocks the file grows by are written as deallocated ones; a ragged tail is cut
      await new Promise<void>((resolve, reject) => ftruncate(fd, have * blockLen, (e) => (e ? reject(e) : resolve())))
      try {
        initialize(fd, b, have, count)
      } catch (e) {
        b.destruct()
        throw new BdevError('BDEV_FILE', `${o.name}: cannot grow ${o.path} to ${count * blockLen} bytes: ${(e as Error).message}`, { cause: e })
      }
    }
    bdevs.register(b)
    return b
  } catch (e) {
    try {
      closeSync(fd)
    } catch {
      // already closed by the bdev's destruct
    }
    if (e instanceof BdevError) throw e
    throw new BdevError('BDEV_FILE', `${o.name}: ${o.path}: ${(e as Error).message}`, { cause: e })
  }
}
