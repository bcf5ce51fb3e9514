// Building and enumerating fabrics, the lspci rendering, and MMIO dispatch through BARs:
// sizes, alignment, bounds, and isolation between devices.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Cfg, Command, PcieError, type PciFunction, type RegisterHandler } from '../src/index.js'
import { ep, fabric, fuzzRuns, memoryFabric, NVME, thrownCode } from './helpers.js'

/** A register file that records what reached it. */
class Recorder implements RegisterHandler {
  readonly regs = new Uint8Array(16384)
  readonly log: string[] = []
  constructor(readonly id: string) {}
  read(offset: number, size: 1 | 2 | 4): number {
    this.log.push(`r${size}@${offset}`)
    let v = 0
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.regs[offset + i]!
    return v
  }
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    this.log.push(`w${size}@${offset}=${value}`)
    for (let i = 0; i < size; i++) this.regs[offset + i] = (value >>> (8 * i)) & 0xff
  }
}

function twoDevices() {
  const f = fabric()
  const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  const r0 = new Recorder('nvme0')
  const r1 = new Recorder('nvme1')
  f.addEndpoint(hb.addRootPort({ name: 'rp0' }), { name: 'nvme0', functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers', handler: r0 }] }] })
  f.addEndpoint(hb.addRootPort({ name: 'rp1' }), { name: 'nvme1', functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers', handler: r1 }] }] })
  f.enumerate()
  return { f, r0, r1, n0: f.get('nvme0'), n1: f.get('nvme1') }
}

const code = thrownCode

describe('enumeration', () => {
  it('numbers buses depth first and programs primary, secondary and subordinate', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    const rp0 = hb.addRootPort({ name: 'rp0' })
    const sw = f.addSwitch(rp0, { name: 'sw0', downstreamPorts: ['dsp0', 'dsp1'] })
    f.addEndpoint(sw.downstream[0]!, ep('a'))
    f.addEndpoint(sw.downstream[1]!, ep('b'))
    const rp1 = hb.addRootPort({ name: 'rp1' })
    f.addEndpoint(rp1, ep('c'))
    f.enumerate()
    const buses = (x: PciFunction) => [x.config.read(Cfg.PRIMARY_BUS, 1), x.config.read(Cfg.SECONDARY_BUS, 1), x.config.read(Cfg.SUBORDINATE_BUS, 1)]
    expect(buses(rp0)).toEqual([0, 1, 4])
    expect(buses(sw.upstream)).toEqual([1, 2, 4])
    expect(buses(sw.downstream[0]!)).toEqual([2, 3, 3])
    expect(buses(sw.downstream[1]!)).toEqual([2, 4, 4])
    expect(buses(rp1)).toEqual([0, 5, 5])
    expect(f.get('a').bdf).toBe('0000:03:00.0')
    expect(f.get('b').rid).toBe(0x0400)
    expect(f.get('c').bdf).toBe('0000:05:00.0')
    expect(rp1.bdf).toBe('0000:00:02.0')
    expect(f.byRid(0x0300)).toBe(f.get('a'))
    expect(f.render()).toBe(
      [
        '-[0000:00]-+-00.0  hb0 [8086:2020]',
        '           +-01.0-[01-04]----00.0-[02-04]--+-00.0-[03]----00.0  a [1b36:0010]',
        '           |                               \\-01.0-[04]----00.0  b [1b36:0010]',
        '           \\-02.0-[05]----00.0  c [1b36:0010]',
      ].join('\n'),
    )
  })

  it('renders several host bridges and empty ports as lspci does', () => {
    const f = fabric()
    const h0 = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    h0.addRootPort({ name: 'rp0' })
    const h1 = f.addHostBridge({ name: 'hb1', vendorId: 0x8086, deviceId: 0x2020, bus: 0x80 })
    f.addEndpoint(h1.addRootPort({ name: 'rp1' }), { name: 'gpu', functions: [{ vendorId: 0x10de, deviceId: 0x2330, name: 'gpu.0' }, { vendorId: 0x10de, deviceId: 0x22a3, name: 'gpu.1' }] })
    f.enumerate()
    expect(f.render()).toBe(
      [
        '-+-[0000:00]-+-00.0  hb0 [8086:2020]',
        ' |           \\-01.0-[01]--',
        ' \\-[0000:80]-+-00.0  hb1 [8086:2020]',
        '             \\-01.0-[81]--+-00.0  gpu.0 [10de:2330]',
        '                          \\-00.1  gpu.1 [10de:22a3]',
      ].join('\n'),
    )
    // a multi-function device sets the multi-function bit in function 0's header type
    expect(f.get('gpu.0').config.read(Cfg.HEADER_TYPE, 1)).toBe(0x80)
  })

  it('assigns BARs naturally aligned, inside each host bridge window, without overlap', () => {
    const { fabric: f } = memoryFabric([{ name: 'cmb', size: 1 << 21 }])
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), {
      name: 'n',
      functions: [
        {
          ...NVME,
          bars: [
            { index: 0, size: 16384, kind: 'registers' },
            { index: 2, size: 1 << 21, kind: 'memory', region: 'cmb' },
            { index: 4, size: 1 << 16, kind: 'registers' },
          ],
        },
      ],
    })
    f.enumerate()
    const n = f.get('n')
    const spans = n.bars.map((b) => [b.address, b.address + b.size] as const).sort((x, y) => x[0] - y[0])
    for (const b of n.bars) expect(b.address % b.size, `BAR ${b.index}`).toBe(0)
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1])
    expect(n.config.read(Cfg.COMMAND, 2)).toBe(Command.MemorySpace | Command.BusMaster)
  })

  it.each([
    ['a name used twice', (f: ReturnType<typeof fabric>) => f.addEndpoint(f.addHostBridge({ name: 'x', vendorId: 1, deviceId: 1 }).addRootPort({ name: 'x' }), ep('y')), /used twice/],
    ['nine functions', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint(ep('e', {}, 9)), /1 to 8 functions/],
    ['a device number taken', (f: ReturnType<typeof fabric>) => {
      const h = f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 })
      h.addRootPort({ name: 'p', device: 3 })
      h.addRootPort({ name: 'q', device: 3 })
    }, /device number 3 is taken/],
    ['a link of gen 7', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addRootPort({ name: 'p', link: { gen: 7 as 1, width: 4 } }), /gen must be 1 to 6/],
    ['a switch on a root bus', (f: ReturnType<typeof fabric>) => {
      const h = f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 })
      f.attachSwitch(h.rootBus, { name: 's', downstreamPorts: ['d'] })
    }, /below a root port or a downstream port/],
    ['an endpoint below an endpoint', (f: ReturnType<typeof fabric>) => {
      const h = f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 })
      h.addEndpoint(ep('e'))
      f.addEndpoint(f.get('e'), ep('x'))
    }, /not a root or downstream port/],
    ['a BAR of odd index', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint({ name: 'e', functions: [{ ...NVME, bars: [{ index: 1, size: 4096, kind: 'registers' }] }] }), /even indexes/],
    ['a BAR size not a power of two', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint({ name: 'e', functions: [{ ...NVME, bars: [{ index: 0, size: 12288, kind: 'registers' }] }] }), /not a power of two/],
    ['a memory BAR without physical memory', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint({ name: 'e', functions: [{ ...NVME, bars: [{ index: 0, size: 4096, kind: 'memory', region: 'r' }] }] }), /need the fabric's physical memory/],
    ['MSI-X in a BAR that does not exist', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint({ name: 'e', functions: [{ ...NVME, msix: { vectors: 4, bar: 2, tableOffset: 0, pbaOffset: 64 } }] }), /not one of its register BARs/],
    ['an MSI-X table past its BAR', (f: ReturnType<typeof fabric>) => f.addHostBridge({ name: 'h', vendorId: 1, deviceId: 1 }).addEndpoint({ name: 'e', functions: [{ ...NVME, bars: [{ index: 0, size: 4096, kind: 'registers' }], msix: { vectors: 300, bar: 0, tableOffset: 0, pbaOffset: 4000 } }] }), /runs past/],
  ] as const)('rejects %s with PCIE_BAD_TOPOLOGY', (_name, build, message) => {
    const f = fabric()
    let err: unknown
    try {
      build(f)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PcieError)
    expect((err as PcieError).code).toBe('PCIE_BAD_TOPOLOGY')
    expect((err as Error).message).toMatch(message)
  })

  it('numbers buses per domain, and refuses a fabric that needs more than 256 buses in one', () => {
    const build = (domains: number[]) => {
      const f = fabric()
      domains.forEach((domain, i) => {
        const hb = f.addHostBridge({ name: `hb${i}`, vendorId: 0x8086, deviceId: 0x2020, domain })
        for (let r = 0; r < 6; r++) {
          const sw = f.addSwitch(hb.addRootPort({ name: `rp${i}.${r}` }), { name: `sw${i}.${r}`, downstreamPorts: Array.from({ length: 30 }, (_, k) => `d${i}.${r}.${k}`) })
          sw.downstream.forEach((d, k) => f.addEndpoint(d, ep(`e${i}.${r}.${k}`)))
        }
      })
      return f
    }
    // 6 x (2 + 30) = 192 buses per host bridge: two fit in two domains, not in one
    const f = build([0, 1]).enumerate()
    expect(f.get('e1.0.0').bdf).toBe('0001:03:00.0')
    expect(f.get('e0.0.0').bdf).toBe('0000:03:00.0')
    expect(f.byRid(0x0300, 1)).toBe(f.get('e1.0.0'))
    expect(() => build([0, 0]).enumerate()).toThrow(/a domain has 256/)
  })

  it('is built completely before enumeration and not changed after', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    f.enumerate()
    expect(code(() => hb.addRootPort({ name: 'late' }))).toBe('PCIE_BAD_TOPOLOGY')
    expect(code(() => f.enumerate())).toBe('PCIE_BAD_TOPOLOGY')
  })
})

describe('MMIO through register BARs', () => {
  it('dispatches reads and writes of 1, 2, 4 and 8 bytes to the handler at the BAR offset', () => {
    const { f, r0, n0 } = twoDevices()
    const base = f.barAddress(n0, 0)
    f.mmioWrite(base + 0x14, 4, 0x00460001)
    f.mmioWrite(base + 0x20, 2, 0xbeef)
    f.mmioWrite(base + 0x23, 1, 0x7f)
    f.mmioWrite64(base + 0x28, 0x0123_4567_89ab_cdefn)
    expect(f.mmioRead(base + 0x14, 4)).toBe(0x00460001)
    expect(f.mmioRead(base + 0x16, 2)).toBe(0x0046)
    expect(f.mmioRead(base + 0x20, 1)).toBe(0xef)
    expect(f.mmioRead(base + 0x23, 1)).toBe(0x7f)
    expect(f.mmioRead64(base + 0x28)).toBe(0x0123_4567_89ab_cdefn)
    // without read64/write64, an 8-byte access is two 4-byte ones, low dword first
    expect(r0.log.slice(0, 5)).toEqual([`w4@${0x14}=${0x00460001}`, `w2@${0x20}=${0xbeef}`, `w1@${0x23}=${0x7f}`, `w4@${0x28}=${0x89abcdef}`, `w4@${0x2c}=${0x01234567}`])
  })

  it('uses read64/write64 when the handler has them', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    const seen: string[] = []
    const h: RegisterHandler = {
      read: () => 0,
      write: () => {},
      read64: (off) => (seen.push(`r8@${off}`), 0x1122334455667788n),
      write64: (off, v) => void seen.push(`w8@${off}=${v}`),
    }
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), { name: 'n', functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers', handler: h }] }] })
    f.enumerate()
    const base = f.barAddress(f.get('n'), 0)
    expect(f.mmioRead64(base + 0x28)).toBe(0x1122334455667788n)
    f.mmioWrite64(base, 5n)
    expect(seen).toEqual(['r8@40', 'w8@0=5'])
  })

  it('rejects a wrong size, a misaligned access, one past the end of the BAR, and an unclaimed address', () => {
    const { f, r0, r1, n0, n1 } = twoDevices()
    const base = f.barAddress(n0, 0)
    expect(f.barAddress(n1, 0)).toBe(base + 16384) // adjacent: the last byte of nvme0's BAR is next to nvme1's
    expect(code(() => f.mmioRead(base, 3 as 1))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => f.mmioWrite(base + 2, 4, 0))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => f.mmioRead(base + 1, 2))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => f.mmioRead64(base + 4))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => f.mmioRead(base + 2 * 16384, 4))).toBe('PCIE_UNCLAIMED')
    expect(code(() => f.mmioRead(base - 4, 4))).toBe('PCIE_UNCLAIMED')
    expect(code(() => f.mmioRead(12, 4))).toBe('PCIE_UNCLAIMED')
    expect(code(() => f.mmioRead(Number.NaN, 4))).toBe('PCIE_BAD_ACCESS')
    expect(r0.log).toEqual([]) // none of them reached a device
    expect(r1.log).toEqual([])
    // memory space disabled: the BAR master-aborts
    n0.config.write(Cfg.COMMAND, 2, Command.BusMaster)
    expect(code(() => f.mmioRead(base, 4))).toBe('PCIE_UNCLAIMED')
    n0.config.write(Cfg.COMMAND, 2, Command.BusMaster | Command.MemorySpace)
    expect(f.mmioRead(base, 4)).toBe(0)
  })

  it("reaches a device's handler only through its own BAR (property: random accesses anywhere)", () => {
    const { f, r0, r1, n0, n1 } = twoDevices()
    const b0 = f.barAddress(n0, 0)
    const b1 = f.barAddress(n1, 0)
    const lo = Math.min(b0, b1) - 65536
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 * 65536 }), fc.constantFrom(1, 2, 4, 8), fc.boolean(), (off, size, write) => {
        const addr = lo + off
        r0.log.length = 0
        r1.log.length = 0
        let threw = false
        try {
          if (size === 8) {
            if (write) f.mmioWrite64(addr, 1n)
            else f.mmioRead64(addr)
          } else if (write) f.mmioWrite(addr, size as 1, 1)
          else f.mmioRead(addr, size as 1)
        } catch (e) {
          expect(e).toBeInstanceOf(PcieError)
          threw = true
        }
        const in0 = addr >= b0 && addr + size <= b0 + 16384 && addr % size === 0
        const in1 = addr >= b1 && addr + size <= b1 + 16384 && addr % size === 0
        expect(threw).toBe(!in0 && !in1)
        expect(r0.log.length > 0).toBe(in0)
        expect(r1.log.length > 0).toBe(in1)
        for (const l of [...r0.log, ...r1.log]) expect(Number(l.split('@')[1]!.split('=')[0])).toBe(addr - (in0 ? b0 : b1) + (l === r0.log[1] || l === r1.log[1] ? 4 : 0))
      }),
      { numRuns: fuzzRuns(3000) },
    )
  })

  it('an ioremap window reaches the same registers by offset, with the same checks, and follows the BAR', () => {
    const { f, r0, n0 } = twoDevices()
    const w = f.ioremap(n0, 0)
    expect(w.base).toBe(f.barAddress(n0, 0))
    expect(w.size).toBe(16384)
    w.write(0x14, 4, 0x460001)
    expect(f.mmioRead(w.base + 0x14, 4)).toBe(0x460001)
    expect(w.read(0x16, 2)).toBe(0x46)
    w.write64(0x28, 0xabcdn << 32n)
    expect(w.read64(0x28)).toBe(0xabcdn << 32n)
    r0.log.length = 0
    expect(code(() => w.read(16384, 4))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => w.read(16382, 4))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => w.read(-4, 4))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => w.read(2, 4))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => w.read(0, 3 as 1))).toBe('PCIE_BAD_ACCESS')
    expect(r0.log).toEqual([])
    n0.config.write(Cfg.COMMAND, 2, Command.BusMaster)
    expect(code(() => w.read(0, 4))).toBe('PCIE_UNCLAIMED')
    expect(w.base).toBe(-1)
    n0.config.write(Cfg.COMMAND, 2, Command.BusMaster | Command.MemorySpace)
    expect(w.read(0x14, 4)).toBe(0x460001)
    expect(() => f.ioremap(n0, 2)).toThrow(RangeError)
  })

  it('a BAR programmed over another stops decoding instead of stealing its accesses', () => {
    const { f, r0, r1, n0, n1 } = twoDevices()
    const b0 = f.barAddress(n0, 0)
    n1.config.write(Cfg.BAR0, 4, b0 % 2 ** 32)
    n1.config.write(Cfg.BAR0 + 4, 4, Math.floor(b0 / 2 ** 32))
    expect(n1.bars[0]!.conflict).toBe(true)
    f.mmioRead(b0, 4)
    expect(r0.log).toEqual(['r4@0'])
    expect(r1.log).toEqual([])
  })

  it('memory BARs read and write the device region', () => {
    const { fabric: f, physical } = memoryFabric([{ name: 'cmb', size: 1 << 16 }])
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), { name: 'n', functions: [{ ...NVME, bars: [{ index: 2, size: 1 << 16, kind: 'memory', region: 'cmb' }] }] })
    f.enumerate()
    const base = f.barAddress(f.get('n'), 2)
    f.mmioWrite(base + 8, 4, 0xa1b2c3d4)
    f.mmioWrite64(base + 16, 0x1122334455667788n)
    const cmb = physical.region('cmb')
    expect([...physical.bytes.subarray(cmb.base + 8, cmb.base + 12)]).toEqual([0xd4, 0xc3, 0xb2, 0xa1])
    expect(f.mmioRead(base + 9, 1)).toBe(0xc3)
    expect(f.mmioRead(base + 10, 2)).toBe(0xa1b2)
    expect(f.mmioRead64(base + 16)).toBe(0x1122334455667788n)
    expect(code(() => f.mmioRead(base + (1 << 16) - 2, 4))).toBe('PCIE_BAD_ACCESS')
  })
})
