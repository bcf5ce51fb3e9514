// Kernels over scatter-gather lists, and the fused pairs the accel framework's platform
// driver uses (assembly/fused.ts): each makes one pass over the data.
//
//   xts                  AES-XTS from a src list to a dst list
//   xtsDifGenerate       encrypt, then dif_generate_copy (ciphertext + PI in one pass)
//   difVerifyXtsDecrypt  dif_verify_copy, then decrypt
//   copyCrc32c           copy + CRC-32C
//
// A list is `count` (address u32, length u32) pairs at `address` in the kernels' memory;
// every pair must lie outside the kernel region. The DIF side is a DifJob the caller has
// started (op Generate or Verify, list A = the extended buffer, blocks = the count).
import type { Xts } from './aes-xts.js'
import type { DifJob } from './dif.js'
import { checkInt, rangeError, typeError } from './internal/validate.js'
import type { Kernels } from './kernels.js'

/** What the list and fused kernels return. */
export const FusedStatus = {
  Ok: 0,
  /** a PI check failed: the DifJob's error() names the block and the fields */
  PiError: 1,
  /** a list holds fewer bytes than the work */
  Short: -1,
  /** a data unit straddles iovecs and does not fit the bounce buffer */
  Bounce: -2,
} as const
export type FusedStatusCode = (typeof FusedStatus)[keyof typeof FusedStatus]

const MAX_PAIRS = 1 << 20

/** One thread's list and fused kernels, on its Kernels instance. */
export class FusedKernels {
  readonly kernels: Kernels
  /** the bounce buffer for straddling data units: the instance's staging area by default */
  bounce: number
  bounceCapacity: number
  #statusWord: Int32Array
  #u32: Uint32Array

  constructor(kernels: Kernels) {
    kernels.live()
    this.kernels = kernels
    this.bounce = kernels.staging
    this.bounceCapacity = kernels.layout.stagingSize
    this.#statusWord = new Int32Array(kernels.memory.buffer, kernels.scratch + 48, 1)
    this.#u32 = new Uint32Array(kernels.memory.buffer)
  }

  /** Checks a list: inside the memory, and every pair outside the kernel region. Returns its byte total. */
  checkList(name: string, address: number, count: number): number {
    const k = this.kernels
    checkInt(`${name}Count`, count, 0, MAX_PAIRS)
    checkInt(`${name}Address`, address, 0, 2 ** 32)
    const size = k.memory.buffer.byteLength
    if (address % 4 !== 0 || address + 8 * count > size) throw rangeError(`${name} list [${address}, +${8 * count}) is not 4-byte aligned inside the memory`)
    if (this.#u32.buffer !== k.memory.buffer) this.#u32 = new Uint32Array(k.memory.buffer)
    const w = this.#u32
    const at = address >>> 2
    let total = 0
    const lo = k.layout.end
    for (let i = 0; i < count; i++) {
      const a = w[at + 2 * i]!
      const n = w[at + 2 * i + 1]!
      if (n > 0 && (a < lo || a + n > size)) throw rangeError(`${name}[${i}] = [${a}, ${a + n}) must lie in [${lo}, ${size}), outside the kernel region`)
      total += n
    }
    return total
  }

  #tweak(first: number | bigint): void {
    const w = this.kernels.callArea
    if (typeof first === 'number') {
      if (!Number.isSafeInteger(first) || first < 0) throw rangeError(`firstDataUnit must be a non-negative safe integer or a bigint, got ${first}`)
      const lo = first % 0x100000000
      w[0] = lo
      w[1] = (first - lo) / 0x100000000
      w[2] = 0
      w[3] = 0
    } else if (typeof first === 'bigint') {
      if (first < 0n || first >= 1n << 64n) throw rangeError('firstDataUnit must be in [0, 2^64)')
      w[0] = Number(first & 0xffffffffn)
      w[1] = Number((first >> 32n) & 0xffffffffn)
      w[2] = 0
      w[3] = 0
    } else throw typeError('firstDataUnit must be a number or a bigint')
  }

  #ctx(xts: Xts): number {
    if (xts === null || typeof xts !== 'object' || xts.kernels.memory !== this.kernels.memory) throw typeError('xts must be an XTS context on this memory')
    return xts.contextAddress
  }

  /**
   * AES-XTS of `length` bytes (whole data units) from the src list to the dst list (the
   * same list to work in place). Unit i uses tweak firstDataUnit + i.
   */
  xts(xts: Xts, decrypt: boolean, srcList: number, srcCount: number, dstList: number, dstCount: number, length: number, dataUnitSize: number, firstDataUnit: number | bigint): FusedStatusCode {
    const ctx = this.#ctx(xts)
    checkInt('length', length, 0, 2 ** 32 - 1)
    checkInt('dataUnitSize', dataUnitSize, 16, 1 << 24)
    if (length % dataUnitSize !== 0) throw rangeError(`length ${length} must be a multiple of dataUnitSize ${dataUnitSize}`)
    this.checkList('src', srcList, srcCount)
    this.checkList('dst', dstList, dstCount)
    this.#tweak(firstDataUnit)
    const k = this.kernels
    return k.abi.fused_xts(ctx, decrypt ? 1 : 0, srcList, srcCount, dstList, dstCount, length, dataUnitSize, this.bounce, this.bounceCapacity, k.scratch) as FusedStatusCode
  }

  /**
   * encrypt + dif_generate_copy: `blocks` data units of the src list (data only) become
   * ciphertext with PI in the job's list A (extended). `job` was started with op Generate.
   * The data unit is the job's data block size.
   */
  xtsDifGenerate(xts: Xts, srcList: number, srcCount: number, job: DifJob, blocks: number, firstDataUnit: number | bigint): FusedStatusCode {
    const ctx = this.#ctx(xts)
    this.#job(job, blocks)
    this.checkList('src', srcList, srcCount)
    this.#tweak(firstDataUnit)
    const k = this.kernels
    return k.abi.fused_xts_dif_generate(ctx, srcList, srcCount, blocks, this.bounce, this.bounceCapacity, k.scratch) as FusedStatusCode
  }

  /**
   * dif_verify_copy + decrypt: `blocks` blocks of the job's list A (extended) are verified
   * and their data decrypted into the dst list (data only). `job` was started with op Verify.
   */
  difVerifyXtsDecrypt(xts: Xts, dstList: number, dstCount: number, job: DifJob, blocks: number, firstDataUnit: number | bigint): FusedStatusCode {
    const ctx = this.#ctx(xts)
    this.#job(job, blocks)
    this.checkList('dst', dstList, dstCount)
    this.#tweak(firstDataUnit)
    const k = this.kernels
    return k.abi.fused_dif_verify_xts_decrypt(ctx, dstList, dstCount, blocks, this.bounce, this.bounceCapacity, k.scratch) as FusedStatusCode
  }

  #job(job: DifJob, blocks: number): void {
    if (job === null || typeof job !== 'object' || job.kernels !== this.kernels) throw typeError('job must be a DifJob of this Kernels instance')
    checkInt('blocks', blocks, 0, 0xffffffff)
  }

  /**
   * Copies `length` bytes from the src list to the dst list and returns their CRC-32C,
   * continuing from `seed` as crc32c() does. Check `lastStatus` for a short list.
   */
  copyCrc32c(srcList: number, srcCount: number, dstList: number, dstCount: number, length: number, seed = 0): number {
    checkInt('length', length, 0, 2 ** 32 - 1)
    checkInt('seed', seed, 0, 0xffffffff)
    this.checkList('src', srcList, srcCount)
    this.checkList('dst', dstList, dstCount)
    const k = this.kernels
    return ~k.abi.fused_copy_crc32c(srcList, srcCount, dstList, dstCount, length, ~seed, k.scratch) >>> 0
  }

  /** The status of the last copyCrc32c: FusedStatus.Ok or Short. */
  get lastStatus(): FusedStatusCode {
    if (this.#statusWord.buffer !== this.kernels.memory.buffer) this.#statusWord = new Int32Array(this.kernels.memory.buffer, this.kernels.scratch + 48, 1)
    return this.#statusWord[0]! as FusedStatusCode
  }
}
