// iovec lists: copies across split points, cursors, merging.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createPhysicalMemory, iovCopy, IovCursor, IoVecList, iovZero, MemoryError } from '../src/index.js'

const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, iobuf: { smallCount: 4, largeCount: 1 } })
const ipu = pm.region('ipu')

/** Splits [base, base + n) at the given cuts into a list. */
function listOf(base: number, n: number, cuts: number[]): IoVecList {
  const at = [0, ...cuts.map((c) => c % (n + 1)).sort((a, b) => a - b), n]
  const l = new IoVecList(at.length)
  for (let i = 1; i < at.length; i++) l.push(base + at[i - 1]!, at[i]! - at[i - 1]!)
  return l
}

describe('iovec lists', () => {
  it('copy the same bytes whatever the split points of either side (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.array(fc.nat(), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 20 }), (n, a, b) => {
        const src = ipu.base + 1000
        const dst = ipu.base + 200_000
        for (let i = 0; i < n; i++) pm.bytes[src + i] = (i * 13 + n) & 0xff
        pm.bytes.fill(0, dst, dst + n + 16)
        const copied = iovCopy(pm.bytes, listOf(dst, n, b), listOf(src, n, a))
        expect(copied).toBe(n)
        expect(Buffer.from(pm.bytes.subarray(dst, dst + n)).equals(Buffer.from(pm.bytes.subarray(src, src + n)))).toBe(true)
        expect(pm.bytes[dst + n]).toBe(0)
      }),
      { numRuns: 300 },
    )
  })

  it('copy only as much as the shorter side holds', () => {
    expect(iovCopy(pm.bytes, IoVecList.of([ipu.base, 10]), IoVecList.of([ipu.base + 100, 4], [ipu.base + 200, 4]))).toBe(8)
  })

  it('walk across split points with a cursor, and merge adjacent pairs', () => {
    const l = IoVecList.of([100, 10], [500, 0], [600, 5])
    expect(l.count).toBe(2) // empty pairs are skipped
    expect(l.total).toBe(15)
    const c = new IovCursor(l)
    const pieces: [number, number][] = []
    while (c.take(4)) pieces.push([c.pieceAddr, c.pieceLen])
    expect(pieces).toEqual([
      [100, 4],
      [104, 4],
      [108, 2],
      [600, 4],
      [604, 1],
    ])
    const m = new IoVecList(4).pushMerged(0, 10).pushMerged(10, 5).pushMerged(20, 1)
    expect(m.count).toBe(2)
    expect(m.len[0]).toBe(15)
    expect(() => IoVecList.of([1, 1]).push(2, 2)).toThrow(MemoryError)
    pm.bytes.fill(9, ipu.base, ipu.base + 32)
    iovZero(pm.bytes, IoVecList.of([ipu.base + 4, 8]))
    expect([...pm.bytes.subarray(ipu.base, ipu.base + 16)]).toEqual([9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9])
  })
})
