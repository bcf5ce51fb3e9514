// One suite, run for each CRC: known answers, every length to 10 000 against the bitwise
// reference, misaligned and staged inputs past each filter threshold, and chaining.
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { createKernelMemory, createKernelsSync, type Kernels } from '../../src/index.js'
import vectors from '../vectors/crc.json' with { type: 'json' }
import { fuzzRuns, randomBytes } from './reference.js'

export interface CrcCase<T extends number | bigint> {
  name: 'crc32c' | 'crc16T10Dif' | 'crc64Nvme'
  /** the module-level function */
  fn: (data: Uint8Array, seed?: T) => T
  /** the same on an instance: views and addresses */
  on: (k: Kernels, data: Uint8Array, seed?: T) => T
  at: (k: Kernels, address: number, length: number, seed?: T) => T
  ref: (seed?: T) => { update(d: Uint8Array): unknown; value: T }
  parse: (hex: string) => T
  /** input lengths where the kernel switches method (table → filters) */
  thresholds: number[]
  badSeeds: { seed: unknown; error: ErrorConstructor }[]
}

interface Vector {
  source: string
  pattern: string
  length?: number
  text?: string
  bytes?: string
  crc: string
}

function vectorBytes(v: Vector): Uint8Array {
  switch (v.pattern) {
    case 'ascii':
      return new TextEncoder().encode(v.text)
    case 'hex':
      return Uint8Array.from(v.bytes!.match(/../g)!.map((h) => Number.parseInt(h, 16)))
    case 'zeros':
      return new Uint8Array(v.length!)
    case 'ones':
      return new Uint8Array(v.length!).fill(0xff)
    case 'inc':
      return Uint8Array.from({ length: v.length! }, (_, i) => i & 0xff)
    case 'dec':
      return Uint8Array.from({ length: v.length! }, (_, i) => 255 - (i & 0xff))
    default:
      throw new Error(`unknown pattern ${v.pattern}`)
  }
}

export function crcSuite<T extends number | bigint>(c: CrcCase<T>): void {
  const refOf = (data: Uint8Array, seed?: T) => {
    const r = c.ref(seed)
    r.update(data)
    return r.value
  }

  describe(c.name, () => {
    let k: Kernels
    let user: number // first byte of the caller's part of k.memory
    beforeAll(() => {
      k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 8 << 20, scratchSlots: 2 }), scratchSlots: 2 })
      user = k.layout.end
    })

    it('matches the published vectors', () => {
      const list = (vectors as unknown as Record<string, Vector[]>)[c.name]!
      expect(list.length).toBeGreaterThan(0)
      for (const v of list) {
        const data = vectorBytes(v)
        expect(c.fn(data), `${v.source} ${v.pattern} ${data.length}`).toBe(c.parse(v.crc))
        expect(refOf(data), `reference: ${v.source} ${v.pattern}`).toBe(c.parse(v.crc))
      }
    })

    it('matches the bitwise reference at every length from 0 to 10 000, at offsets 0 to 3', () => {
      const buf = randomBytes(10_003, 0x1234567)
      for (let off = 0; off < 4; off++) {
        const r = c.ref()
        const data = buf.subarray(off)
        for (let n = 0; n <= 10_000; n++) {
          // r holds the reference CRC of data[0, n)
          if (c.fn(data.subarray(0, n)) !== r.value) {
            expect(c.fn(data.subarray(0, n)), `length ${n} offset ${off}`).toBe(r.value)
          }
          r.update(data.subarray(n, n + 1))
        }
      }
    })

    it('matches the reference around every filter threshold, in memory and staged, misaligned', () => {
      const sizes = new Set<number>()
      for (const t of c.thresholds) for (const d of [-17, -1, 0, 1, 15, 16, 4099]) sizes.add(t + d)
      for (const n of [256 * 1024 + 5, 1 << 20, (1 << 20) + 333, 3 * 1024 * 1024 + 7]) sizes.add(n)
      const bytes = k.bytes
      let seed = 7
      for (const n of sizes) {
        const data = randomBytes(n, seed++)
        const want = refOf(data)
        const off = seed % 16
        bytes.set(data, user + off)
        expect(c.on(k, data), `staged, length ${n}`).toBe(want)
        expect(c.at(k, user + off, n), `address, length ${n} offset ${off}`).toBe(want)
        expect(c.on(k, new Uint8Array(k.memory.buffer, user + off, n)), `in-memory view, length ${n}`).toBe(want)
      }
    })

    it('chains at every split point', () => {
      for (const [n, seed] of [
        [300, 1],
        [4500, 2],
      ] as const) {
        const data = randomBytes(n, seed)
        const whole = c.fn(data)
        for (let s = 0; s <= n; s++) {
          const got = c.fn(data.subarray(s), c.fn(data.subarray(0, s)))
          if (got !== whole) expect(got, `split ${s} of ${n}`).toBe(whole)
        }
      }
      const big = randomBytes(700_000, 3)
      const whole = refOf(big)
      for (const s of [1, 15, 4096, 65_537, 131_072, 262_144 + 3, 699_999]) {
        expect(c.fn(big.subarray(s), c.fn(big.subarray(0, s))), `split ${s}`).toBe(whole)
      }
    })

    it('chains and agrees with the reference on arbitrary inputs (property)', () => {
      fc.assert(
        // lengths up to 200 000 reach every method (table, short and long filter)
        fc.property(fc.nat({ max: 200_000 }), fc.nat(), fc.nat(), (n, seed, at) => {
          const data = randomBytes(n, seed)
          const s = at % (n + 1)
          const whole = c.fn(data)
          expect(whole).toBe(refOf(data))
          expect(c.fn(data.subarray(s), c.fn(data.subarray(0, s)))).toBe(whole)
          expect(c.fn(data.subarray(s), refOf(data.subarray(0, s)))).toBe(whole)
        }),
        { numRuns: fuzzRuns(60) },
      )
    })

    it('rejects bad arguments with TypeError or RangeError naming the parameter', () => {
      expect(() => c.fn('abc' as never)).toThrow(TypeError)
      expect(() => c.fn([1, 2, 3] as never)).toThrow(/data must be a Uint8Array/)
      expect(() => c.fn(new Uint16Array(4) as never)).toThrow(TypeError)
      for (const { seed, error } of c.badSeeds) {
        expect(() => c.fn(new Uint8Array(4), seed as T), String(seed)).toThrow(error)
        expect(() => c.fn(new Uint8Array(4), seed as T), String(seed)).toThrow(/seed/)
      }
      expect(() => c.at(k, 0, 16)).toThrow(RangeError) // the header page
      expect(() => c.at(k, k.layout.staticEnd - 8, 16)).toThrow(/kernel region/)
      expect(() => c.at(k, user, k.memory.buffer.byteLength)).toThrow(RangeError)
      expect(() => c.at(k, user + 0.5, 1)).toThrow(RangeError)
      expect(() => c.at(k, -1, 1)).toThrow(RangeError)
      expect(() => c.on(k, new Uint8Array(k.memory.buffer, 4096, 64))).toThrow(/kernel region/)
      // a zero-length range anywhere is fine
      expect(c.at(k, 0, 0)).toBe(c.fn(new Uint8Array(0)))
    })
  })
}
