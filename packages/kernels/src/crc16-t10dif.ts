// CRC-16/T10-DIF: poly 0x8BB7, init 0, not reflected, no xorout; check value 0xD0DB. The
// 16b guard of T10 DIF and NVMe protection information (SBC-4 §4.22.4).
import { crcOverView } from './internal/crc.js'
import { checkBytes, checkInt } from './internal/validate.js'
import { defaultKernels, type Kernels } from './kernels.js'

/**
 * CRC16 T10-DIF of `data`. `seed` is a previous result to continue from, so
 * `crc16T10Dif(b, crc16T10Dif(a)) === crc16T10Dif(a ‖ b)`.
 */
export function crc16T10Dif(data: Uint8Array, seed = 0): number {
  return crc16T10DifWith(defaultKernels(), data, seed)
}

/** @internal */
export function crc16T10DifWith(k: Kernels, data: Uint8Array, seed: number): number {
  checkBytes('data', data)
  checkInt('seed', seed, 0, 0xffff)
  return crcOverView(k, data, seed, k.abi.crc16_update)
}

/** @internal */
export function crc16T10DifAtWith(k: Kernels, address: number, length: number, seed: number): number {
  k.live()
  k.checkRange('data', address, length)
  checkInt('seed', seed, 0, 0xffff)
  return k.abi.crc16_update(seed, address, length, k.kernelArea)
}
