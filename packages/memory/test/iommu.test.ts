// Random mappings and random DMA ranges: every access inside the mapped, permitted set
// moves the right bytes; every other one faults, is recorded, and changes no byte anywhere.
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Access, createPhysicalMemory, HostMemoryDomain, Iommu, IoVecList, requesterId, Status } from '../src/index.js'

const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, iobuf: { smallCount: 8, largeCount: 2 } })
const host = pm.region('host')
const ipu = pm.region('ipu')
// every byte outside the kernel and control regions, to compare before and after a faulting DMA
const outside = () => pm.bytes.slice(pm.region('host').base)
const digest = (b: Uint8Array) => createHash('sha1').update(b).digest('hex')
// completions run in a microtask queued during the call: one await lets them run
const settle = () => Promise.resolve()

describe('IOMMU', () => {
  it('moves exactly the permitted bytes and faults everything else (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ iovaPage: fc.nat(63), hostPage: fc.nat(252), pages: fc.integer({ min: 1, max: 4 }), access: fc.constantFrom(1, 2, 3) }), { maxLength: 12 }),
        fc.array(fc.record({ iova: fc.nat(70 * 4096), len: fc.integer({ min: 1, max: 3 * 4096 }), write: fc.boolean() }), { minLength: 1, maxLength: 10 }),
        async (maps, dmas) => {
          const iommu = new Iommu(pm)
          const rid = requesterId(1, 0, 0)
          // the model: page -> { hostPage, access }
          const model = new Map<number, { hp: number; access: number }>()
          for (const m of maps) {
            const free = Array.from({ length: m.pages }, (_, i) => m.iovaPage + i).every((p) => !model.has(p))
            if (!free) continue
            iommu.map(rid, m.iovaPage * 4096, m.hostPage * 4096, m.pages * 4096, m.access as 1 | 2 | 3)
            for (let i = 0; i < m.pages; i++) model.set(m.iovaPage + i, { hp: m.hostPage + i, access: m.access })
          }
          const domain = new HostMemoryDomain(pm, iommu, rid)
          for (const d of dmas) {
            const need = d.write ? Access.Write : Access.Read
            let allowed = true
            for (let p = Math.floor(d.iova / 4096); p <= Math.floor((d.iova + d.len - 1) / 4096); p++) {
              const e = model.get(p)
              if (e === undefined || (e.access & need) === 0) allowed = false
            }
            for (let i = 0; i < 64; i++) pm.bytes[ipu.base + i] = i
            const local = IoVecList.of([ipu.base + 8192, d.len])
            pm.bytes.fill(0xee, ipu.base + 8192, ipu.base + 8192 + d.len)
            const before = allowed ? undefined : outside()
            const faults = iommu.faultCount
            const remote = IoVecList.of([d.iova, d.len])
            let done = -1
            const rc = d.write ? domain.push(remote, local, (_a, s) => (done = s), null) : domain.pull(remote, local, (_a, s) => (done = s), null)
            await settle()
            if (allowed) {
              expect(rc).toBe(Status.Ok)
              expect(done).toBe(Status.Ok)
              // check the bytes against the model, page by page
              for (let off = 0; off < d.len; ) {
                const iova = d.iova + off
                const e = model.get(Math.floor(iova / 4096))!
                const hpa = e.hp * 4096 + (iova % 4096)
                const n = Math.min(d.len - off, 4096 - (iova % 4096))
                const a = pm.bytes.subarray(host.base + hpa, host.base + hpa + n)
                const b = pm.bytes.subarray(ipu.base + 8192 + off, ipu.base + 8192 + off + n)
                expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
                off += n
              }
            } else {
              expect(rc).toBe(Status.Fault)
              expect(done).toBe(-1)
              const after = outside()
              if (!Buffer.from(after).equals(Buffer.from(before!))) expect(digest(after)).toBe(digest(before!))
              expect(iommu.faultCount).toBe(faults + 1)
              const f = iommu.lastFault!
              expect(f.requester).toBe(rid)
              expect(f.access).toBe(d.write ? 'write' : 'read')
              expect(f.iova).toBeGreaterThanOrEqual(d.iova)
              expect(f.iova).toBeLessThan(d.iova + d.len)
              // the first page the DMA touches that is not permitted is the one reported
              const bad = model.get(Math.floor(f.iova / 4096))
              expect(bad === undefined || (bad.access & need) === 0).toBe(true)
            }
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('translates IOVA ranges into physical iovecs, merging contiguous pages and splitting the rest', () => {
    const iommu = new Iommu(pm)
    const rid = 0x0100
    iommu.map(rid, 0x10000, 0x4000, 0x2000, Access.Read | Access.Write) // 2 contiguous pages
    iommu.map(rid, 0x12000, 0x9000, 0x1000, Access.Read) // then a page elsewhere
    const out = new IoVecList(8)
    expect(iommu.translate(rid, 0x10800, 0x2000, Access.Read, out)).toBe(Status.Ok)
    expect([...out.addr.subarray(0, out.count)]).toEqual([host.base + 0x4800, host.base + 0x9000])
    expect([...out.len.subarray(0, out.count)]).toEqual([0x1800, 0x800])
    out.clear()
    expect(iommu.translate(rid, 0x10800, 0x2000, Access.Write, out)).toBe(Status.Fault)
    expect(out.count).toBe(0)
    expect(iommu.lastFault).toEqual({ requester: rid, iova: 0x12000, access: 'write', reason: 'read-only' })
    expect(iommu.translate(0x0200, 0x10000, 16, Access.Read, out)).toBe(Status.Fault)
    expect(iommu.lastFault?.reason).toBe('unmapped')
    iommu.unmap(rid, 0x10000, 0x1000)
    expect(iommu.translate(rid, 0x10000, 16, Access.Read, out)).toBe(Status.Fault)
    expect(iommu.mappedPages(rid)).toBe(2)
    expect(() => iommu.map(rid, 0x11000, 0, 0x1000, 3)).toThrow(/already mapped/)
    expect(() => iommu.map(rid, 0x20000, host.size, 0x1000, 3)).toThrow(/not host memory/)
    expect(() => iommu.map(rid, 0x20001, 0, 0x1000, 3)).toThrow(/multiples of 4096/)
  })

  it('passes IOVAs straight through in identity mode, within host memory only', () => {
    const iommu = new Iommu(pm)
    const rid = 0x0300
    const out = new IoVecList(4)
    expect(iommu.translate(rid, 0x5000, 100, Access.Write, out)).toBe(Status.Fault)
    iommu.setIdentity(rid, true)
    expect(iommu.isIdentity(rid)).toBe(true)
    expect(iommu.translate(rid, 0x5000, 100, Access.Write, out)).toBe(Status.Ok)
    expect(out.addr[0]).toBe(host.base + 0x5000)
    out.clear()
    expect(iommu.translate(rid, host.size - 10, 20, Access.Read, out)).toBe(Status.Fault)
    expect(iommu.lastFault).toMatchObject({ iova: host.size, reason: 'out of range' })
  })

  it('keeps a bounded log of faults', () => {
    const iommu = new Iommu(pm, { faultLogSize: 3 })
    const out = new IoVecList(1)
    for (let i = 0; i < 5; i++) iommu.translate(7, i * 4096, 1, Access.Read, out)
    expect(iommu.faultCount).toBe(5)
    expect(iommu.faults.map((f) => f.iova)).toEqual([2 * 4096, 3 * 4096, 4 * 4096])
  })

  it('reaches a device window added at a host physical address', () => {
    const pm2 = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, devices: [{ name: 'bar', size: 65536 }], iobuf: { smallCount: 4, largeCount: 1 } })
    const iommu = new Iommu(pm2)
    iommu.addWindow(0x8000_0000, pm2.region('bar'))
    iommu.map(1, 0, 0x8000_0000, 0x2000, Access.Write)
    const out = new IoVecList(2)
    expect(iommu.translate(1, 0x100, 0x1000, Access.Write, out)).toBe(Status.Ok)
    expect(out.addr[0]).toBe(pm2.region('bar').base + 0x100)
    expect(() => iommu.addWindow(0x8000_1000, pm2.region('bar'))).toThrow(/overlaps/)
  })

  it('removes a window, and exposes only the first bytes of a region through a smaller one', () => {
    const pm2 = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, devices: [{ name: 'bar', size: 65536 }], iobuf: { smallCount: 4, largeCount: 1 } })
    const iommu = new Iommu(pm2)
    iommu.setIdentity(1, true)
    iommu.addWindow(0x8000_0000, pm2.region('bar'), 0x2000)
    const out = new IoVecList(2)
    expect(iommu.translate(1, 0x8000_1000, 0x1000, Access.Read, out)).toBe(Status.Ok)
    expect(iommu.translate(1, 0x8000_1000, 0x1001, Access.Read, out.clear())).toBe(Status.Fault)
    iommu.removeWindow(0x8000_0000)
    expect(iommu.translate(1, 0x8000_1000, 1, Access.Read, out.clear())).toBe(Status.Fault)
    expect(() => iommu.removeWindow(0x8000_0000)).toThrow(/no window/)
    expect(() => iommu.addWindow(0x9000_0000, pm2.region('bar'), 0x2_0000)).toThrow(RangeError)
    // the host DRAM window is not removable
    expect(() => iommu.removeWindow(0)).toThrow(/no window/)
  })
})
