// Backpressure in the NVMe/TCP target (NVMe/TCP 1.0 §3.3 the byte stream carries the
// queue's capsules and data; §3.3.2 a controller may delay an R2T until it has a buffer;
// NVMe Base 2.0 §3.3.1 SQ flow control bounds what a host may have outstanding): a host that
// sends reads and never reads its socket leaves the target's output queue bounded by about
// sendHighWater plus one response, the target stops reading that connection, and all
// completes once the host reads again; a target out of iobuf buffers (many large writes
// from many hosts at once, and in-capsule writes) makes progress without errors, its
// requests waiting for buffers rather than anything growing.
import { createAccel } from '@ipukit/accel'
import { Bdevs, createMallocBdev } from '@ipukit/bdev'
import { createPhysicalMemory, IoVecList } from '@ipukit/memory'
import { NvmOpcode } from '@ipukit/nvme'
import { afterEach, describe, expect, it } from 'vitest'
import { type HostCompletion, NvmfHost, NvmfTarget, TcpTransport } from '../src/index.js'
import { HOSTNQN, random, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'
import { RawHost, type RawResponse, until } from './support/raw-host.js'

const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

function hostRw(h: NvmfHost, queue: number, write: boolean, lba: number, blocks: number, addr: number, blockSize = 512): Promise<HostCompletion> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(queue, write, 1, lba, blocks, new IoVecList(1).push(addr, blocks * blockSize), (_: null, c) => resolve(c), null)
    if (rc !== 0) reject(new Error(`rc ${rc}`))
  })
}

const read = (lba: number, blocks: number) => (v: DataView) => {
  v.setUint8(0, NvmOpcode.Read)
  v.setUint32(4, 1, true)
  v.setUint32(40, lba, true)
  v.setUint32(48, blocks - 1, true)
}

describe('a host that does not read its socket', () => {
  it('bounds the output to about sendHighWater plus one response, stops reading, and completes once the host reads', async () => {
    const HIGH = 65536
    const IO = 131072
    const f: TargetFixture = await targetFixture({ transport: { sendHighWater: HIGH, maxIoSize: IO }, blocks: 8192 })
    cleanup.push(() => f.close())
    // the whole namespace, 4 MiB, with known data
    const image = random(8192 * 512, 4242)
    const w = await f.host({ hostnqn: 'nqn.2026-12.io.ipukit:writer' })
    const buf = f.pm.ipuAllocator.alloc(IO)
    for (let lba = 0; lba < 8192; lba += 256) {
      f.pm.bytes.set(image.subarray(lba * 512, (lba + 256) * 512), buf)
      expect((await hostRw(w, 0, true, lba, 256, buf)).status).toBe(0)
    }
    f.pm.ipuAllocator.free(buf)

    const a = await RawHost.open(f.port)
    cleanup.push(() => a.close())
    const cntlid = await a.admin(SUBNQN, HOSTNQN)
    const q = await RawHost.open(f.port)
    cleanup.push(() => q.close())
    expect((await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1, sqsize: 127 })).status).toBe(0)
    const tq = q.qpairOn(f.tcp)
    // the most the target's socket ever held, seen after every write it makes
    let peak = 0
    const s = tq.socket as unknown as { write: (...args: unknown[]) => boolean }
    const write = s.write.bind(s)
    s.write = (...args: unknown[]) => {
      const r = write(...args)
      peak = Math.max(peak, tq.socket.writableLength)
      return r
    }

    q.pause()
    // 100 reads of 128 KiB: 12.5 MiB, more than the loopback socket buffers take
    const N = 100
    const pending: Promise<RawResponse>[] = []
    for (let i = 0; i < N; i++) pending.push(q.command(read((i % 32) * 256, 256), { read: IO, timeoutMs: 15000 }))
    await until(() => tq.socket.isPaused() && tq.stats.c2hPdus > 0, 3000, 'the target answers some reads and stops')
    // it stays stopped: what is sent now is not read, and no more responses go out
    await new Promise((r) => setTimeout(r, 200))
    const sent = tq.stats.c2hPdus
    const capsules = tq.stats.capsules
    const more: Promise<RawResponse>[] = []
    for (let i = 0; i < 8; i++) more.push(q.command(read(i * 256, 256), { read: IO, timeoutMs: 15000 }))
    await new Promise((r) => setTimeout(r, 200))
    expect(tq.socket.isPaused()).toBe(true)
    expect(tq.stats.capsules).toBe(capsules)
    expect(tq.stats.c2hPdus).toBe(sent)
    expect(sent).toBeLessThan(N)
    expect(capsules).toBeLessThan(N + 8 + 1)
    expect(peak).toBeGreaterThan(HIGH)
    // sendHighWater, plus the one response (C2HData header, data, CapsuleResp) that crossed it
    expect(peak).toBeLessThanOrEqual(HIGH + IO + 256)
    expect(tq.socket.writableLength).toBeLessThanOrEqual(HIGH + IO + 256)

    // the host reads again: everything completes, in full and correct
    q.resume()
    const all = await Promise.all([...pending, ...more])
    all.forEach((r, i) => {
      const lba = i < N ? (i % 32) * 256 : (i - N) * 256
      expect(r.status).toBe(0)
      expect(r.data.length).toBe(IO)
      expect(Buffer.from(r.data).equals(Buffer.from(image.subarray(lba * 512, lba * 512 + IO)))).toBe(true)
    })
    expect(peak).toBeLessThanOrEqual(HIGH + IO + 256)
    expect(tq.socket.isPaused()).toBe(false)
    expect(tq.stats.termReqs).toBe(0)
    // and the queue takes new work
    const r = await q.command(read(0, 1), { read: 512 })
    expect(Buffer.from(r.data).equals(Buffer.from(image.subarray(0, 512)))).toBe(true)
  })

  it('a host that never reads and then goes away leaves no buffers behind', async () => {
    const f: TargetFixture = await targetFixture({ transport: { sendHighWater: 65536 } })
    cleanup.push(() => f.close())
    const iobuf = f.target.ch.accel.iobuf
    const free = () => iobuf.sharedFree[1] + iobuf.cached[1]
    const before = free()
    const a = await RawHost.open(f.port)
    const cntlid = await a.admin(SUBNQN, HOSTNQN)
    const q = await RawHost.open(f.port)
    expect((await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1, sqsize: 127 })).status).toBe(0)
    const tq = q.qpairOn(f.tcp)
    q.pause()
    const pending = Array.from({ length: 64 }, (_, i) => q.command(read(i * 128, 256), { read: 131072, timeoutMs: 15000 }).catch(() => null))
    await until(() => tq.socket.isPaused() && tq.stats.c2hPdus > 0, 3000, 'the target stops')
    await new Promise((r) => setTimeout(r, 100))
    // completed reads wait with their buffers
    expect(free()).toBeLessThan(before)
    await q.close()
    await a.close()
    await Promise.all(pending)
    await until(() => tq.closed, 2000, 'the target sees the close')
    await until(() => free() === before, 2000, 'every large buffer comes back')
    expect(f.subsystem.controllers.size).toBe(0)
  })
})

describe('a target out of iobuf buffers', () => {
  it('makes progress through many large and in-capsule writes from many hosts, all data correct', async () => {
    // a memory of its own with few buffers: 6 large (132 KiB), 12 small (8 KiB)
    const pm = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 256 << 20, kernels: { scratchSlots: 12 }, iobuf: { largeCount: 6, largeCache: 2, smallCount: 12, smallCache: 2 } })
    const accel = await createAccel({ physical: pm, aesni: false, driver: null, taskCount: 1024, sequenceCount: 256 })
    const bdevs = new Bdevs(accel, { ioCount: 1024 })
    const BLOCKS = 32768
    createMallocBdev(bdevs, { name: 'ram0', blockCount: BLOCKS, blockSize: 512 })
    const target = new NvmfTarget({ bdevs })
    const tcp = new TcpTransport(target)
    const l = await tcp.listen('127.0.0.1', 0)
    const sub = target.createSubsystem({ nqn: SUBNQN, allowAnyHost: true })
    sub.addNamespace({ bdev: 'ram0' })
    sub.addListener(l.address)
    const hosts: NvmfHost[] = []
    cleanup.push(async () => {
      for (const h of hosts) await h.close()
      await tcp.close()
      target.close()
      await bdevs.close()
      await accel.close()
    })
    for (let i = 0; i < 6; i++) {
      const h = new NvmfHost({ physical: pm, traddr: '127.0.0.1', trsvcid: l.trsvcid, subnqn: SUBNQN, hostnqn: `nqn.2026-12.io.ipukit:many${i}`, ioQueues: 2 })
      hosts.push(h)
      await h.connect()
    }
    const iobuf = target.ch.accel.iobuf
    const retries0 = iobuf.stats.retries
    const heap0 = process.memoryUsage().heapUsed
    // per queue (12 of them): 2048 blocks, 12 writes of 64 KiB by R2T, then 16 of 4 KiB in the capsule
    const PER = 2048
    const image = random(BLOCKS * 512, 99)
    let maxWaiting = 0
    const watch = setInterval(() => (maxWaiting = Math.max(maxWaiting, iobuf.waiting(0) + iobuf.waiting(1))), 1)
    const ops: Promise<HostCompletion>[] = []
    const bufs: number[] = []
    let region = 0
    for (const h of hosts) {
      for (let queue = 0; queue < 2; queue++) {
        const base = region++ * PER
        for (let k = 0; k < 12; k++) {
          const lba = base + k * 128
          const b = pm.ipuAllocator.alloc(65536)
          bufs.push(b)
          pm.bytes.set(image.subarray(lba * 512, (lba + 128) * 512), b)
          ops.push(hostRw(h, queue, true, lba, 128, b))
        }
        for (let k = 0; k < 16; k++) {
          const lba = base + 1536 + k * 8
          const b = pm.ipuAllocator.alloc(4096)
          bufs.push(b)
          pm.bytes.set(image.subarray(lba * 512, (lba + 8) * 512), b)
          ops.push(hostRw(h, queue, true, lba, 8, b))
        }
      }
    }
    const done = await Promise.all(ops)
    clearInterval(watch)
    expect(done.every((c) => c.status === 0)).toBe(true)
    // requests waited for buffers (many more in flight than the pools hold)
    expect(iobuf.stats.retries - retries0).toBeGreaterThan(0)
    expect(maxWaiting).toBeGreaterThan(0)
    expect([...tcp.connections].some((q) => q.stats.stalls > 0)).toBe(true)
    expect([...tcp.connections].every((q) => q.stats.termReqs === 0)).toBe(true)
    expect(hosts.every((h) => h.state === 'live' && h.stats.reconnects === 0 && h.stats.timeouts === 0)).toBe(true)
    // nothing grew with the backlog: the heap stays near where it was (the data is in the pools and IPU memory)
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 << 20)
    for (const b of bufs) pm.ipuAllocator.free(b)
    // every buffer is back in the pools
    await until(() => iobuf.sharedFree[1] + iobuf.cached[1] === 6 && iobuf.sharedFree[0] + iobuf.cached[0] === 12, 2000, 'the pools fill again')
    // read it all back
    const rb = pm.ipuAllocator.alloc(65536)
    region = 0
    for (const h of hosts) {
      for (let queue = 0; queue < 2; queue++) {
        const base = region++ * PER
        for (let lba = base; lba < base + 1536 + 128; lba += 128) {
          pm.bytes.fill(0, rb, rb + 65536)
          expect((await hostRw(h, queue, false, lba, 128, rb)).status).toBe(0)
          expect(Buffer.from(pm.bytes.subarray(rb, rb + 65536)).equals(Buffer.from(image.subarray(lba * 512, (lba + 128) * 512)))).toBe(true)
        }
      }
    }
    pm.ipuAllocator.free(rb)
  })
})
