// XOR of n sources, compare, and the tweak passes of an AES-XTS built around an external
// AES-ECB (assembly/memops.ts): what @ipukit/accel's copy-free opcodes and its `aesni`
// module run. Addresses are in the kernels' memory, outside the kernel region.
import { checkInt, rangeError } from './internal/validate.js'
import type { Kernels } from './kernels.js'

export class MemOps {
  readonly kernels: Kernels
  #u32: Uint32Array

  constructor(kernels: Kernels) {
    kernels.live()
    this.kernels = kernels
    this.#u32 = new Uint32Array(kernels.memory.buffer)
  }

  /** dst = xor of `count` sources of `length` bytes; `srcs` holds their u32 addresses. */
  xor(dst: number, srcs: number, count: number, length: number): void {
    const k = this.kernels
    checkInt('count', count, 1, 1 << 16)
    k.checkRange('dst', dst, length)
    if (srcs % 4 !== 0 || srcs + 4 * count > k.memory.buffer.byteLength) throw rangeError('srcs must be a 4-byte aligned list inside the memory')
    if (this.#u32.buffer !== k.memory.buffer) this.#u32 = new Uint32Array(k.memory.buffer)
    const at = srcs >>> 2
    for (let i = 0; i < count; i++) k.checkRange('srcs[i]', this.#u32[at + i], length)
    k.abi.xor_n(dst, srcs, count, length)
  }

  /** The offset of the first differing byte of a and b, or -1 if `length` bytes are equal. */
  compare(a: number, b: number, length: number): number {
    const k = this.kernels
    k.checkRange('a', a, length)
    k.checkRange('b', b, length)
    return k.abi.compare(a, b, length)
  }

  /** Writes `count` 16-byte little-endian tweaks first, first + 1, ... at `out`. */
  tweakValues(out: number, count: number, first: number): void {
    const k = this.kernels
    checkInt('count', count, 0, 1 << 24)
    checkInt('first', first, 0, Number.MAX_SAFE_INTEGER)
    k.checkRange('out', out, 16 * count)
    const w = k.callArea
    const lo = first % 0x100000000
    w[0] = lo
    w[1] = (first - lo) / 0x100000000
    w[2] = 0
    w[3] = 0
    k.abi.xts_tweak_values(out, count, k.scratch)
  }

  /**
   * dst = src ^ T_j(u) over `length` bytes of data units of `dataUnitSize` (both multiples
   * of 16): T_0(u) is the encrypted tweak of unit u at encryptedTweaks + 16 u, T_{j+1} = T_j * alpha.
   */
  tweakXor(src: number, dst: number, length: number, dataUnitSize: number, encryptedTweaks: number): void {
    const k = this.kernels
    checkInt('dataUnitSize', dataUnitSize, 16, 1 << 24)
    if (dataUnitSize % 16 !== 0 || length % dataUnitSize !== 0) throw rangeError(`length ${length} and dataUnitSize ${dataUnitSize} must be multiples of 16, length of dataUnitSize`)
    k.checkRange('src', src, length)
    k.checkRange('dst', dst, length)
    k.checkRange('encryptedTweaks', encryptedTweaks, 16 * (length / dataUnitSize))
    k.abi.xts_tweak_xor(src, dst, length, dataUnitSize, encryptedTweaks)
  }
}
