// Every opcode, on every module that runs it, against the single kernels it stands for,
// on random data and random scatter-gather splits.
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { createDifContext, type DifContextOptions } from '@ipukit/dif'
import { crc32c } from '@ipukit/kernels'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AccelStatus, difErrorHolder } from '../src/index.js'
import { fixture, type Fixture, fuzzRuns, list, random, read, same, scattered, submit, write } from './helpers.js'

const MODULES = [
  { name: 'software', options: { aesni: false, assign: {} } },
  { name: 'workers', options: { workers: 2, aesni: false } },
  { name: 'aesni (crypto) + workers', options: { workers: 2 } },
] as const

describe.each(MODULES)('opcodes on $name', ({ options }) => {
  let f: Fixture
  beforeAll(async () => {
    f = await fixture(options)
  })
  afterAll(async () => {
    await f.close()
  })
  const A = () => f.local(0)
  const B = () => f.local(4 << 20)
  const C = () => f.local(8 << 20)
  const cuts = fc.array(fc.nat(), { maxLength: 5 })

  it('copy, fill, dualcast, compare', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 100000 }), cuts, cuts, fc.nat(), fc.nat(255), async (n, sc, dc, seed, byte) => {
        const data = random(n, seed)
        const src = scattered(A(), n, sc.map((c) => c * 13))
        const dst = scattered(B(), n, dc.map((c) => c * 7))
        write(f.pm, src, data)
        expect(await submit((cb) => f.ch.submitCopy(dst, src, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, dst), data)).toBe(true)
        expect(await submit((cb) => f.ch.submitCompare(dst, src, cb, null))).toBe(AccelStatus.Ok)
        f.pm.bytes[dst.addr[dst.count - 1]!]! ^= 0x10
        expect(await submit((cb) => f.ch.submitCompare(src, dst, cb, null))).toBe(AccelStatus.Miscompare)
        expect(await submit((cb) => f.ch.submitFill(dst, byte, cb, null))).toBe(AccelStatus.Ok)
        expect(read(f.pm, dst).every((b) => b === byte)).toBe(true)
        const dst2 = scattered(C(), n, dc.map((c) => c * 3))
        expect(await submit((cb) => f.ch.submitDualcast(dst, dst2, src, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, dst), data) && same(read(f.pm, dst2), data)).toBe(true)
      }),
      { numRuns: fuzzRuns(25) },
    )
  })

  it('crc32c and copy_crc32c (SPDK seed semantics: the register, not inverted)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 70000 }), cuts, fc.nat(0xffffffff), fc.nat(), async (n, sc, seed, s2) => {
        const data = random(n, s2)
        const src = scattered(A(), Math.max(n, 1), sc.map((c) => c * 11))
        if (n === 0) src.len[0] = 0
        write(f.pm, src, data)
        const r = { value: -1 }
        expect(await submit((cb) => f.ch.submitCrc32c(r, src, seed, cb, null))).toBe(AccelStatus.Ok)
        expect(r.value).toBe(~crc32c(data, seed) >>> 0)
        const dst = scattered(B(), Math.max(n, 1), sc.map((c) => c * 5))
        if (n === 0) dst.len[0] = 0
        const r2 = { value: -1 }
        expect(await submit((cb) => f.ch.submitCopyCrc32c(r2, dst, src, seed, cb, null))).toBe(AccelStatus.Ok)
        expect(r2.value).toBe(r.value)
        expect(same(read(f.pm, dst), data)).toBe(true)
      }),
      { numRuns: fuzzRuns(25) },
    )
  })

  it('encrypt and decrypt (AES-XTS, data unit = block size, tweak = LBA)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(512, 4096, 520),
        fc.integer({ min: 1, max: 24 }),
        cuts,
        cuts,
        fc.nat(2 ** 40),
        fc.boolean(),
        fc.nat(),
        async (unit, units, sc, dc, lba, k128, seed) => {
          const name = `k${seed}`
          const key = f.accel.keys.create({ name, key: random(k128 ? 16 : 32, 2 * seed + 1), key2: random(k128 ? 16 : 32, 2 * seed + 2) })
          const n = unit * units
          const data = random(n, seed + 2)
          const src = scattered(A(), n, sc.map((c) => c * 97))
          const dst = scattered(B(), n, dc.map((c) => c * 89))
          write(f.pm, src, data)
          expect(await submit((cb) => f.ch.submitEncrypt(key, dst, src, lba, unit, cb, null))).toBe(AccelStatus.Ok)
          const want = new Uint8Array(n)
          key.xts.encrypt(data, want, unit, lba)
          expect(same(read(f.pm, dst), want)).toBe(true)
          // decrypt in place
          expect(await submit((cb) => f.ch.submitDecrypt(key, dst, dst, lba, unit, cb, null))).toBe(AccelStatus.Ok)
          expect(same(read(f.pm, dst), data)).toBe(true)
          f.accel.keys.destroy(key)
        },
      ),
      { numRuns: fuzzRuns(25) },
    )
  })

  it('xor of 2 to 6 sources', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 20000 }), fc.nat(), async (k, n, seed) => {
        const srcs = Array.from({ length: k }, (_, i) => random(n, seed + i))
        const sources = list(...srcs.map((s, i) => [A() + i * 32768, n] as [number, number]))
        srcs.forEach((s, i) => f.pm.bytes.set(s, A() + i * 32768))
        const dst = list([B(), n])
        expect(await submit((cb) => f.ch.submitXor(dst, sources, cb, null))).toBe(AccelStatus.Ok)
        const want = new Uint8Array(n)
        for (const s of srcs) for (let j = 0; j < n; j++) want[j]! ^= s[j]!
        expect(same(read(f.pm, dst), want)).toBe(true)
      }),
      { numRuns: fuzzRuns(20) },
    )
  })

  it('compress and decompress (raw deflate, as zlib does it); bad input and small output are statuses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 60000 }), fc.integer({ min: 1, max: 9 }), fc.nat(), async (n, level, seed) => {
        // compressible data: a few random words repeated
        const words = random(64, seed)
        const data = Uint8Array.from({ length: n }, (_, i) => words[(i * 7 + (i >> 5)) % 64]!)
        const src = list([A(), n])
        write(f.pm, src, data)
        const out = list([B(), n + 1024])
        const r = { value: 0 }
        expect(await submit((cb) => f.ch.submitCompress(r, out, src, level, cb, null))).toBe(AccelStatus.Ok)
        const z = deflateRawSync(data, { level })
        expect(r.value).toBe(z.length)
        expect(same(f.pm.bytes.subarray(B(), B() + r.value), z)).toBe(true)
        const back = list([C(), n])
        const r2 = { value: 0 }
        expect(await submit((cb) => f.ch.submitDecompress(r2, back, list([B(), r.value]), cb, null))).toBe(AccelStatus.Ok)
        expect(r2.value).toBe(n)
        expect(same(read(f.pm, back), data)).toBe(true)
        expect(same(inflateRawSync(z), data)).toBe(true)
      }),
      { numRuns: fuzzRuns(10) },
    )
    // garbage does not inflate; a small dst is NoSpace, also for a bomb (bounded, not allocated)
    f.pm.bytes.fill(0xff, A(), A() + 100)
    expect(await submit((cb) => f.ch.submitDecompress({ value: 0 }, list([B(), 1000]), list([A(), 100]), cb, null))).toBe(AccelStatus.Invalid)
    const bomb = deflateRawSync(new Uint8Array(8 << 20))
    f.pm.bytes.set(bomb, A())
    expect(await submit((cb) => f.ch.submitDecompress({ value: 0 }, list([B(), 4096]), list([A(), bomb.length]), cb, null))).toBe(AccelStatus.NoSpace)
    expect(await submit((cb) => f.ch.submitCompress({ value: 0 }, list([B(), 4]), list([C(), 4096]), 6, cb, null))).toBe(AccelStatus.NoSpace)
  })

  it('appendDecompress in a sequence: inflate into an accel buffer, then crc32c of it, with the size reported', async () => {
    const n = 20000
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 13) % 251)
    const z = deflateRawSync(data)
    f.pm.bytes.set(z, A())
    const buf = f.ch.getBuf(n)
    const inflated = list([buf, n])
    const size = { value: 0 }
    const crc = { value: 0 }
    const seq = f.ch.sequence()!
    expect(seq.appendDecompress(inflated, f.ch.accelDomain, list([A(), z.length]), null, size)).toBe(AccelStatus.Ok)
    expect(seq.appendCrc32c(crc, inflated, f.ch.accelDomain, 0)).toBe(AccelStatus.Ok)
    const st = await new Promise<number>((resolve) => seq.finish((_: null, s) => resolve(s), null))
    expect(st).toBe(AccelStatus.Ok)
    expect(size.value).toBe(n)
    expect(crc.value).toBe(~crc32c(data) >>> 0)
    f.ch.putBuf(buf)
    expect(f.ch.accelDomain.inUse).toBe(0)
  })

  const formats: DifContextOptions[] = [
    { dataBlockSize: 512, mdSize: 8, type: 1 },
    { dataBlockSize: 4096, mdSize: 8, type: 2, piLocation: 'first' },
    { dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: 64 },
    { dataBlockSize: 4096, mdSize: 64, type: 3, piFormat: 32 },
  ]

  it('dif_generate, dif_verify, dif_generate_copy, dif_verify_copy, dix_generate, dix_verify equal @ipukit/dif', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...formats), fc.integer({ min: 1, max: 12 }), cuts, cuts, fc.nat(), fc.nat(1000), async (fmt, blocks, sc, dc, seed, lba) => {
        const ctx = createDifContext({ ...fmt, appTag: 0x4242 })
        const ext = fmt.dataBlockSize + fmt.mdSize
        const data = random(fmt.dataBlockSize * blocks, seed)
        const call = { lba, initRefTag: lba }
        // reference: the context's own calls on flat buffers
        const refExt = new Uint8Array(ext * blocks)
        ctx.generateCopy([refExt], [data], blocks, call)
        // dif_generate_copy
        const src = scattered(A(), data.length, sc.map((c) => c * 71))
        const dst = scattered(B(), refExt.length, dc.map((c) => c * 67))
        write(f.pm, src, data)
        write(f.pm, dst, new Uint8Array(refExt.length))
        expect(await submit((cb) => f.ch.submitDifGenerateCopy(dst, src, blocks, ctx, call, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, dst), refExt)).toBe(true)
        // dif_verify, in place
        const err = difErrorHolder()
        expect(await submit((cb) => f.ch.submitDifVerify(dst, blocks, ctx, err, call, cb, null))).toBe(AccelStatus.Ok)
        // dif_verify_copy back
        const back = scattered(C(), data.length, sc.map((c) => c * 41))
        expect(await submit((cb) => f.ch.submitDifVerifyCopy(back, dst, blocks, ctx, err, call, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, back), data)).toBe(true)
        // a broken guard: the holder names the block, as @ipukit/dif's verify does
        const bad = Math.min(blocks - 1, seed % blocks)
        const flat = refExt.slice()
        flat[bad * ext + 3]! ^= 1
        write(f.pm, dst, flat)
        const refErr = ctx.verify([flat], blocks, call)
        const got = difErrorHolder()
        expect(await submit((cb) => f.ch.submitDifVerify(dst, blocks, ctx, got, call, cb, null))).toBe(AccelStatus.Io)
        expect(refErr.ok).toBe(false)
        if (!refErr.ok) expect(got).toEqual({ kind: refErr.kind, block: refErr.block, expected: refErr.expected, actual: refErr.actual })
        // dif_generate in place equals generate_copy's output (metadata bytes outside the PI kept)
        write(f.pm, dst, refExt)
        expect(await submit((cb) => f.ch.submitDifGenerate(dst, blocks, ctx, call, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, dst), refExt)).toBe(true)
        // DIX: separate metadata
        const dix = createDifContext({ ...fmt, interleaved: false, appTag: 0x4242 })
        const md = list([C() + (2 << 20), fmt.mdSize * blocks])
        write(f.pm, md, new Uint8Array(fmt.mdSize * blocks))
        expect(await submit((cb) => f.ch.submitDixGenerate(src, md, blocks, dix, call, cb, null))).toBe(AccelStatus.Ok)
        const refMd = new Uint8Array(fmt.mdSize * blocks)
        dix.dixGenerate([data], [refMd], blocks, call)
        expect(same(read(f.pm, md), refMd)).toBe(true)
        expect(await submit((cb) => f.ch.submitDixVerify(src, md, blocks, dix, difErrorHolder(), call, cb, null))).toBe(AccelStatus.Ok)
      }),
      { numRuns: fuzzRuns(15) },
    )
  })
})
