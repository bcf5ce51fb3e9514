// An independent model of protection information, written from the NVM Command Set and
// SPDK's documented semantics, one block at a time in plain JavaScript. It shares only the
// CRC functions with the code under test (@ipukit/kernels' crc16T10Dif / crc32c /
// crc64Nvme, themselves tested against a bitwise reference there).
import { crc16T10Dif, crc32c, crc64Nvme } from '@ipukit/kernels'

export interface Model {
  dataBlockSize: number
  mdSize: number
  interleaved: boolean
  piLocation: 'first' | 'last'
  piFormat: 16 | 32 | 64
  type: 0 | 1 | 2 | 3
  checks: { guard: boolean; appTag: boolean; refTag: boolean }
  appTag: number
  initRefTag: bigint
  guardSeed: bigint
  guardCoversMetadata: boolean
}

export const piSize = (m: Model) => (m.piFormat === 16 ? 8 : 16)
export const piOffset = (m: Model) => (m.piLocation === 'first' ? 0 : m.mdSize - piSize(m))
const refBits = (m: Model) => (m.piFormat === 16 ? 32 : m.piFormat === 32 ? 64 : 48)

export function guardOf(m: Model, bytes: Uint8Array): bigint {
  if (m.piFormat === 16) return BigInt(crc16T10Dif(bytes, Number(m.guardSeed)))
  if (m.piFormat === 32) return BigInt(crc32c(bytes, Number(m.guardSeed)))
  return crc64Nvme(bytes, m.guardSeed)
}

function putBE(out: Uint8Array, at: number, bytes: number, v: bigint): void {
  for (let i = bytes - 1; i >= 0; i--) {
    out[at + i] = Number(v & 0xffn)
    v >>= 8n
  }
}

/** The PI tuple generate must write for block `i` with data `data` and metadata `md`. */
export function piFor(m: Model, i: number, data: Uint8Array, md: Uint8Array): Uint8Array {
  const pi = new Uint8Array(piSize(m))
  const covered = m.guardCoversMetadata ? md.subarray(0, piOffset(m)) : new Uint8Array(0)
  const joined = new Uint8Array(data.length + covered.length)
  joined.set(data)
  joined.set(covered, data.length)
  const guard = m.checks.guard ? guardOf(m, joined) : 0n
  const app = m.checks.appTag ? BigInt(m.appTag) : 0n
  const mask = (1n << BigInt(refBits(m))) - 1n
  let ref = 0n
  if (m.checks.refTag) {
    ref = m.initRefTag === 0xffffffffn ? mask : (m.type === 3 ? m.initRefTag : m.initRefTag + BigInt(i)) & mask
  }
  if (m.piFormat === 16) {
    putBE(pi, 0, 2, guard)
    putBE(pi, 2, 2, app)
    putBE(pi, 4, 4, ref)
  } else if (m.piFormat === 32) {
    putBE(pi, 0, 4, guard)
    putBE(pi, 4, 2, app)
    putBE(pi, 8, 8, ref)
  } else {
    putBE(pi, 0, 8, guard)
    putBE(pi, 8, 2, app)
    putBE(pi, 10, 6, ref)
  }
  return pi
}

/**
 * The bytes after generate. Interleaved: `buf` is the extended-LBA request; DIX: `buf` is
 * the data and `md` the metadata. Returns the new extended buffer (interleaved) or the new
 * metadata (DIX).
 */
export function generateModel(m: Model, buf: Uint8Array, md: Uint8Array | undefined, blocks: number): Uint8Array {
  const out = (m.interleaved ? buf : md!).slice()
  if (m.type === 0) return out
  const ext = m.dataBlockSize + m.mdSize
  for (let i = 0; i < blocks; i++) {
    const data = m.interleaved ? buf.subarray(i * ext, i * ext + m.dataBlockSize) : buf.subarray(i * m.dataBlockSize, (i + 1) * m.dataBlockSize)
    const mdAt = m.interleaved ? i * ext + m.dataBlockSize : i * m.mdSize
    out.set(piFor(m, i, data, out.subarray(mdAt, mdAt + m.mdSize)), mdAt + piOffset(m))
  }
  return out
}

/** Deterministic bytes (xorshift32). */
export function bytes(n: number, seed: number): Uint8Array {
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

/** Splits `buf` at the given offsets into views (the iovecs of a request). */
export function split(buf: Uint8Array, at: number[]): Uint8Array[] {
  const cuts = [0, ...at.filter((x) => x > 0 && x < buf.length).sort((a, b) => a - b), buf.length]
  return cuts.slice(1).map((end, i) => buf.subarray(cuts[i], end))
}
