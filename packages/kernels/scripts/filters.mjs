// Sparse multiples of the CRC polynomials, used by the word filters (see gen-tables.mjs).
// Each exponent set S gives F(x) = sum_{e in S} x^e with P(x) | F(x). They were found with a
// Lee-Brickell information-set search over x^e mod P for e < D (scripts/find-multiples.mjs
// reproduces and verifies them); weight = |S| = loads per 16-byte word, span = max S =
// words of history and of remainder. Low weight makes the main loop cheap, a short span
// makes the table-driven remainder cheap, so each CRC has a "long" and a "short" filter.
// CRC-32C's P = (x + 1) * (irreducible of degree 31), so its multiples have even weight.
export const FILTERS = [
  { name: 'crc32c_w6', crc: 'CRC-32C', exponents: [0, 14, 39, 54, 144, 209], note: 'for long inputs' },
  { name: 'crc32c_w8', crc: 'CRC-32C', exponents: [0, 1, 12, 18, 58, 71, 75, 79], note: 'for mid-size inputs' },
  { name: 'crc16_w3', crc: 'CRC-16/T10-DIF', exponents: [0, 31, 369], note: 'for long inputs' },
  { name: 'crc16_w5', crc: 'CRC-16/T10-DIF', exponents: [0, 7, 10, 15, 39], note: 'for mid-size inputs' },
  { name: 'crc64_w10', crc: 'CRC-64/NVME', exponents: [0, 150, 174, 177, 287, 308, 429, 549, 584, 586], note: 'for long inputs' },
  { name: 'crc64_w12', crc: 'CRC-64/NVME', exponents: [0, 11, 15, 23, 39, 101, 113, 178, 184, 191, 213, 283], note: 'for mid-size inputs' },
]
