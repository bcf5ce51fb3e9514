// Runs a CRC register update over a view: in place when the view lies in the kernels'
// memory, otherwise staged through this instance's staging area in chunks.
import type { Kernels } from '../kernels.js'

export function crcOverView<R>(
  k: Kernels,
  data: Uint8Array,
  reg: R,
  update: (reg: R, address: number, length: number, scratch: number) => R,
): R {
  k.live()
  const address = k.addressOf('data', data)
  if (address >= 0) return update(reg, address, data.byteLength, k.kernelArea)
  const bytes = k.bytes
  const step = k.layout.stagingSize
  if (data.byteLength <= step) {
    bytes.set(data, k.staging)
    return update(reg, k.staging, data.byteLength, k.kernelArea)
  }
  for (let off = 0; off < data.byteLength; off += step) {
    const chunk = data.subarray(off, off + step)
    bytes.set(chunk, k.staging)
    reg = update(reg, k.staging, chunk.byteLength, k.kernelArea)
  }
  return reg
}
