// Memory domains (SPDK include/spdk/dma.h): "these bytes, in that address space". Every
// buffer the data path describes is an iovec list plus its domain:
//
//   system   IPU-local memory: addresses are physical addresses of the memory
//   host     one per PCI function: addresses are IOVAs, translated by the IOMMU context of
//            that function's requester ID
//   accel    virtual (negative addresses): a buffer has an address but no memory until it
//            is translated or used, when an iobuf buffer backs it; invalidate gives the
//            backing back
//   device   a device memory window (CMB, PMR, p2pmem BAR): addresses are bus addresses
//
// Operations (the SPDK callbacks): pull (domain → local iovecs), push (local → domain),
// memzero, translate (to system iovecs, possibly several; no data moves) and invalidate.
// Each returns a status: anything but Status.Ok means it did not start and its callback
// will not run. Once started, the callback receives (arg, status) later, by the
// completion convention (./completion.ts). An operation a domain does not implement
// answers Status.NotSupported. Translation covers the whole request before any byte
// moves, so a fault leaves every byte as it was.
import { checkInt, rangeError, typeError } from '@ipukit/kernels'
import { type Completion, defer } from './completion.js'
import { IOBUF_RETRY, type IobufChannel } from './iobuf.js'
import { Access, type AccessBits, type Iommu } from './iommu.js'
import { iovCopy, IoVecList, iovZero } from './iov.js'
import type { PhysicalMemory, Region } from './physical-memory.js'
import { Scratch } from './internal/scratch.js'
import { Status } from './status.js'

export type DomainType = 'system' | 'host' | 'accel' | 'device'

const scratch = new Scratch()

export abstract class MemoryDomain {
  abstract readonly type: DomainType
  readonly id: string
  readonly physical: PhysicalMemory
  /** where system iovecs may point */
  protected readonly sysLo: number
  protected readonly sysHi: number

  constructor(physical: PhysicalMemory, id: string) {
    if (typeof id !== 'string' || id === '') throw typeError('id must be a non-empty string')
    this.physical = physical
    this.id = id
    const r = systemRange(physical)
    this.sysLo = r.lo
    this.sysHi = r.hi
  }

  /**
   * Translates iovecs of this domain into memory addresses (system iovecs), appended to
   * `out`; `access` says whether the bytes will be read (1) or written (2). No data moves.
   */
  abstract translate(iovs: IoVecList, out: IoVecList, access?: AccessBits | number): number

  /** Releases what a translation holds (accel backing); a no-op where nothing is held. */
  invalidate(_iovs: IoVecList): void {}

  /** Upper bound of the system iovecs a translation of `iovs` may produce. */
  translationBound(iovs: IoVecList): number {
    return iovs.count
  }

  /** Copies the bytes `src` describes in this domain into system iovecs `dst`. */
  pull<T>(src: IoVecList, dst: IoVecList, cb: Completion<T>, arg: T): number {
    return this.#move(src, dst, Access.Read, cb, arg, false)
  }

  /** Copies system iovecs `src` into what `dst` describes in this domain. */
  push<T>(dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    return this.#move(dst, src, Access.Write, cb, arg, true)
  }

  #move<T>(remote: IoVecList, local: IoVecList, access: AccessBits, cb: Completion<T>, arg: T, pushing: boolean): number {
    if (typeof cb !== 'function') throw typeError('cb must be a function')
    if (remote.total !== local.total) return Status.Invalid
    const lo = this.sysLo
    const hi = this.sysHi
    for (let i = 0; i < local.count; i++) {
      if (!(local.addr[i]! >= lo && local.addr[i]! + local.len[i]! <= hi)) return Status.Invalid
    }
    const phys = scratch.fit('a', this.translationBound(remote))
    const rc = this.translate(remote, phys, access)
    if (rc !== Status.Ok) return rc
    const bytes = this.physical.bytes
    if (pushing) iovCopy(bytes, phys, local)
    else iovCopy(bytes, local, phys)
    defer(cb, arg, Status.Ok)
    return Status.Ok
  }

  /** Zero-fills what `iovs` describes in this domain. */
  memzero<T>(iovs: IoVecList, cb: Completion<T>, arg: T): number {
    if (typeof cb !== 'function') throw typeError('cb must be a function')
    const phys = scratch.fit('a', this.translationBound(iovs))
    const rc = this.translate(iovs, phys, Access.Write)
    if (rc !== Status.Ok) return rc
    iovZero(this.physical.bytes, phys)
    defer(cb, arg, Status.Ok)
    return Status.Ok
  }
}

/** Where system iovecs may point: any region but the kernel region and the control region. */
function systemRange(pm: PhysicalMemory): { lo: number; hi: number } {
  const c = pm.region('control')
  return { lo: c.base + c.size, hi: pm.layout.size }
}

/** IPU-local memory. Translation is the identity (after a range check). */
export class SystemMemoryDomain extends MemoryDomain {
  readonly type = 'system'

  constructor(physical: PhysicalMemory, id = 'system') {
    super(physical, id)
  }

  translate(iovs: IoVecList, out: IoVecList, _access: AccessBits | number = Access.Read): number {
    const start = out.count
    for (let i = 0; i < iovs.count; i++) {
      const a = iovs.addr[i]!
      const n = iovs.len[i]!
      if (!(a >= this.sysLo && a + n <= this.sysHi)) {
        out.count = start
        return Status.Invalid
      }
      out.pushMerged(a, n)
    }
    return Status.Ok
  }
}

/** A host's memory as one PCI function sees it: IOVAs through that function's IOMMU context. */
export class HostMemoryDomain extends MemoryDomain {
  readonly type = 'host'
  readonly iommu: Iommu
  /** requester ID (bus << 8 | device << 3 | function) */
  readonly requester: number

  constructor(physical: PhysicalMemory, iommu: Iommu, requester: number, id = `host:${requester}`) {
    super(physical, id)
    checkInt('requester', requester, 0, 0xffff)
    this.iommu = iommu
    this.requester = requester
  }

  override translationBound(iovs: IoVecList): number {
    // each page of an IOVA range may land somewhere else
    let n = 0
    for (let i = 0; i < iovs.count; i++) n += Math.ceil(iovs.len[i]! / 4096) + 1
    return n
  }

  translate(iovs: IoVecList, out: IoVecList, access: AccessBits | number = Access.Read): number {
    return this.iommu.translateIovs(this.requester, iovs, access, out)
  }
}

/** A device memory window (a BAR: CMB, PMR, p2pmem), addressed by bus address. */
export class DeviceMemoryDomain extends MemoryDomain {
  readonly type = 'device'
  readonly region: Region
  /** bus address of the window's first byte */
  readonly busBase: number

  constructor(physical: PhysicalMemory, region: Region, busBase: number, id = `device:${region.name}`) {
    super(physical, id)
    checkInt('busBase', busBase, 0, 2 ** 53 - region.size)
    if (region.kind !== 'device') throw rangeError(`region '${region.name}' is not a device window`)
    this.region = region
    this.busBase = busBase
  }

  translate(iovs: IoVecList, out: IoVecList, _access: AccessBits | number = Access.Read): number {
    const start = out.count
    for (let i = 0; i < iovs.count; i++) {
      const off = iovs.addr[i]! - this.busBase
      const n = iovs.len[i]!
      if (!(off >= 0 && off + n <= this.region.size)) {
        out.count = start
        return Status.Invalid
      }
      out.pushMerged(this.region.base + off, n)
    }
    return Status.Ok
  }
}

/**
 * The accel framework's virtual buffers (SPDK's accel memory domain): allocBuffer gives an
 * address with no memory behind it; the first translation (or pull, push, memzero) backs
 * it with an iobuf buffer from this thread's channel, and invalidate or freeBuffer gives
 * that back. An iovec must stay inside one buffer.
 *
 * Virtual addresses are negative: below every memory address, so one passed to another
 * domain fails its range check, and small enough to stay small integers (Smis) for the
 * engine, so handing them around allocates nothing. Buffer i lives at base + i x slotSize,
 * slotSize being the power of two above the large iobuf size (buffers never touch).
 */
export class AccelMemoryDomain extends MemoryDomain {
  readonly type = 'accel'
  readonly channel: IobufChannel
  /** the first virtual address (negative) */
  readonly base: number
  /** bytes between two buffers' addresses */
  readonly slotSize: number
  readonly #length: Float64Array
  readonly #backing: Float64Array
  readonly #free: Int32Array
  #freeCount: number
  #backedNow = new Int32Array(16)

  constructor(physical: PhysicalMemory, channel: IobufChannel, options: { buffers?: number; id?: string } = {}) {
    super(physical, options.id ?? 'accel')
    const n = options.buffers ?? 4096
    checkInt('buffers', n, 1, 1 << 20)
    this.channel = channel
    let slot = 4096
    while (slot <= channel.largeSize) slot *= 2
    this.slotSize = slot
    this.base = -n * slot
    this.#length = new Float64Array(n)
    this.#backing = new Float64Array(n)
    this.#free = new Int32Array(n)
    for (let i = 0; i < n; i++) this.#free[i] = n - 1 - i
    this.#freeCount = n
  }

  /** A virtual buffer of `length` bytes (at most the large iobuf size), or 0 when all are in use. */
  allocBuffer(length: number): number {
    checkInt('length', length, 1, this.channel.largeSize)
    if (this.#freeCount === 0) return 0
    const slot = this.#free[--this.#freeCount]!
    this.#length[slot] = length
    this.#backing[slot] = 0
    return this.base + slot * this.slotSize
  }

  /** Whether `address` lies in this domain's virtual range (a buffer in use or not). */
  holds(address: number): boolean {
    return address >= this.base && address < 0
  }

  /** Frees a virtual buffer (and its backing, if it has one). */
  freeBuffer(address: number): void {
    const slot = this.#slot(address, 1)
    if (slot < 0 || address !== this.base + slot * this.slotSize) {
      throw rangeError(`${address} is not an accel buffer in use`)
    }
    this.#release(slot)
    this.#length[slot] = 0
    this.#free[this.#freeCount++] = slot
  }

  /** The slot of a live buffer holding [address, address + n), or -1. */
  #slot(address: number, n: number): number {
    const rel = address - this.base
    const slot = Math.floor(rel / this.slotSize)
    if (!(rel >= 0 && slot < this.#length.length)) return -1
    const off = rel - slot * this.slotSize
    return this.#length[slot]! > 0 && off + n <= this.#length[slot]! ? slot : -1
  }

  #release(slot: number): void {
    const b = this.#backing[slot]!
    if (b !== 0) {
      this.#backing[slot] = 0
      this.channel.put(b)
    }
  }

  /** Whether a virtual buffer currently has memory behind it. */
  isBacked(address: number): boolean {
    const slot = this.#slot(address, 1)
    return slot >= 0 && this.#backing[slot] !== 0
  }

  translate(iovs: IoVecList, out: IoVecList, _access: AccessBits | number = Access.Read): number {
    const start = out.count
    // the slots this call backs, given back if a later iovec fails (no buffer is lost)
    if (this.#backedNow.length < iovs.count) this.#backedNow = new Int32Array(2 * iovs.count)
    let backed = 0
    for (let i = 0; i < iovs.count; i++) {
      const a = iovs.addr[i]!
      const n = iovs.len[i]!
      const slot = this.#slot(a, n)
      let b = slot < 0 ? 0 : this.#backing[slot]!
      if (slot >= 0 && b === 0) {
        b = this.channel.get(this.#length[slot]!)
        if (b !== IOBUF_RETRY) {
          this.#backing[slot] = b
          this.#backedNow[backed++] = slot
        }
      }
      if (b === 0) {
        for (let k = 0; k < backed; k++) this.#release(this.#backedNow[k]!)
        out.count = start
        return slot < 0 ? Status.Invalid : Status.NoMemory
      }
      out.pushMerged(b + (a - this.base - slot * this.slotSize), n)
    }
    return Status.Ok
  }

  /** Gives back the backing of the buffers `iovs` touch (their addresses stay valid). */
  override invalidate(iovs: IoVecList): void {
    for (let i = 0; i < iovs.count; i++) {
      const slot = this.#slot(iovs.addr[i]!, 1)
      if (slot >= 0) this.#release(slot)
    }
  }

  /** Virtual buffers in use. */
  get inUse(): number {
    return this.#length.length - this.#freeCount
  }
}

/** The operations a custom domain may implement; the ones it leaves out answer NotSupported. */
export interface MemoryDomainOps {
  translate?(iovs: IoVecList, out: IoVecList, access: AccessBits | number): number
  invalidate?(iovs: IoVecList): void
  pull?<T>(src: IoVecList, dst: IoVecList, cb: Completion<T>, arg: T): number
  push?<T>(dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number
  memzero?<T>(iovs: IoVecList, cb: Completion<T>, arg: T): number
}

/**
 * A domain defined by its owner's callbacks (say, a network stack's buffers), as
 * spdk_memory_domain_create plus the set_* calls. Without translate, pull/push/memzero
 * use the owner's own callbacks or answer NotSupported.
 */
export class CustomMemoryDomain extends MemoryDomain {
  readonly type: DomainType
  readonly #ops: MemoryDomainOps

  constructor(physical: PhysicalMemory, type: DomainType, id: string, ops: MemoryDomainOps) {
    super(physical, id)
    if (ops === null || typeof ops !== 'object') throw typeError('ops must be an object')
    this.type = type
    this.#ops = ops
  }

  translate(iovs: IoVecList, out: IoVecList, access: AccessBits | number = Access.Read): number {
    return this.#ops.translate ? this.#ops.translate(iovs, out, access) : Status.NotSupported
  }

  override invalidate(iovs: IoVecList): void {
    this.#ops.invalidate?.(iovs)
  }

  override pull<T>(src: IoVecList, dst: IoVecList, cb: Completion<T>, arg: T): number {
    if (this.#ops.pull) return this.#ops.pull(src, dst, cb, arg)
    return this.#ops.translate ? super.pull(src, dst, cb, arg) : Status.NotSupported
  }

  override push<T>(dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    if (this.#ops.push) return this.#ops.push(dst, src, cb, arg)
    return this.#ops.translate ? super.push(dst, src, cb, arg) : Status.NotSupported
  }

  override memzero<T>(iovs: IoVecList, cb: Completion<T>, arg: T): number {
    if (this.#ops.memzero) return this.#ops.memzero(iovs, cb, arg)
    return this.#ops.translate ? super.memzero(iovs, cb, arg) : Status.NotSupported
  }
}

/**
 * Moves the bytes `src` describes in `srcDomain` into what `dst` describes in
 * `dstDomain` (SPDK's transfer_data): both sides are translated, then copied once.
 */
export function transferData<T>(
  dstDomain: MemoryDomain,
  dst: IoVecList,
  srcDomain: MemoryDomain,
  src: IoVecList,
  cb: Completion<T>,
  arg: T,
): number {
  if (typeof cb !== 'function') throw typeError('cb must be a function')
  if (dst.total !== src.total) return Status.Invalid
  const s = scratch.fit('a', srcDomain.translationBound(src))
  let rc = srcDomain.translate(src, s, Access.Read)
  if (rc !== Status.Ok) return rc
  const d = scratch.fit('b', dstDomain.translationBound(dst))
  rc = dstDomain.translate(dst, d, Access.Write)
  if (rc !== Status.Ok) {
    srcDomain.invalidate(src)
    return rc
  }
  iovCopy(dstDomain.physical.bytes, d, s)
  defer(cb, arg, Status.Ok)
  return Status.Ok
}
