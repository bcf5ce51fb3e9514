// Bitwise reference CRCs, written from the parameter definitions (the "Rocksoft model":
// width, poly, init, refin/refout, xorout), one bit at a time, so they share nothing with
// the kernels' tables or filters.

/** CRC-32C: reflected, poly 0x1EDC6F41 (reversed 0x82F63B78), init/xorout 0xFFFFFFFF. */
export class RefCrc32c {
  reg = 0xffffffff
  constructor(seed = 0) {
    this.reg = ~seed >>> 0
  }
  update(data: Uint8Array): this {
    let c = this.reg
    for (const b of data) {
      c ^= b
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    }
    this.reg = c >>> 0
    return this
  }
  get value(): number {
    return ~this.reg >>> 0
  }
}

/** CRC-16/T10-DIF: MSB-first, poly 0x8BB7, init 0, no xorout. */
export class RefCrc16 {
  reg: number
  constructor(seed = 0) {
    this.reg = seed
  }
  update(data: Uint8Array): this {
    let c = this.reg
    for (const b of data) {
      c ^= b << 8
      for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8bb7) & 0xffff : (c << 1) & 0xffff
    }
    this.reg = c
    return this
  }
  get value(): number {
    return this.reg
  }
}

const M64 = (1n << 64n) - 1n
/** CRC-64/NVME: reflected, poly 0xAD93D23594C93659 (reversed 0x9A6C9329AC4BC9B5), init/xorout all ones. */
export class RefCrc64 {
  // two 32-bit halves: bigint per bit would take minutes over the test sizes
  lo: number
  hi: number
  constructor(seed = 0n) {
    const r = seed ^ M64
    this.lo = Number(r & 0xffffffffn)
    this.hi = Number(r >> 32n)
  }
  update(data: Uint8Array): this {
    let lo = this.lo
    let hi = this.hi
    for (const b of data) {
      lo ^= b
      for (let k = 0; k < 8; k++) {
        const carry = lo & 1
        lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0
        hi = hi >>> 1
        if (carry) {
          lo = (lo ^ 0xac4bc9b5) >>> 0
          hi = (hi ^ 0x9a6c9329) >>> 0
        }
      }
    }
    this.lo = lo >>> 0
    this.hi = hi >>> 0
    return this
  }
  get value(): bigint {
    return ((BigInt(this.hi) << 32n) | BigInt(this.lo)) ^ M64
  }
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function randomBytes(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n)
  let s = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    out[i] = s & 0xff
  }
  return out
}

/**
 * Property-test run counts scale with IPUKIT_FUZZ_SCALE (default 1, what CI runs);
 * scripts/fuzz.sh runs them long.
 */
export function fuzzRuns(base: number): number {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
  const scale = Number(env?.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}
