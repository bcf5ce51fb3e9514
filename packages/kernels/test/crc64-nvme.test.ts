import { crc64Nvme } from '../src/index.js'
import { crcSuite } from './support/crc-suite.js'
import { RefCrc64 } from './support/reference.js'

crcSuite<bigint>({
  name: 'crc64Nvme',
  fn: crc64Nvme,
  on: (k, d, s) => k.crc64Nvme(d, s),
  at: (k, a, n, s) => k.crc64NvmeAt(a, n, s),
  ref: (seed) => new RefCrc64(seed),
  parse: (hex) => BigInt(`0x${hex}`),
  thresholds: [8 * 1024, 512 * 1024],
  badSeeds: [
    { seed: -1n, error: RangeError },
    { seed: 1n << 64n, error: RangeError },
    { seed: 5, error: TypeError },
  ],
})
