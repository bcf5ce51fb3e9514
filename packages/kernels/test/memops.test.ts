// XOR, compare, and XTS rebuilt from its tweak passes around AES-ECB (what the accel
// `aesni` module does with node:crypto): bit-identical to the XTS kernel and to OpenSSL.
import { createCipheriv, createDecipheriv } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createKernelMemory, createKernelsSync, MemOps } from '../src/index.js'
import { fuzzRuns, randomBytes } from './support/reference.js'

const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1, keySlots: 2 }) })
const ops = new MemOps(k)
const base = k.layout.end
const mem = () => k.bytes

describe('MemOps', () => {
  it('xor of n sources, any length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 5000 }), fc.nat(), (n, len, seed) => {
        const srcs = Array.from({ length: n }, (_, i) => randomBytes(len, seed + i))
        const list = new Uint32Array(k.memory.buffer, base, n)
        srcs.forEach((s, i) => {
          const at = base + 4096 + i * 8192
          mem().set(s, at)
          list[i] = at
        })
        const dst = base + 4096 + 6 * 8192
        ops.xor(dst, base, n, len)
        const want = new Uint8Array(len)
        for (const s of srcs) for (let j = 0; j < len; j++) want[j]! ^= s[j]!
        expect(Buffer.from(mem().subarray(dst, dst + len)).equals(Buffer.from(want))).toBe(true)
      }),
      { numRuns: fuzzRuns(100) },
    )
  })

  it('compare finds the first differing byte, or -1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.option(fc.nat(), { nil: undefined }), fc.nat(), (len, diff, seed) => {
        const a = randomBytes(len, seed)
        mem().set(a, base)
        mem().set(a, base + 4096)
        let want = -1
        if (diff !== undefined && len > 0) {
          want = diff % len
          mem()[base + 4096 + want]! ^= 1 << (diff % 8)
        }
        expect(ops.compare(base, base + 4096, len)).toBe(want)
      }),
      { numRuns: fuzzRuns(200) },
    )
  })

  it('tweak values, tweak XOR, AES-ECB and tweak XOR again are XTS, bit for bit (against OpenSSL and the XTS kernel)', () => {
    fc.assert(
      fc.property(fc.constantFrom(32, 64), fc.constantFrom(512, 4096, 16, 48), fc.integer({ min: 1, max: 9 }), fc.nat(2 ** 40), fc.nat(), (keyLen, unit, units, first, seed) => {
        const key = randomBytes(keyLen, seed)
        key[0] = key[keyLen / 2]! ^ 1 // key1 != key2
        const half = keyLen / 2
        const algo = `aes-${half * 8}-ecb`
        const len = unit * units
        const plain = randomBytes(len, seed + 1)
        const P = base
        const X = base + (1 << 20)
        const T = base + (2 << 20)
        mem().set(plain, P)
        // T_0(u) = E_K2(first + u)
        ops.tweakValues(T, units, first)
        const e2 = createCipheriv(`aes-${half * 8}-ecb`, key.subarray(half), null).setAutoPadding(false)
        mem().set(e2.update(mem().subarray(T, T + 16 * units)), T)
        ops.tweakXor(P, X, len, unit, T)
        const e1 = createCipheriv(algo, key.subarray(0, half), null).setAutoPadding(false)
        mem().set(e1.update(mem().subarray(X, X + len)), X)
        ops.tweakXor(X, X, len, unit, T)
        const got = mem().slice(X, X + len)
        // OpenSSL's XTS, one call per data unit
        const iv = Buffer.alloc(16)
        const want = new Uint8Array(len)
        for (let u = 0; u < units; u++) {
          iv.fill(0)
          iv.writeBigUInt64LE(BigInt(first + u))
          const c = createCipheriv(`aes-${half * 8}-xts`, key, iv)
          want.set(c.update(plain.subarray(u * unit, (u + 1) * unit)), u * unit)
        }
        expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true)
        // and decryption: the same passes with AES-ECB decryption give the plaintext back
        mem().set(got, X)
        ops.tweakXor(X, X, len, unit, T)
        const d1 = createDecipheriv(algo, key.subarray(0, half), null).setAutoPadding(false)
        mem().set(d1.update(mem().subarray(X, X + len)), X)
        ops.tweakXor(X, X, len, unit, T)
        expect(Buffer.from(mem().subarray(X, X + len)).equals(Buffer.from(plain))).toBe(true)
        // the XTS kernel agrees
        const x = k.createXts(key)
        expect(Buffer.from(x.encrypt(plain, new Uint8Array(len), unit, first)).equals(Buffer.from(want))).toBe(true)
        x.destroy()
      }),
      { numRuns: fuzzRuns(60) },
    )
  })

  it('checks ranges and lengths', () => {
    expect(() => ops.compare(0, base, 16)).toThrow(RangeError)
    expect(() => ops.tweakXor(base, base, 40, 20, base + 4096)).toThrow(RangeError)
    expect(() => ops.xor(base + 64, base, 0, 16)).toThrow(RangeError)
  })
})
