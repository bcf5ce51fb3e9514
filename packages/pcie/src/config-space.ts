// A function's configuration space (PCI Local Bus 3.0 §6, PCIe Base 6.0 §7): 4 KiB, with
// per-byte write masks so that read-only fields ignore writes and BAR sizing falls out of
// the masks (write all-ones, read back ~(size - 1) | type bits), write-1-to-clear status
// bits, and the capability lists this model uses.
//
//   0x00  vendor | device          0x10..0x24  BAR0..BAR5 (type 0) or BAR0, BAR1, bus
//   0x04  command | status                     numbers at 0x18 (type 1)
//   0x08  revision | class code    0x34        capabilities pointer
//   0x0c  .. | header type | ..    0x40..      capabilities (PCI Express, MSI-X)
//                                  0x100..     extended capabilities (ACS, SR-IOV)
import { checkInt, rangeError } from '@ipukit/kernels'
import { PcieError } from './errors.js'

export const Cfg = {
  VENDOR: 0x00,
  DEVICE: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS: 0x09,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  PRIMARY_BUS: 0x18,
  SECONDARY_BUS: 0x19,
  SUBORDINATE_BUS: 0x1a,
  CAP_PTR: 0x34,
} as const

/** Command register bits. */
export const Command = { IoSpace: 1, MemorySpace: 2, BusMaster: 4 } as const

export const CapId = { PciExpress: 0x10, MsiX: 0x11 } as const
export const ExtCapId = { Acs: 0x000d, SrIov: 0x0010 } as const

/** PCI Express capability: device/port type (PCIe 6.0 §7.5.3.2). */
export const PortType = {
  Endpoint: 0x0,
  RootPort: 0x4,
  UpstreamPort: 0x5,
  DownstreamPort: 0x6,
  RootComplexIntegratedEndpoint: 0x9,
} as const

/** ACS Control bits (PCIe 6.0 §7.7.8.3). */
export const AcsBit = {
  SourceValidation: 1 << 0,
  TranslationBlocking: 1 << 1,
  RequestRedirect: 1 << 2,
  CompletionRedirect: 1 << 3,
  UpstreamForwarding: 1 << 4,
  EgressControl: 1 << 5,
  DirectTranslatedP2P: 1 << 6,
} as const

export class ConfigSpace {
  readonly bytes = new Uint8Array(4096)
  /** per byte: the bits software may write */
  readonly writable = new Uint8Array(4096)
  /** per byte: the bits a write of 1 clears */
  readonly w1c = new Uint8Array(4096)
  #nextCap = 0x40
  #lastCap = 0
  #nextExt = 0x100
  #lastExt = 0
  /** called after every write, with the offset and size written */
  onWrite: ((offset: number, size: number) => void) | undefined

  read(offset: number, size: 1 | 2 | 4): number {
    this.#check(offset, size)
    const b = this.bytes
    if (size === 1) return b[offset]!
    if (size === 2) return b[offset]! | (b[offset + 1]! << 8)
    return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    this.#check(offset, size)
    for (let i = 0; i < size; i++) {
      const v = (value >>> (8 * i)) & 0xff
      const at = offset + i
      const wm = this.writable[at]!
      const c = this.w1c[at]!
      let cur = this.bytes[at]!
      cur = (cur & ~wm) | (v & wm)
      cur &= ~(v & c)
      this.bytes[at] = cur
    }
    this.onWrite?.(offset, size)
  }

  #check(offset: number, size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) throw new PcieError('PCIE_BAD_ACCESS', `config access size must be 1, 2 or 4, got ${size}`)
    if (!Number.isInteger(offset) || offset < 0 || offset + size > 4096) {
      throw new PcieError('PCIE_BAD_ACCESS', `config offset ${offset} (+${size}) is outside the 4 KiB configuration space`)
    }
    if (offset % size !== 0) throw new PcieError('PCIE_BAD_ACCESS', `config access at ${offset} is not ${size}-byte aligned`)
  }

  /** Sets a field's initial value (and optionally its writable bits), bypassing masks. */
  set(offset: number, size: 1 | 2 | 4, value: number, writable = 0, w1c = 0): void {
    for (let i = 0; i < size; i++) {
      this.bytes[offset + i] = (value >>> (8 * i)) & 0xff
      this.writable[offset + i] = (writable >>> (8 * i)) & 0xff
      this.w1c[offset + i] = (w1c >>> (8 * i)) & 0xff
    }
  }

  /** Adds a capability of `length` bytes to the list at 0x34; returns its offset. */
  addCapability(id: number, length: number): number {
    const at = this.#nextCap
    if (at + length > 0x100) throw rangeError('no room left for capabilities below 0x100')
    this.set(at, 1, id)
    this.set(at + 1, 1, 0)
    if (this.#lastCap === 0) this.set(Cfg.CAP_PTR, 1, at)
    else this.set(this.#lastCap + 1, 1, at)
    this.#lastCap = at
    this.#nextCap = (at + length + 3) & ~3
    // status: capabilities list present
    this.bytes[Cfg.STATUS] = this.bytes[Cfg.STATUS]! | 0x10
    return at
  }

  /** Adds an extended capability (at 0x100 and up); returns its offset. */
  addExtendedCapability(id: number, version: number, length: number): number {
    const at = this.#nextExt
    if (at + length > 4096) throw rangeError('no room left for extended capabilities')
    this.set(at, 4, id | (version << 16))
    if (this.#lastExt !== 0) {
      const prev = this.read(this.#lastExt, 4)
      this.set(this.#lastExt, 4, (prev & 0xfffff) | (at << 20))
    }
    this.#lastExt = at
    this.#nextExt = (at + length + 3) & ~3
    return at
  }

  /** Offset of a capability by ID, or 0. */
  findCapability(id: number): number {
    let at = this.bytes[Cfg.CAP_PTR]!
    for (let guard = 0; at !== 0 && guard < 48; guard++) {
      if (this.bytes[at] === id) return at
      at = this.bytes[at + 1]!
    }
    return 0
  }

  /** Offset of an extended capability by ID, or 0. */
  findExtendedCapability(id: number): number {
    let at = 0x100
    for (let guard = 0; at !== 0 && guard < 64; guard++) {
      const h = this.read(at, 4)
      if (h === 0) return 0
      if ((h & 0xffff) === id) return at
      at = h >>> 20
    }
    return 0
  }
}

/** Sets up a BAR register pair's masks for a 64-bit memory BAR of `size` bytes (a power of two). */
export function defineBar64(cfg: ConfigSpace, index: number, size: number, prefetchable: boolean): void {
  checkInt('bar size', size, 16, 2 ** 52)
  if ((size & (size - 1)) !== 0 && size < 2 ** 31) throw rangeError(`BAR size must be a power of two, got ${size}`)
  const at = Cfg.BAR0 + 4 * index
  // low dword: bits [3:0] = type (64-bit memory, prefetchable flag); address bits writable above the size
  const typeBits = 0x4 | (prefetchable ? 0x8 : 0)
  const lowMask = size >= 2 ** 32 ? 0 : (~(size - 1) & 0xfffffff0) >>> 0
  cfg.set(at, 4, typeBits, lowMask)
  const highMask = size >= 2 ** 32 ? (~(size / 2 ** 32 - 1) & 0xffffffff) >>> 0 : 0xffffffff
  cfg.set(at + 4, 4, 0, highMask)
}

/** The bus address a 64-bit BAR decodes, from its two registers. */
export function barAddress(cfg: ConfigSpace, index: number): number {
  const at = Cfg.BAR0 + 4 * index
  const lo = cfg.read(at, 4) & 0xfffffff0
  const hi = cfg.read(at + 4, 4)
  return hi * 2 ** 32 + (lo >>> 0)
}
