// @ipukit/kernels WebAssembly module: one instance per thread, all on one imported memory.
// Kernels never allocate: they touch only the addresses they are given and their static
// tables. The TypeScript side (src/) validates every argument before calling in.
//
// Per-thread scratch (KERNEL_SCRATCH_SIZE bytes, given to every call):
//   [0, 64)     call area: arguments too wide for the JS boundary (the XTS tweak)
//   [64, ...)   kernel scratch (CRC filter history, XTS batch lanes)
import { FILTER_SCRATCH } from './generated/filters'
import { AES_XTS_SCRATCH_SIZE, aes_xts_decrypt, aes_xts_encrypt } from './aes-xts'

export { crc32c_update } from './crc32c'
export { crc16_update } from './crc16-t10dif'
export { crc64_update } from './crc64-nvme'
export { AES_XTS_CTX_SIZE, aes_xts_init, aes_xts_wipe } from './aes-xts'

const CALL_AREA: usize = 64

/** Bytes of per-thread scratch any kernel call may use, call area included. */
export const KERNEL_SCRATCH_SIZE: usize =
  CALL_AREA + (FILTER_SCRATCH > <usize>AES_XTS_SCRATCH_SIZE ? FILTER_SCRATCH : <usize>AES_XTS_SCRATCH_SIZE)

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
  aes_xts_encrypt(ctx, src, dst, len, dataUnitSize, load<u64>(scratch), load<u64>(scratch, 8), scratch + CALL_AREA)
}

export function xts_decrypt(ctx: usize, src: usize, dst: usize, len: u32, dataUnitSize: u32, scratch: usize): void {
  aes_xts_decrypt(ctx, src, dst, len, dataUnitSize, load<u64>(scratch), load<u64>(scratch, 8), scratch + CALL_AREA)
}
