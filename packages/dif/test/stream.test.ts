// Streaming: a request fed in pieces of any size (blocks and PI tuples straddling pieces)
// generates and verifies exactly as one call does.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createDifContext, DifError } from '../src/index.js'
import { arena } from './support/memory.js'
import { bytes, split } from './support/reference.js'

const { k, place } = arena()
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const show = (r: unknown) => JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))

describe('streams', () => {
  const formats = [
    { dataBlockSize: 512, mdSize: 8, type: 1, piFormat: 16, initRefTag: 10 },
    { dataBlockSize: 4096, mdSize: 64, type: 1, piFormat: 64, piLocation: 'first', initRefTag: 1n << 40n },
    { dataBlockSize: 4096, mdSize: 16, type: 3, piFormat: 32, guardSeed: 0x12345678 },
  ] as const

  it('generate and verify in random pieces, in memory and staged, as one call would', () => {
    fc.assert(
      fc.property(fc.nat({ max: formats.length - 1 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), fc.integer({ min: 1, max: 1e9 }), (which, cutsRaw, inMemory, seed) => {
        const f = formats[which]!
        const ctx = createDifContext({ ...f, kernels: k })
        const n = 3
        const len = n * ctx.blockSize
        const raw = bytes(len, seed)
        const whole = place(raw)
        ctx.generate(whole, n)
        const cuts = cutsRaw.map((c) => c % (len + 1))
        const buf = inMemory ? place(raw) : raw.slice()
        const g = ctx.generateStream()
        for (const piece of split(buf, cuts)) expect(g.update(piece)).toEqual({ ok: true })
        expect(g.finish()).toEqual({ ok: true })
        expect(g.blocks).toBe(n)
        expect(hex(buf)).toBe(hex(whole))
        // verify a corrupted copy in pieces: the same first failure as one call
        buf[ctx.blockSize + 7]! ^= 2
        whole.set(buf)
        const v = ctx.verifyStream()
        let got: unknown = { ok: true }
        for (const piece of split(buf, cuts)) {
          const r = v.update(piece)
          if (!r.ok) {
            got = r
            break
          }
        }
        expect(show(got)).toBe(show(ctx.verify(whole, n)))
      }),
      { numRuns: 200 },
    )
  })

  it('reports the LBA and refuses use after failure or finish, and unfinished blocks', () => {
    const ctx = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, kernels: k })
    const buf = place(bytes(2 * 520, 3))
    ctx.generate(buf, 2, { lba: 1000 })
    buf[600]! ^= 1
    const v = ctx.verifyStream({ lba: 1000 })
    expect(v.update(buf.subarray(0, 300))).toEqual({ ok: true })
    const r = v.update(buf.subarray(300))
    expect(r).toMatchObject({ ok: false, kind: 'guard', block: 1, lba: 1001n })
    expect(() => v.update(buf)).toThrow(DifError)
    expect(v.finish()).toEqual(r)
    const g = ctx.generateStream()
    g.update(buf.subarray(0, 600))
    expect(() => g.finish()).toThrow(/80 bytes into block 1/)
    expect(() => g.update(buf)).toThrow(expect.objectContaining({ code: 'DIF_STREAM_FINISHED' }))
  })
})
