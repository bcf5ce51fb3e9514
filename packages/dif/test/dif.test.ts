// Every combination of type × PI format × PI location × layout × check flags × guard
// coverage generates, byte for byte, what the model computes, and then verifies; the
// failures verify reports carry SPDK's kinds, expected and actual values and block.
import { describe, expect, it } from 'vitest'
import { createDifContext, type DifContext, type DifContextOptions, type DifResult } from '../src/index.js'
import { arena } from './support/memory.js'
import { bytes, generateModel, type Model, piOffset, piSize } from './support/reference.js'

const { k, place } = arena()
const CHECKS = Array.from({ length: 8 }, (_, i) => ({ guard: !!(i & 1), appTag: !!(i & 2), refTag: !!(i & 4) }))
const BLOCKS = 3

function contextFor(m: Model): DifContext {
  const o: DifContextOptions = { ...m, kernels: k, appTagMask: 0xffff }
  return createDifContext(o)
}

function modelFor(type: Model['type'], piFormat: Model['piFormat'], piLocation: Model['piLocation'], interleaved: boolean, checks: Model['checks'], covers: boolean, seed: number): Model {
  const ref = piFormat === 16 ? 0x89abcdefn : piFormat === 32 ? 0x0123456789abcdefn : 0x0000fedcba987654n
  return {
    dataBlockSize: piFormat === 16 ? 512 : 4096,
    // room before and after the PI, so that location and coverage matter
    mdSize: piFormat === 16 ? 16 : 32,
    interleaved,
    piLocation,
    piFormat,
    type,
    checks,
    appTag: 0x1234 ^ (seed & 0xff),
    initRefTag: ref - BigInt(seed % 7),
    guardSeed: 0n,
    guardCoversMetadata: covers,
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

function expectFail(r: DifResult, kind: string, block: number): void {
  expect(r.ok, JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))).toBe(false)
  if (!r.ok) {
    expect(r.kind).toBe(kind)
    expect(r.block).toBe(block)
  }
}

describe('generate and verify, every combination', () => {
  for (const type of [1, 2, 3] as const) {
    for (const format of [16, 32, 64] as const) {
      it(`type ${type}, ${format}b guard: 2 locations x 2 layouts x 8 check sets x 2 coverages`, () => {
        let seed = 1
        for (const loc of ['first', 'last'] as const) {
          for (const interleaved of [true, false]) {
            for (const checks of CHECKS) {
              for (const covers of [true, false]) {
                seed++
                const m = modelFor(type, format, loc, interleaved, checks, covers, seed)
                const ctx = contextFor(m)
                const label = `${loc} ${interleaved ? 'DIF' : 'DIX'} ${JSON.stringify(checks)} covers=${covers}`
                const ext = m.dataBlockSize + m.mdSize
                const staged = seed % 2 === 0 // alternate buffers in and out of the kernels' memory
                if (interleaved) {
                  const original = bytes(BLOCKS * ext, seed)
                  const buf = staged ? original.slice() : place(original)
                  ctx.generate(buf, BLOCKS)
                  expect(hex(buf), label).toBe(hex(generateModel(m, original, undefined, BLOCKS)))
                  expect(ctx.verify(buf, BLOCKS), label).toEqual({ ok: true })
                  checkFailures(ctx, m, buf, undefined, label)
                  // insert copy and strip copy agree with in-place generate
                  const src = original.slice(0, BLOCKS * m.dataBlockSize)
                  for (let i = 0; i < BLOCKS; i++) src.set(original.subarray(i * ext, i * ext + m.dataBlockSize), i * m.dataBlockSize)
                  const dst = staged ? bytes(BLOCKS * ext, seed + 1000) : place(bytes(BLOCKS * ext, seed + 1000))
                  const dstBefore = dst.slice()
                  for (let i = 0; i < BLOCKS; i++) dstBefore.set(src.subarray(i * m.dataBlockSize, (i + 1) * m.dataBlockSize), i * ext)
                  ctx.generateCopy(dst, staged ? src : place(src), BLOCKS)
                  expect(hex(dst), `${label} generateCopy`).toBe(hex(generateModel(m, dstBefore, undefined, BLOCKS)))
                  const out = staged ? new Uint8Array(src.length) : place(new Uint8Array(src.length))
                  expect(ctx.verifyCopy(out, dst, BLOCKS), `${label} verifyCopy`).toEqual({ ok: true })
                  expect(hex(out)).toBe(hex(src))
                } else {
                  const data = staged ? bytes(BLOCKS * m.dataBlockSize, seed) : place(bytes(BLOCKS * m.dataBlockSize, seed))
                  const mdOriginal = bytes(BLOCKS * m.mdSize, seed + 7)
                  const md = staged ? mdOriginal.slice() : place(mdOriginal)
                  ctx.dixGenerate(data, md, BLOCKS)
                  expect(hex(md), label).toBe(hex(generateModel(m, data, mdOriginal, BLOCKS)))
                  expect(ctx.dixVerify(data, md, BLOCKS), label).toEqual({ ok: true })
                  checkFailures(ctx, m, data, md, label)
                }
              }
            }
          }
        }
      })
    }
  }
})

/** Breaks one thing at a time and checks verify names it, with SPDK's expected/actual. */
function checkFailures(ctx: DifContext, m: Model, buf: Uint8Array, md: Uint8Array | undefined, label: string): void {
  const verify = (c: DifContext) => (md ? c.dixVerify(buf, md, BLOCKS) : c.verify(buf, BLOCKS))
  const refBits = m.piFormat === 16 ? 32 : m.piFormat === 32 ? 64 : 48
  const mask = (1n << BigInt(refBits)) - 1n
  // a request at another LBA
  const other = createDifContext({ ...m, kernels: ctx.kernels, initRefTag: (m.initRefTag + 5n) & mask })
  const r = verify(other)
  if (m.checks.refTag && m.type !== 3) {
    expectFail(r, 'refTag', 0)
    if (!r.ok) {
      expect(r.expected, label).toBe((m.initRefTag + 5n) & mask)
      expect(r.actual, label).toBe(m.initRefTag)
    }
  } else expect(r, `${label}: ref tag not checked`).toEqual({ ok: true })
  // another app tag
  const wrongApp = createDifContext({ ...m, kernels: ctx.kernels, appTag: m.appTag ^ 0x0100 })
  const ra = verify(wrongApp)
  if (m.checks.appTag) {
    expectFail(ra, 'appTag', 0)
    if (!ra.ok) {
      expect(ra.expected).toBe(BigInt(m.appTag ^ 0x0100))
      expect(ra.actual).toBe(BigInt(m.appTag))
    }
  } else expect(ra).toEqual({ ok: true })
  // a changed data byte in block 1
  const at = md ? m.dataBlockSize + 17 : m.dataBlockSize + m.mdSize + 17
  buf[at]! ^= 0x40
  const rg = verify(ctx)
  if (m.checks.guard) {
    expectFail(rg, 'guard', 1)
    if (!rg.ok) expect(rg.expected).not.toBe(rg.actual)
  } else expect(rg).toEqual({ ok: true })
  buf[at]! ^= 0x40
  // the metadata before the PI counts only when the guard covers it
  if (piOffset(m) > 0) {
    const mdByte = md ? m.mdSize + 1 : 2 * m.dataBlockSize + m.mdSize + 1
    const target = md ?? buf
    target[mdByte]! ^= 1
    const rm = verify(ctx)
    if (m.checks.guard && m.guardCoversMetadata) expectFail(rm, 'guard', 1)
    else expect(rm, `${label}: metadata before the PI is not covered`).toEqual({ ok: true })
    target[mdByte]! ^= 1
  }
  expect(verify(ctx)).toEqual({ ok: true })
  void piSize
}

describe('type 0 (PI off)', () => {
  it('generates nothing, verifies anything, and still copies data', () => {
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 0, kernels: k })
    const buf = bytes(2 * 520, 5)
    const copy = buf.slice()
    ctx.generate(buf, 2)
    expect(hex(buf)).toBe(hex(copy))
    expect(ctx.verify(buf, 2)).toEqual({ ok: true })
    const data = bytes(1024, 6)
    const dst = new Uint8Array(1040).fill(0xaa)
    ctx.generateCopy(dst, data, 2)
    expect(hex(dst.subarray(0, 512))).toBe(hex(data.subarray(0, 512)))
    expect(hex(dst.subarray(512, 520))).toBe('aa'.repeat(8))
    const out = new Uint8Array(1024)
    expect(ctx.verifyCopy(out, dst, 2)).toEqual({ ok: true })
    expect(hex(out)).toBe(hex(data))
  })
})

describe('the type rules', () => {
  const base = { dataBlockSize: 512, mdSize: 8, kernels: k, appTag: 0x2222, initRefTag: 100 } as const

  it('increments the ref tag per block for types 1 and 2, and keeps it for type 3', () => {
    for (const type of [1, 2, 3] as const) {
      const ctx = createDifContext({ ...base, type })
      const buf = place(bytes(4 * 520, type))
      ctx.generate(buf, 4)
      const refs = [0, 1, 2, 3].map((i) => Buffer.from(buf.subarray(i * 520 + 516, i * 520 + 520)).readUInt32BE(0))
      expect(refs).toEqual(type === 3 ? [100, 100, 100, 100] : [100, 101, 102, 103])
    }
  })

  it('skips blocks whose app tag is 0xFFFF (types 1, 2), or app tag 0xFFFF with an all-ones ref tag (type 3)', () => {
    for (const type of [1, 2, 3] as const) {
      const ctx = createDifContext({ ...base, type })
      const buf = place(bytes(2 * 520, 9))
      ctx.generate(buf, 2)
      // block 1: app tag 0xFFFF and a garbage guard and ref tag
      const pi = buf.subarray(520 + 512, 1040)
      pi.set([0xde, 0xad, 0xff, 0xff, 0x12, 0x34, 0x56, 0x78])
      const r = ctx.verify(buf, 2)
      if (type === 3) expectFail(r, 'guard', 1)
      else expect(r).toEqual({ ok: true })
      pi.set([0xff, 0xff, 0xff, 0xff], 4) // all-ones ref tag: now type 3 ignores it too
      expect(ctx.verify(buf, 2)).toEqual({ ok: true })
    }
  })

  it('compares the app tag under its mask', () => {
    const ctx = createDifContext({ ...base, type: 1, appTagMask: 0xff00 })
    const buf = place(bytes(520, 3))
    ctx.generate(buf, 1)
    // the app tag is bytes 514 (high) and 515 (low), big-endian
    buf[515]! ^= 0x01 // a bit outside the mask
    expect(ctx.verify(buf, 1)).toEqual({ ok: true })
    buf[515]! ^= 0x01
    buf[514]! ^= 0x80 // a bit inside it
    const r = ctx.verify(buf, 1)
    expectFail(r, 'appTag', 0)
    if (!r.ok) {
      expect(r.expected).toBe(0x2222n)
      expect(r.actual).toBe(BigInt((0x2222 ^ 0x8000) & 0xff00))
    }
  })

  it('writes all-ones ref tags when the initial ref tag is 0xFFFFFFFF (SPDK_DIF_REFTAG_IGNORE)', () => {
    for (const [format, dbs, md, refAt, len] of [
      [16, 512, 8, 516, 4],
      [64, 4096, 16, 4096 + 10, 6],
    ] as const) {
      const ctx = createDifContext({ dataBlockSize: dbs, mdSize: md, type: 3, piFormat: format, initRefTag: 0xffffffff, appTag: 0xffff, kernels: k })
      const buf = place(bytes(2 * (dbs + md), 1))
      ctx.generate(buf, 2)
      for (const b of [0, 1]) expect(hex(buf.subarray(b * (dbs + md) + refAt, b * (dbs + md) + refAt + len))).toBe('ff'.repeat(len))
    }
  })

  it('reports the LBA of the failing block when the call gives the request LBA, and takes type 1 ref tags from it', () => {
    const ctx = createDifContext({ ...base, type: 1 })
    const buf = place(bytes(3 * 520, 4))
    ctx.generate(buf, 3, { lba: 0x1_0000_0010n })
    // type 1 ref tag = the low 32 bits of the LBA
    expect(Buffer.from(buf.subarray(516, 520)).readUInt32BE(0)).toBe(0x10)
    expect(ctx.verify(buf, 3, { lba: 0x1_0000_0010n })).toEqual({ ok: true })
    buf[520 + 5]! ^= 1
    const r = ctx.verify(buf, 3, { lba: 0x1_0000_0010n })
    expectFail(r, 'guard', 1)
    if (!r.ok) expect(r.lba).toBe(0x1_0000_0011n)
  })
})

describe('published facts', () => {
  it('the guard of an all-zero 4096-byte block under each guard (NVM Command Set CRC test cases)', () => {
    const want = { 16: '0000', 32: '98f94189', 64: '6482d367eb22b64e' } as const
    for (const format of [16, 32, 64] as const) {
      const md = format === 16 ? 8 : 16
      const ctx = createDifContext({ dataBlockSize: 4096, mdSize: md, type: 1, piFormat: format, kernels: k })
      const buf = place(new Uint8Array(4096 + md))
      ctx.generate(buf, 1)
      expect(hex(buf.subarray(4096, 4096 + format / 8))).toBe(want[format])
    }
    const ones = { 32: '25c1fe13', 64: 'c0ddba7302eca3ac' } as const
    for (const format of [32, 64] as const) {
      const ctx = createDifContext({ dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: format, kernels: k })
      const buf = place(new Uint8Array(4112).fill(0xff, 0, 4096))
      ctx.generate(buf, 1)
      expect(hex(buf.subarray(4096, 4096 + format / 8))).toBe(ones[format])
    }
  })

  it('lays out an 8-byte tuple as guard, app tag, ref tag, big-endian (T10 DIF)', () => {
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, appTag: 0xabcd, initRefTag: 0x12345678, kernels: k })
    const buf = place(new Uint8Array(520))
    ctx.generate(buf, 1)
    expect(hex(buf.subarray(512))).toBe('0000abcd12345678')
  })

  it('lays out a 64b-guard tuple with a 48-bit ref tag, and a 32b-guard tuple with a 64-bit one', () => {
    const c64 = createDifContext({ dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: 64, appTag: 0x0102, initRefTag: 0x0a0b0c0d0e0fn, kernels: k })
    const b64 = place(new Uint8Array(4112))
    c64.generate(b64, 1)
    expect(hex(b64.subarray(4096))).toBe('6482d367eb22b64e' + '0102' + '0a0b0c0d0e0f')
    const c32 = createDifContext({ dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: 32, appTag: 0x0102, initRefTag: 0x0102030405060708n, kernels: k })
    const b32 = place(new Uint8Array(4112))
    c32.generate(b32, 1)
    expect(hex(b32.subarray(4096))).toBe('98f94189' + '0102' + '0000' + '0102030405060708')
  })
})

describe('ref tag remap and CRC-32C over data', () => {
  it('remaps every block, checking the old ref tags first when asked', () => {
    for (const interleaved of [true, false]) {
      for (const type of [1, 3] as const) {
        const ctx = createDifContext({ dataBlockSize: 512, mdSize: 16, type, interleaved, initRefTag: 500, kernels: k })
        const moved = createDifContext({ dataBlockSize: 512, mdSize: 16, type, interleaved, initRefTag: 9000, kernels: k })
        const data = place(bytes(interleaved ? 4 * 528 : 4 * 512, 2))
        const md = place(bytes(4 * 16, 3))
        if (interleaved) ctx.generate(data, 4)
        else ctx.dixGenerate(data, md, 4)
        const remap = (c: typeof ctx, to: number, check: boolean) =>
          interleaved ? c.remapRefTag(data, 4, to, { check }) : c.dixRemapRefTag(md, 4, to, { check })
        // checking against the wrong old ref tag fails before anything is written (types 1, 2)
        const bad = remap(moved, 1, true)
        if (type === 1) expectFail(bad, 'refTag', 0)
        else expect(bad).toEqual({ ok: true })
        if (type === 1) {
          expect(remap(ctx, 9000, true)).toEqual({ ok: true })
        }
        const verify = (c: typeof ctx) => (interleaved ? c.verify(data, 4) : c.dixVerify(data, md, 4))
        expect(verify(moved)).toEqual({ ok: true })
        if (type === 1) expectFail(verify(ctx), 'refTag', 0)
      }
    }
  })

  it('computes CRC-32C over the data portions only, chaining a seed', async () => {
    const { crc32c } = await import('@ipukit/kernels')
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, kernels: k })
    const ext = bytes(5 * 520, 8)
    const data = new Uint8Array(5 * 512)
    for (let i = 0; i < 5; i++) data.set(ext.subarray(i * 520, i * 520 + 512), i * 512)
    expect(ctx.updateCrc32c(ext, 5)).toBe(crc32c(data))
    expect(ctx.updateCrc32c(place(ext), 5)).toBe(crc32c(data))
    expect(ctx.updateCrc32c(ext.subarray(3 * 520), 2, ctx.updateCrc32c(ext, 3))).toBe(crc32c(data))
  })
})

describe('contexts and arguments', () => {
  it('refuses formats spdk_dif_ctx_init refuses', () => {
    expect(() => createDifContext({ dataBlockSize: 500, mdSize: 8, type: 1 })).toThrow(/multiple of 512/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 16, type: 1, piFormat: 64 })).toThrow(/multiple of 4096/)
    expect(() => createDifContext({ dataBlockSize: 4096, mdSize: 8, type: 1, piFormat: 32 })).toThrow(/mdSize must hold/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 4, type: 2 })).toThrow(RangeError)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 4 as never })).toThrow(/type must be/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, piFormat: 8 as never })).toThrow(/piFormat/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, appTag: 0x10000 })).toThrow(/appTag/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, initRefTag: 2 ** 32 })).toThrow(/initRefTag/)
    expect(() => createDifContext({ dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: 64, initRefTag: 1n << 48n })).toThrow(/initRefTag/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, piLocation: 'middle' as never })).toThrow(/piLocation/)
    expect(() => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, checks: { guard: 1 as never } })).toThrow(/checks.guard/)
    // type 0 needs no PI room
    expect(createDifContext({ dataBlockSize: 100, mdSize: 0, type: 0 }).blockSize).toBe(100)
  })

  it('refuses short lists, wrong layouts and bad iovecs, without touching the buffers', () => {
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, kernels: k })
    const buf = bytes(1040, 1)
    const before = hex(buf)
    expect(() => ctx.generate(buf.subarray(0, 1039), 2)).toThrow(/holds 1039 bytes; 2 blocks need 1040/)
    expect(() => ctx.generate([buf, 'x' as never], 1)).toThrow(TypeError)
    expect(() => ctx.generate({ base: 0, len: 520 }, 1)).toThrow(/kernel region/)
    expect(() => ctx.generate(buf, -1)).toThrow(/numBlocks/)
    expect(() => ctx.dixGenerate(buf, buf, 1)).toThrow(/DIX context/)
    const dix = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, interleaved: false, kernels: k })
    expect(() => dix.generate(buf, 1)).toThrow(/interleaved/)
    expect(() => dix.dixGenerate(buf, buf.subarray(0, 7), 1)).toThrow(/md holds 7 bytes/)
    expect(hex(buf)).toBe(before)
  })

  it('takes iovecs as addresses in the kernels memory', () => {
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, kernels: k })
    const view = place(bytes(1040, 2))
    const iovs = [
      { base: view.byteOffset, len: 700 },
      { base: view.byteOffset + 700, len: 340 },
    ]
    ctx.generate(iovs, 2)
    expect(ctx.verify(view, 2)).toEqual({ ok: true })
    expect(ctx.verify({ base: view.byteOffset, len: 1040 }, 2)).toEqual({ ok: true })
    // and as arrays of addresses and lengths (an @ipukit/memory IoVecList), split anywhere
    const arrays = { addr: new Float64Array([view.byteOffset, view.byteOffset + 3, view.byteOffset + 517]), len: new Float64Array([3, 514, 523]), count: 3 }
    view[600]! ^= 1
    expect(ctx.verify(arrays, 2)).toMatchObject({ ok: false, kind: 'guard', block: 1 })
    view[600]! ^= 1
    expect(ctx.verify(arrays, 2)).toEqual({ ok: true })
    expect(() => ctx.verify({ addr: [0], len: [16], count: 1 }, 1)).toThrow(/kernel region/)
    expect(() => ctx.verify({ addr: [view.byteOffset], len: [16], count: 2 }, 1)).toThrow(/count/)
  })
})
