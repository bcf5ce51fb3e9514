// A kernel instance: the module instantiated on a memory, with this thread's scratch slot.
import { compileAsync, compileSync } from './internal/binary.js'
import type { KernelExports } from './internal/abi.js'
import {
  attachHeader,
  claimScratchSlot,
  headerView,
  type KernelLayout,
  type KernelLayoutOptions,
  PAGE_SIZE,
  planLayout,
  releaseScratchSlot,
} from './internal/layout.js'
import { KernelsError } from './errors.js'
import { checkInt, rangeError, typeError } from './internal/validate.js'
import { crc32cAtWith, crc32cWith } from './crc32c.js'
import { crc16T10DifAtWith, crc16T10DifWith } from './crc16-t10dif.js'
import { crc64NvmeAtWith, crc64NvmeWith } from './crc64-nvme.js'
import { createXtsWith, type Xts } from './aes-xts.js'

export type { KernelLayout, KernelLayoutOptions }

export interface KernelsOptions extends KernelLayoutOptions {
  /**
   * The memory to run on. Its first `layout.end` bytes are the kernel region; the rest is
   * the caller's. If omitted, a memory holding only the kernel region is created.
   * The layout options apply when this is the first instance on the memory; later
   * instances read the layout from the memory's header (and must not contradict it).
   */
  memory?: WebAssembly.Memory
}

export interface KernelMemoryOptions extends KernelLayoutOptions {
  /** Bytes to add above the kernel region for the caller's buffers. Default 0. */
  extraBytes?: number
  /** Create a shared memory (for worker threads). Default true. */
  shared?: boolean
}

/** The kernel region's plan for these options, before any memory exists. */
export function kernelLayout(options?: KernelLayoutOptions): KernelLayout {
  return planLayout(options)
}

/**
 * Creates a memory sized for the kernel region plus `extraBytes`, fixed in size
 * (initial = maximum), shared unless `shared: false`, with the kernel region's header
 * already written: instances created on it later (in any thread) take its layout.
 */
export function createKernelMemory(options: KernelMemoryOptions = {}): WebAssembly.Memory {
  const layout = planLayout(options)
  const extra = options.extraBytes ?? 0
  checkInt('extraBytes', extra, 0, 2 ** 32 - layout.end)
  const pages = Math.ceil((layout.end + extra) / PAGE_SIZE)
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: options.shared ?? true })
  attachHeader(memory, layoutOptions(options))
  return memory
}

function isShared(memory: WebAssembly.Memory): boolean {
  return Object.prototype.toString.call(memory.buffer) === '[object SharedArrayBuffer]'
}

function resolveMemory(options: KernelsOptions): WebAssembly.Memory {
  if (options.memory === undefined) {
    planLayout(options) // invalid options throw here, not in the fallback below
    try {
      return createKernelMemory(options)
    } catch {
      // engines without cross-origin isolation may refuse shared memories
      return createKernelMemory({ ...options, shared: false })
    }
  }
  if (!(options.memory instanceof WebAssembly.Memory)) throw typeError('memory must be a WebAssembly.Memory')
  return options.memory
}

export class Kernels {
  /** The memory this instance runs on; the kernel region is [0, layout.end). */
  readonly memory: WebAssembly.Memory
  readonly layout: KernelLayout
  /** Whether the memory is shared (usable by worker threads). */
  readonly shared: boolean
  /** @internal the raw module exports (the ABI used by sibling packages) */
  readonly abi: KernelExports
  /** @internal header words, for slot claims */
  readonly header: Int32Array
  /** @internal this instance's scratch slot */
  readonly slot: number
  /** @internal staging area (layout.stagingSize bytes) */
  readonly staging: number
  /** @internal this instance's kernel scratch: call area, DIF job, then the kernel area */
  readonly scratch: number
  /** @internal the part of the scratch that CRC calls may use freely */
  readonly kernelArea: number
  #view: Uint8Array
  #call: Uint32Array
  #closed = false

  /** @internal use createKernels / createKernelsSync */
  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, options: KernelLayoutOptions | undefined) {
    this.memory = memory
    this.shared = isShared(memory)
    this.layout = attachHeader(memory, options)
    if (memory.buffer.byteLength < this.layout.end) {
      throw new KernelsError('KERNELS_BAD_MEMORY', `memory is smaller than its kernel region (${this.layout.end} bytes)`)
    }
    this.header = headerView(memory)
    // instantiate before claiming a slot, so a failure here leaks nothing
    this.abi = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports
    const slot = claimScratchSlot(this.header, this.layout)
    if (slot < 0) {
      throw new KernelsError(
        'KERNELS_NO_SCRATCH_SLOT',
        `all ${this.layout.scratchSlots} scratch slots of this memory are taken: close() unused instances or set scratchSlots higher`,
      )
    }
    this.slot = slot
    this.staging = this.layout.scratchBase + slot * this.layout.scratchSlotSize
    this.scratch = this.staging + this.layout.stagingSize
    this.kernelArea = this.scratch + this.abi.kernel_area()
    this.#view = new Uint8Array(memory.buffer)
    this.#call = new Uint32Array(memory.buffer, this.scratch, 16)
  }

  /** A byte view of the whole memory (re-made if the memory has grown). */
  get bytes(): Uint8Array {
    this.#refresh()
    return this.#view
  }

  /** @internal the call area as u32 words */
  get callArea(): Uint32Array {
    this.#refresh()
    return this.#call
  }

  #refresh(): void {
    const buffer = this.memory.buffer
    if (this.#view.buffer !== buffer) {
      this.#view = new Uint8Array(buffer)
      this.#call = new Uint32Array(buffer, this.scratch, 16)
    }
  }

  /** CRC-32C of `data`, continuing from `seed`; see the module-level crc32c. */
  crc32c(data: Uint8Array, seed = 0): number {
    return crc32cWith(this, data, seed)
  }

  /** CRC-32C of `length` bytes at `address` in this memory (above the kernel region). */
  crc32cAt(address: number, length: number, seed = 0): number {
    return crc32cAtWith(this, address, length, seed)
  }

  /** CRC16 T10-DIF of `data`, continuing from `seed`. */
  crc16T10Dif(data: Uint8Array, seed = 0): number {
    return crc16T10DifWith(this, data, seed)
  }

  /** CRC16 T10-DIF of `length` bytes at `address` in this memory. */
  crc16T10DifAt(address: number, length: number, seed = 0): number {
    return crc16T10DifAtWith(this, address, length, seed)
  }

  /** CRC-64/NVME of `data`, continuing from `seed`. */
  crc64Nvme(data: Uint8Array, seed = 0n): bigint {
    return crc64NvmeWith(this, data, seed)
  }

  /** CRC-64/NVME of `length` bytes at `address` in this memory. */
  crc64NvmeAt(address: number, length: number, seed = 0n): bigint {
    return crc64NvmeAtWith(this, address, length, seed)
  }

  /** An AES-XTS context whose key schedule lives in this memory's key slots. */
  createXts(key: Uint8Array): Xts {
    return createXtsWith(this, key)
  }

  /** @internal throws if closed */
  live(): void {
    if (this.#closed) throw new KernelsError('KERNELS_CLOSED', 'this Kernels instance was closed')
  }

  /**
   * @internal The address of `view` if it lies in this memory, above the kernel region;
   * -1 if it lies elsewhere (it will be staged). A view into the kernel region itself is
   * refused: tables, scratch and key schedules are not buffers.
   */
  addressOf(name: string, view: Uint8Array): number {
    if (view.buffer !== this.memory.buffer) return -1
    if (view.byteLength > 0 && view.byteOffset < this.layout.end) {
      throw rangeError(`${name} lies in the kernel region [0, ${this.layout.end}) of the memory`)
    }
    return view.byteOffset
  }

  /** @internal validates an (address, length) range in the caller's part of the memory */
  checkRange(name: string, address: unknown, length: unknown): void {
    checkInt(`${name}Address`, address, 0, 2 ** 32)
    checkInt(`${name}Length`, length, 0, 2 ** 32)
    const size = this.memory.buffer.byteLength
    if (length > 0 && (address < this.layout.end || address + length > size)) {
      throw rangeError(
        `${name} range [${address}, ${address + length}) must lie in [${this.layout.end}, ${size}), outside the kernel region`,
      )
    }
  }

  /** Releases this instance's scratch slot. The instance cannot be used afterwards. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    releaseScratchSlot(this.header, this.slot)
  }
}

/** Instantiates the kernels on `options.memory` (or a new memory), compiling asynchronously. */
export async function createKernels(options: KernelsOptions = {}): Promise<Kernels> {
  const memory = resolveMemory(options)
  return new Kernels(await compileAsync(isShared(memory)), memory, layoutOptions(options))
}

/** As createKernels, compiling synchronously (fine in Node, workers and Chromium). */
export function createKernelsSync(options: KernelsOptions = {}): Kernels {
  const memory = resolveMemory(options)
  return new Kernels(compileSync(isShared(memory)), memory, layoutOptions(options))
}

function layoutOptions(o: KernelLayoutOptions): KernelLayoutOptions | undefined {
  const { scratchSlots, keySlots, stagingSize } = o
  if (scratchSlots === undefined && keySlots === undefined && stagingSize === undefined) return undefined
  return {
    ...(scratchSlots !== undefined && { scratchSlots }),
    ...(keySlots !== undefined && { keySlots }),
    ...(stagingSize !== undefined && { stagingSize }),
  }
}

/**
 * Releases the scratch slot of an instance whose thread ended without close() (a worker
 * that was terminated). Only for slots of threads that are gone: a live instance's slot
 * handed to another thread would be shared.
 */
export function releaseScratchSlotOf(memory: WebAssembly.Memory, slot: number): void {
  if (!(memory instanceof WebAssembly.Memory)) throw typeError('memory must be a WebAssembly.Memory')
  const h = headerView(memory)
  const layout = attachHeader(memory, undefined)
  checkInt('slot', slot, 0, layout.scratchSlots - 1)
  releaseScratchSlot(h, slot)
}

let defaultInstance: Kernels | undefined

/**
 * The instance behind the module-level functions (crc32c, createXts, …): created on first
 * use, on a memory of its own with one scratch slot.
 */
export function defaultKernels(): Kernels {
  defaultInstance ??= createKernelsSync({ scratchSlots: 1 })
  return defaultInstance
}
