// Configuration space semantics: read-only fields, write-1-to-clear, BAR sizing by
// writing all ones, the capability lists, and bad accesses.
import { describe, expect, it } from 'vitest'
import { AcsBit, barAddress, CapId, Cfg, Command, ConfigSpace, defineBar64, ExtCapId, MSIX_CAP_SIZE, PcieError, PortType } from '../src/index.js'
import { ep, fabric, NVME } from './helpers.js'

function built() {
  const f = fabric()
  const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  const rp = hb.addRootPort({ name: 'rp0', acs: { requestRedirect: true } })
  f.addEndpoint(rp, {
    name: 'nvme0',
    functions: [
      {
        ...NVME,
        bars: [
          { index: 0, size: 16384, kind: 'registers' },
          { index: 4, size: 2 ** 33, kind: 'registers' },
        ],
        msix: { vectors: 33, bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 },
        sriov: { totalVfs: 8, vfDeviceId: 0x11 },
      },
    ],
  })
  f.enumerate()
  return { f, rp, nvme: f.get('nvme0') }
}

describe('configuration space', () => {
  it('identifies the function: vendor, device, class code, header type', () => {
    const { nvme, rp } = built()
    const c = nvme.config
    expect(c.read(Cfg.VENDOR, 2)).toBe(0x1b36)
    expect(c.read(Cfg.DEVICE, 2)).toBe(0x0010)
    expect(c.read(Cfg.VENDOR, 4)).toBe(0x00101b36)
    expect(c.read(Cfg.CLASS, 1)).toBe(0x02) // prog-if
    expect(c.read(Cfg.CLASS + 1, 2)).toBe(0x0108) // mass storage, NVM
    expect(c.read(Cfg.HEADER_TYPE, 1)).toBe(0)
    expect(rp.config.read(Cfg.HEADER_TYPE, 1)).toBe(1)
    expect(nvme.portType).toBe(PortType.Endpoint)
    expect(rp.portType).toBe(PortType.RootPort)
  })

  it('ignores writes to read-only fields and keeps the writable bits of command', () => {
    const { nvme } = built()
    const c = nvme.config
    c.write(Cfg.VENDOR, 4, 0xdeadbeef)
    expect(c.read(Cfg.VENDOR, 4)).toBe(0x00101b36)
    c.write(Cfg.COMMAND, 2, 0xffff)
    expect(c.read(Cfg.COMMAND, 2)).toBe(Command.MemorySpace | Command.BusMaster)
  })

  it('status error bits are write-1-to-clear; the capabilities-list bit is read-only', () => {
    const { nvme } = built()
    const c = nvme.config
    c.set(Cfg.STATUS, 2, 0x10 | 0x2000 | 0x0100, 0, 0xf900) // received master abort, data parity
    c.write(Cfg.STATUS, 2, 0x2000)
    expect(c.read(Cfg.STATUS, 2)).toBe(0x10 | 0x0100)
    c.write(Cfg.STATUS, 2, 0xffff)
    expect(c.read(Cfg.STATUS, 2)).toBe(0x10)
  })

  it('sizes a 64-bit BAR: write all ones, read back the size mask and the type bits', () => {
    const { nvme, f } = built()
    const c = nvme.config
    const bar0 = f.barAddress(nvme, 0)
    expect(bar0 % 16384).toBe(0)
    expect(barAddress(c, 0)).toBe(bar0)
    // type bits: 64-bit (0b10 << 1), not prefetchable (register BAR)
    expect(c.read(Cfg.BAR0, 4) & 0xf).toBe(0x4)
    c.write(Cfg.BAR0, 4, 0xffffffff)
    c.write(Cfg.BAR0 + 4, 4, 0xffffffff)
    expect(c.read(Cfg.BAR0, 4)).toBe(((~(16384 - 1) & 0xfffffff0) | 0x4) >>> 0)
    expect(c.read(Cfg.BAR0 + 4, 4)).toBe(0xffffffff)
    // an 8 GiB BAR: the low dword has no address bits; the high one masks bit 0
    c.write(Cfg.BAR0 + 16, 4, 0xffffffff)
    c.write(Cfg.BAR0 + 20, 4, 0xffffffff)
    expect(c.read(Cfg.BAR0 + 16, 4)).toBe(0x4)
    expect(c.read(Cfg.BAR0 + 20, 4)).toBe(0xfffffffe)
  })

  it('a BAR decodes where software programs it, and not while memory space is disabled', () => {
    const { nvme, f } = built()
    const c = nvme.config
    c.write(Cfg.COMMAND, 2, Command.BusMaster)
    expect(f.barAddress(nvme, 0)).toBe(-1)
    const at = 2 ** 38 + 2 ** 34 // inside the host bridge window, not overlapping BAR4
    c.write(Cfg.BAR0, 4, at % 2 ** 32)
    c.write(Cfg.BAR0 + 4, 4, Math.floor(at / 2 ** 32))
    expect(f.barAddress(nvme, 0)).toBe(-1)
    c.write(Cfg.COMMAND, 2, Command.BusMaster | Command.MemorySpace)
    expect(f.barAddress(nvme, 0)).toBe(at)
    expect(f.decode(at + 8)?.fn).toBe(nvme)
  })

  it('walks the capability list: PCI Express, then MSI-X; extended: SR-IOV', () => {
    const { nvme, rp } = built()
    const c = nvme.config
    const ids: number[] = []
    for (let at = c.read(Cfg.CAP_PTR, 1); at !== 0; at = c.read(at + 1, 1)) ids.push(c.read(at, 1))
    expect(ids).toEqual([CapId.PciExpress, CapId.MsiX])
    const msix = c.findCapability(CapId.MsiX)
    expect(c.read(msix + 2, 2) & 0x7ff).toBe(33 - 1)
    expect(c.read(msix + 4, 4)).toBe(0x2000 | 0) // table offset | BIR
    expect(c.read(msix + 8, 4)).toBe(0x3000 | 0)
    expect(c.findExtendedCapability(ExtCapId.SrIov)).toBe(0x100)
    expect(c.findExtendedCapability(ExtCapId.Acs)).toBe(0)
    // ACS capability: all of SV, RR, CR, UF, EC advertised; RR set in control
    const acs = rp.config.findExtendedCapability(ExtCapId.Acs)
    expect(acs).toBe(0x100)
    expect(rp.config.read(acs + 4, 2)).toBe(AcsBit.SourceValidation | AcsBit.RequestRedirect | AcsBit.CompletionRedirect | AcsBit.UpstreamForwarding | AcsBit.EgressControl)
    expect(rp.config.read(acs + 6, 2)).toBe(AcsBit.RequestRedirect)
    expect(rp.hasAcsRedirect()).toBe(true)
    // control bits are writable (the ones advertised), the rest are not
    rp.config.write(acs + 6, 2, 0xffff)
    expect(rp.config.read(acs + 6, 2)).toBe(0x3d)
    expect(MSIX_CAP_SIZE).toBe(12)
  })

  it('rejects config accesses of a bad size, misaligned or outside 4 KiB with PCIE_BAD_ACCESS', () => {
    const c = new ConfigSpace()
    for (const [off, size] of [
      [0, 3],
      [1, 2],
      [2, 4],
      [4094, 4],
      [4096, 1],
      [-1, 1],
      [0.5, 1],
    ] as const) {
      expect(() => c.read(off, size as 1), `${off}+${size}`).toThrow(PcieError)
      try {
        c.write(off, size as 1, 0)
      } catch (e) {
        expect((e as PcieError).code).toBe('PCIE_BAD_ACCESS')
      }
    }
  })

  it('defineBar64 rejects sizes that are not powers of two', () => {
    const c = new ConfigSpace()
    expect(() => defineBar64(c, 0, 3 * 4096, false)).toThrow(RangeError)
    expect(() => defineBar64(c, 0, 8, false)).toThrow(RangeError)
  })

  it('SR-IOV: setting NumVFs and VF Enable creates the VFs at First VF Offset + n x Stride; clearing removes them', () => {
    const { nvme, f } = built()
    const at = nvme.config.findExtendedCapability(ExtCapId.SrIov)
    expect(nvme.config.read(at + 0x0e, 2)).toBe(8) // TotalVFs
    nvme.config.write(at + 0x10, 2, 3)
    expect(nvme.numVfs).toBe(0) // not enabled yet
    nvme.config.write(at + 0x08, 2, 1)
    expect(nvme.virtfns.map((v) => v.rid - nvme.rid)).toEqual([1, 2, 3])
    expect(f.byRid(nvme.rid + 2)).toBe(f.get('nvme0v1'))
    expect(f.get('nvme0v0').deviceId).toBe(0x11)
    expect(f.get('nvme0v0').physfn).toBe(nvme)
    expect(f.render()).toContain('00.3  nvme0v2 [1b36:0011]')
    // more than TotalVFs is clamped
    nvme.config.write(at + 0x08, 2, 0)
    expect(nvme.numVfs).toBe(0)
    expect(() => f.get('nvme0v0')).toThrow(RangeError)
    nvme.config.write(at + 0x10, 2, 200)
    nvme.config.write(at + 0x08, 2, 1)
    expect(nvme.numVfs).toBe(8)
    // the render lists the VFs as functions of the bus, in devfn order
    expect(f.render()).toContain('\\-01.0  nvme0v7 [1b36:0011]')
  })

  it('an endpoint below a port: one device (device 0) per link', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    const rp = hb.addRootPort({ name: 'rp0' })
    f.addEndpoint(rp, ep('a'))
    expect(() => f.addEndpoint(rp, ep('b'))).toThrow(/already has a device/)
  })
})
