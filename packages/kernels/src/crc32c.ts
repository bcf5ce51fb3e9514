// CRC-32C (Castagnoli): reflected poly 0x82F63B78, init and xorout 0xFFFFFFFF; check value
// 0xE3069283 for "123456789". Used by iSCSI (RFC 3720), NVMe/TCP digests, ext4, Btrfs.
import { crcOverView } from './internal/crc.js'
import { checkBytes, checkInt } from './internal/validate.js'
import { defaultKernels, type Kernels } from './kernels.js'

/**
 * CRC-32C of `data`. `seed` is a previous result to continue from, so
 * `crc32c(b, crc32c(a)) === crc32c(a ‖ b)`.
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  return crc32cWith(defaultKernels(), data, seed)
}

/** @internal */
export function crc32cWith(k: Kernels, data: Uint8Array, seed: number): number {
  checkBytes('data', data)
  checkInt('seed', seed, 0, 0xffffffff)
  return ~crcOverView(k, data, ~seed, k.abi.crc32c_update) >>> 0
}

/** @internal */
export function crc32cAtWith(k: Kernels, address: number, length: number, seed: number): number {
  k.live()
  k.checkRange('data', address, length)
  checkInt('seed', seed, 0, 0xffffffff)
  return ~k.abi.crc32c_update(~seed, address, length, k.kernelArea) >>> 0
}
