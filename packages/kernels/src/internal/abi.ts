/**
 * The raw exports of build/kernels.wasm. Addresses are byte offsets into the memory;
 * u32 results come back as signed i32 and u64 values as signed bigint, so callers apply
 * `>>> 0` / `BigInt.asUintN(64, …)`. Nothing here validates: callers must.
 */
export interface KernelExports {
  static_end(): number
  readonly KERNEL_SCRATCH_SIZE: WebAssembly.Global
  /** Raw CRC-32C register update (callers pass ~seed and invert the result). */
  crc32c_update(crc: number, address: number, length: number, scratch: number): number
  /** CRC16 T10-DIF register update (the register is the CRC). */
  crc16_update(crc: number, address: number, length: number, scratch: number): number
  /** Raw CRC-64/NVME register update (callers pass ~seed and invert the result). */
  crc64_update(crc: bigint, address: number, length: number, scratch: number): bigint
  readonly AES_XTS_CTX_SIZE: WebAssembly.Global
  aes_xts_init(ctx: number, key: number, keyLength: number): void
  /**
   * XTS over `length` bytes (whole data units). The first data unit's tweak is read as a
   * 16-byte little-endian integer from the call area at `scratch`; kernel scratch follows it.
   */
  xts_encrypt(ctx: number, src: number, dst: number, length: number, dataUnitSize: number, scratch: number): void
  xts_decrypt(ctx: number, src: number, dst: number, length: number, dataUnitSize: number, scratch: number): void
  aes_xts_wipe(ctx: number): void
  /** Runs the PI engine job in `scratch` (see src/dif.ts). Returns a DifStatus. */
  dif(scratch: number): number
  /** Per-block guard CRCs, u64 each at `out` (the PI engine's CRC floor, for benchmarks). */
  crc_blocks(format: number, address: number, blocks: number, stride: number, length: number, seed: bigint, out: number, scratch: number): void
  /** Offset of the kernel area in a scratch slot (after the call area and the DIF job). */
  kernel_area(): number
  /** XTS between two (address u32, length u32) lists; tweak in the call area. Returns a FusedStatus. */
  fused_xts(ctx: number, decrypt: number, srcList: number, srcCount: number, dstList: number, dstCount: number, length: number, dataUnitSize: number, bounce: number, bounceCapacity: number, scratch: number): number
  /** encrypt + dif_generate_copy: src list (data) into the DIF job's list A (extended). */
  fused_xts_dif_generate(ctx: number, srcList: number, srcCount: number, blocks: number, bounce: number, bounceCapacity: number, scratch: number): number
  /** dif_verify_copy + decrypt: the DIF job's list A (extended) into the dst list (data). */
  fused_dif_verify_xts_decrypt(ctx: number, dstList: number, dstCount: number, blocks: number, bounce: number, bounceCapacity: number, scratch: number): number
  /** copy + CRC-32C (raw register); status word at scratch + 48. */
  fused_copy_crc32c(srcList: number, srcCount: number, dstList: number, dstCount: number, length: number, crc: number, scratch: number): number
  xor_n(dst: number, srcs: number, count: number, length: number): void
  compare(a: number, b: number, length: number): number
  xts_tweak_values(out: number, count: number, tweak: number): void
  xts_tweak_xor(src: number, dst: number, length: number, dataUnitSize: number, encryptedTweaks: number): void
}
