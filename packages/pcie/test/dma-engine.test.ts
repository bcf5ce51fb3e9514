// DMA by PCI functions: the IOMMU applies to everything that reaches the root complex,
// BUS_ADDR peers are reached through the switch without it, refused routes fail with a
// status and move nothing, and each DMA is charged to the links and memories it touched.
import { createHash } from 'node:crypto'
import { Access, drainCompletions, IoVecList, Status, SystemMemoryDomain } from '@ipukit/memory'
import { describe, expect, it } from 'vitest'
import { Cfg, Command, DmaEngine, type PciFabric } from '../src/index.js'
import { memoryFabric, NVME } from './helpers.js'

const KiB = 1024

//  hb0 ─┬─ rp0 ═ sw0 ─┬─ dsp0 ═ nvme0 (BAR0 registers, BAR2 CMB)
//       │             └─ dsp1 ═ nvme1
//       └─ rp1 ═ ipu (the DMA engine)
function setup(opts: { hostBridge?: number; acsDsp1?: boolean; cpu?: 'amd' } = {}) {
  const { fabric: f, physical, iommu } = memoryFabric([{ name: 'cmb', size: 1 << 16 }], opts.cpu ? { cpu: { vendor: 'amd', family: 0x19 } } : {})
  const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: opts.hostBridge ?? 0x2020 })
  const sw = f.addSwitch(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 16 } }), {
    name: 'sw0',
    link: { gen: 4, width: 16 },
    downstreamPorts: ['dsp0', { name: 'dsp1', ...(opts.acsDsp1 !== undefined && { acs: { requestRedirect: opts.acsDsp1 } }) }],
  })
  f.addEndpoint(sw.downstream[0]!, {
    name: 'nvme0',
    link: { gen: 4, width: 4 },
    functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers' }, { index: 2, size: 1 << 16, kind: 'memory', region: 'cmb' }] }],
  })
  f.addEndpoint(sw.downstream[1]!, { name: 'nvme1', link: { gen: 4, width: 4 }, functions: [{ ...NVME }] })
  f.addEndpoint(hb.addRootPort({ name: 'rp1' }), { name: 'ipu', link: { gen: 5, width: 8 }, functions: [{ vendorId: 0x8086, deviceId: 0x1452, classCode: 0x120000 }] })
  f.enumerate()
  return { f, physical, iommu, nvme0: f.get('nvme0'), nvme1: f.get('nvme1'), ipu: f.get('ipu'), cmbBus: f.barAddress(f.get('nvme0'), 2) }
}

const list = (addr: number, len: number) => new IoVecList(4).push(addr, len)
const noop = () => {}
const links = (f: PciFabric) => Object.fromEntries(Object.entries(f.traffic.report().links).filter(([, v]) => v.up + v.down > 0).map(([k, v]) => [k, { up: v.up, down: v.down }]))

describe('DMA engine', () => {
  it('writes host DRAM through its IOMMU context and is charged: its link up, host DRAM written, IPU DRAM read', () => {
    const { f, physical, iommu, ipu } = setup()
    const e = new DmaEngine(ipu)
    const host = physical.region('host')
    const ipuMem = physical.region('ipu')
    physical.bytes.fill(0x5a, ipuMem.base, ipuMem.base + 8 * KiB)
    iommu.map(ipu.rid, 0x10_0000, 0x4000, 8 * KiB, Access.Write)
    let status = 1
    expect(e.copy(e.bus, list(0x10_0000 + 100, 5000), e.local, list(ipuMem.base, 5000), (_: null, s) => (status = s), null)).toBe(Status.Ok)
    drainCompletions()
    expect(status).toBe(Status.Ok)
    expect(physical.bytes.subarray(host.base + 0x4000 + 100, host.base + 0x4000 + 5100).every((b) => b === 0x5a)).toBe(true)
    expect(physical.bytes[host.base + 0x4000 + 99]).toBe(0)
    expect(links(f)).toEqual({ ipu: { up: 5000, down: 0 } })
    const r = f.traffic.report()
    expect(r.hostDram).toEqual({ read: 0, write: 5000 })
    expect(r.memory.ipu).toMatchObject({ read: 5000, write: 0 })
    expect(r.dmas).toBe(1)
    expect(e.stats).toEqual({ bytes: 5000, operations: 1 })
  })

  it('translateForDma: an engine working on the translated memory itself is charged as the function\'s DMA; a fault charges nothing', () => {
    const { f, physical, iommu, ipu } = setup()
    const host = physical.region('host')
    const bus = f.busMaster(ipu)
    iommu.map(ipu.rid, 0x20_0000, 0x8000, 8 * KiB, Access.Read)
    const out = new IoVecList(8)
    expect(bus.translateForDma(list(0x20_0000 + 16, 6000), out, Access.Read)).toBe(Status.Ok)
    expect([out.count, out.addr[0], out.total]).toEqual([1, host.base + 0x8000 + 16, 6000])
    expect(links(f)).toEqual({ ipu: { up: 0, down: 6000 } })
    expect(f.traffic.report().hostDram).toEqual({ read: 6000, write: 0 })
    expect(f.traffic.report().dmas).toBe(1)
    // writing a read-only mapping faults, and nothing more is charged
    expect(bus.translateForDma(list(0x20_0000, 4096), new IoVecList(8), Access.Write)).toBe(Status.Fault)
    expect(f.traffic.report().hostDram).toEqual({ read: 6000, write: 0 })
    expect(f.traffic.report().dmas).toBe(1)
  })

  it('an unmapped or read-only IOVA faults the whole DMA: no byte moves, nothing is charged, the fault names the requester', () => {
    const { f, physical, iommu, ipu } = setup()
    const e = new DmaEngine(ipu)
    const ipuMem = physical.region('ipu')
    iommu.map(ipu.rid, 0, 0, 4 * KiB, Access.Read | Access.Write)
    iommu.map(ipu.rid, 4 * KiB, 4 * KiB, 4 * KiB, Access.Read)
    const digest = () => createHash('sha1').update(physical.bytes.subarray(physical.region('host').base)).digest('hex')
    const before = digest()
    physical.bytes.fill(1, ipuMem.base, ipuMem.base + 16 * KiB)
    expect(e.copy(e.bus, list(0, 8 * KiB), e.local, list(ipuMem.base, 8 * KiB), noop, null)).toBe(Status.Fault)
    expect(iommu.lastFault).toMatchObject({ requester: ipu.rid, iova: 4 * KiB, access: 'write', reason: 'read-only' })
    expect(e.copy(e.bus, list(12 * KiB, 100), e.local, list(ipuMem.base, 100), noop, null)).toBe(Status.Fault)
    expect(iommu.lastFault).toMatchObject({ iova: 12 * KiB, reason: 'unmapped' })
    physical.bytes.fill(0, ipuMem.base, ipuMem.base + 16 * KiB)
    expect(digest()).toBe(before)
    expect(f.traffic.report().dmas).toBe(0)
    expect(links(f)).toEqual({})
  })

  it("reaches a BUS_ADDR peer's CMB by bus address through the switch, without the IOMMU", () => {
    const { f, physical, iommu, nvme0, nvme1, cmbBus } = setup()
    const cmb = physical.region('cmb')
    physical.bytes.fill(0x33, cmb.base, cmb.base + 16 * KiB)
    const e1 = new DmaEngine(nvme1)
    const dst = physical.region('ipu').base
    expect(f.p2pdma.mapType(nvme0, nvme1)).toBe('BUS_ADDR')
    expect(e1.copy(e1.local, list(dst, 16 * KiB), e1.bus, list(cmbBus, 16 * KiB), noop, null)).toBe(Status.Ok)
    expect(physical.bytes.subarray(dst, dst + 16 * KiB).every((b) => b === 0x33)).toBe(true)
    expect(iommu.faultCount).toBe(0)
    expect(links(f)).toEqual({ nvme0: { up: 16 * KiB, down: 0 }, nvme1: { up: 0, down: 16 * KiB } })
    expect(f.traffic.report().memory.cmb).toMatchObject({ read: 16 * KiB, write: 0 })
    expect(f.traffic.report().rootComplexP2p).toBe(0)
    // a device writing its own CMB by bus address crosses no link
    f.traffic.reset()
    const e0 = new DmaEngine(nvme0)
    expect(e0.copy(e0.bus, list(cmbBus, 4 * KiB), e0.local, list(dst, 4 * KiB), noop, null)).toBe(Status.Ok)
    expect(links(f)).toEqual({})
    expect(f.traffic.report().memory.cmb).toMatchObject({ read: 0, write: 4 * KiB })
  })

  it('with ACS Request Redirect on the path the same address goes up to the IOMMU: a fault until mapped, then through the root complex', () => {
    const { f, physical, iommu, nvme0, nvme1, cmbBus } = setup({ acsDsp1: true })
    const e1 = new DmaEngine(nvme1)
    const dst = physical.region('ipu').base
    expect(f.p2pdma.mapType(nvme0, nvme1)).toBe('THRU_HOST_BRIDGE')
    expect(e1.copy(e1.local, list(dst, 4 * KiB), e1.bus, list(cmbBus, 4 * KiB), noop, null)).toBe(Status.Fault)
    expect(iommu.lastFault).toMatchObject({ requester: nvme1.rid, iova: cmbBus })
    // the driver maps an IOVA to the CMB's window (Linux: a normal DMA mapping)
    iommu.map(nvme1.rid, 0x20_0000, cmbBus, 4 * KiB, Access.Read)
    expect(e1.copy(e1.local, list(dst, 4 * KiB), e1.bus, list(0x20_0000, 4 * KiB), noop, null)).toBe(Status.Ok)
    // up from nvme0 through the switch to the root complex and back down to nvme1
    expect(links(f)).toEqual({ nvme0: { up: 4 * KiB, down: 0 }, sw0: { up: 4 * KiB, down: 4 * KiB }, nvme1: { up: 0, down: 4 * KiB } })
    expect(f.traffic.report().rootComplexP2p).toBe(4 * KiB)
    expect(f.traffic.report().hostDram).toEqual({ read: 0, write: 0 })
  })

  it('a route through a host bridge that is not allowlisted fails with RemoteIo and moves nothing; an AMD Zen CPU routes it', () => {
    for (const cpu of [undefined, 'amd'] as const) {
      const { f, physical, iommu, ipu, cmbBus } = setup({ hostBridge: 0x1234, ...(cpu && { cpu }) })
      const e = new DmaEngine(ipu)
      const dst = physical.region('ipu').base
      physical.bytes.fill(7, dst, dst + 4 * KiB)
      iommu.map(ipu.rid, 0, cmbBus, 4 * KiB, Access.Read)
      const rc = e.copy(e.local, list(dst, 4 * KiB), e.bus, list(0, 4 * KiB), noop, null)
      if (cpu === 'amd') {
        expect(rc).toBe(Status.Ok)
        expect(physical.bytes[dst]).toBe(0)
        expect(links(f)).toEqual({ nvme0: { up: 4 * KiB, down: 0 }, sw0: { up: 4 * KiB, down: 0 }, ipu: { up: 0, down: 4 * KiB } })
      } else {
        expect(rc).toBe(Status.RemoteIo)
        expect(physical.bytes[dst]).toBe(7)
        expect(f.traffic.report().dmas).toBe(0)
      }
    }
  })

  it('cannot DMA with Bus Master Enable off, nor into a register BAR, nor through a domain not its own', () => {
    const { physical, iommu, nvme0, ipu, f } = setup()
    const e = new DmaEngine(ipu)
    const src = physical.region('ipu').base
    iommu.map(ipu.rid, 0, 0, 4 * KiB, Access.Write)
    ipu.config.write(Cfg.COMMAND, 2, Command.MemorySpace)
    expect(e.copy(e.bus, list(0, 64), e.local, list(src, 64), noop, null)).toBe(Status.Invalid)
    ipu.config.write(Cfg.COMMAND, 2, Command.MemorySpace | Command.BusMaster)
    expect(e.copy(e.bus, list(0, 64), e.local, list(src, 64), noop, null)).toBe(Status.Ok)
    const e0 = new DmaEngine(nvme0)
    const regs = f.barAddress(nvme0, 0)
    expect(e0.copy(e0.bus, list(regs, 64), e0.local, list(src, 64), noop, null)).toBe(Status.NotSupported)
    expect(() => e.copy(new SystemMemoryDomain(physical), list(src, 64), e.local, list(src + 64, 64), noop, null)).toThrow(TypeError)
    expect(() => e.copy(e0.bus, list(src, 64), e.local, list(src + 64, 64), noop, null)).toThrow(TypeError)
    expect(e.copy(e.local, list(src, 64), e.local, list(src + 64, 65), noop, null)).toBe(Status.Invalid)
    drainCompletions()
  })

  it('zero-fills through the IOMMU; pull and push of a function\'s bus-master domain are charged too', () => {
    const { f, physical, iommu, ipu } = setup()
    const e = new DmaEngine(ipu)
    const host = physical.region('host')
    physical.bytes.fill(9, host.base, host.base + 8 * KiB)
    iommu.map(ipu.rid, 0, 0, 8 * KiB, Access.Read | Access.Write)
    expect(e.zero(e.bus, list(4 * KiB, 4 * KiB), noop, null)).toBe(Status.Ok)
    expect(physical.bytes[host.base + 4 * KiB]).toBe(0)
    expect(physical.bytes[host.base + 4 * KiB - 1]).toBe(9)
    const d = f.busMaster(ipu)
    expect(d).toBe(e.bus)
    const local = physical.region('ipu').base
    expect(d.pull(list(0, 100), list(local, 100), noop, null)).toBe(Status.Ok)
    expect(d.push(list(200, 100), list(local, 100), noop, null)).toBe(Status.Ok)
    drainCompletions()
    expect(links(f)).toEqual({ ipu: { up: 4 * KiB + 100, down: 100 } })
    expect(f.traffic.report().hostDram).toEqual({ read: 100, write: 4 * KiB + 100 })
    expect(f.traffic.report().dmas).toBe(3)
    // translate alone moves and charges nothing
    expect(d.translate(list(0, 100), new IoVecList(4))).toBe(Status.Ok)
    expect(f.traffic.report().dmas).toBe(3)
  })
})
