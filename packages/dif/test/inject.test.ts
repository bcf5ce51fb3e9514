// Error injection round trips: every injected error is caught with the right kind, block,
// expected and actual, nothing else is reported, and the same seed picks the same bit.
import { describe, expect, it } from 'vitest'
import { createDifContext, type DifContextOptions, type InjectKind } from '../src/index.js'
import { arena } from './support/memory.js'
import { bytes } from './support/reference.js'

const { k, place } = arena()

const FORMATS: DifContextOptions[] = [
  { dataBlockSize: 512, mdSize: 8, type: 1, piFormat: 16, initRefTag: 3000, appTag: 0x1111 },
  { dataBlockSize: 512, mdSize: 16, type: 2, piFormat: 16, piLocation: 'first', appTag: 0xabcd, appTagMask: 0x0ff0 },
  { dataBlockSize: 4096, mdSize: 16, type: 3, piFormat: 32, appTag: 0x7fff },
  { dataBlockSize: 4096, mdSize: 32, type: 1, piFormat: 64, initRefTag: 0xffff_0000_0000n, appTag: 2 },
]
const KINDS: InjectKind[] = ['guard', 'appTag', 'refTag', 'data']
const N = 5

describe('inject and verify', () => {
  for (const f of FORMATS) {
    for (const interleaved of [true, false]) {
      it(`${f.piFormat}b type ${f.type} ${interleaved ? 'DIF' : 'DIX'}`, () => {
        const ctx = createDifContext({ ...f, interleaved, kernels: k })
        for (const kind of KINDS) {
          if (kind === 'refTag' && f.type === 3) {
            const buf = place(bytes(N * ctx.blockSize, 1))
            const md = place(bytes(N * f.mdSize, 2))
            if (interleaved) ctx.generate(buf, N)
            else ctx.dixGenerate(buf, md, N)
            const inject = () => (interleaved ? ctx.injectError(buf, N, kind) : ctx.dixInjectError(buf, md, N, kind))
            expect(inject).toThrow(/type 3 never checks/)
            continue
          }
          for (let seed = 1; seed <= 12; seed++) {
            const buf = place(bytes(N * ctx.blockSize, seed))
            const md = place(bytes(N * f.mdSize, seed + 50))
            if (interleaved) ctx.generate(buf, N)
            else ctx.dixGenerate(buf, md, N)
            const verify = () => (interleaved ? ctx.verify(buf, N) : ctx.dixVerify(buf, md, N))
            const inject = () => (interleaved ? ctx.injectError(buf, N, kind, { seed }) : ctx.dixInjectError(buf, md, N, kind, { seed }))
            const before = { buf: buf.slice(), md: md.slice() }
            const info = inject()
            expect(info.kind).toBe(kind)
            const r = verify()
            const want = kind === 'data' ? 'guard' : kind
            expect(r, `${kind} seed ${seed}`).toMatchObject({ ok: false, kind: want, block: info.block })
            if (!r.ok) {
              expect(r.expected).not.toBe(r.actual)
              if (kind === 'refTag') {
                // expected: the ref tag the block should carry; actual: the stored one, one bit off
                const bits = f.piFormat === 16 ? 32 : f.piFormat === 32 ? 64 : 48
                expect(r.expected).toBe((BigInt(f.initRefTag ?? 0) + BigInt(info.block)) & ((1n << BigInt(bits)) - 1n))
                const x = r.expected ^ r.actual
                expect(x & (x - 1n)).toBe(0n)
              }
              if (kind === 'appTag') expect(r.expected).toBe(BigInt(f.appTag ?? 0))
            }
            // exactly one bit changed, where it says
            const after = info.list === 'md' ? md : buf
            const orig = info.list === 'md' ? before.md : before.buf
            const diff = after.findIndex((b, i) => b !== orig[i])
            expect(diff).toBe(info.offset)
            expect(after[diff]! ^ orig[diff]!).toBe(1 << info.bit)
            expect(after.findIndex((b, i) => i > diff && b !== orig[i])).toBe(-1)
            // putting it back leaves nothing to report
            after[diff] = orig[diff]!
            expect(verify()).toEqual({ ok: true })
            // and the same seed picks the same bit
            const again = inject()
            expect(again).toEqual(info)
          }
        }
      })
    }
  }

  it('refuses injections verify could not see', () => {
    const noGuard = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, checks: { guard: false }, kernels: k })
    const buf = place(bytes(2 * 520, 1))
    noGuard.generate(buf, 2)
    expect(() => noGuard.injectError(buf, 2, 'data')).toThrow(/guard check/)
    const off = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 0, kernels: k })
    expect(() => off.injectError(buf, 2, 'guard')).toThrow(/PI off/)
    const ignoreAll = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, appTag: 0xffff, kernels: k })
    ignoreAll.generate(buf, 2)
    expect(() => ignoreAll.injectError(buf, 2, 'guard')).toThrow(/ignore/)
    const masked = createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1, appTagMask: 0, kernels: k })
    expect(() => masked.injectError(buf, 2, 'appTag')).toThrow(/mask/)
    expect(() => masked.injectError(buf, 2, 'bits' as never)).toThrow(TypeError)
  })
})
