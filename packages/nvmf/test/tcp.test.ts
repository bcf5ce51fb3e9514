// The host and the target over loopback: bring-up, reads and writes in the capsule and by
// R2T, digests.
import { IoVecList } from '@ipukit/memory'
import { afterAll, describe, expect, it } from 'vitest'
import type { HostCompletion, NvmfHost } from '../src/index.js'
import { random, type TargetFixture, targetFixture } from './helpers.js'

const open: TargetFixture[] = []
afterAll(async () => {
  for (const f of open) await f.close()
})

function rw(h: NvmfHost, write: boolean, lba: number, blocks: number, at: number, len: number): Promise<HostCompletion> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(0, write, 1, lba, blocks, new IoVecList(1).push(at, len), (_: null, c) => resolve(c), null)
    if (rc !== 0) reject(new Error(`rc ${rc}`))
  })
}

describe('NVMe/TCP host and target', () => {
  for (const dg of [false, true]) {
    it(`connects, identifies, writes and reads back (in-capsule and R2T)${dg ? ', with header and data digests' : ''}`, async () => {
      const f = await targetFixture()
      open.push(f)
      const h = await f.host({ hdgst: dg, ddgst: dg })
      expect(h.state).toBe('live')
      expect(h.namespaces.get(1)).toMatchObject({ blocks: 8192, blockSize: 512 })
      expect(h.icd).toBe(4096)
      const buf = f.pm.ipuAllocator.alloc(65536)
      const back = f.pm.ipuAllocator.alloc(65536)
      for (const len of [512, 4096, 65536]) {
        const data = random(len, len)
        f.pm.bytes.set(data, buf)
        const w = await rw(h, true, 16, len / 512, buf, len)
        expect(w.status).toBe(0)
        f.pm.bytes.fill(0, back, back + len)
        const r = await rw(h, false, 16, len / 512, back, len)
        expect(r.status).toBe(0)
        expect(Buffer.from(f.pm.bytes.subarray(back, back + len)).equals(Buffer.from(data))).toBe(true)
      }
      expect(h.stats.inCapsule).toBeGreaterThan(0)
      expect(h.stats.r2t).toBeGreaterThan(0)
    })
  }
})
