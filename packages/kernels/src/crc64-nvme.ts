// CRC-64/NVME: reflected poly 0xAD93D23594C93659, init and xorout all ones; check value
// 0xAE8B14860A799888. The 64b guard of NVMe protection information (NVM Command Set
// Specification 1.0d §5.2.1.3), also Amazon S3's CRC64NVME checksum.
import { crcOverView } from './internal/crc.js'
import { checkBytes, toU64, U64_MAX } from './internal/validate.js'
import { defaultKernels, type Kernels } from './kernels.js'

/**
 * CRC-64/NVME of `data`. `seed` is a previous result to continue from, so
 * `crc64Nvme(b, crc64Nvme(a)) === crc64Nvme(a ‖ b)`.
 */
export function crc64Nvme(data: Uint8Array, seed = 0n): bigint {
  return crc64NvmeWith(defaultKernels(), data, seed)
}

/** @internal */
export function crc64NvmeWith(k: Kernels, data: Uint8Array, seed: bigint): bigint {
  checkBytes('data', data)
  const reg = toU64('seed', seed, false) ^ U64_MAX
  return BigInt.asUintN(64, crcOverView(k, data, reg, k.abi.crc64_update)) ^ U64_MAX
}

/** @internal */
export function crc64NvmeAtWith(k: Kernels, address: number, length: number, seed: bigint): bigint {
  k.live()
  k.checkRange('data', address, length)
  const reg = toU64('seed', seed, false) ^ U64_MAX
  return BigInt.asUintN(64, k.abi.crc64_update(reg, address, length, k.kernelArea)) ^ U64_MAX
}
