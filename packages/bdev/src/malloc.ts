// The malloc bdev: a RAM disk in IPU DRAM (SPDK bdev_malloc), with interleaved metadata if
// asked (extended LBA: block i at base + i x (blockSize + mdSize)). Reads and writes run the
// I/O's accel sequence straight into the RAM, so a fused encrypt + dif_generate_copy writes
// ciphertext and PI into it in one pass.
//
// Deallocated and never-written blocks read as zeros; with PI their PI fields are all ones,
// the escape value that makes a verify skip them (NVMe: app tag FFFFh, and for Type 3 an
// all-ones ref tag too), so a dif bdev above reads zeros rather than a PI error.
import { piSizeOf } from '@ipukit/dif'
import { Bdev, type BdevIo, type BdevIoType, type BdevPi, type Bdevs } from './bdev.js'
import { BdevError } from './errors.js'
import { runSequence } from './internal/exec.js'
import { NvmeStatus } from './status.js'

export interface MallocBdevOptions {
  name: string
  blockCount: number
  /** data bytes per block; default 512 */
  blockSize?: number
  /** interleaved metadata bytes per block; default 0 */
  mdSize?: number
  pi?: Partial<BdevPi>
  uuid?: string
}

export class MallocBdev extends Bdev {
  readonly module = 'malloc'
  /** the first byte in IPU DRAM */
  readonly address: number
  readonly #bytes: number
  readonly #bdevs: Bdevs

  /** @internal use createMallocBdev */
  constructor(bdevs: Bdevs, o: MallocBdevOptions) {
    super({ name: o.name, blockCount: o.blockCount, blockSize: o.blockSize ?? 512, mdSize: o.mdSize ?? 0, ...(o.pi !== undefined && { pi: o.pi }), ...(o.uuid !== undefined && { uuid: o.uuid }) })
    this.#bdevs = bdevs
    this.#bytes = this.blockCount * this.blockLen
    const pm = bdevs.accel.physical
    const at = this.#bytes <= pm.ipuAllocator.size ? pm.ipuAllocator.alloc(this.#bytes) : -1
    if (at < 0) throw new BdevError('BDEV_NO_SPACE', `${o.name}: IPU DRAM has no ${this.#bytes} free bytes for the RAM disk (${pm.ipuAllocator.available} free): raise ipuSize`)
    this.address = at
    this.#deallocate(0, this.blockCount)
  }

  ioTypeSupported(_type: BdevIoType): boolean {
    return true
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case 'read':
      case 'write': {
        const local = io.lists[0].clear().push(this.address + io.offsetBlocks * this.blockLen, io.numBlocks * this.blockLen)
        return runSequence(io, local, done)
      }
      case 'unmap':
      case 'write_zeroes':
        this.#deallocate(io.offsetBlocks, io.numBlocks)
        return io.complete(NvmeStatus.Success)
      default:
        // flush and reset: RAM has no cache to write back and nothing queued
        return io.complete(NvmeStatus.Success)
    }
  }

  #deallocate(off: number, num: number): void {
    const m = this.#bdevs.accel.physical.bytes
    const at = this.address + off * this.blockLen
    m.fill(0, at, at + num * this.blockLen)
    if (this.pi.type === 0) return
    const pi = piSizeOf(this.pi.format)
    const piAt = this.blockSize + (this.pi.location === 'first' ? 0 : this.mdSize - pi)
    for (let b = 0; b < num; b++) {
      const p = at + b * this.blockLen + piAt
      m.fill(0xff, p, p + pi)
    }
  }

  override destruct(): void {
    this.#bdevs.accel.physical.ipuAllocator.free(this.address)
  }

  override driverSpecific(): Record<string, unknown> {
    return { malloc: { address: this.address, bytes: this.#bytes } }
  }
}

function done(io: BdevIo, status: number): void {
  io.complete(status)
}

/** Creates and registers a RAM disk (SPDK bdev_malloc_create). */
export function createMallocBdev(bdevs: Bdevs, options: MallocBdevOptions): MallocBdev {
  if (options === null || typeof options !== 'object') throw new BdevError('BDEV_BAD_ARGUMENT', 'options must be an object')
  if (bdevs.get(options.name) !== undefined) throw new BdevError('BDEV_EXISTS', `a bdev named '${options.name}' exists`)
  const b = new MallocBdev(bdevs, options)
  bdevs.register(b)
  return b
}
