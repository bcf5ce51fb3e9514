// Split fuzz: the same request cut into iovecs at every byte position (and at random sets
// of positions, empty pieces included) gives the same bytes and results as the unsplit one.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createDifContext, type DifContext, type DifContextOptions, type DifResult } from '../src/index.js'
import { arena } from './support/memory.js'
import { bytes, split } from './support/reference.js'

const { k, place } = arena()
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const show = (r: DifResult) => JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))

const FORMATS: (DifContextOptions & { blocks: number })[] = [
  { dataBlockSize: 512, mdSize: 16, type: 1, piFormat: 16, piLocation: 'last', initRefTag: 77, appTag: 0x5a5a, blocks: 3 },
  { dataBlockSize: 4096, mdSize: 16, type: 1, piFormat: 64, piLocation: 'first', initRefTag: 0x123456789an, blocks: 2 },
  { dataBlockSize: 4096, mdSize: 32, type: 2, piFormat: 32, piLocation: 'last', guardCoversMetadata: false, appTag: 7, blocks: 2 },
]

/** A region in the kernels' memory holding `src`, restorable between runs. */
function region(src: Uint8Array) {
  const view = place(src)
  return { view, reset: () => view.set(src) }
}

describe('every split position', () => {
  for (const f of FORMATS) {
    const ctx = createDifContext({ ...f, kernels: k })
    const n = f.blocks
    const ext = f.dataBlockSize + f.mdSize
    it(`interleaved ${f.piFormat}b ${f.dataBlockSize}+${f.mdSize}: generate, verify, remap, CRC-32C`, () => {
      const raw = bytes(n * ext, 11)
      // reference results, unsplit
      const r = region(raw)
      ctx.generate(r.view, n)
      const generated = r.view.slice()
      const corrupt = generated.slice()
      corrupt[ext + 100]! ^= 4 // data of block 1
      corrupt[2 * ext - 1]! ^= 1 // metadata of block 1
      const c = region(corrupt)
      const wantBad = ctx.verify(c.view, n)
      expect(wantBad.ok).toBe(false)
      const wantCrc = ctx.updateCrc32c(r.view, n)
      const remapped = (() => {
        r.view.set(generated)
        expect(ctx.remapRefTag(r.view, n, 4242, { check: true })).toEqual({ ok: true })
        return r.view.slice()
      })()
      for (let s = 1; s < n * ext; s++) {
        r.view.set(raw)
        ctx.generate(split(r.view, [s]), n)
        if (hex(r.view) !== hex(generated)) expect(hex(r.view), `generate split at ${s}`).toBe(hex(generated))
        const ok = ctx.verify(split(r.view, [s]), n)
        if (!ok.ok) expect(show(ok), `verify split at ${s}`).toBe('{"ok":true}')
        const bad = ctx.verify(split(c.view, [s]), n)
        if (show(bad) !== show(wantBad)) expect(show(bad), `verify corrupt split at ${s}`).toBe(show(wantBad))
        const crc = ctx.updateCrc32c(split(r.view, [s]), n)
        if (crc !== wantCrc) expect(crc, `crc split at ${s}`).toBe(wantCrc)
        ctx.remapRefTag(split(r.view, [s]), n, 4242, { check: true })
        if (hex(r.view) !== hex(remapped)) expect(hex(r.view), `remap split at ${s}`).toBe(hex(remapped))
      }
    })

    it(`interleaved ${f.piFormat}b ${f.dataBlockSize}+${f.mdSize}: insert and strip copies, both sides split`, () => {
      const data = bytes(n * f.dataBlockSize, 12)
      const dstRaw = bytes(n * ext, 13)
      const src = region(data)
      const dst = region(dstRaw)
      ctx.generateCopy(dst.view, src.view, n)
      const want = dst.view.slice()
      const out = region(new Uint8Array(n * f.dataBlockSize))
      for (let s = 1; s < n * f.dataBlockSize; s += 3) {
        const t = (s * 7919) % (n * ext)
        dst.reset()
        ctx.generateCopy(split(dst.view, [t]), split(src.view, [s]), n)
        if (hex(dst.view) !== hex(want)) expect(hex(dst.view), `generateCopy src@${s} dst@${t}`).toBe(hex(want))
        out.reset()
        const res = ctx.verifyCopy(split(out.view, [s]), split(dst.view, [t]), n)
        expect(res.ok).toBe(true)
        if (hex(out.view) !== hex(data)) expect(hex(out.view), `verifyCopy src@${t} dst@${s}`).toBe(hex(data))
      }
    })

    it(`DIX ${f.piFormat}b ${f.dataBlockSize}+${f.mdSize}: data and metadata split`, () => {
      const dix = createDifContext({ ...f, interleaved: false, kernels: k })
      const data = region(bytes(n * f.dataBlockSize, 14))
      const mdRaw = bytes(n * f.mdSize, 15)
      const md = region(mdRaw)
      dix.dixGenerate(data.view, md.view, n)
      const want = md.view.slice()
      for (let s = 1; s < n * f.dataBlockSize; s += 5) {
        const t = s % (n * f.mdSize)
        md.reset()
        dix.dixGenerate(split(data.view, [s]), split(md.view, [t]), n)
        if (hex(md.view) !== hex(want)) expect(hex(md.view), `dixGenerate data@${s} md@${t}`).toBe(hex(want))
        const v = dix.dixVerify(split(data.view, [s]), split(md.view, [t]), n)
        expect(v.ok, `dixVerify data@${s} md@${t}`).toBe(true)
      }
    })
  }
})

describe('random multi-way splits (property)', () => {
  it('agree with the unsplit request for every operation', () => {
    const cases = FORMATS.map((f) => ({ f, ctx: createDifContext({ ...f, kernels: k }) as DifContext }))
    fc.assert(
      fc.property(fc.nat({ max: cases.length - 1 }), fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 1 << 30 }), (which, cutsRaw, seed) => {
        const { f, ctx } = cases[which]!
        const n = f.blocks
        const ext = f.dataBlockSize + f.mdSize
        const raw = bytes(n * ext, seed)
        const whole = region(raw)
        ctx.generate(whole.view, n)
        const want = whole.view.slice()
        const pieces = region(raw)
        // repeated cut positions make empty iovecs, which must be skipped
        const cuts = cutsRaw.map((c) => c % (n * ext + 1))
        ctx.generate(split(pieces.view, cuts).concat(...cuts.slice(0, 2).map(() => pieces.view.subarray(0, 0))), n)
        expect(hex(pieces.view)).toBe(hex(want))
        pieces.view[(seed % n) * ext + (seed % f.dataBlockSize)]! ^= 1
        whole.view.set(pieces.view)
        expect(show(ctx.verify(split(pieces.view, cuts), n))).toBe(show(ctx.verify(whole.view, n)))
      }),
      { numRuns: 300 },
    )
  })
})
