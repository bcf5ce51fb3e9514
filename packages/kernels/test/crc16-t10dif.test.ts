import { crc16T10Dif } from '../src/index.js'
import { crcSuite } from './support/crc-suite.js'
import { RefCrc16 } from './support/reference.js'

crcSuite<number>({
  name: 'crc16T10Dif',
  fn: crc16T10Dif,
  on: (k, d, s) => k.crc16T10Dif(d, s),
  at: (k, a, n, s) => k.crc16T10DifAt(a, n, s),
  ref: (seed) => new RefCrc16(seed),
  parse: (hex) => Number.parseInt(hex, 16),
  thresholds: [1024, 256 * 1024],
  badSeeds: [
    { seed: -1, error: RangeError },
    { seed: 0x10000, error: RangeError },
    { seed: Number.NaN, error: RangeError },
    { seed: 5n, error: TypeError },
  ],
})
