// The crypto bdev (SPDK vbdev_crypto on the accel framework): AES-XTS over a base bdev with
// a named key from the accel registry. The data unit is the base's block, and its tweak is
// the block's LBA as a 16-byte little-endian integer (SIMPLE_LBA: OpenSSL's aes-*-xts IV).
//
//   write   encrypt the caller's iovecs into an accel buffer (appended to the I/O's
//           sequence), and write that buffer to the base with the sequence: the layers
//           below append their steps and the bottom finishes it. The caller's buffers are
//           never encrypted in place.
//   read    append decrypt in place on the caller's iovecs, then read into them with the
//           sequence: the bottom reverses it, so decrypt runs after the data arrives.
//   write_zeroes  implemented, not refused (SPDK refuses it so that a write-zeroes cannot
//           leave plaintext zeros on the media): the zeros are encrypted and written, so
//           reading them back gives zeros and the media holds only ciphertext.
//   unmap, flush, reset   to the base. Deallocated blocks read back as whatever the base
//           returns, decrypted: undefined contents, as NVMe allows for deallocated blocks.
//
// A key destroyed under a live bdev fails its I/O with Access Denied.
import type { AccelCryptoKey } from '@ipukit/accel'
import type { BdevDesc, BdevIo, BdevIoType, Bdevs } from './bdev.js'
import { BdevError } from './errors.js'
import { childDone, forward, stack, VirtualBdev } from './internal/vbdev.js'
import { NvmeStatus } from './status.js'

export interface CryptoBdevOptions {
  name: string
  /** the base bdev's name (data-only blocks: stack a dif bdev below for PI) */
  base: string
  /** the key's name in the accel registry (accel_crypto_key_create) */
  key: string
  uuid?: string
}

export class CryptoBdev extends VirtualBdev {
  readonly module = 'crypto'
  readonly keyName: string

  /** @internal use createCryptoBdev */
  constructor(bdevs: Bdevs, desc: BdevDesc, o: CryptoBdevOptions) {
    const b = desc.bdev
    if (b.mdSize !== 0) throw new BdevError('BDEV_BAD_ARGUMENT', `${o.name}: the crypto bdev needs a base without metadata; ${b.name} has ${b.mdSize} bytes per block (put a dif bdev between them)`)
    if (typeof o.key !== 'string' || bdevs.accel.keys.get(o.key) === undefined) {
      throw new BdevError('BDEV_BAD_ARGUMENT', `${o.name}: no crypto key named '${String(o.key)}' (create it with accel_crypto_key_create)`)
    }
    const perBuffer = Math.floor(bdevs.accel.physical.layout.iobuf.largeSize / b.blockSize)
    super(bdevs, desc, {
      name: o.name,
      blockSize: b.blockSize,
      blockCount: b.blockCount,
      maxIoBlocks: b.maxIoBlocks > 0 ? Math.min(b.maxIoBlocks, perBuffer) : perBuffer,
      ...(o.uuid !== undefined && { uuid: o.uuid }),
    })
    this.keyName = o.key
  }

  /** The key, or null when it was destroyed. */
  key(): AccelCryptoKey | null {
    const k = this.bdevs.accel.keys.get(this.keyName)
    return k === undefined || k.destroyed ? null : k
  }

  ioTypeSupported(type: BdevIoType): boolean {
    return type === 'write_zeroes' ? this.base.ioTypeSupported('write') : this.base.ioTypeSupported(type)
  }

  submit(io: BdevIo): void {
    if (io.type !== 'read' && io.type !== 'write' && io.type !== 'write_zeroes') return forward(io, passDown)
    if (this.key() === null) return io.complete(NvmeStatus.AccessDenied)
    if (io.type === 'read') return read(io)
    if (io.type === 'write') return write(io)
    io.progress = 0
    zeroChunk(io)
  }

  override driverSpecific(): Record<string, unknown> {
    return { crypto: { base: this.base.name, key: this.keyName, cipher: 'AES_XTS', tweakMode: 'SIMPLE_LBA' } }
  }
}

function read(io: BdevIo): void {
  const b = io.bdev as CryptoBdev
  const ch = io.ch.accel
  if (io.seq === null) {
    io.seq = ch.sequence()
    if (io.seq === null) return io.ch.retry(io, read)
  }
  // decrypt in place, after the data has arrived (the bottom reverses the sequence)
  if (io.seq.appendDecrypt(b.key()!, io.iovs!, io.domain, io.iovs!, io.domain, io.offsetBlocks, b.blockSize) !== 0) return io.ch.retry(io, read)
  forward(io, readBelow)
}

function readBelow(io: BdevIo): number {
  const o = io.childOpts
  o.seq = io.seq
  o.fua = false
  o.difError = io.difError
  return (io.bdev as CryptoBdev).baseDesc.readv(io.ch, io.iovs!, io.domain, io.offsetBlocks, io.numBlocks, childDone, io, o)
}

function write(io: BdevIo): void {
  const b = io.bdev as CryptoBdev
  const ch = io.ch.accel
  const n = io.numBlocks * b.blockSize
  if (io.bufs[0] === 0) {
    io.bufs[0] = ch.getBuf(n)
    if (io.bufs[0] === 0) return io.ch.retry(io, write)
    io.lists[0].clear().push(io.bufs[0]!, n)
  }
  if (io.seq === null) {
    io.seq = ch.sequence()
    if (io.seq === null) return io.ch.retry(io, write)
  }
  if (io.seq.appendEncrypt(b.key()!, io.lists[0], ch.accelDomain, io.iovs!, io.domain, io.offsetBlocks, b.blockSize) !== 0) return io.ch.retry(io, write)
  forward(io, writeBelow)
}

function writeBelow(io: BdevIo): number {
  const o = io.childOpts
  o.seq = io.seq
  o.fua = io.fua
  o.difError = null
  return (io.bdev as CryptoBdev).baseDesc.writev(io.ch, io.lists[0], io.ch.accel.accelDomain, io.offsetBlocks, io.numBlocks, written, io, o)
}

function written(io: BdevIo, status: number): void {
  io.ch.accel.putBuf(io.bufs[0]!)
  io.bufs[0] = 0
  io.finishNow(status)
}

// ---- write_zeroes: encrypted zeros, a chunk (one accel buffer) at a time ----

function zeroChunk(io: BdevIo): void {
  const b = io.bdev as CryptoBdev
  const ch = io.ch.accel
  const blocks = Math.min(b.maxIoBlocks, io.numBlocks - io.progress)
  const n = blocks * b.blockSize
  if (io.bufs[0] === 0) {
    io.bufs[0] = ch.getBuf(n)
    if (io.bufs[0] === 0) return io.ch.retry(io, zeroChunk)
  }
  const seq = ch.sequence()
  if (seq === null) return io.ch.retry(io, zeroChunk)
  const l = io.lists[0].clear().push(io.bufs[0]!, n)
  const key = b.key()
  if (key === null) {
    seq.abort()
    ch.putBuf(io.bufs[0]!)
    io.bufs[0] = 0
    return io.complete(NvmeStatus.AccessDenied)
  }
  if (seq.appendFill(l, ch.accelDomain, 0) !== 0 || seq.appendEncrypt(key, l, ch.accelDomain, l, ch.accelDomain, io.offsetBlocks + io.progress, b.blockSize) !== 0) {
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
  return (io.bdev as CryptoBdev).baseDesc.writev(io.ch, io.lists[0], io.ch.accel.accelDomain, io.offsetBlocks + io.progress, io.pending, zeroed, io, o)
}

function zeroed(io: BdevIo, status: number): void {
  io.seq = null
  if (status === NvmeStatus.Success) {
    io.progress += io.pending
    if (io.progress < io.numBlocks) return zeroChunk(io)
  }
  io.ch.accel.putBuf(io.bufs[0]!)
  io.bufs[0] = 0
  io.finishNow(status)
}

function passDown(io: BdevIo): number {
  const d = (io.bdev as CryptoBdev).baseDesc
  switch (io.type) {
    case 'unmap':
      return d.unmap(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    case 'flush':
      return d.flush(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    default:
      return d.reset(io.ch, childDone, io)
  }
}

/** Creates a crypto bdev over `base` with the named key, and claims the base (SPDK bdev_crypto_create). */
export function createCryptoBdev(bdevs: Bdevs, options: CryptoBdevOptions): CryptoBdev {
  return stack(bdevs, options.name, options.base, 'crypto', (desc) => new CryptoBdev(bdevs, desc, options))
}
