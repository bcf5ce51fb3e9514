// @ipukit/kernels WebAssembly module: one instance per thread, all on one imported memory.
// Kernels never allocate: they touch only the addresses they are given and their static
// tables. The TypeScript side (src/) validates every argument before calling in.
//
// Per-thread scratch (KERNEL_SCRATCH_SIZE bytes, given to every call):
//   [0, 64)        call area: arguments too wide for the JS boundary (the XTS tweak at 0;
//                  the fused kernels' two list cursors at 16 and 32, their status at 48)
//   [64, 320)      DIF job: parameters, resumable state and result (assembly/dif.ts)
//   [320, 4416)    DIF iovec lists A and B, 256 (address, length) pairs each
//   [4416, ...)    kernel scratch (CRC filter history, XTS batch lanes)
import { FILTER_SCRATCH } from './generated/filters'
import { AES_XTS_SCRATCH_SIZE, aes_xts_decrypt, aes_xts_encrypt } from './aes-xts'
import { DIF_JOB_SIZE, dif_run } from './dif'
import { copy_crc32c_lists, dif_verify_xts_decrypt, xts_dif_generate, xts_lists } from './fused'
import { curInit } from './iov'

export { crc32c_update } from './crc32c'
export { crc16_update } from './crc16-t10dif'
export { crc64_update } from './crc64-nvme'
export { AES_XTS_CTX_SIZE, aes_xts_init, aes_xts_wipe } from './aes-xts'
export { crc_blocks } from './dif'
export { compare, xor_n, xts_tweak_values, xts_tweak_xor } from './memops'

const CALL_AREA: usize = 64
const DIF_JOB: usize = CALL_AREA
const DIF_IOV_CAPACITY: usize = 256
const KERNEL_AREA: usize = DIF_JOB + <usize>DIF_JOB_SIZE + 2 * DIF_IOV_CAPACITY * 8

/** Bytes of per-thread scratch any kernel call may use, call area and DIF job included. */
export const KERNEL_SCRATCH_SIZE: usize =
  KERNEL_AREA + (FILTER_SCRATCH > <usize>AES_XTS_SCRATCH_SIZE ? FILTER_SCRATCH : <usize>AES_XTS_SCRATCH_SIZE)

/** First byte past the module's static data (tables); scratch and buffers go above it. */
export function static_end(): usize {
  return __heap_base
}

/**
 * XTS over `len` bytes of whole data units. The first unit's tweak is the 16-byte
 * little-endian integer at the start of `scratch` (the call area): passing it through
 * memory keeps bigint conversions off the JS side of every call.
 */
export function xts_encrypt(ctx: usize, src: usize, dst: usize, len: u32, dataUnitSize: u32, scratch: usize): void {
  aes_xts_encrypt(ctx, src, dst, len, dataUnitSize, load<u64>(scratch), load<u64>(scratch, 8), scratch + KERNEL_AREA)
}

export function xts_decrypt(ctx: usize, src: usize, dst: usize, len: u32, dataUnitSize: u32, scratch: usize): void {
  aes_xts_decrypt(ctx, src, dst, len, dataUnitSize, load<u64>(scratch), load<u64>(scratch, 8), scratch + KERNEL_AREA)
}

/**
 * Runs the DIF job at scratch + 64 (see assembly/dif.ts); its iovec lists may point into
 * the scratch's list area or anywhere in the memory. The CRCs use the kernel area.
 */
export function dif(scratch: usize): i32 {
  return dif_run(scratch + DIF_JOB, scratch + KERNEL_AREA)
}

/** Offset of the kernel area inside the scratch (CRC calls made from JS may use it too). */
export function kernel_area(): usize {
  return KERNEL_AREA
}

// ---- kernels over iovec lists and the fused pairs (assembly/fused.ts) ----
// Lists are (address u32, length u32) pairs anywhere in the memory. The tweak of the first
// data unit is the 16-byte little-endian integer at the start of the call area.

const CUR_S: usize = 16
const CUR_D: usize = 32
const STATUS: usize = 48

export function fused_xts(ctx: usize, dec: u32, srcList: usize, srcN: u32, dstList: usize, dstN: u32, nbytes: u32, unit: u32, bounce: usize, bounceCap: u32, scratch: usize): i32 {
  curInit(scratch + CUR_S, srcList, srcN)
  curInit(scratch + CUR_D, dstList, dstN)
  return xts_lists(ctx, dec != 0, scratch + CUR_S, scratch + CUR_D, nbytes, unit, scratch, bounce, bounceCap, scratch + KERNEL_AREA)
}

/** encrypt + dif_generate_copy; the DIF job (op Generate, list A = the extended dst) is at scratch + 64. */
export function fused_xts_dif_generate(ctx: usize, srcList: usize, srcN: u32, nblocks: u32, bounce: usize, bounceCap: u32, scratch: usize): i32 {
  curInit(scratch + CUR_S, srcList, srcN)
  return xts_dif_generate(ctx, scratch + CUR_S, scratch + CUR_D, nblocks, scratch, scratch + DIF_JOB, bounce, bounceCap, scratch + KERNEL_AREA, scratch + KERNEL_AREA)
}

/** dif_verify_copy + decrypt; the DIF job (op Verify, list A = the extended src) is at scratch + 64. */
export function fused_dif_verify_xts_decrypt(ctx: usize, dstList: usize, dstN: u32, nblocks: u32, bounce: usize, bounceCap: u32, scratch: usize): i32 {
  curInit(scratch + CUR_D, dstList, dstN)
  return dif_verify_xts_decrypt(ctx, scratch + CUR_S, scratch + CUR_D, nblocks, scratch, scratch + DIF_JOB, bounce, bounceCap, scratch + KERNEL_AREA, scratch + KERNEL_AREA)
}

/** copy + CRC-32C (raw register in and out); the status (0, or -1 when a list is short) is at scratch + 48. */
export function fused_copy_crc32c(srcList: usize, srcN: u32, dstList: usize, dstN: u32, nbytes: u32, crc: u32, scratch: usize): u32 {
  curInit(scratch + CUR_S, srcList, srcN)
  curInit(scratch + CUR_D, dstList, dstN)
  return copy_crc32c_lists(scratch + CUR_S, scratch + CUR_D, nbytes, crc, scratch + KERNEL_AREA, scratch + STATUS)
}
