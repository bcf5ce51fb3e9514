// Modules: opcode assignment by priority and override, the aesni module's XTS against the
// WASM kernel (contiguous, straddling and ciphertext-stealing data units), the workers
// module's batching and inline runs, and the dma-engine module reading host memory.
import { Access } from '@ipukit/memory'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { Accel, AccelError, AccelStatus, type AesniModule, type WorkersModule } from '../src/index.js'
import { fixture, type Fixture, fuzzRuns, list, memory, random, read, run, same, scattered, submit, write } from './helpers.js'

const open: Fixture[] = []
afterAll(async () => {
  for (const f of open) await f.close()
})
async function fx(o: Parameters<typeof fixture>[0]): Promise<Fixture> {
  const f = await fixture(o)
  open.push(f)
  return f
}

describe('assignment', () => {
  it('gives each opcode to the highest-priority module that supports it, with overrides', async () => {
    const f = await fx({ workers: 1, dmaEngine: {} as never })
    const a = f.accel.assignments()
    expect(a.copy).toBe('dma-engine')
    expect(a.encrypt).toBe('aesni')
    expect(a.decrypt).toBe('aesni')
    expect(a.crc32c).toBe('workers')
    expect(a.fill).toBe('workers')
    const g = await fx({ workers: 1, assign: { encrypt: 'software', decrypt: 'software', crc32c: 'software' } })
    expect(g.accel.assignments()).toMatchObject({ encrypt: 'software', decrypt: 'software', crc32c: 'software', copy: 'workers' })
  })

  it('refuses unknown modules, unsupported opcodes, split encrypt/decrypt, and changes after start', async () => {
    const pm = memory()
    await expect(new Accel({ physical: pm, assign: { copy: 'nope' } }).start()).rejects.toThrow(/no module named 'nope'/)
    await expect(new Accel({ physical: pm, assign: { crc32c: 'aesni' } }).start()).rejects.toThrow(/does not support crc32c/)
    await expect(new Accel({ physical: pm, assign: { encrypt: 'software' } }).start()).rejects.toThrow(/same module/)
    const a = new Accel({ physical: pm })
    await a.start()
    expect(() => a.assign('copy', 'software')).toThrow(AccelError)
    await a.close()
  })
})

describe('aesni', () => {
  it('is XTS bit for bit: batches, data units straddling iovecs, and 16-byte-unaligned units (on the WASM cipher)', async () => {
    const f = await fx({})
    const aesni = f.accel.module('aesni') as AesniModule
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(512, 4096, 528, 4112), fc.integer({ min: 1, max: 40 }), fc.array(fc.nat(), { maxLength: 4 }), fc.nat(1 << 30), fc.nat(), async (unit, units, cuts, lba, seed) => {
        const key = f.accel.keys.create({ name: `k${seed}`, key: random(32, 2 * seed + 1), key2: random(32, 2 * seed + 2) })
        const n = unit * units
        const data = random(n, seed)
        const src = scattered(f.local(0), n, cuts.map((c) => c * 37))
        const dst = scattered(f.local(1 << 20), n, cuts.map((c) => c * 53))
        write(f.pm, src, data)
        const fb = aesni.fallbacks
        expect(await submit((cb) => f.ch.submitEncrypt(key, dst, src, lba, unit, cb, null))).toBe(AccelStatus.Ok)
        expect(aesni.fallbacks - fb).toBe(unit % 16 === 0 ? 0 : 1)
        const want = new Uint8Array(n)
        key.xts.encrypt(data, want, unit, lba)
        expect(same(read(f.pm, dst), want)).toBe(true)
        expect(await submit((cb) => f.ch.submitDecrypt(key, src, dst, lba, unit, cb, null))).toBe(AccelStatus.Ok)
        expect(same(read(f.pm, src), data)).toBe(true)
        f.accel.keys.destroy(key)
      }),
      { numRuns: fuzzRuns(40) },
    )
    expect(f.accel.stats().opcodes.encrypt!.aesni!.executed).toBeGreaterThan(0)
  })

  it('batches the data units of a turn\'s operations: two keys, both directions, 4 KiB each, few OpenSSL calls', async () => {
    const f = await fx({})
    const aesni = f.accel.module('aesni') as AesniModule
    const keys = [0, 1].map((i) => f.accel.keys.create({ name: `batch${i}`, key: random(32, 10 + i), key2: random(32, 20 + i) }))
    const N = 40
    const data = random(N * 4096, 3)
    f.pm.bytes.set(data, f.local(0))
    const before = aesni.batches
    // the first 20 encrypt under key 0, the next 10 under key 1, the last 10 decrypt under key 1
    const st = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        submit((cb) => {
          const src = list([f.local(i * 4096), 4096])
          const dst = list([f.local((1 << 20) + i * 4096), 4096])
          return i < 30 ? f.ch.submitEncrypt(keys[i < 20 ? 0 : 1]!, dst, src, 1000 + i, 4096, cb, null) : f.ch.submitDecrypt(keys[1]!, dst, src, 1000 + i, 4096, cb, null)
        }),
      ),
    )
    expect(st.every((s) => s === AccelStatus.Ok)).toBe(true)
    // 31 data units fit a batch: 20 (key 0), 10 (key 1, encrypt), 10 (key 1, decrypt)
    expect(aesni.batches - before).toBe(3)
    for (let i = 0; i < N; i++) {
      const want = new Uint8Array(4096)
      const k = keys[i < 20 ? 0 : 1]!
      if (i < 30) k.xts.encrypt(data.subarray(i * 4096, (i + 1) * 4096), want, 4096, 1000 + i)
      else k.xts.decrypt(data.subarray(i * 4096, (i + 1) * 4096), want, 4096, 1000 + i)
      expect(same(f.pm.bytes.subarray(f.local((1 << 20) + i * 4096), f.local((1 << 20) + (i + 1) * 4096)), want)).toBe(true)
    }
  })
})

describe('workers', () => {
  it('hands operations over through shared-memory rings: few wakes, not one message each; a lone small one runs inline', async () => {
    const f = await fx({ workers: 2, aesni: false })
    const w = f.accel.module('workers') as WorkersModule
    const before = { ...w.counters }
    const N = 64
    const data = random(N * 4096, 1)
    f.pm.bytes.set(data, f.local(0))
    const results = Array.from({ length: N }, () => ({ value: 0 }))
    const all = Promise.all(results.map((r, i) => submit((cb) => f.ch.submitCrc32c(r, list([f.local(i * 4096), 4096]), 0, cb, null))))
    expect((await all).every((s) => s === AccelStatus.Ok)).toBe(true)
    const { crc32c } = await import('@ipukit/kernels')
    results.forEach((r, i) => expect(r.value).toBe(~crc32c(data.subarray(i * 4096, (i + 1) * 4096)) >>> 0))
    expect(w.counters.batchedOps - before.batchedOps).toBe(N)
    // one turn's 64 operations: one submission, at most one wake per worker, and completions
    // reaped a batch per wake
    expect(w.counters.submissions - before.submissions).toBe(1)
    expect(w.counters.workerWakes - before.workerWakes).toBeLessThanOrEqual(2)
    expect(w.counters.completionWakes - before.completionWakes).toBeLessThan(N / 4)
    expect(w.inflight).toBe(0)
    // one small operation with nothing in flight: inline
    const r = { value: 0 }
    expect(await submit((cb) => f.ch.submitCrc32c(r, list([f.local(0), 512]), 0, cb, null))).toBe(AccelStatus.Ok)
    expect(w.counters.inlineOps - before.inlineOps).toBe(1)
    expect(r.value).toBe(~crc32c(data.subarray(0, 512)) >>> 0)
  })

  it('keeps at most a ring\'s capacity outstanding per worker; the rest waits and goes in as room frees', async () => {
    const f = await fx({ workers: { threads: 2, ringCapacity: 4, inlineOps: 0 }, aesni: false, taskCount: 512, sequenceCount: 128 })
    const w = f.accel.module('workers') as WorkersModule
    const N = 100
    const data = random(N * 1024, 9)
    f.pm.bytes.set(data, f.local(0))
    const results = Array.from({ length: N }, () => ({ value: 0 }))
    const all = Promise.all(results.map((r, i) => submit((cb) => f.ch.submitCrc32c(r, list([f.local(i * 1024), 1024]), 7, cb, null))))
    expect((await all).every((s) => s === AccelStatus.Ok)).toBe(true)
    const { crc32c } = await import('@ipukit/kernels')
    // SPDK's seed semantics: the register from ~seed, no final inversion
    results.forEach((r, i) => expect(r.value).toBe(~crc32c(data.subarray(i * 1024, (i + 1) * 1024), 7) >>> 0))
    expect(w.counters.submissions).toBeGreaterThan(N / 8)
    expect(w.inflight).toBe(0)
    expect(f.ch.freeTasks).toBe(512)
  })
})

describe('dma-engine', () => {
  it('copies host memory by the NVMe function\'s DMA: through its IOMMU context, charged to its link, no bounce', async () => {
    const f = await fx({ dmaEngine: {} as never, aesni: false })
    const host = f.fabric.busMaster(f.nvme)
    const data = random(65536, 4)
    f.iommu.map(f.nvme.rid, 0x500000, 0x30000, 65536, Access.Read | Access.Write)
    f.pm.bytes.set(data, f.pm.region('host').base + 0x30000)
    const dst = list([f.local(0), 65536])
    f.fabric.traffic.reset()
    const seq = f.ch.sequence()!
    seq.appendCopy(dst, null, list([0x500000, 65536]), host)
    expect(await run(seq)).toBe(AccelStatus.Ok)
    expect(same(read(f.pm, dst), data)).toBe(true)
    expect(f.fabric.traffic.report().links['ipu-nvme']).toMatchObject({ down: 65536 })
    expect(f.accel.stats().opcodes.copy!['dma-engine']!.executed).toBe(1)
    expect(f.ch.iobuf.stats.retries).toBe(0)
    // an unmapped IOVA faults, and nothing is written
    f.pm.bytes.fill(0, dst.addr[0]!, dst.addr[0]! + 65536)
    const s2 = f.ch.sequence()!
    s2.appendCopy(dst, null, list([0x700000, 65536]), host)
    expect(await run(s2)).toBe(AccelStatus.Fault)
    expect(read(f.pm, dst).every((b) => b === 0)).toBe(true)
  })
})
