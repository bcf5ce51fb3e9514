// The dif bdev over RAM disks with PI: what it stores is @ipukit/dif's generate_copy of the
// data (ref tag = the LBA), for each PI format and location and types 1 to 3; a corrupted
// guard, app tag or ref tag reads back as that field's NVMe status, with the block named;
// write_zeroes stores zeros with real PI.
import { createDifContext, type PiFormat } from '@ipukit/dif'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDifBdev, createMallocBdev, type MallocBdev, NvmeStatus } from '../src/index.js'
import { fixture, type Fixture, io, list, poolsFull, random, read, readBlocks, same, write, writeBlocks } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture()
})
afterAll(async () => {
  await f.close()
})

const CASES: { bs: number; md: number; format: PiFormat; location: 'first' | 'last'; type: 1 | 2 | 3 }[] = [
  { bs: 512, md: 8, format: 16, location: 'last', type: 1 },
  { bs: 4096, md: 8, format: 16, location: 'last', type: 2 },
  { bs: 4096, md: 16, format: 64, location: 'first', type: 1 },
  { bs: 4096, md: 64, format: 32, location: 'last', type: 3 },
]

describe('dif', () => {
  for (const c of CASES) {
    it(`type ${c.type}, ${c.format}b guard, PI ${c.location} in ${c.md} bytes of ${c.bs}-byte blocks: stores generate_copy's bytes, verifies on read, reports each field`, async () => {
      const m = createMallocBdev(f.bdevs, { name: 'ram', blockCount: 32, blockSize: c.bs, mdSize: c.md, pi: { type: c.type, format: c.format, location: c.location } }) as MallocBdev
      createDifBdev(f.bdevs, { name: 'dif', base: 'ram', appTag: 0xbeef })
      const d = f.bdevs.open('dif', { write: true })
      const n = 6
      const lba = 17
      const L = c.bs + c.md
      const data = random(n * c.bs, c.bs + c.md)
      const src = list([f.local(0), n * c.bs])
      write(f.pm, src, data)
      expect(await writeBlocks(d, f.ch, src, null, lba, n)).toBe(NvmeStatus.Success)
      const ctx = createDifContext({ dataBlockSize: c.bs, mdSize: c.md, type: c.type, piFormat: c.format, piLocation: c.location, appTag: 0xbeef })
      const want = new Uint8Array(n * L)
      ctx.generateCopy([want], [data], n, c.type === 2 ? { initRefTag: lba, lba } : { lba })
      const ram = () => f.pm.bytes.subarray(m.address + lba * L, m.address + (lba + n) * L)
      const flip = (at: number, bits: number) => {
        const r = ram()
        r[at] = r[at]! ^ bits
      }
      expect(same(ram(), want)).toBe(true)
      const dst = list([f.local(1 << 20), n * c.bs])
      expect(await readBlocks(d, f.ch, dst, null, lba, n)).toBe(NvmeStatus.Success)
      expect(same(read(f.pm, dst), data)).toBe(true)
      // corrupt each field of block 3 in turn (Type 3 does not check the ref tag)
      const piSize = c.format === 16 ? 8 : 16
      const piAt = 3 * L + c.bs + (c.location === 'first' ? 0 : c.md - piSize)
      const fields: [string, number, number][] = c.format === 16 ? [['guard', 0, NvmeStatus.GuardCheckError], ['appTag', 2, NvmeStatus.AppTagCheckError], ['refTag', 7, NvmeStatus.RefTagCheckError]] : c.format === 32 ? [['guard', 0, NvmeStatus.GuardCheckError], ['appTag', 4, NvmeStatus.AppTagCheckError], ['refTag', 15, NvmeStatus.RefTagCheckError]] : [['guard', 0, NvmeStatus.GuardCheckError], ['appTag', 8, NvmeStatus.AppTagCheckError], ['refTag', 15, NvmeStatus.RefTagCheckError]]
      for (const [kind, off, status] of fields) {
        flip(piAt + off, 0x10)
        const err = { kind: undefined as 'guard' | 'appTag' | 'refTag' | undefined, block: -1, expected: 0n, actual: 0n }
        const st = await readBlocks(d, f.ch, dst, null, lba, n, { difError: err })
        if (kind === 'refTag' && c.type === 3) expect(st).toBe(NvmeStatus.Success)
        else {
          expect(st).toBe(status)
          expect(err.kind).toBe(kind)
          expect(err.block).toBe(3)
        }
        flip(piAt + off, 0x10)
      }
      // a data byte: the guard
      flip(3 * L + 5, 1)
      expect(await readBlocks(d, f.ch, dst, null, lba, n)).toBe(NvmeStatus.GuardCheckError)
      flip(3 * L + 5, 1)
      // write_zeroes: zeros with real PI; unmapped blocks: zeros with escape PI; both read as zeros
      expect(await io((cb) => d.writeZeroes(f.ch, lba, n, cb, null))).toBe(NvmeStatus.Success)
      const z = new Uint8Array(n * L)
      ctx.generateCopy([z], [new Uint8Array(n * c.bs)], n, c.type === 2 ? { initRefTag: lba, lba } : { lba })
      expect(same(ram(), z)).toBe(true)
      expect(await io((cb) => d.unmap(f.ch, lba, 2, cb, null))).toBe(NvmeStatus.Success)
      write(f.pm, dst, random(n * c.bs, 77))
      expect(await readBlocks(d, f.ch, dst, null, lba, n)).toBe(NvmeStatus.Success)
      expect(read(f.pm, dst).every((b) => b === 0)).toBe(true)
      expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
      d.close()
      await f.bdevs.unregister('ram')
    })
  }

  it('hides the metadata: the bdev above sees data-only blocks; refuses a base without PI', () => {
    createMallocBdev(f.bdevs, { name: 'pi', blockCount: 16, blockSize: 512, mdSize: 8, pi: { type: 1 } })
    const b = createDifBdev(f.bdevs, { name: 'top', base: 'pi' })
    expect([b.blockSize, b.mdSize, b.pi.type, b.blockCount]).toEqual([512, 0, 0, 16])
    createMallocBdev(f.bdevs, { name: 'nopi', blockCount: 16, blockSize: 512, mdSize: 8 })
    expect(() => createDifBdev(f.bdevs, { name: 'x', base: 'nopi' })).toThrow(/metadata without PI/)
  })
})
