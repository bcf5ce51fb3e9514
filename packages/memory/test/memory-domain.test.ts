// Memory domains: pull, push, translate and memzero for every domain, transfers across
// every pair, the accel domain's lazy backing, "not supported", and the completion
// convention.
import { describe, expect, it } from 'vitest'
import {
  Access,
  AccelMemoryDomain,
  createPhysicalMemory,
  CustomMemoryDomain,
  DeviceMemoryDomain,
  drainCompletions,
  HostMemoryDomain,
  Iommu,
  IobufChannel,
  IoVecList,
  type MemoryDomain,
  Status,
  SystemMemoryDomain,
  transferData,
} from '../src/index.js'

const pm = createPhysicalMemory({
  hostSize: 1 << 20,
  ipuSize: 4 << 20,
  devices: [{ name: 'cmb', size: 1 << 20 }],
  iobuf: { smallSize: 8192, smallCount: 32, largeSize: 65536, largeCount: 8 },
})
const iommu = new Iommu(pm)
const RID = 0x0108
// host: IOVA 0x100000.. mapped to scattered host pages, read/write
for (let i = 0; i < 16; i++) iommu.map(RID, 0x100000 + i * 4096, ((i * 7) % 16) * 4096 + 0x40000, 4096, Access.Read | Access.Write)
const channel = new IobufChannel(pm)
const ipu = pm.region('ipu')
const cmb = pm.region('cmb')
const BUS = 0xfe00_0000

const domains: Record<string, MemoryDomain> = {
  system: new SystemMemoryDomain(pm),
  host: new HostMemoryDomain(pm, iommu, RID),
  accel: new AccelMemoryDomain(pm, channel, { buffers: 16 }),
  device: new DeviceMemoryDomain(pm, cmb, BUS),
}
const accel = domains.accel as AccelMemoryDomain
// a 12000-byte buffer in each domain, as two iovecs
function buffer(name: string, salt: number): IoVecList {
  switch (name) {
    case 'system':
      return IoVecList.of([ipu.base + 3_000_000 + salt * 20000, 5000], [ipu.base + 3_100_000 + salt * 20000, 7000])
    case 'host': {
      // 64 KiB of IOVA are mapped: three non-overlapping places, each crossing pages
      const at = [100, 20_500, 41_000][salt]!
      return IoVecList.of([0x100000 + at, 5000], [0x100000 + at + 9000, 7000])
    }
    case 'accel': {
      const a = accel.allocBuffer(12000)
      return IoVecList.of([a, 5000], [a + 5000, 7000])
    }
    default:
      return IoVecList.of([BUS + 1000 + salt * 30000, 5000], [BUS + 500000 + salt * 30000, 7000])
  }
}

function bytesOf(d: MemoryDomain, l: IoVecList): Uint8Array {
  const phys = new IoVecList(64)
  expect(d.translate(l, phys)).toBe(Status.Ok)
  const out = new Uint8Array(l.total)
  let at = 0
  for (let i = 0; i < phys.count; i++) {
    out.set(pm.bytes.subarray(phys.addr[i]!, phys.addr[i]! + phys.len[i]!), at)
    at += phys.len[i]!
  }
  return out
}

function fill(d: MemoryDomain, l: IoVecList, seed: number): Uint8Array {
  const phys = new IoVecList(64)
  expect(d.translate(l, phys, Access.Write)).toBe(Status.Ok)
  const data = Uint8Array.from({ length: l.total }, (_, i) => (i * 31 + seed) & 0xff)
  let at = 0
  for (let i = 0; i < phys.count; i++) {
    pm.bytes.set(data.subarray(at, at + phys.len[i]!), phys.addr[i]!)
    at += phys.len[i]!
  }
  return data
}

const settle = () => Promise.resolve()

describe('every domain', () => {
  for (const name of Object.keys(domains)) {
    it(`${name}: pull, push, memzero, translate`, async () => {
      const d = domains[name]!
      const remote = buffer(name, 0)
      const local = IoVecList.of([ipu.base + 2_000_000, 3000], [ipu.base + 2_100_000, 9000])
      const data = fill(d, remote, 7)
      const seen: number[] = []
      expect(d.pull(remote, local, (_: null, s) => seen.push(s), null)).toBe(Status.Ok)
      expect(seen).toEqual([])
      await settle()
      expect(seen).toEqual([Status.Ok])
      expect(Buffer.from(bytesOf(domains.system!, local)).equals(Buffer.from(data))).toBe(true)
      const back = fill(domains.system!, local, 99)
      expect(d.push(remote, local, (_: null, s) => seen.push(s), null)).toBe(Status.Ok)
      expect(d.memzero(IoVecList.of([remote.addr[1]!, 100]), (_: null, s) => seen.push(s), null)).toBe(Status.Ok)
      await settle()
      expect(seen).toEqual([Status.Ok, Status.Ok, Status.Ok])
      const now = bytesOf(d, remote)
      expect(Buffer.from(now.subarray(0, 5000)).equals(Buffer.from(back.subarray(0, 5000)))).toBe(true)
      expect(now.subarray(5000, 5100).every((b) => b === 0)).toBe(true)
      expect(Buffer.from(now.subarray(5100)).equals(Buffer.from(back.subarray(5100)))).toBe(true)
      // length mismatch is refused without moving anything
      expect(d.pull(remote, IoVecList.of([ipu.base, 10]), () => seen.push(-1), null)).toBe(Status.Invalid)
      await settle()
      expect(seen).not.toContain(-1)
    })
  }

  it('transfers between every pair of domains', async () => {
    const used = accel.inUse
    let pairs = 0
    for (const [sName, s] of Object.entries(domains)) {
      for (const [dName, d] of Object.entries(domains)) {
        const src = buffer(sName, 1)
        const dst = buffer(dName, 2)
        const data = fill(s, src, pairs)
        let status = -1
        expect(transferData(d, dst, s, src, (_: null, st) => (status = st), null), `${sName} -> ${dName}`).toBe(Status.Ok)
        await settle()
        expect(status).toBe(Status.Ok)
        expect(Buffer.from(bytesOf(d, dst)).equals(Buffer.from(data)), `${sName} -> ${dName}`).toBe(true)
        pairs++
        if (sName === 'accel') accel.freeBuffer(src.addr[0]!)
        if (dName === 'accel') accel.freeBuffer(dst.addr[0]!)
      }
    }
    expect(pairs).toBe(16)
    expect(accel.inUse).toBe(used)
  })

  it('faults a host DMA outside its mappings before moving a byte, and refuses out-of-window addresses', () => {
    const before = pm.bytes.slice(pm.region('host').base, ipu.base + ipu.size)
    const local = IoVecList.of([ipu.base, 8192])
    const h = domains.host!
    expect(h.push(IoVecList.of([0x100000 + 16 * 4096 - 4096, 8192]), local, () => {}, null)).toBe(Status.Fault)
    expect(iommu.lastFault).toMatchObject({ requester: RID, iova: 0x100000 + 16 * 4096, access: 'write' })
    expect(Buffer.from(pm.bytes.slice(pm.region('host').base, ipu.base + ipu.size)).equals(Buffer.from(before))).toBe(true)
    expect(domains.device!.memzero(IoVecList.of([BUS + cmb.size - 10, 20]), () => {}, null)).toBe(Status.Invalid)
    expect(domains.system!.pull(IoVecList.of([0, 16]), IoVecList.of([ipu.base, 16]), () => {}, null)).toBe(Status.Invalid)
  })
})

describe('accel buffers', () => {
  it('have no memory until translated, and give it back when invalidated or freed', () => {
    const free = () => channel.sharedFree[0] + channel.cached[0]
    const start = free()
    const a = accel.allocBuffer(6000)
    expect(a).toBeLessThan(0)
    expect(accel.holds(a)).toBe(true)
    expect((a - accel.base) % accel.slotSize).toBe(0)
    expect(accel.isBacked(a)).toBe(false)
    expect(free()).toBe(start)
    const out = new IoVecList(2)
    expect(accel.translate(IoVecList.of([a + 100, 200]), out)).toBe(Status.Ok)
    expect(accel.isBacked(a)).toBe(true)
    expect(free()).toBe(start - 1)
    const first = out.addr[0]!
    // the same buffer translates to the same memory while it is backed
    out.clear()
    expect(accel.translate(IoVecList.of([a, 6000]), out)).toBe(Status.Ok)
    expect(out.addr[0]).toBe(first - 100)
    expect(accel.translate(IoVecList.of([a + 5000, 2000]), out)).toBe(Status.Invalid)
    accel.invalidate(IoVecList.of([a, 1]))
    expect(accel.isBacked(a)).toBe(false)
    expect(free()).toBe(start)
    accel.translate(IoVecList.of([a, 10]), out.clear())
    accel.freeBuffer(a)
    expect(free()).toBe(start)
    expect(() => accel.freeBuffer(a)).toThrow(RangeError)
  })

  it('run out of virtual buffers as a value', () => {
    const small = new AccelMemoryDomain(pm, channel, { buffers: 2 })
    const x = small.allocBuffer(10)
    const y = small.allocBuffer(10)
    expect(small.allocBuffer(10)).toBe(0)
    small.freeBuffer(x)
    expect(small.allocBuffer(10)).toBe(x)
    small.freeBuffer(y)
  })
})

describe('custom domains and the completion convention', () => {
  it('answer NotSupported for what they do not implement', () => {
    const none = new CustomMemoryDomain(pm, 'system', 'rdma', {})
    const l = IoVecList.of([1, 1])
    expect(none.translate(l, new IoVecList(1))).toBe(Status.NotSupported)
    expect(none.pull(l, IoVecList.of([ipu.base, 1]), () => {}, null)).toBe(Status.NotSupported)
    expect(none.push(l, IoVecList.of([ipu.base, 1]), () => {}, null)).toBe(Status.NotSupported)
    expect(none.memzero(l, () => {}, null)).toBe(Status.NotSupported)
    // with only a translation, the generic pull and push work through it
    const via = new CustomMemoryDomain(pm, 'device', 'window', { translate: (iovs, out) => domains.device!.translate(iovs, out) })
    pm.bytes[cmb.base + 5] = 77
    const local = IoVecList.of([ipu.base + 10, 1])
    expect(via.pull(IoVecList.of([BUS + 5, 1]), local, () => {}, null)).toBe(Status.Ok)
    expect(pm.bytes[ipu.base + 10]).toBe(77)
    drainCompletions()
  })

  it('runs completions after the call returns, in submission order', async () => {
    const order: number[] = []
    const s = domains.system!
    const l = IoVecList.of([ipu.base, 16])
    for (let i = 0; i < 5; i++) s.memzero(l, (x: number) => order.push(x), i)
    order.push(-1)
    await settle()
    expect(order).toEqual([-1, 0, 1, 2, 3, 4])
  })
})
