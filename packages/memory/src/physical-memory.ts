// The physical memory: one WebAssembly.Memory (the one @ipukit/kernels runs on, shared
// with worker threads), cut into named regions.
//
//   0                kernels.end   control      host DRAM          IPU DRAM                devices
//   +----------------+-----------+------------+-----------------+----------------------+----------
//   | kernel region  | control   | host DRAM  | iobuf pools |   | device windows (CMB, PMR, p2pmem)
//   | (tables,       | (shared   | (what the  | small, large|   | one region each
//   |  scratch, keys)|  rings)   |  host sees)|  then free  |   |
//   +----------------+-----------+------------+-----------------+----------------------+----------
//
// Every region starts on a 64 KiB boundary. The layout is a pure function of the options,
// so a worker that receives the memory and the options computes the same one.
import { createKernelMemory, createKernelsSync, type KernelLayoutOptions, kernelLayout, type Kernels, checkInt, typeError, rangeError } from '@ipukit/kernels'
import { initIobuf } from './iobuf.js'
import { RegionAllocator } from './region-allocator.js'
import { MemoryError } from './status.js'

export type RegionKind = 'kernels' | 'control' | 'host' | 'ipu' | 'device'

export interface Region {
  readonly name: string
  readonly kind: RegionKind
  /** first byte, in the memory */
  readonly base: number
  readonly size: number
}

export interface IobufOptions {
  /** Bytes per small buffer (SPDK iobuf small_bufsize). Default 8 KiB. */
  smallSize?: number
  /** Default 1024. */
  smallCount?: number
  /** Bytes per large buffer (SPDK large_bufsize). Default 132 KiB. */
  largeSize?: number
  /** Default 128. */
  largeCount?: number
  /** Buffers each thread caches (SPDK small_cache_size / large_cache_size). Defaults 128, 16. */
  smallCache?: number
  largeCache?: number
}

export interface PhysicalMemoryOptions {
  /** Host DRAM bytes. Default 64 MiB. */
  hostSize?: number
  /** IPU DRAM bytes (the iobuf pools come out of it). Default 64 MiB. */
  ipuSize?: number
  /** Device memory windows (CMB, PMR, p2pmem), by name. Default none. */
  devices?: readonly { name: string; size: number }[]
  iobuf?: IobufOptions
  /** The kernel region's plan (threads, key slots, staging). */
  kernels?: KernelLayoutOptions
  /** Shared memory, for worker threads. Default true. */
  shared?: boolean
}

/** What a worker needs to attach: post it as is (the memory is shared). */
export interface PhysicalMemoryDescription {
  readonly memory: WebAssembly.Memory
  readonly options: PhysicalMemoryOptions
}

export const PAGE = 4096
const WASM_PAGE = 65536
const MAX_BYTES = 2 ** 32

const up = (n: number, a: number) => Math.ceil(n / a) * a

/** The iobuf geometry that a layout reserves. */
export interface IobufLayout {
  smallSize: number
  smallCount: number
  largeSize: number
  largeCount: number
  smallCache: number
  largeCache: number
  /** first small buffer; small buffers are contiguous, then the large ones */
  smallBase: number
  largeBase: number
  /** control words for each pool's shared ring and ownership bitmap */
  smallRing: number
  largeRing: number
  smallRingCap: number
  largeRingCap: number
  smallOwned: number
  largeOwned: number
}

export interface MemoryLayout {
  readonly regions: readonly Region[]
  readonly iobuf: IobufLayout
  /** total bytes of the memory */
  readonly size: number
}

function pow2(n: number): number {
  let p = 1
  while (p < n) p *= 2
  return p
}

/** The layout these options give (pure: the same options give the same layout). */
export function planMemory(o: PhysicalMemoryOptions = {}): MemoryLayout {
  if (o === null || typeof o !== 'object') throw typeError('options must be an object')
  const hostSize = o.hostSize ?? 64 << 20
  const ipuSize = o.ipuSize ?? 64 << 20
  checkInt('hostSize', hostSize, PAGE, MAX_BYTES)
  checkInt('ipuSize', ipuSize, PAGE, MAX_BYTES)
  const b = o.iobuf ?? {}
  const io = {
    smallSize: b.smallSize ?? 8192,
    smallCount: b.smallCount ?? 1024,
    largeSize: b.largeSize ?? 132 * 1024,
    largeCount: b.largeCount ?? 128,
    smallCache: b.smallCache ?? 128,
    largeCache: b.largeCache ?? 16,
  }
  checkInt('iobuf.smallSize', io.smallSize, 64, 1 << 24)
  checkInt('iobuf.largeSize', io.largeSize, io.smallSize, 1 << 26)
  checkInt('iobuf.smallCount', io.smallCount, 1, 1 << 20)
  checkInt('iobuf.largeCount', io.largeCount, 1, 1 << 20)
  checkInt('iobuf.smallCache', io.smallCache, 0, 1 << 16)
  checkInt('iobuf.largeCache', io.largeCache, 0, 1 << 16)
  if (io.smallSize % 64 !== 0 || io.largeSize % 64 !== 0) throw rangeError('iobuf buffer sizes must be multiples of 64')
  const devices = o.devices ?? []
  const names = new Set(['kernels', 'control', 'host', 'ipu'])
  for (const [i, d] of devices.entries()) {
    if (typeof d?.name !== 'string' || d.name === '') throw typeError(`devices[${i}].name must be a non-empty string`)
    if (names.has(d.name)) throw rangeError(`devices[${i}].name '${d.name}' is already taken`)
    names.add(d.name)
    checkInt(`devices[${i}].size`, d.size, PAGE, MAX_BYTES)
  }
  const kern = kernelLayout(o.kernels)
  // control: for each pool, a ring of (sequence, value) pairs plus head/tail, and a bitmap
  const smallRingCap = pow2(io.smallCount)
  const largeRingCap = pow2(io.largeCount)
  let at = kern.end
  const control = at
  const smallRing = control
  const largeRing = smallRing + 64 + 8 * smallRingCap
  const smallOwned = largeRing + 64 + 8 * largeRingCap
  const largeOwned = smallOwned + up(io.smallCount, 32) / 8
  const controlEnd = largeOwned + up(io.largeCount, 32) / 8
  const regions: Region[] = [{ name: 'kernels', kind: 'kernels', base: 0, size: kern.end }]
  const push = (name: string, kind: RegionKind, size: number) => {
    const r = { name, kind, base: at, size: up(size, WASM_PAGE) }
    regions.push(r)
    at += r.size
    return r
  }
  push('control', 'control', controlEnd - control)
  push('host', 'host', hostSize)
  const ipu = push('ipu', 'ipu', ipuSize)
  const poolBytes = io.smallCount * io.smallSize + io.largeCount * io.largeSize
  if (poolBytes > ipu.size) {
    throw rangeError(`the iobuf pools need ${poolBytes} bytes of IPU DRAM; ipuSize is ${ipuSize}`)
  }
  for (const d of devices) push(d.name, 'device', d.size)
  if (at > MAX_BYTES) {
    throw new MemoryError('MEMORY_TOO_LARGE', `the regions need ${at} bytes; a wasm32 memory holds at most 4 GiB (${MAX_BYTES})`)
  }
  return {
    regions,
    size: at,
    iobuf: {
      ...io,
      smallBase: ipu.base,
      largeBase: ipu.base + io.smallCount * io.smallSize,
      smallRing,
      largeRing,
      smallRingCap,
      largeRingCap,
      smallOwned,
      largeOwned,
    },
  }
}

/** The physical memory of one IPU model, as seen from one thread. */
export class PhysicalMemory {
  readonly memory: WebAssembly.Memory
  readonly options: PhysicalMemoryOptions
  readonly layout: MemoryLayout
  /** this thread's kernels instance on the memory */
  readonly kernels: Kernels
  #regions: Map<string, Region>
  #view: Uint8Array

  /** @internal use createPhysicalMemory / attachPhysicalMemory */
  constructor(memory: WebAssembly.Memory, options: PhysicalMemoryOptions, kernels: Kernels) {
    this.memory = memory
    this.options = options
    this.layout = planMemory(options)
    this.kernels = kernels
    if (memory.buffer.byteLength < this.layout.size) {
      throw rangeError(`the memory has ${memory.buffer.byteLength} bytes; these options need ${this.layout.size}`)
    }
    if (kernels.layout.end !== this.layout.regions[0]!.size) {
      throw rangeError('the memory was set up with another kernel region layout than these options give')
    }
    this.#regions = new Map(this.layout.regions.map((r) => [r.name, r]))
    this.#view = new Uint8Array(memory.buffer)
  }

  /** A byte view of the whole memory. */
  get bytes(): Uint8Array {
    // Every region lies inside the memory's initial size, so a view taken at creation stays
    // good unless growth detached its buffer (non-shared memory); a shared memory's old
    // buffer is never detached. Reading memory.buffer of a shared memory costs a runtime
    // call, so it is not done per access.
    if (this.#view.byteLength === 0) this.#view = new Uint8Array(this.memory.buffer)
    return this.#view
  }

  get regions(): readonly Region[] {
    return this.layout.regions
  }

  /** The region with this name; throws if there is none. */
  region(name: string): Region {
    const r = this.#regions.get(name)
    if (r === undefined) throw rangeError(`no region named '${name}' (have ${[...this.#regions.keys()].join(', ')})`)
    return r
  }

  /** The region holding [address, address + length), or undefined. */
  regionOf(address: number, length = 1): Region | undefined {
    for (const r of this.layout.regions) if (address >= r.base && address + length <= r.base + r.size) return r
    return undefined
  }

  /**
   * The allocator of IPU DRAM past the iobuf pools: long-lived buffers (a RAM disk, accel
   * descriptors, rings). One per memory, kept by the thread that created it; every user on
   * that thread takes from it, so no two overlap. Worker threads do not allocate.
   */
  get ipuAllocator(): RegionAllocator {
    if (this.#ipuAllocator === undefined) {
      const ipu = this.region('ipu')
      const io = this.layout.iobuf
      this.#ipuAllocator = new RegionAllocator(ipu, io.largeBase + io.largeCount * io.largeSize - ipu.base)
    }
    return this.#ipuAllocator
  }

  #ipuAllocator: RegionAllocator | undefined

  /** For worker threads: post this, then attachPhysicalMemory() there. */
  describe(): PhysicalMemoryDescription {
    return { memory: this.memory, options: this.options }
  }

  /** Releases this thread's kernels instance. */
  close(): void {
    this.kernels.close()
  }
}

/** Creates the memory and its regions (and the kernels instance of the calling thread). */
export function createPhysicalMemory(options: PhysicalMemoryOptions = {}): PhysicalMemory {
  const layout = planMemory(options)
  const kern = layout.regions[0]!.size
  const memory = createKernelMemory({ ...options.kernels, extraBytes: layout.size - kern, shared: options.shared ?? true })
  const pm = new PhysicalMemory(memory, options, createKernelsSync({ memory }))
  initIobuf(pm)
  return pm
}

/** Attaches a worker thread to a memory another thread created. */
export function attachPhysicalMemory(description: PhysicalMemoryDescription): PhysicalMemory {
  if (description === null || typeof description !== 'object' || !(description.memory instanceof WebAssembly.Memory)) {
    throw typeError('description must be what PhysicalMemory.describe() returned')
  }
  return new PhysicalMemory(description.memory, description.options, createKernelsSync({ memory: description.memory }))
}
