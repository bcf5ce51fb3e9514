// The word filters are only correct if each exponent set is a multiple of its CRC
// polynomial; check that as a fact here, in plain GF(2) arithmetic.
import { describe, expect, it } from 'vitest'
import { FILTERS } from '../scripts/filters.mjs'

const POLYS: Record<string, { poly: bigint; degree: number }> = {
  'CRC-32C': { poly: 0x1edc6f41n, degree: 32 },
  'CRC-16/T10-DIF': { poly: 0x8bb7n, degree: 16 },
  'CRC-64/NVME': { poly: 0xad93d23594c93659n, degree: 64 },
}

/** x^e mod P for e in [0, max], P = x^degree + poly (non-reflected form). */
function powers(poly: bigint, degree: number, max: number): bigint[] {
  const top = 1n << BigInt(degree - 1)
  const mask = (1n << BigInt(degree)) - 1n
  const out = [1n]
  let v = 1n
  for (let e = 1; e <= max; e++) {
    v = v & top ? ((v << 1n) & mask) ^ poly : v << 1n
    out.push(v)
  }
  return out
}

describe('word filter multiples', () => {
  for (const f of FILTERS) {
    it(`${f.name}: sum of x^e over ${f.exponents.length} exponents is 0 mod the ${f.crc} polynomial`, () => {
      const { poly, degree } = POLYS[f.crc]!
      const span = Math.max(...f.exponents)
      const xs = powers(poly, degree, span)
      expect(f.exponents).toContain(0)
      expect(new Set(f.exponents).size).toBe(f.exponents.length)
      expect(f.exponents.reduce((acc: bigint, e: number) => acc ^ xs[e]!, 0n)).toBe(0n)
      // and dropping any one term breaks it, so no exponent is dead weight
      for (const skip of f.exponents) {
        expect(f.exponents.filter((e: number) => e !== skip).reduce((acc: bigint, e: number) => acc ^ xs[e]!, 0n)).not.toBe(0n)
      }
    })
  }
})
