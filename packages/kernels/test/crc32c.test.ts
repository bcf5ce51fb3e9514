import { crc32c } from '../src/index.js'
import { crcSuite } from './support/crc-suite.js'
import { RefCrc32c } from './support/reference.js'

crcSuite<number>({
  name: 'crc32c',
  fn: crc32c,
  on: (k, d, s) => k.crc32c(d, s),
  at: (k, a, n, s) => k.crc32cAt(a, n, s),
  ref: (seed) => new RefCrc32c(seed),
  parse: (hex) => Number.parseInt(hex, 16),
  thresholds: [2048, 96 * 1024],
  badSeeds: [
    { seed: -1, error: RangeError },
    { seed: 2 ** 32, error: RangeError },
    { seed: 1.5, error: RangeError },
    { seed: 1n, error: TypeError },
    { seed: '1', error: TypeError },
  ],
})
