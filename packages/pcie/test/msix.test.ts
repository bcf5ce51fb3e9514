// MSI-X: the table and PBA in a register BAR, per-vector and function masking, pending
// bits, and delivery to the host's interrupt controller (handlers and waiters).
import { drainCompletions } from '@ipukit/memory'
import { describe, expect, it } from 'vitest'
import { InterruptController, MSI_ADDRESS, MSIX_ENTRY_SIZE, MsixControl, type RegisterHandler } from '../src/index.js'
import { fabric, NVME, thrownCode } from './helpers.js'

function device(vectors = 70) {
  const f = fabric()
  const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  const regs: string[] = []
  const handler: RegisterHandler = { read: (o) => (regs.push(`r@${o}`), 0), write: (o) => void regs.push(`w@${o}`) }
  f.addEndpoint(hb.addRootPort({ name: 'rp0' }), {
    name: 'nvme0',
    functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers', handler }], msix: { vectors, bar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 } }],
  })
  f.enumerate()
  const fn = f.get('nvme0')
  const msix = fn.msix!
  const bar = f.barAddress(fn, 0)
  const entry = (v: number) => bar + 0x2000 + MSIX_ENTRY_SIZE * v
  /** what a host driver does: program the entry, unmask it, enable MSI-X */
  const program = (v: number, data: number) => {
    f.mmioWrite(entry(v), 4, MSI_ADDRESS)
    f.mmioWrite(entry(v) + 4, 4, 0)
    f.mmioWrite(entry(v) + 8, 4, data)
    f.mmioWrite(entry(v) + 12, 4, 0)
  }
  const control = (bits: number) => fn.config.write(msix.cap + 2, 2, bits)
  return { f, fn, msix, bar, entry, program, control, regs, ic: f.interrupts }
}

describe('MSI-X', () => {
  it('every vector starts masked; the PBA holds events until the host unmasks', () => {
    const d = device()
    const data = d.ic.allocate(70)
    for (let v = 0; v < 70; v++) expect(d.msix.masked(v)).toBe(true)
    d.control(MsixControl.Enable)
    expect(d.msix.signal(5)).toBe('pending')
    expect(d.msix.signal(65)).toBe('pending')
    // PBA: qword-granular bits, read as dwords
    expect(d.f.mmioRead(d.bar + 0x3000, 4)).toBe(1 << 5)
    expect(d.f.mmioRead(d.bar + 0x3008, 4)).toBe(1 << 1)
    expect(d.f.mmioRead64(d.bar + 0x3008)).toBe(2n)
    // programming vector 5 (unmasking it last) sends the held message and clears its bit
    d.program(5, data + 5)
    expect(d.ic.count(data + 5)).toBe(1)
    expect(d.msix.pending(5)).toBe(false)
    expect(d.msix.pending(65)).toBe(true)
    expect(d.regs).toEqual([]) // the table and PBA never reach the device's register handler
  })

  it('delivers to the interrupt controller: the handler runs after the signalling code, and waiters wake', async () => {
    const d = device()
    const data = d.ic.allocate()
    d.program(0, data)
    d.control(MsixControl.Enable)
    const ran: number[] = []
    d.ic.onInterrupt(data, (x) => ran.push(x))
    const woke = d.ic.wait(data)
    expect(d.msix.signal(0)).toBe('delivered')
    expect(ran).toEqual([]) // deferred: never inside signal()
    expect(d.ic.count(data)).toBe(1) // the counter moves at once (and another thread can Atomics.wait on it)
    await expect(woke).resolves.toBe(1)
    expect(ran).toEqual([data])
    expect(d.msix.delivered).toBe(1)
    // wait(data, seen) resolves at once when it is already past
    await expect(d.ic.wait(data, 0)).resolves.toBe(1)
  })

  it('the function mask holds every vector; clearing it sends what is pending', () => {
    const d = device()
    const data = d.ic.allocate(3)
    for (let v = 0; v < 3; v++) d.program(v, data + v)
    d.control(MsixControl.Enable | MsixControl.FunctionMask)
    expect(d.msix.functionMasked).toBe(true)
    expect(d.msix.signal(0)).toBe('pending')
    expect(d.msix.signal(2)).toBe('pending')
    expect(d.ic.count(data)).toBe(0)
    d.control(MsixControl.Enable)
    expect([d.ic.count(data), d.ic.count(data + 1), d.ic.count(data + 2)]).toEqual([1, 0, 1])
    drainCompletions()
  })

  it('masking a vector again holds it; the pending bit is set once however many events arrive', () => {
    const d = device()
    const data = d.ic.allocate()
    d.program(7, data)
    d.control(MsixControl.Enable)
    d.f.mmioWrite(d.entry(7) + 12, 4, 1)
    for (let i = 0; i < 5; i++) expect(d.msix.signal(7)).toBe('pending')
    d.f.mmioWrite(d.entry(7) + 12, 4, 0)
    expect(d.ic.count(data)).toBe(1)
    drainCompletions()
  })

  it('with MSI-X disabled nothing is sent or held; a message outside the interrupt window is stray', () => {
    const d = device()
    const data = d.ic.allocate()
    d.program(1, data)
    expect(d.msix.enabled).toBe(false)
    expect(d.msix.signal(1)).toBe('disabled')
    expect(d.msix.pending(1)).toBe(false)
    d.control(MsixControl.Enable)
    d.f.mmioWrite(d.entry(1), 4, 0x1000) // host DRAM, not the APIC window
    expect(d.msix.signal(1)).toBe('stray')
    d.f.mmioWrite(d.entry(1), 4, MSI_ADDRESS)
    d.f.mmioWrite(d.entry(1) + 8, 4, 4000) // data nothing allocated
    expect(d.msix.signal(1)).toBe('stray')
    expect(d.ic.strayCount).toBe(1)
    expect(d.ic.count(data)).toBe(0)
  })

  it('reads back the table as programmed; the address low bits and the control reserved bits read 0', () => {
    const d = device()
    d.f.mmioWrite(d.entry(3), 4, MSI_ADDRESS | 3)
    d.f.mmioWrite(d.entry(3) + 4, 4, 0x12)
    d.f.mmioWrite(d.entry(3) + 8, 4, 0xabcd)
    d.f.mmioWrite(d.entry(3) + 12, 4, 0xfffffffe)
    expect(d.msix.entry(3)).toEqual({ address: 0x12 * 2 ** 32 + MSI_ADDRESS, data: 0xabcd, masked: false })
    expect(d.f.mmioRead(d.entry(3) + 12, 4)).toBe(0)
    expect(d.f.mmioRead64(d.entry(3))).toBe((0x12n << 32n) | BigInt(MSI_ADDRESS))
  })

  it('takes only dword and qword accesses in the table and PBA; the PBA is read-only', () => {
    const d = device()
    const code = thrownCode
    expect(code(() => d.f.mmioRead(d.entry(0), 2))).toBe('PCIE_BAD_ACCESS')
    expect(code(() => d.f.mmioWrite(d.entry(0) + 1, 1, 0))).toBe('PCIE_BAD_ACCESS')
    d.control(MsixControl.Enable)
    d.msix.signal(0)
    d.f.mmioWrite(d.bar + 0x3000, 4, 0)
    expect(d.msix.pending(0)).toBe(true)
    expect(() => d.msix.signal(70)).toThrow(RangeError)
    expect(() => d.msix.signal(-1)).toThrow(RangeError)
  })

  it('lays out a table entry in 16 bytes and the capability in 12 (PCI 3.0 §6.8.2)', () => {
    expect(MSIX_ENTRY_SIZE).toBe(16)
    const d = device(2)
    const c = d.fn.config
    // the capability: id, next, control at +2, table offset/BIR at +4, PBA offset/BIR at +8
    expect(c.read(d.msix.cap, 1)).toBe(0x11)
    expect(c.read(d.msix.cap + 8, 4) & ~7).toBe(0x3000)
    // entry 1 starts 16 bytes after entry 0: its data word is at +24 of the table
    d.f.mmioWrite(d.entry(1) + 8, 4, 0x55)
    expect(d.f.mmioRead(d.bar + 0x2000 + 24, 4)).toBe(0x55)
  })

  it('an interrupt controller hands out distinct data values and refuses more than it has', () => {
    const ic = new InterruptController(8)
    expect(ic.allocate(3)).toBe(0)
    expect(ic.allocate(5)).toBe(3)
    expect(() => ic.allocate()).toThrow(RangeError)
    expect(() => ic.count(8)).toThrow(RangeError)
  })
})
