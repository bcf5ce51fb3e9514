// The IOMMU between PCI functions and host memory: one context per requester ID
// (bus/device/function), each a page table of 4 KiB pages from IOVA to host physical
// address (HPA) with read and write permissions, or identity mode (IOMMU off for that
// function). A DMA is translated in full before any byte moves: an unmapped page, or a
// write to a read-only one, faults the whole DMA, and the fault (address, requester,
// access) is recorded. No byte outside a mapping is ever read or written.
//
// IOVAs are below 2^48 (4-level x86 paging); the table is a 3-level radix of 12 bits each
// over the 36-bit page number, with 32-bit leaf entries:
//
//   IOVA  | L1 index (12) | L2 index (12) | L3 index (12) | page offset (12) |
//   leaf  | host physical page number (36)                       | W | R |   (a double:
//          page number x 4 + access bits, exact below 2^53)
//
// Host physical addresses name host DRAM (HPA 0 = its first byte) and any windows added
// for peer-to-peer (a device BAR at a bus address).
import { checkInt, rangeError, typeError } from '@ipukit/kernels'
import { IoVecList } from './iov.js'
import { PAGE, type PhysicalMemory, type Region } from './physical-memory.js'
import { Status } from './status.js'

export const Access = { Read: 1, Write: 2 } as const
export type AccessBits = 1 | 2 | 3

export interface IommuFault {
  /** requester ID: bus << 8 | device << 3 | function */
  readonly requester: number
  /** the IOVA of the first byte that could not be accessed */
  readonly iova: number
  readonly access: 'read' | 'write'
  readonly reason: 'unmapped' | 'read-only' | 'write-only' | 'out of range'
}

const IOVA_LIMIT = 2 ** 48
const L = 4096 // entries per level

/** A requester ID from bus, device and function numbers. */
export function requesterId(bus: number, device: number, fn: number): number {
  checkInt('bus', bus, 0, 255)
  checkInt('device', device, 0, 31)
  checkInt('function', fn, 0, 7)
  return (bus << 8) | (device << 3) | fn
}

/** Formats a requester ID as bb:dd.f. */
export function formatRequester(rid: number): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0')
  return `${h(rid >> 8, 2)}:${h((rid >> 3) & 31, 2)}.${rid & 7}`
}

class Context {
  identity = false
  readonly l1: (Float64Array[] | undefined)[] = new Array(L)
  mappedPages = 0
}

interface Window {
  hpa: number
  size: number
  base: number // address in the memory
}

export class Iommu {
  readonly physical: PhysicalMemory
  readonly #contexts: (Context | undefined)[] = new Array(65536)
  readonly #windows: Window[] = []
  readonly #log: IommuFault[] = []
  readonly #logSize: number
  #faults = 0

  constructor(physical: PhysicalMemory, options: { faultLogSize?: number } = {}) {
    this.physical = physical
    this.#logSize = options.faultLogSize ?? 64
    checkInt('faultLogSize', this.#logSize, 1, 1 << 20)
    const host = physical.region('host')
    this.#windows.push({ hpa: 0, size: host.size, base: host.base })
  }

  /**
   * Makes a region (a device window) reachable at host physical address `hpa`, as a BAR
   * programmed at that bus address is (peer-to-peer DMA goes through the same tables).
   * `size` defaults to the region's; a BAR smaller than its region exposes its first bytes.
   */
  addWindow(hpa: number, region: Region, size = region.size): void {
    checkInt('size', size, PAGE, region.size)
    checkInt('hpa', hpa, 0, IOVA_LIMIT - size)
    if (hpa % PAGE !== 0 || size % PAGE !== 0) throw rangeError(`hpa and size must be page aligned, got ${hpa} and ${size}`)
    for (const w of this.#windows) {
      if (hpa < w.hpa + w.size && w.hpa < hpa + size) throw rangeError(`window at ${hpa} overlaps host physical [${w.hpa}, ${w.hpa + w.size})`)
    }
    this.#windows.push({ hpa, size, base: region.base })
  }

  /** Removes the window added at `hpa` (a BAR moved or stopped decoding). */
  removeWindow(hpa: number): void {
    const i = this.#windows.findIndex((w, k) => k > 0 && w.hpa === hpa)
    if (i < 0) throw rangeError(`no window at host physical ${hpa}`)
    this.#windows.splice(i, 1)
  }

  #ctx(rid: number): Context {
    checkInt('requester', rid, 0, 0xffff)
    let c = this.#contexts[rid]
    if (c === undefined) c = this.#contexts[rid] = new Context()
    return c
  }

  /** Turns translation off (identity: IOVA = HPA) or on for one function. Default: on. */
  setIdentity(rid: number, identity: boolean): void {
    if (typeof identity !== 'boolean') throw typeError('identity must be a boolean')
    this.#ctx(rid).identity = identity
  }

  isIdentity(rid: number): boolean {
    return this.#contexts[rid]?.identity ?? false
  }

  /**
   * Maps [iova, iova + length) to [hpa, hpa + length) for `rid` with `access` (1 read,
   * 2 write, 3 both). Page aligned; the range must be unmapped and the HPAs must exist.
   */
  map(rid: number, iova: number, hpa: number, length: number, access: AccessBits | number): void {
    const c = this.#ctx(rid)
    checkInt('iova', iova, 0, IOVA_LIMIT)
    checkInt('hpa', hpa, 0, IOVA_LIMIT)
    checkInt('length', length, PAGE, IOVA_LIMIT - iova)
    if (access !== 1 && access !== 2 && access !== 3) throw rangeError(`access must be 1 (read), 2 (write) or 3, got ${String(access)}`)
    if (iova % PAGE || hpa % PAGE || length % PAGE) throw rangeError('iova, hpa and length must be multiples of 4096')
    for (let off = 0; off < length; off += PAGE) {
      if (this.#resolve(hpa + off, PAGE) < 0) throw rangeError(`hpa ${hpa + off} is not host memory or a window`)
      if (this.#leaf(c, iova + off) !== 0) throw rangeError(`iova ${iova + off} is already mapped for ${formatRequester(rid)}`)
    }
    for (let off = 0; off < length; off += PAGE) {
      const vpn = (iova + off) / PAGE
      const l1 = Math.floor(vpn / (L * L))
      const l2 = Math.floor(vpn / L) % L
      let t2 = c.l1[l1]
      if (t2 === undefined) t2 = c.l1[l1] = new Array(L)
      let t3 = t2[l2]
      if (t3 === undefined) t3 = t2[l2] = new Float64Array(L)
      t3[vpn % L] = ((hpa + off) / PAGE) * 4 + access
    }
    c.mappedPages += length / PAGE
  }

  /** Unmaps [iova, iova + length) for `rid` (pages not mapped are ignored). */
  unmap(rid: number, iova: number, length: number): void {
    const c = this.#ctx(rid)
    checkInt('iova', iova, 0, IOVA_LIMIT)
    checkInt('length', length, 0, IOVA_LIMIT - iova)
    if (iova % PAGE || length % PAGE) throw rangeError('iova and length must be multiples of 4096')
    for (let off = 0; off < length; off += PAGE) {
      const vpn = (iova + off) / PAGE
      const t3 = c.l1[Math.floor(vpn / (L * L))]?.[Math.floor(vpn / L) % L]
      if (t3 !== undefined && t3[vpn % L] !== 0) {
        t3[vpn % L] = 0
        c.mappedPages--
      }
    }
  }

  #leaf(c: Context, iova: number): number {
    const vpn = Math.floor(iova / PAGE)
    const t2 = c.l1[Math.floor(vpn / (L * L))]
    if (t2 === undefined) return 0
    const t3 = t2[Math.floor(vpn / L) % L]
    return t3 === undefined ? 0 : t3[vpn % L]!
  }

  /** The memory address of host physical [hpa, hpa + n), or -1 if it is not in one window. */
  #resolve(hpa: number, n: number): number {
    const w0 = this.#windows[0]!
    if (hpa >= 0 && hpa + n <= w0.size) return w0.base + hpa
    for (let i = 1; i < this.#windows.length; i++) {
      const w = this.#windows[i]!
      if (hpa >= w.hpa && hpa + n <= w.hpa + w.size) return w.base + (hpa - w.hpa)
    }
    return -1
  }

  /**
   * Translates the DMA [iova, iova + length) of `rid` for `access` into memory addresses,
   * appended to `out` (merged where contiguous). Returns Status.Ok, or Status.Fault with
   * the fault recorded (and `out` left as it was).
   */
  translate(rid: number, iova: number, length: number, access: AccessBits | number, out: IoVecList): number {
    const one = this.#one
    one.addr[0] = iova
    one.len[0] = length
    one.count = length > 0 ? 1 : 0
    return this.translateIovs(rid, one, access, out)
  }

  readonly #one = new IoVecList(1)

  /**
   * translate() for a whole iovec list of IOVAs (a DMA's scatter-gather list): all of it
   * or nothing. The table walk is inlined and reads IOVAs from the list's typed arrays,
   * so a translation allocates nothing.
   */
  translateIovs(rid: number, iovs: IoVecList, access: AccessBits | number, out: IoVecList): number {
    const c = this.#contexts[rid]
    const start = out.count
    for (let i = 0; i < iovs.count; i++) {
      const a = iovs.addr[i]!
      const n = iovs.len[i]!
      if (!(a >= 0 && n >= 0 && a + n <= IOVA_LIMIT)) return this.#fault(rid, a, access, 'out of range', out, start)
    }
    if (c === undefined) return iovs.count > 0 ? this.#fault(rid, iovs.addr[0]!, access, 'unmapped', out, start) : Status.Ok
    if (c.identity) return this.#identity(rid, iovs, access, out, start)
    const l1 = c.l1
    const w0 = this.#windows[0]!
    const hostSize = w0.size
    const hostBase = w0.base
    const outAddr = out.addr
    const outLen = out.len
    const cap = outAddr.length
    let count = out.count
    for (let i = 0; i < iovs.count; i++) {
      let at = iovs.addr[i]!
      let left = iovs.len[i]!
      while (left > 0) {
        const vpn = Math.floor(at / PAGE)
        const table = Math.floor(vpn / L) // which leaf table
        const t2 = l1[Math.floor(table / L)]
        const t3 = t2 === undefined ? undefined : t2[table % L]
        if (t3 === undefined) return this.#fault(rid, at, access, 'unmapped', out, start)
        let idx = vpn - table * L
        let off = at - vpn * PAGE
        // the pages of this leaf table, one after the other
        while (left > 0 && idx < L) {
          const leaf = t3[idx]!
          if (leaf === 0) return this.#fault(rid, at, access, 'unmapped', out, start)
          if ((leaf & access) !== access) return this.#fault(rid, at, access, (leaf & 2) === 0 ? 'read-only' : 'write-only', out, start)
          const room = PAGE - off
          const n = left < room ? left : room
          const hpa = (leaf - (leaf & 3)) * 1024 + off // page number x 4096, plus the offset
          const addr = hpa + n <= hostSize ? hostBase + hpa : this.#resolve(hpa, n)
          if (count > 0 && outAddr[count - 1]! + outLen[count - 1]! === addr) outLen[count - 1] = outLen[count - 1]! + n
          else {
            if (count === cap) {
              out.count = count
              out.push(addr, n) // throws: the list is full
            }
            outAddr[count] = addr
            outLen[count] = n
            count++
          }
          at += n
          left -= n
          off = 0
          idx++
        }
      }
    }
    out.count = count
    return Status.Ok
  }

  #identity(rid: number, iovs: IoVecList, access: number, out: IoVecList, start: number): number {
    // identity: the IOVA is the HPA; it still has to be memory
    for (let i = 0; i < iovs.count; i++) {
      let at = iovs.addr[i]!
      let left = iovs.len[i]!
      while (left > 0) {
        const base = this.#resolve(at, 1)
        if (base < 0) return this.#fault(rid, at, access, 'out of range', out, start)
        const w = this.#windowOf(at)
        const n = Math.min(left, w.hpa + w.size - at)
        out.pushMerged(base, n)
        at += n
        left -= n
      }
    }
    return Status.Ok
  }

  #windowOf(hpa: number): Window {
    for (const w of this.#windows) if (hpa >= w.hpa && hpa < w.hpa + w.size) return w
    throw new Error('unreachable')
  }

  #fault(rid: number, iova: number, access: number, reason: IommuFault['reason'], out: IoVecList, start: number): number {
    out.count = start
    this.#faults++
    const f: IommuFault = { requester: rid, iova, access: access & 2 ? 'write' : 'read', reason }
    if (this.#log.length === this.#logSize) this.#log.shift()
    this.#log.push(f)
    return Status.Fault
  }

  /** Faults so far. */
  get faultCount(): number {
    return this.#faults
  }

  /** The most recent faults, oldest first (at most faultLogSize). */
  get faults(): readonly IommuFault[] {
    return this.#log
  }

  get lastFault(): IommuFault | undefined {
    return this.#log[this.#log.length - 1]
  }

  /** Pages mapped for a requester. */
  mappedPages(rid: number): number {
    return this.#contexts[rid]?.mappedPages ?? 0
  }
}
