// The list and fused kernels against the composition of the single kernels, on random data
// and random split points: XTS over lists = XTS over the flat buffer; encrypt +
// dif_generate_copy = encrypt, then the PI engine's generate_copy; dif_verify_copy +
// decrypt = the PI engine's verify_copy, then decrypt; copy + CRC-32C = a copy and crc32c.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createKernelMemory,
  createKernelsSync,
  crc32c,
  DifJob,
  DifJobFlag,
  type DifJobParams,
  DifOp,
  DifStatus,
  FusedKernels,
  FusedStatus,
} from '../src/index.js'
import { fuzzRuns, randomBytes } from './support/reference.js'

const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 8 << 20, scratchSlots: 2, keySlots: 4, stagingSize: 64 << 10 }) })
const f = new FusedKernels(k)
const job = new DifJob(k)
const mem = () => k.bytes
const base = k.layout.end
// regions of the test memory: lists, then buffers
const LISTS = base
const A = base + 65536
const B = A + (2 << 20)
const C = B + (2 << 20)
const D = C + (2 << 20)

/** Writes `spans` (address, length) pairs at `at` as a list; returns the pair count. */
function putList(at: number, spans: [number, number][]): number {
  const w = new Uint32Array(k.memory.buffer, at, 2 * spans.length)
  spans.forEach(([a, n], i) => {
    w[2 * i] = a
    w[2 * i + 1] = n
  })
  return spans.length
}

/** Splits [addr, addr + total) at the given cut points, with gaps of `gap` bytes between pieces (so the list is really scattered). */
function scatter(addr: number, total: number, cuts: number[], gap = 7): [number, number][] {
  const points = [...new Set(cuts.map((c) => c % (total + 1)))].filter((c) => c > 0 && c < total).sort((x, y) => x - y)
  const out: [number, number][] = []
  let prev = 0
  let at = addr
  for (const p of [...points, total]) {
    out.push([at, p - prev])
    at += p - prev + gap
    prev = p
  }
  return out
}

/** Byte equality without vitest's element-wise diffing (fast on megabytes). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

/** Reads the bytes a list describes. */
function gather(spans: [number, number][]): Uint8Array {
  const total = spans.reduce((s, [, n]) => s + n, 0)
  const out = new Uint8Array(total)
  let o = 0
  for (const [a, n] of spans) {
    out.set(mem().subarray(a, a + n), o)
    o += n
  }
  return out
}

function fill(spans: [number, number][], data: Uint8Array): void {
  let o = 0
  for (const [a, n] of spans) {
    mem().set(data.subarray(o, o + n), a)
    o += n
  }
}

const KEY = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)
const xts = k.createXts(KEY)

const formats = [
  { dbs: 512, mds: 8, format: 16 as const, piSize: 8 },
  { dbs: 512, mds: 16, format: 16 as const, piSize: 8 },
  { dbs: 4096, mds: 8, format: 16 as const, piSize: 8 },
  { dbs: 4096, mds: 16, format: 64 as const, piSize: 16 },
  { dbs: 4096, mds: 64, format: 32 as const, piSize: 16 },
]

function params(fmt: (typeof formats)[number], op: DifJobParams['op'], blocks: number, piFirst: boolean): DifJobParams {
  return {
    op,
    dataBlockSize: fmt.dbs,
    mdSize: fmt.mds,
    piOffset: piFirst ? 0 : fmt.mds - fmt.piSize,
    piSize: fmt.piSize,
    format: fmt.format,
    type: 1,
    flags: DifJobFlag.Guard | DifJobFlag.AppTag | DifJobFlag.RefTag | DifJobFlag.CoverMetadata,
    appTag: 0x1234,
    appTagMask: 0xffff,
    refBase: 77,
    remapBase: 0,
    guardSeed: 0,
    blocks,
  }
}

describe('FusedKernels', () => {
  it('xts over lists equals xts over the flat buffer, for any split points, both directions and in place', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096, 528, 32),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        fc.nat(),
        (unit, units, srcCuts, dstCuts, decrypt, inPlace, seed) => {
          const total = unit * units
          const data = randomBytes(total, seed)
          const src = scatter(A, total, srcCuts.map((c) => c * 17))
          const dst = inPlace ? src : scatter(B, total, dstCuts.map((c) => c * 13))
          fill(src, data)
          const ns = putList(LISTS, src)
          const nd = putList(LISTS + 4096, dst)
          expect(f.xts(xts, decrypt, LISTS, ns, LISTS + 4096, nd, total, unit, 1000)).toBe(FusedStatus.Ok)
          const want = new Uint8Array(total)
          if (decrypt) xts.decrypt(data, want, unit, 1000)
          else xts.encrypt(data, want, unit, 1000)
          expect(same(gather(dst), want)).toBe(true)
        },
      ),
      { numRuns: fuzzRuns(120) },
    )
  })

  it('encrypt + dif_generate_copy equals encrypt, then the PI engine generate_copy', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...formats),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        fc.nat(),
        (fmt, blocks, srcCuts, dstCuts, piFirst, seed) => {
          const ext = fmt.dbs + fmt.mds
          const data = randomBytes(fmt.dbs * blocks, seed)
          const md = randomBytes(ext * blocks, seed ^ 0x5555) // the dst's prior bytes: metadata outside the PI must survive as is
          const src = scatter(A, data.length, srcCuts.map((c) => c * 31))
          const dst = scatter(B, ext * blocks, dstCuts.map((c) => c * 29))
          fill(src, data)
          fill(dst, md)
          // the fused kernel
          job.start(params(fmt, DifOp.Generate, blocks, piFirst))
          job.useList(0, LISTS + 4096, putList(LISTS + 4096, dst))
          const ns = putList(LISTS, src)
          expect(f.xtsDifGenerate(xts, LISTS, ns, job, blocks, 500)).toBe(FusedStatus.Ok)
          const got = gather(dst)
          // the composition: encrypt into a flat buffer, then generate_copy into a flat extended buffer
          const cipher = new Uint8Array(data.length)
          xts.encrypt(data, cipher, fmt.dbs, 500)
          mem().set(cipher, C)
          mem().set(md, D)
          job.start(params(fmt, DifOp.GenerateCopy, blocks, piFirst))
          job.useList(0, LISTS + 8192, putList(LISTS + 8192, [[D, ext * blocks]]))
          job.useList(1, LISTS + 12288, putList(LISTS + 12288, [[C, data.length]]))
          expect(job.run()).toBe(DifStatus.Done)
          expect(same(got, mem().slice(D, D + ext * blocks))).toBe(true)
        },
      ),
      { numRuns: fuzzRuns(100) },
    )
  })

  it('dif_verify_copy + decrypt equals the PI engine verify_copy, then decrypt; a bad block stops it with the same error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...formats),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.nat(),
        (fmt, blocks, srcCuts, dstCuts, corrupt, seed) => {
          const ext = fmt.dbs + fmt.mds
          // a protected, encrypted extended buffer: encrypt + generate_copy from random plaintext
          const plain = randomBytes(fmt.dbs * blocks, seed)
          const cipher = new Uint8Array(plain.length)
          xts.encrypt(plain, cipher, fmt.dbs, 9)
          mem().set(cipher, C)
          mem().fill(0, D, D + ext * blocks)
          job.start(params(fmt, DifOp.GenerateCopy, blocks, false))
          job.useList(0, LISTS + 8192, putList(LISTS + 8192, [[D, ext * blocks]]))
          job.useList(1, LISTS + 12288, putList(LISTS + 12288, [[C, cipher.length]]))
          expect(job.run()).toBe(DifStatus.Done)
          const extended = mem().slice(D, D + ext * blocks)
          let bad = -1
          if (corrupt !== undefined) {
            const at = corrupt % extended.length
            extended[at] = extended[at]! ^ 0x40
            bad = Math.floor(at / ext)
          }
          const src = scatter(A, extended.length, srcCuts.map((c) => c * 23))
          const dst = scatter(B, plain.length, dstCuts.map((c) => c * 19))
          fill(src, extended)
          job.start(params(fmt, DifOp.Verify, blocks, false))
          job.useList(0, LISTS, putList(LISTS, src))
          const nd = putList(LISTS + 4096, dst)
          const rc = f.difVerifyXtsDecrypt(xts, LISTS + 4096, nd, job, blocks, 9)
          if (bad < 0) {
            expect(rc).toBe(FusedStatus.Ok)
            expect(same(gather(dst), plain)).toBe(true)
            return
          }
          // a flipped byte in a block's metadata outside the guard and tags may pass
          const fused = { rc, err: job.error() }
          mem().set(extended, D)
          job.start(params(fmt, DifOp.VerifyCopy, blocks, false))
          job.useList(0, LISTS + 8192, putList(LISTS + 8192, [[D, extended.length]]))
          job.useList(1, LISTS + 12288, putList(LISTS + 12288, [[C, plain.length]]))
          const single = job.run()
          expect(fused.rc === FusedStatus.PiError).toBe(single === DifStatus.Error)
          if (single === DifStatus.Error) expect(fused.err).toEqual(job.error())
          else expect(same(gather(dst), plain)).toBe(true)
        },
      ),
      { numRuns: fuzzRuns(100) },
    )
  })

  it('copy + crc32c equals a copy and crc32c, continuing from a seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70000 }), fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), fc.nat(0xffffffff), (n, sc, dc, seed) => {
        const data = randomBytes(n, seed)
        const src = scatter(A, n, sc.map((c) => c * 101))
        const dst = scatter(B, n, dc.map((c) => c * 97))
        fill(src, data)
        const crc = f.copyCrc32c(LISTS, putList(LISTS, src), LISTS + 4096, putList(LISTS + 4096, dst), n, seed)
        expect(f.lastStatus).toBe(FusedStatus.Ok)
        expect(crc).toBe(crc32c(data, seed))
        expect(same(gather(dst), data)).toBe(true)
      }),
      { numRuns: fuzzRuns(100) },
    )
  })

  it('reports short lists and units larger than the bounce buffer instead of reading past them', () => {
    const src = putList(LISTS, [[A, 4096]])
    const dst = putList(LISTS + 4096, [[B, 2048]])
    expect(f.xts(xts, false, LISTS, src, LISTS + 4096, dst, 8192, 4096, 0)).toBe(FusedStatus.Short)
    // a 4 KiB unit split 2 KiB + 2 KiB, with a bounce buffer of 1 KiB
    putList(LISTS + 4096, [[B, 2048], [B + 4096, 2048]])
    const saved = f.bounceCapacity
    f.bounceCapacity = 1024
    expect(f.xts(xts, false, LISTS, 1, LISTS + 4096, 2, 4096, 4096, 0)).toBe(FusedStatus.Bounce)
    f.bounceCapacity = saved
    f.copyCrc32c(LISTS, 1, LISTS + 4096, 1, 4096)
    expect(f.lastStatus).toBe(FusedStatus.Short)
    // pairs inside the kernel region are refused before any kernel runs
    putList(LISTS, [[16, 4096]])
    expect(() => f.xts(xts, false, LISTS, 1, LISTS, 1, 4096, 4096, 0)).toThrow(RangeError)
  })
})
