// The passthru bdev (SPDK vbdev_passthru): every I/O goes to the base as it came, buffers,
// domain and accel sequence included. It is the template for a stacked module: open and
// claim the base (internal/vbdev.ts stack()), forward each I/O, complete the parent when
// the child completes, and remove yourself when the base goes.
import type { BdevIo, BdevIoType, Bdevs } from './bdev.js'
import { childDone, forward, stack, VirtualBdev } from './internal/vbdev.js'
import type { BdevDesc } from './bdev.js'

export interface PassthruBdevOptions {
  name: string
  /** the base bdev's name */
  base: string
  uuid?: string
}

export class PassthruBdev extends VirtualBdev {
  readonly module = 'passthru'

  /** @internal use createPassthruBdev */
  constructor(bdevs: Bdevs, desc: BdevDesc, o: PassthruBdevOptions) {
    const b = desc.bdev
    super(bdevs, desc, { name: o.name, blockSize: b.blockSize, mdSize: b.mdSize, pi: b.pi, blockCount: b.blockCount, maxIoBlocks: b.maxIoBlocks, ...(o.uuid !== undefined && { uuid: o.uuid }) })
  }

  ioTypeSupported(type: BdevIoType): boolean {
    return this.base.ioTypeSupported(type)
  }

  submit(io: BdevIo): void {
    forward(io, below)
  }
}

function below(io: BdevIo): number {
  const d = (io.bdev as PassthruBdev).baseDesc
  const o = io.childOpts
  o.seq = io.seq
  o.fua = io.fua
  o.difError = io.difError
  switch (io.type) {
    case 'read':
      return d.readv(io.ch, io.iovs!, io.domain, io.offsetBlocks, io.numBlocks, childDone, io, o)
    case 'write':
      return d.writev(io.ch, io.iovs!, io.domain, io.offsetBlocks, io.numBlocks, childDone, io, o)
    case 'unmap':
      return d.unmap(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    case 'write_zeroes':
      return d.writeZeroes(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    case 'flush':
      return d.flush(io.ch, io.offsetBlocks, io.numBlocks, childDone, io)
    case 'reset':
      return d.reset(io.ch, childDone, io)
  }
}

/** Creates a passthru bdev over `base` and claims it (SPDK bdev_passthru_create). */
export function createPassthruBdev(bdevs: Bdevs, options: PassthruBdevOptions): PassthruBdev {
  return stack(bdevs, options.name, options.base, 'passthru', (desc) => new PassthruBdev(bdevs, desc, options))
}
