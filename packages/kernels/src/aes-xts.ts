// AES-XTS (IEEE 1619-2007, NIST SP 800-38E) with 128- or 256-bit AES, constant time
// (bitsliced, no table lookups indexed by secrets). A data unit of `dataUnitSize` bytes is
// one tweak's worth: unit i of a call uses tweak = firstDataUnit + i as a 16-byte
// little-endian integer, exactly what OpenSSL's aes-128-xts / aes-256-xts take as the IV
// (and SPDK's SIMPLE_LBA tweak mode). Units that are not a multiple of 16 bytes use
// ciphertext stealing.
import { KernelsError } from './errors.js'
import { claimKeySlot, releaseKeySlot } from './internal/layout.js'
import { checkBytes, checkInt, rangeError, toU64, typeError } from './internal/validate.js'
import { defaultKernels, type Kernels } from './kernels.js'

/** Largest data unit: IEEE 1619-2007 §5.1 allows at most 2^20 blocks of 16 bytes. */
export const XTS_MAX_DATA_UNIT_SIZE = 1 << 24

export interface Xts {
  /** AES key size of this context: 128 (32-byte XTS key) or 256 (64-byte XTS key). */
  readonly keyBits: 128 | 256
  /** True once destroy() has run; every other method then throws KernelsError KERNELS_DESTROYED. */
  readonly destroyed: boolean
  /**
   * Encrypts `src` into `dst` (same length, a multiple of `dataUnitSize`; they may be the
   * same buffer). Returns `dst`.
   */
  encrypt(src: Uint8Array, dst: Uint8Array, dataUnitSize: number, firstDataUnit: number | bigint): Uint8Array
  /** Decrypts `src` into `dst`, as encrypt. */
  decrypt(src: Uint8Array, dst: Uint8Array, dataUnitSize: number, firstDataUnit: number | bigint): Uint8Array
  /** encrypt on addresses in the kernels' memory (outside the kernel region); no staging. */
  encryptAt(srcAddress: number, dstAddress: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): void
  /** decrypt on addresses in the kernels' memory. */
  decryptAt(srcAddress: number, dstAddress: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): void
  /** Zeroes the key schedule and frees its slot. Idempotent. */
  destroy(): void
  /**
   * Where the key schedule lives in the kernels' memory. Kernels instances of other threads
   * on the same memory run the fused and list kernels (FusedKernels) with it.
   */
  readonly contextAddress: number
  /** The Kernels instance (memory) the schedule belongs to. */
  readonly kernels: Kernels
}

/**
 * An AES-XTS context for `key` = key1 ‖ key2: 32 bytes for AES-XTS-128, 64 bytes for
 * AES-XTS-256. key1 and key2 must differ (IEEE 1619-2007 §5.1 requires independent keys;
 * OpenSSL and SPDK refuse equal halves).
 */
export function createXts(key: Uint8Array): Xts {
  return createXtsWith(defaultKernels(), key)
}

// Frees key slots of contexts that were dropped without destroy().
const leaked = new FinalizationRegistry<{ k: Kernels; ctx: number; slot: number }>(({ k, ctx, slot }) => {
  k.abi.aes_xts_wipe(ctx)
  releaseKeySlot(k.header, slot)
})

const DECRYPT = 1
const ENCRYPT = 0

class XtsContext implements Xts {
  readonly keyBits: 128 | 256
  readonly #k: Kernels
  readonly #slot: number
  readonly #ctx: number
  readonly #token = {}
  #destroyed = false

  constructor(k: Kernels, key: Uint8Array) {
    k.live()
    checkBytes('key', key)
    if (key.byteLength !== 32 && key.byteLength !== 64) {
      throw rangeError(`key must be 32 bytes (AES-XTS-128) or 64 bytes (AES-XTS-256), got ${key.byteLength}`)
    }
    const half = key.byteLength / 2
    let diff = 0
    for (let i = 0; i < half; i++) diff |= key[i]! ^ key[i + half]!
    if (diff === 0) throw rangeError('key must have key1 !== key2 (IEEE 1619-2007 §5.1)')
    const slot = claimKeySlot(k.header, k.layout)
    if (slot < 0) {
      throw new KernelsError(
        'KERNELS_NO_KEY_SLOT',
        `all ${k.layout.keySlots} key slots of this memory are in use: destroy() unused XTS contexts or set keySlots higher`,
      )
    }
    this.#k = k
    this.#slot = slot
    this.#ctx = k.layout.keyBase + slot * k.layout.keySlotSize
    this.keyBits = key.byteLength === 32 ? 128 : 256
    const bytes = k.bytes
    bytes.set(key, k.scratch)
    k.abi.aes_xts_init(this.#ctx, k.scratch, key.byteLength)
    bytes.fill(0, k.scratch, k.scratch + key.byteLength)
    leaked.register(this, { k, ctx: this.#ctx, slot }, this.#token)
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  get contextAddress(): number {
    if (this.#destroyed) throw new KernelsError('KERNELS_DESTROYED', 'this XTS context was destroyed')
    return this.#ctx
  }

  get kernels(): Kernels {
    return this.#k
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    leaked.unregister(this.#token)
    this.#k.abi.aes_xts_wipe(this.#ctx)
    releaseKeySlot(this.#k.header, this.#slot)
  }

  encrypt(src: Uint8Array, dst: Uint8Array, dataUnitSize: number, firstDataUnit: number | bigint): Uint8Array {
    return this.#views(ENCRYPT, src, dst, dataUnitSize, firstDataUnit)
  }

  decrypt(src: Uint8Array, dst: Uint8Array, dataUnitSize: number, firstDataUnit: number | bigint): Uint8Array {
    return this.#views(DECRYPT, src, dst, dataUnitSize, firstDataUnit)
  }

  encryptAt(srcAddress: number, dstAddress: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): void {
    this.#addresses(ENCRYPT, srcAddress, dstAddress, length, dataUnitSize, firstDataUnit)
  }

  decryptAt(srcAddress: number, dstAddress: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): void {
    this.#addresses(DECRYPT, srcAddress, dstAddress, length, dataUnitSize, firstDataUnit)
  }

  #live(): Kernels {
    if (this.#destroyed) throw new KernelsError('KERNELS_DESTROYED', 'this XTS context was destroyed')
    this.#k.live()
    return this.#k
  }

  #checkUnits(length: number, dataUnitSize: unknown): asserts dataUnitSize is number {
    checkInt('dataUnitSize', dataUnitSize, 16, XTS_MAX_DATA_UNIT_SIZE)
    if (length % dataUnitSize !== 0) {
      throw rangeError(`length ${length} must be a multiple of dataUnitSize ${dataUnitSize}`)
    }
  }

  /** Writes the 128-bit tweak `first + units` into the call area and runs the kernel. */
  #run(dir: number, src: number, dst: number, length: number, dus: number, first: bigint | number, units: number): void {
    const k = this.#k
    const words = k.callArea
    if (typeof first === 'number' && first + units <= Number.MAX_SAFE_INTEGER) {
      // safe integers: split without bigint arithmetic
      const t = first + units
      const lo = t % 0x100000000
      words[0] = lo
      words[1] = (t - lo) / 0x100000000
      words[2] = 0
      words[3] = 0
    } else {
      const t = BigInt(first) + BigInt(units)
      words[0] = Number(t & 0xffffffffn)
      words[1] = Number((t >> 32n) & 0xffffffffn)
      words[2] = Number((t >> 64n) & 0xffffffffn)
      words[3] = 0
    }
    if (dir === ENCRYPT) k.abi.xts_encrypt(this.#ctx, src, dst, length, dus, k.scratch)
    else k.abi.xts_decrypt(this.#ctx, src, dst, length, dus, k.scratch)
  }

  #addresses(dir: number, src: number, dst: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): void {
    const k = this.#live()
    k.checkRange('src', src, length)
    k.checkRange('dst', dst, length)
    this.#checkUnits(length, dataUnitSize)
    const first = tweakOf(firstDataUnit)
    if (src !== dst && src < dst + length && dst < src + length) {
      // partial overlap: the kernel may only run in place or between disjoint buffers
      k.bytes.copyWithin(dst, src, src + length)
      src = dst
    }
    if (length > 0) this.#run(dir, src, dst, length, dataUnitSize, first, 0)
  }

  #views(dir: number, src: Uint8Array, dst: Uint8Array, dataUnitSize: number, firstDataUnit: number | bigint): Uint8Array {
    const k = this.#live()
    checkBytes('src', src)
    checkBytes('dst', dst)
    const length = src.byteLength
    if (dst.byteLength !== length) throw rangeError(`dst must be as long as src (${length} bytes), got ${dst.byteLength}`)
    this.#checkUnits(length, dataUnitSize)
    const first = tweakOf(firstDataUnit)
    if (length === 0) return dst
    const sa = k.addressOf('src', src)
    const da = k.addressOf('dst', dst)
    const bytes = k.bytes
    if (da >= 0) {
      // dst is in the memory: bring src there (unless it is there already) and run in place
      if (sa < 0) bytes.set(src, da)
      else if (sa !== da && sa < da + length && da < sa + length) bytes.copyWithin(da, sa, sa + length)
      else if (sa !== da) {
        this.#run(dir, sa, da, length, dataUnitSize, first, 0)
        return dst
      }
      this.#run(dir, da, da, length, dataUnitSize, first, 0)
      return dst
    }
    // dst is outside the memory: stage whole data units through the staging area
    if (sa < 0 && src.buffer === dst.buffer && src.byteOffset !== dst.byteOffset &&
        src.byteOffset < dst.byteOffset + length && dst.byteOffset < src.byteOffset + length) {
      src = src.slice() // overlapping foreign views: writing a chunk must not clobber unread input
    }
    const perChunk = Math.floor(k.layout.stagingSize / dataUnitSize)
    if (perChunk === 0) {
      throw rangeError(
        `dataUnitSize ${dataUnitSize} exceeds the staging area (${k.layout.stagingSize} bytes); ` +
          'place dst in the kernels\' memory or raise stagingSize',
      )
    }
    const step = perChunk * dataUnitSize
    const staging = k.staging
    for (let off = 0, units = 0; off < length; off += step, units += perChunk) {
      const n = Math.min(step, length - off)
      if (sa >= 0) this.#run(dir, sa + off, staging, n, dataUnitSize, first, units)
      else {
        bytes.set(n === length ? src : src.subarray(off, off + n), staging)
        this.#run(dir, staging, staging, n, dataUnitSize, first, units)
      }
      dst.set(bytes.subarray(staging, staging + n), off)
    }
    return dst
  }
}

function tweakOf(value: unknown): number | bigint {
  // numbers stay numbers on the hot path (no bigint allocation); bigints cover [0, 2^64 - 1]
  if (typeof value === 'bigint') return toU64('firstDataUnit', value, false)
  if (typeof value !== 'number') throw typeError('firstDataUnit must be a number or bigint')
  {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw rangeError(`firstDataUnit must be a non-negative safe integer or a bigint, got ${value}`)
    }
    return value
  }
}

/** @internal */
export function createXtsWith(k: Kernels, key: Uint8Array): Xts {
  return new XtsContext(k, key)
}
