// AES-XTS against OpenSSL (node:crypto) on random cases, every buffer placement, and the
// context's life cycle and argument checks.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { createKernelMemory, createKernelsSync, createXts, type Kernels, KernelsError, XTS_MAX_DATA_UNIT_SIZE } from '../src/index.js'
import { fuzzRuns } from './support/reference.js'

const UNIT_SIZES = [16, 17, 31, 512, 520, 4096, 4104]
const M64 = (1n << 64n) - 1n

function iv(unit: bigint): Buffer {
  const b = Buffer.alloc(16)
  let t = unit
  for (let i = 0; i < 16; i++) {
    b[i] = Number(t & 0xffn)
    t >>= 8n
  }
  return b
}

/** OpenSSL, one data unit per cipher object, tweak = first + i as a 16-byte LE integer. */
function openssl(dir: 'enc' | 'dec', key: Uint8Array, data: Uint8Array, dus: number, first: bigint): Uint8Array {
  const alg = key.length === 32 ? 'aes-128-xts' : 'aes-256-xts'
  const out = new Uint8Array(data.length)
  for (let off = 0, i = 0n; off < data.length; off += dus, i++) {
    const c = dir === 'enc' ? createCipheriv(alg, key, iv(first + i)) : createDecipheriv(alg, key, iv(first + i))
    out.set(Buffer.concat([c.update(data.subarray(off, off + dus)), c.final()]), off)
  }
  return out
}

function xtsKey(bytes: number): Uint8Array {
  for (;;) {
    const k = new Uint8Array(randomBytes(bytes))
    const half = bytes / 2
    if (k.subarray(0, half).some((b, i) => b !== k[half + i])) return k
  }
}

describe('AES-XTS against node:crypto (OpenSSL)', () => {
  const RUNS = fuzzRuns(2400)
  it(`agrees on ${RUNS} random cases in each direction`, () => {
    const firstUnit = fc.oneof(
      fc.bigInt({ min: 0n, max: 1000n }),
      fc.bigInt({ min: 1n << 32n, max: (1n << 33n) - 1n }),
      fc.bigInt({ min: M64 - 20n, max: M64 }),
      fc.bigInt({ min: 0n, max: M64 }),
    )
    let cases = 0
    fc.assert(
      fc.property(
        fc.constantFrom(32, 64),
        fc.constantFrom(...UNIT_SIZES),
        firstUnit,
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        fc.boolean(),
        (keyBytes, dus, first, units, asNumber, inPlace) => {
          const key = xtsKey(keyBytes)
          const ctx = createXts(key)
          const pt = new Uint8Array(randomBytes(dus * units))
          const firstArg = asNumber && first <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(first) : first
          const want = openssl('enc', key, pt, dus, first)
          const ct = inPlace ? pt.slice() : new Uint8Array(pt.length)
          ctx.encrypt(inPlace ? ct : pt, ct, dus, firstArg)
          expect(Buffer.from(ct).equals(want)).toBe(true)
          // decrypt an independent ciphertext (not our own output) and compare with OpenSSL
          const other = new Uint8Array(randomBytes(dus * units))
          const wantPt = openssl('dec', key, other, dus, first)
          expect(Buffer.from(ctx.decrypt(other, new Uint8Array(other.length), dus, firstArg)).equals(wantPt)).toBe(true)
          // and the round trip
          expect(Buffer.from(ctx.decrypt(ct, new Uint8Array(ct.length), dus, firstArg)).equals(pt)).toBe(true)
          ctx.destroy()
          cases++
        },
      ),
      { numRuns: RUNS },
    )
    expect(cases).toBe(RUNS)
  })

  it('wraps the 128-bit tweak past 2^64 the way OpenSSL does', () => {
    const key = xtsKey(64)
    const ctx = createXts(key)
    const pt = new Uint8Array(randomBytes(4 * 520))
    // units 2^64 - 2 .. 2^64 + 1: the tweak's high word goes from 0 to 1
    expect(Buffer.from(ctx.encrypt(pt, new Uint8Array(pt.length), 520, M64 - 1n)).equals(openssl('enc', key, pt, 520, M64 - 1n))).toBe(true)
    ctx.destroy()
  })
})

describe('buffer placement', () => {
  let k: Kernels
  let user: number
  const key = xtsKey(64)
  beforeAll(() => {
    k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1, keySlots: 4 }) })
    user = k.layout.end
  })

  it('gives the same bytes in memory, staged, mixed, in place and with overlap', () => {
    const x = k.createXts(key)
    const n = 40 * 4104 // > staging? no: staging is 256 KiB; see the next test for chunking
    const pt = new Uint8Array(randomBytes(n))
    const want = openssl('enc', key, pt, 4104, 77n)
    const mem = (at: number, len = n) => new Uint8Array(k.memory.buffer, at, len)
    // foreign -> foreign
    expect(Buffer.from(x.encrypt(pt, new Uint8Array(n), 4104, 77)).equals(want)).toBe(true)
    // memory -> memory, disjoint
    mem(user).set(pt)
    x.encrypt(mem(user), mem(user + n + 13), 4104, 77)
    expect(Buffer.from(mem(user + n + 13)).equals(want)).toBe(true)
    // memory -> foreign and foreign -> memory
    expect(Buffer.from(x.encrypt(mem(user), new Uint8Array(n), 4104, 77)).equals(want)).toBe(true)
    x.encrypt(pt, mem(user + 3 * n), 4104, 77)
    expect(Buffer.from(mem(user + 3 * n)).equals(want)).toBe(true)
    // in place in memory, by view and by address
    mem(user).set(pt)
    x.encrypt(mem(user), mem(user), 4104, 77)
    expect(Buffer.from(mem(user)).equals(want)).toBe(true)
    mem(user).set(pt)
    x.encryptAt(user, user, n, 4104, 77)
    expect(Buffer.from(mem(user)).equals(want)).toBe(true)
    // partial overlap in memory, both directions of shift
    for (const shift of [-4100, -1, 1, 16, 4104]) {
      mem(user + 8192).set(pt)
      x.encrypt(mem(user + 8192), mem(user + 8192 + shift), 4104, 77)
      expect(Buffer.from(mem(user + 8192 + shift)).equals(want), `shift ${shift}`).toBe(true)
      mem(user + 8192).set(pt)
      x.encryptAt(user + 8192, user + 8192 + shift, n, 4104, 77)
      expect(Buffer.from(mem(user + 8192 + shift)).equals(want), `address shift ${shift}`).toBe(true)
    }
    // partial overlap of two views of one foreign buffer
    for (const shift of [-17, 17]) {
      const buf = new Uint8Array(n + 64)
      buf.set(pt, 32)
      x.encrypt(buf.subarray(32, 32 + n), buf.subarray(32 + shift, 32 + shift + n), 4104, 77)
      expect(Buffer.from(buf.subarray(32 + shift, 32 + shift + n)).equals(want), `foreign shift ${shift}`).toBe(true)
    }
    x.destroy()
  })

  it('stages whole data units in chunks, and refuses a unit larger than the staging area unless dst is in memory', () => {
    const x = k.createXts(key)
    const n = 300 * 4096 // 1.2 MiB through a 256 KiB staging area
    const pt = new Uint8Array(randomBytes(n))
    expect(Buffer.from(x.encrypt(pt, new Uint8Array(n), 4096, 5n)).equals(openssl('enc', key, pt, 4096, 5n))).toBe(true)
    const ct520 = openssl('enc', key, pt.subarray(0, 520 * 1000), 520, 9n)
    expect(Buffer.from(x.encrypt(pt.subarray(0, 520 * 1000), new Uint8Array(520 * 1000), 520, 9n)).equals(ct520)).toBe(true)
    const big = 512 * 1024
    expect(() => x.encrypt(pt.subarray(0, big), new Uint8Array(big), big, 0)).toThrow(/staging area/)
    // a destination in memory needs no staging, whatever the unit size
    const dst = new Uint8Array(k.memory.buffer, user, big)
    x.encrypt(pt.subarray(0, big), dst, big, 3)
    expect(Buffer.from(dst).equals(openssl('enc', key, pt.subarray(0, big), big, 3n))).toBe(true)
    x.destroy()
  })

  it('handles the largest data unit IEEE 1619 allows (2^24 bytes) in memory', () => {
    const big = createKernelsSync({ memory: createKernelMemory({ extraBytes: 34 << 20, scratchSlots: 1, keySlots: 1 }) })
    const x = big.createXts(key)
    const n = XTS_MAX_DATA_UNIT_SIZE
    const pt = new Uint8Array(randomBytes(n))
    const at = big.layout.end
    new Uint8Array(big.memory.buffer, at, n).set(pt)
    x.encryptAt(at, at + n, n, n, 1n)
    expect(Buffer.from(new Uint8Array(big.memory.buffer, at + n, n)).equals(openssl('enc', key, pt, n, 1n))).toBe(true)
    x.destroy()
    big.close()
  })
})

describe('contexts', () => {
  it('refuses bad keys', () => {
    expect(() => createXts(new Uint8Array(48))).toThrow(RangeError)
    expect(() => createXts(new Uint8Array(16))).toThrow(/32 bytes .* or 64 bytes/)
    expect(() => createXts(new Uint8Array(32))).toThrow(/key1 !== key2/)
    const same = new Uint8Array(64).fill(7)
    expect(() => createXts(same)).toThrow(/key1 !== key2/)
    expect(() => createXts('key' as never)).toThrow(TypeError)
  })

  it('refuses bad arguments, naming them', () => {
    const x = createXts(xtsKey(32))
    const a = new Uint8Array(64)
    expect(() => x.encrypt(a, new Uint8Array(63), 16, 0)).toThrow(/dst must be as long as src/)
    expect(() => x.encrypt(a, a, 15, 0)).toThrow(/dataUnitSize/)
    expect(() => x.encrypt(a, a, 48, 0)).toThrow(/multiple of dataUnitSize/)
    expect(() => x.encrypt(a, a, 2 ** 24 + 1, 0)).toThrow(RangeError)
    expect(() => x.encrypt(a, a, 16.5, 0)).toThrow(RangeError)
    expect(() => x.encrypt(a, a, 16, -1)).toThrow(/firstDataUnit/)
    expect(() => x.encrypt(a, a, 16, 2 ** 53)).toThrow(/firstDataUnit/)
    expect(() => x.encrypt(a, a, 16, 1n << 64n)).toThrow(/firstDataUnit/)
    expect(() => x.encrypt(a, a, 16, '0' as never)).toThrow(TypeError)
    expect(() => x.encrypt([] as never, a, 16, 0)).toThrow(/src must be a Uint8Array/)
    expect(() => x.encryptAt(0, 0, 16, 16, 0)).toThrow(/kernel region/)
    // an empty buffer is a no-op
    expect(x.encrypt(new Uint8Array(0), new Uint8Array(0), 16, 0)).toHaveLength(0)
    x.destroy()
  })

  it('zeroes its key schedule on destroy, frees its slot, and refuses use afterwards', () => {
    const k = createKernelsSync({ memory: createKernelMemory({ scratchSlots: 1, keySlots: 2 }) })
    const keys = () => new Uint8Array(k.memory.buffer, k.layout.keyBase, 2 * k.layout.keySlotSize)
    const a = k.createXts(xtsKey(64))
    const b = k.createXts(xtsKey(32))
    expect(keys().some((v) => v !== 0)).toBe(true)
    let err: unknown
    try {
      k.createXts(xtsKey(64))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(KernelsError)
    expect((err as KernelsError).code).toBe('KERNELS_NO_KEY_SLOT')
    a.destroy()
    b.destroy()
    b.destroy()
    expect(a.destroyed).toBe(true)
    expect(keys().every((v) => v === 0)).toBe(true)
    const buf = new Uint8Array(32)
    expect(() => a.encrypt(buf, buf, 16, 0)).toThrow(expect.objectContaining({ code: 'KERNELS_DESTROYED' }))
    expect(() => a.decryptAt(k.layout.end, k.layout.end, 16, 16, 0)).toThrow(/destroyed/)
    // the slots are free again
    const c = k.createXts(xtsKey(64))
    c.destroy()
  })

  it('leaves no copy of the key in the staging or scratch area', () => {
    const k = createKernelsSync({ memory: createKernelMemory({ scratchSlots: 1, keySlots: 1 }) })
    const key = xtsKey(64)
    const x = k.createXts(key)
    const data = new Uint8Array(randomBytes(8192))
    x.encrypt(data, new Uint8Array(8192), 4096, 1)
    const region = new Uint8Array(k.memory.buffer, k.staging, k.layout.scratchSlotSize)
    const needle = Buffer.from(key.subarray(0, 16))
    expect(Buffer.from(region).indexOf(needle)).toBe(-1)
    x.destroy()
  })
})
