// The kernel region at the bottom of the memory, and its header.
//
//   0          4096        staticEnd   scratchBase                    keyBase           end
//   +----------+-----------+-----------+------------------------------+-----------------+
//   | header   | tables    | (align)   | scratch slot 0 | slot 1 | …  | key slot 0 | …  |
//   +----------+-----------+-----------+------------------------------+-----------------+
//   scratch slot: [ staging (stagingSize) | kernel scratch (KERNEL_SCRATCH_SIZE, rounded) ]
//
// Everything from `end` up belongs to the memory's owner (host DRAM, IPU DRAM, … in
// @ipukit/memory). Each thread's instance claims one scratch slot; each live XTS context
// claims one key slot. Claims are bits in the header, taken with Atomics so that threads
// sharing the memory never hand out the same slot.
//
// Header (little-endian i32 words):
//   word 0  magic 'IPUK'          word 7  scratch slot count
//   word 1  layout version        word 8  staging bytes per slot
//   word 2  state (0 new, 1 initialising, 2 ready)
//   word 3  module hash (high 32 bits of the build's SHA-256 prefix)
//   word 4  static end            word 9  key base
//   word 5  scratch base          word 10 key slot size
//   word 6  scratch slot size     word 11 key slot count
//                                 word 12 end
//   words 64..95    scratch-slot bitmap (up to 1024 slots)
//   words 128..1023 key-slot bitmap (up to 28672 slots)
import { AES_XTS_CTX_SIZE, KERNEL_SCRATCH_SIZE, KERNELS_STATIC_END, KERNELS_WASM_SHA256 } from '../../build/kernels-wasm.js'
import { KernelsError } from '../errors.js'
import { checkInt } from './validate.js'

export const HEADER_SIZE = 4096
export const PAGE_SIZE = 65536
const MAGIC = 0x4b555049 // 'IPUK'
const VERSION = 1
const W_STATE = 2
const SCRATCH_BITMAP = 64
const KEY_BITMAP = 128
export const MAX_SCRATCH_SLOTS = 1024
export const MAX_KEY_SLOTS = (1024 - KEY_BITMAP) * 32

const MODULE_HASH = Number.parseInt(KERNELS_WASM_SHA256.slice(0, 8), 16) | 0

/** Where the kernels keep their tables, per-thread scratch and key schedules. */
export interface KernelLayout {
  /** Bytes of header at address 0. */
  readonly headerSize: number
  /** End of the module's static data (tables). */
  readonly staticEnd: number
  readonly scratchBase: number
  readonly scratchSlotSize: number
  readonly scratchSlots: number
  /** Bytes at the start of each scratch slot used to stage buffers that live outside the memory. */
  readonly stagingSize: number
  readonly keyBase: number
  readonly keySlotSize: number
  readonly keySlots: number
  /** First byte after the kernel region: a multiple of 64 KiB. */
  readonly end: number
}

export interface KernelLayoutOptions {
  /** Threads (instances) that can attach at once. Default 8. */
  scratchSlots?: number
  /** XTS contexts that can be live at once. Default 256. */
  keySlots?: number
  /** Staging bytes per scratch slot, a multiple of 4096. Default 256 KiB. */
  stagingSize?: number
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a

export function planLayout(options: KernelLayoutOptions = {}): KernelLayout {
  const scratchSlots = options.scratchSlots ?? 8
  const keySlots = options.keySlots ?? 256
  const stagingSize = options.stagingSize ?? 256 * 1024
  checkInt('scratchSlots', scratchSlots, 1, MAX_SCRATCH_SLOTS)
  checkInt('keySlots', keySlots, 0, MAX_KEY_SLOTS)
  checkInt('stagingSize', stagingSize, 4096, 64 * 1024 * 1024)
  if (stagingSize % 4096 !== 0) throw new RangeError(`stagingSize must be a multiple of 4096, got ${stagingSize}`)
  const scratchBase = alignUp(KERNELS_STATIC_END, 4096)
  const scratchSlotSize = stagingSize + alignUp(KERNEL_SCRATCH_SIZE, 4096)
  const keyBase = scratchBase + scratchSlots * scratchSlotSize
  const keySlotSize = alignUp(Math.max(AES_XTS_CTX_SIZE, 16), 64)
  const end = alignUp(keyBase + keySlots * keySlotSize, PAGE_SIZE)
  if (end > 2 ** 32) throw new RangeError('the kernel region does not fit in a 4 GiB memory; use fewer or smaller slots')
  return {
    headerSize: HEADER_SIZE,
    staticEnd: KERNELS_STATIC_END,
    scratchBase,
    scratchSlotSize,
    scratchSlots,
    stagingSize,
    keyBase,
    keySlotSize,
    keySlots,
    end,
  }
}

function writeHeader(h: Int32Array, l: KernelLayout): void {
  h[1] = VERSION
  h[3] = MODULE_HASH
  h[4] = l.staticEnd
  h[5] = l.scratchBase
  h[6] = l.scratchSlotSize
  h[7] = l.scratchSlots
  h[8] = l.stagingSize
  h[9] = l.keyBase
  h[10] = l.keySlotSize
  h[11] = l.keySlots
  h[12] = l.end
  h.fill(0, SCRATCH_BITMAP, 1024)
  h[0] = MAGIC
}

function readHeader(h: Int32Array): KernelLayout {
  if (h[1] !== VERSION || h[3] !== MODULE_HASH) {
    throw new KernelsError(
      'KERNELS_BAD_MEMORY',
      'this memory was set up by a different build of @ipukit/kernels; all threads must load the same version',
    )
  }
  const u = (i: number) => h[i]! >>> 0
  return {
    headerSize: HEADER_SIZE,
    staticEnd: u(4),
    scratchBase: u(5),
    scratchSlotSize: u(6),
    scratchSlots: u(7),
    stagingSize: u(8),
    keyBase: u(9),
    keySlotSize: u(10),
    keySlots: u(11),
    end: u(12),
  }
}

/**
 * Sets up the header of a fresh memory, or reads the one another thread wrote. A memory
 * whose first page holds anything else is refused rather than overwritten.
 */
export function attachHeader(memory: WebAssembly.Memory, options: KernelLayoutOptions | undefined): KernelLayout {
  const h = new Int32Array(memory.buffer, 0, HEADER_SIZE / 4)
  const state = Atomics.compareExchange(h, W_STATE, 0, 1)
  if (state === 0) {
    if (h.some((w, i) => i !== W_STATE && w !== 0)) {
      Atomics.store(h, W_STATE, 0)
      throw new KernelsError(
        'KERNELS_BAD_MEMORY',
        `the first ${HEADER_SIZE} bytes of the memory are not zero: reserve [0, layout.end) for the kernels`,
      )
    }
    const layout = planLayout(options)
    if (memory.buffer.byteLength < layout.end) {
      Atomics.store(h, W_STATE, 0)
      throw new KernelsError(
        'KERNELS_BAD_MEMORY',
        `memory has ${memory.buffer.byteLength} bytes; the kernel region needs ${layout.end}`,
      )
    }
    writeHeader(h, layout)
    Atomics.store(h, W_STATE, 2)
    return layout
  }
  // another thread is writing the header: it takes microseconds, and Atomics.wait is not
  // allowed on a browser's main thread, so spin
  const deadline = Date.now() + 1000
  while (Atomics.load(h, W_STATE) === 1) {
    if (Date.now() > deadline) throw new KernelsError('KERNELS_BAD_MEMORY', 'kernel header initialisation never finished')
  }
  if (h[0] !== MAGIC) throw new KernelsError('KERNELS_BAD_MEMORY', 'memory does not hold a kernel header')
  const layout = readHeader(h)
  if (options !== undefined) {
    const want = planLayout(options)
    for (const k of ['scratchSlots', 'keySlots', 'stagingSize'] as const) {
      if (options[k] !== undefined && want[k] !== layout[k]) {
        throw new KernelsError('KERNELS_BAD_MEMORY', `memory was set up with ${k} = ${layout[k]}, not ${want[k]}`)
      }
    }
  }
  return layout
}

function claim(h: Int32Array, base: number, count: number): number {
  for (let w = 0; w * 32 < count; w++) {
    for (;;) {
      const cur = Atomics.load(h, base + w)
      const bits = Math.min(32, count - w * 32)
      const full = bits === 32 ? -1 : (1 << bits) - 1
      if ((cur & full) === full) break
      const bit = 31 - Math.clz32(~cur & (cur + 1)) // lowest clear bit
      if (Atomics.compareExchange(h, base + w, cur, cur | (1 << bit)) === cur) return w * 32 + bit
    }
  }
  return -1
}

function release(h: Int32Array, base: number, slot: number): void {
  Atomics.and(h, base + (slot >> 5), ~(1 << (slot & 31)))
}

export function headerView(memory: WebAssembly.Memory): Int32Array {
  return new Int32Array(memory.buffer, 0, HEADER_SIZE / 4)
}

export const claimScratchSlot = (h: Int32Array, l: KernelLayout) => claim(h, SCRATCH_BITMAP, l.scratchSlots)
export const releaseScratchSlot = (h: Int32Array, slot: number) => release(h, SCRATCH_BITMAP, slot)
export const claimKeySlot = (h: Int32Array, l: KernelLayout) => claim(h, KEY_BITMAP, l.keySlots)
export const releaseKeySlot = (h: Int32Array, slot: number) => release(h, KEY_BITMAP, slot)
