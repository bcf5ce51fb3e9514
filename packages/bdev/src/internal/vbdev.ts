// What stacked bdevs share: the base bdev, opened for writing and claimed (one writer), and
// hot remove: when the base goes, this bdev unregisters itself, and its own openers are told
// in turn; its descriptor on the base closes once nothing of it is left.
import { Bdev, type BdevDesc, type BdevGeometry, type BdevIo, BDEV_NO_IO, type Bdevs } from '../bdev.js'
import { BdevError } from '../errors.js'

export abstract class VirtualBdev extends Bdev {
  readonly base: Bdev
  readonly baseDesc: BdevDesc
  readonly bdevs: Bdevs

  protected constructor(bdevs: Bdevs, baseDesc: BdevDesc, g: BdevGeometry) {
    super(g)
    this.bdevs = bdevs
    this.baseDesc = baseDesc
    this.base = baseDesc.bdev
  }

  override destruct(): void | Promise<void> {
    this.baseDesc.close()
  }

  override driverSpecific(): Record<string, unknown> {
    return { [this.module]: { base: this.base.name } }
  }

  /** @internal the base is going: so does this bdev */
  baseRemoved(): void {
    if (!this.removing && this.registry !== null) void this.bdevs.unregister(this.name)
  }
}

/**
 * Opens `base` for writing, builds the stacked bdev, claims the base for it and registers
 * it; on any failure the base is left as it was.
 */
export function stack<B extends VirtualBdev>(bdevs: Bdevs, name: string, base: string, module: string, build: (desc: BdevDesc) => B): B {
  if (typeof name !== 'string' || name === '') throw new BdevError('BDEV_BAD_ARGUMENT', 'name must be a non-empty string')
  if (bdevs.get(name) !== undefined) throw new BdevError('BDEV_EXISTS', `a bdev named '${name}' exists`)
  let self: B | null = null
  const desc = bdevs.open(base, { write: true, onEvent: () => self?.baseRemoved() })
  try {
    self = build(desc)
    bdevs.claim(desc, `${module} ${name}`)
    bdevs.register(self)
    return self
  } catch (e) {
    desc.close()
    throw e
  }
}

/**
 * Submits an I/O's twin to the base, retrying on a later turn while the channel's I/O
 * objects are all in use. Once submitted, the twin owns the I/O's accel sequence.
 */
export function forward(io: BdevIo, submit: (io: BdevIo) => number): void {
  if (submit(io) === BDEV_NO_IO) return io.ch.retry(io, (again) => forward(again, submit))
  io.seq = null
}

/** A child's completion: the parent I/O completes with the child's status. */
export function childDone(parent: BdevIo, status: number): void {
  parent.finishNow(status)
}
