// The crypto bdev over a RAM disk: what lands in the RAM is OpenSSL's AES-XTS of the data
// (data unit = the block, tweak = the LBA, 16 bytes little-endian), for XTS-128 and -256 and
// 512 and 4096-byte blocks; write_zeroes stores ciphertext and reads back zeros; the checks
// at creation.
import { createCipheriv } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCryptoBdev, createMallocBdev, type MallocBdev, NvmeStatus } from '../src/index.js'
import { fixture, type Fixture, io, list, poolsFull, random, read, readBlocks, same, write, writeBlocks } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture({ driver: 'ipu' })
})
afterAll(async () => {
  await f.close()
})

function xts(key: Uint8Array, data: Uint8Array, bs: number, lba: number): Uint8Array {
  const out = new Uint8Array(data.length)
  for (let b = 0; b < data.length / bs; b++) {
    const iv = Buffer.alloc(16)
    iv.writeBigUInt64LE(BigInt(lba + b))
    const c = createCipheriv(key.length === 32 ? 'aes-128-xts' : 'aes-256-xts', key, iv)
    out.set(Buffer.concat([c.update(data.subarray(b * bs, (b + 1) * bs)), c.final()]), b * bs)
  }
  return out
}

describe('crypto', () => {
  for (const [keyBytes, bs] of [[32, 512], [64, 4096], [64, 512]] as const) {
    it(`stores OpenSSL's aes-${keyBytes * 4}-xts of each ${bs}-byte block, tweak = LBA, and reads it back`, async () => {
      const key = random(keyBytes, keyBytes + bs)
      const k = f.accel.keys.create({ name: `k${keyBytes}-${bs}`, key: key.subarray(0, keyBytes / 2), key2: key.subarray(keyBytes / 2) })
      const m = createMallocBdev(f.bdevs, { name: 'ram', blockCount: 64, blockSize: bs }) as MallocBdev
      createCryptoBdev(f.bdevs, { name: 'c', base: 'ram', key: k.name })
      const d = f.bdevs.open('c', { write: true })
      const n = 9
      const lba = 40
      const data = random(n * bs, bs)
      const src = list([f.local(0), n * bs])
      write(f.pm, src, data)
      expect(await writeBlocks(d, f.ch, src, null, lba, n)).toBe(NvmeStatus.Success)
      // the caller's buffer is not encrypted in place
      expect(same(read(f.pm, src), data)).toBe(true)
      expect(same(f.pm.bytes.subarray(m.address + lba * bs, m.address + (lba + n) * bs), xts(key, data, bs, lba))).toBe(true)
      const dst = list([f.local(1 << 20), 4 * bs], [f.local(2 << 20), 5 * bs])
      expect(await readBlocks(d, f.ch, dst, null, lba, n)).toBe(NvmeStatus.Success)
      expect(same(read(f.pm, dst), data)).toBe(true)
      // write_zeroes: the RAM holds the ciphertext of zeros, and zeros read back
      expect(await io((cb) => d.writeZeroes(f.ch, lba, n, cb, null))).toBe(NvmeStatus.Success)
      expect(same(f.pm.bytes.subarray(m.address + lba * bs, m.address + (lba + n) * bs), xts(key, new Uint8Array(n * bs), bs, lba))).toBe(true)
      expect(await readBlocks(d, f.ch, dst, null, lba, n)).toBe(NvmeStatus.Success)
      expect(read(f.pm, dst).every((b) => b === 0)).toBe(true)
      // unmap, flush and reset go to the base
      expect(await io((cb) => d.unmap(f.ch, 0, 8, cb, null))).toBe(NvmeStatus.Success)
      expect(await io((cb) => d.flush(f.ch, 0, 8, cb, null))).toBe(NvmeStatus.Success)
      expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
      d.close()
      await f.bdevs.unregister('ram')
      expect(f.bdevs.get('c')).toBeUndefined()
      f.accel.keys.destroy(k)
    })
  }

  it('refuses a missing key and a base with metadata at creation', () => {
    createMallocBdev(f.bdevs, { name: 'plain', blockCount: 8 })
    createMallocBdev(f.bdevs, { name: 'withmd', blockCount: 8, mdSize: 8 })
    expect(() => createCryptoBdev(f.bdevs, { name: 'c', base: 'plain', key: 'nope' })).toThrow(/no crypto key named 'nope'/)
    f.accel.keys.create({ name: 'kk', key: random(32, 1), key2: random(32, 2) })
    expect(() => createCryptoBdev(f.bdevs, { name: 'c', base: 'withmd', key: 'kk' })).toThrow(/without metadata/)
    // and the bases are as they were: unclaimed, openable for writing
    f.bdevs.open('withmd', { write: true }).close()
    expect(f.bdevs.get('plain')!.claimedBy).toBeNull()
  })
})
