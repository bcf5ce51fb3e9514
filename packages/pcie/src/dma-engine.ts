// DMA as a PCI function does it. A function's memory requests carry addresses that the
// fabric routes:
//
//   - an address inside a peer's memory BAR, when Linux would map the pair BUS_ADDR (a
//     common switch, no ACS redirect), goes straight to the peer through the switch and
//     never meets the IOMMU;
//   - anything else climbs to the root complex, where the IOMMU translates it with the
//     requester's context: host DRAM, or a peer's BAR window, which the root complex
//     forwards only if the host bridges allow P2P (the allowlist or an AMD Zen CPU);
//     otherwise the request fails with Status.RemoteIo, as Linux's DMA mapping does.
//
// Translation covers the whole request before a byte moves (a fault or a refused route
// leaves memory untouched), and every DMA that completes is charged to the links it
// crossed and the memory it touched (./traffic.ts).
import { typeError } from '@ipukit/kernels'
import {
  Access,
  type AccessBits,
  type Completion,
  defer,
  iovCopy,
  IoVecList,
  iovZero,
  HostMemoryDomain,
  type MemoryDomain,
  type PhysicalMemory,
  Status,
  SystemMemoryDomain,
} from '@ipukit/memory'
import { PcieError } from './errors.js'
import { Charges } from './internal/charges.js'
import type { PciFabric, PciFunction } from './topology.js'

const ROUTE_HOST = 0 // through the root complex to host DRAM
const ROUTE_DIRECT = 1 // to a peer's BAR below a common switch (BUS_ADDR)
const ROUTE_ROOT = 2 // to a peer's BAR window through the root complex
const ROUTE_LOCAL = 3 // memory of the requester's own device: no link

/** The links from `f` up to (not above) `stop`, as link entries (link << 1 | dir). */
function linksUp(f: PciFunction, stop: PciFunction | null, dir: number, out: number[]): void {
  for (let x: PciFunction | null = f.physfn ?? f; x !== null && x !== stop; x = x.upstreamBridge()) {
    const li = x.device.linkIndex
    if (li >= 0) out.push((li << 1) | dir)
  }
}

/**
 * The address space a PCI function's DMA sees (a host memory domain of its requester ID):
 * IOVAs through its IOMMU context, and peers' BARs by bus address. pull, push and memzero
 * are DMAs and are charged; translate alone moves nothing and charges nothing.
 */
export class BusMasterDomain extends HostMemoryDomain {
  readonly fn: PciFunction
  readonly fabric: PciFabric
  readonly #charges = new Charges()
  readonly #one = new IoVecList(1)
  #tmp = new IoVecList(64)
  /** route code (kind + 4 * provider uid) -> link entries for a read */
  readonly #paths = new Map<number, Int32Array>()
  #pathsEpoch = -1
  #hostPath: Int32Array | undefined

  constructor(fn: PciFunction, id = `bus:${fn.name}`) {
    const fabric = fn.fabric
    if (fabric.physical === undefined || fabric.iommu === undefined) throw new PcieError('PCIE_BAD_TOPOLOGY', 'DMA needs the fabric built with physical memory and an IOMMU')
    if (!fabric.enumerated) throw new PcieError('PCIE_BAD_TOPOLOGY', 'enumerate the fabric before DMA')
    super(fabric.physical, fabric.iommu, fn.rid, id)
    this.fn = fn
    this.fabric = fabric
  }

  /** Routes and translates `iovs` (no data moves, nothing is charged). */
  override translate(iovs: IoVecList, out: IoVecList, access: AccessBits | number = Access.Read): number {
    return this.route(iovs, out, access, this.#charges)
  }

  /** @internal translate(), noting in `ch` what the DMA will cost */
  route(iovs: IoVecList, out: IoVecList, access: AccessBits | number, ch: Charges): number {
    const fabric = this.fabric
    const p2p = fabric.p2pdma
    ch.n = 0
    const start = out.count
    const me = this.fn
    if ((me.config.bytes[0x04]! & 4) === 0) return Status.Invalid // Command.BusMaster is off: the function cannot issue requests
    for (let i = 0; i < iovs.count; i++) {
      const a = iovs.addr[i]!
      const n = iovs.len[i]!
      if (n === 0) continue
      const b = fabric.decode(a, n)
      if (b !== undefined && p2p.mapType(b.fn, me) === 'BUS_ADDR') {
        if (b.kind !== 'memory') return fail(out, start, Status.NotSupported)
        const at = b.region!.base + (a - b.address)
        out.pushMerged(at, n)
        ch.add(this.#code(b.fn === me || sameDevice(b.fn, me) ? ROUTE_LOCAL : ROUTE_DIRECT, b.fn), fabric.regionSlot(at), n)
        continue
      }
      // up to the root complex: the IOMMU translates it as an IOVA
      const one = this.#one
      one.addr[0] = a
      one.len[0] = n
      one.count = 1
      let tmp = this.#tmp.clear()
      const need = Math.ceil(n / 4096) + 1
      if (tmp.capacity < need) tmp = this.#tmp = new IoVecList(Math.max(need, 2 * tmp.capacity))
      const rc = this.iommu.translateIovs(me.rid, one, access, tmp)
      if (rc !== Status.Ok) return fail(out, start, rc)
      for (let k = 0; k < tmp.count; k++) {
        const at = tmp.addr[k]!
        const len = tmp.len[k]!
        const slot = fabric.regionSlot(at)
        const owner = fabric.barOfRegionSlot(slot)
        let code: number
        if (owner === undefined) code = ROUTE_HOST
        else {
          if (!fabric.rootComplexRoutes(owner.fn, me)) return fail(out, start, Status.RemoteIo)
          code = this.#code(ROUTE_ROOT, owner.fn)
        }
        out.pushMerged(at, len)
        ch.add(code, slot, len)
      }
    }
    return Status.Ok
  }

  /**
   * Translates `iovs` for a DMA this function performs now (reading when access is 1,
   * writing when 2), and charges it to the fabric's traffic counters: for an engine that
   * works on the translated memory itself (the accel framework's platform driver, fusing
   * a cipher into the DMA). Returns a status; nothing is charged on failure.
   */
  translateForDma(iovs: IoVecList, out: IoVecList, access: AccessBits | number = Access.Read): number {
    const rc = this.route(iovs, out, access, this.#charges)
    if (rc !== Status.Ok) return rc
    this.charge(this.#charges, access)
    this.fabric.traffic.dmas++
    return Status.Ok
  }

  #code(kind: number, provider: PciFunction): number {
    return kind === ROUTE_HOST ? ROUTE_HOST : kind + 4 * provider.uid
  }

  #path(code: number): Int32Array {
    const epoch = this.fabric.p2pEpoch
    if (this.#pathsEpoch !== epoch) {
      this.#paths.clear()
      this.#hostPath = undefined
      this.#pathsEpoch = epoch
    }
    if (code === ROUTE_HOST && this.#hostPath !== undefined) return this.#hostPath
    let p = this.#paths.get(code)
    if (p !== undefined) return p
    const kind = code & 3
    const entries: number[] = []
    if (kind === ROUTE_HOST) linksUp(this.fn, null, 1, entries)
    else if (kind !== ROUTE_LOCAL) {
      const provider = this.fabric.functionByUid((code - kind) / 4)
      if (kind === ROUTE_DIRECT) {
        const common = this.fabric.p2pdma.explain(provider, this.fn).commonBridge
        linksUp(provider, common, 0, entries)
        linksUp(this.fn, common, 1, entries)
      } else {
        linksUp(provider, null, 0, entries)
        linksUp(this.fn, null, 1, entries)
      }
    }
    p = Int32Array.from(entries)
    this.#paths.set(code, p)
    if (code === ROUTE_HOST) this.#hostPath = p
    return p
  }

  /** @internal charges a translation's costs as a DMA that read (1) or wrote (2) */
  charge(ch: Charges, access: number): void {
    const t = this.fabric.traffic
    const flip = access === Access.Write ? 1 : 0
    for (let i = 0; i < ch.n; i++) {
      const code = ch.path[i]!
      const bytes = ch.bytes[i]!
      if (code >= 0) t.chargePath(this.#path(code), bytes, flip)
      t.chargeMemory(ch.slot[i]!, access, bytes)
      if ((code & 3) === ROUTE_ROOT) {
        t.rootComplexP2p += bytes
        const provider = this.fabric.functionByUid((code - ROUTE_ROOT) / 4)
        if (provider.device.bus.hostBridge !== this.fn.device.bus.hostBridge) t.interHostBridge += bytes
      }
    }
    ch.n = 0
  }

  override pull<T>(src: IoVecList, dst: IoVecList, cb: Completion<T>, arg: T): number {
    const rc = super.pull(src, dst, cb, arg)
    if (rc === Status.Ok) {
      this.charge(this.#charges, Access.Read)
      this.fabric.traffic.dmas++
    }
    return rc
  }

  override push<T>(dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    const rc = super.push(dst, src, cb, arg)
    if (rc === Status.Ok) {
      this.charge(this.#charges, Access.Write)
      this.fabric.traffic.dmas++
    }
    return rc
  }

  override memzero<T>(iovs: IoVecList, cb: Completion<T>, arg: T): number {
    const rc = super.memzero(iovs, cb, arg)
    if (rc === Status.Ok) {
      this.charge(this.#charges, Access.Write)
      this.fabric.traffic.dmas++
    }
    return rc
  }
}

function sameDevice(a: PciFunction, b: PciFunction): boolean {
  return (a.physfn ?? a).device === (b.physfn ?? b).device
}

function fail(out: IoVecList, start: number, rc: number): number {
  out.count = start
  return rc
}

/**
 * Memory local to a device (an IPU's DRAM, a drive's media): system addresses, charged
 * to the region and to no link.
 */
export class LocalMemoryDomain extends SystemMemoryDomain {
  readonly fabric: PciFabric

  constructor(fabric: PciFabric, physical: PhysicalMemory, id = 'local') {
    super(physical, id)
    this.fabric = fabric
  }

  /** @internal translate(), noting in `ch` the regions the DMA will touch */
  route(iovs: IoVecList, out: IoVecList, access: AccessBits | number, ch: Charges): number {
    ch.n = 0
    const start = out.count
    const rc = this.translate(iovs, out, access)
    if (rc === Status.Ok) for (let i = start; i < out.count; i++) ch.add(-1, this.fabric.regionSlot(out.addr[i]!), out.len[i]!)
    return rc
  }

  /** @internal */
  charge(ch: Charges, access: number): void {
    const t = this.fabric.traffic
    for (let i = 0; i < ch.n; i++) t.chargeMemory(ch.slot[i]!, access, ch.bytes[i]!)
    ch.n = 0
  }
}

/**
 * The IPU's DMA engine: a PCI function that moves bytes between its view of the fabric
 * (`bus`: host memory through the IOMMU, peers' BARs) and its local memory (`local`), or
 * within either, one descriptor at a time.
 */
export class DmaEngine {
  readonly fn: PciFunction
  readonly bus: BusMasterDomain
  readonly local: LocalMemoryDomain
  #src = new IoVecList(256)
  #dst = new IoVecList(256)
  readonly #srcCharges = new Charges()
  readonly #dstCharges = new Charges()
  readonly #memory: PhysicalMemory
  #bytes = 0
  #ops = 0

  constructor(fn: PciFunction) {
    this.fn = fn
    this.bus = fn.fabric.busMaster(fn)
    this.#memory = fn.fabric.physical!
    this.local = new LocalMemoryDomain(fn.fabric, this.#memory, `local:${fn.name}`)
  }

  /** Bytes moved and descriptors completed so far. */
  get stats(): { bytes: number; operations: number } {
    return { bytes: this.#bytes, operations: this.#ops }
  }

  #check(d: MemoryDomain): BusMasterDomain | LocalMemoryDomain {
    // a domain of this engine only: another function's domain would borrow its requester ID
    if (d === this.bus) return this.bus
    if (d === this.local) return this.local
    throw typeError(`${this.fn.name}'s DMA engine moves data through its own domains (bus, local), not ${String((d as MemoryDomain | undefined)?.id)}`)
  }

  /**
   * Copies `src` (in `srcDomain`) to `dst` (in `dstDomain`). Returns a status; on Ok, `cb`
   * runs later with the completion status. Both sides are translated before a byte moves.
   */
  copy<T>(dstDomain: MemoryDomain, dst: IoVecList, srcDomain: MemoryDomain, src: IoVecList, cb: Completion<T>, arg: T): number {
    const sd = this.#check(srcDomain)
    const dd = this.#check(dstDomain)
    if (typeof cb !== 'function') throw typeError('cb must be a function')
    const total = src.total
    if (dst.total !== total) return Status.Invalid
    const s = this.#fit('src', sd.translationBound(src))
    let rc = sd.route(src, s, Access.Read, this.#srcCharges)
    if (rc !== Status.Ok) return rc
    const d = this.#fit('dst', dd.translationBound(dst))
    rc = dd.route(dst, d, Access.Write, this.#dstCharges)
    if (rc !== Status.Ok) return rc
    sd.charge(this.#srcCharges, Access.Read)
    dd.charge(this.#dstCharges, Access.Write)
    this.fn.fabric.traffic.dmas++
    iovCopy(this.#memory.bytes, d, s)
    this.#bytes += total
    this.#ops++
    defer(cb, arg, Status.Ok)
    return Status.Ok
  }

  /** Zero-fills `dst` (in `dstDomain`). */
  zero<T>(dstDomain: MemoryDomain, dst: IoVecList, cb: Completion<T>, arg: T): number {
    const dd = this.#check(dstDomain)
    if (typeof cb !== 'function') throw typeError('cb must be a function')
    const d = this.#fit('dst', dd.translationBound(dst))
    const rc = dd.route(dst, d, Access.Write, this.#dstCharges)
    if (rc !== Status.Ok) return rc
    dd.charge(this.#dstCharges, Access.Write)
    this.fn.fabric.traffic.dmas++
    iovZero(this.#memory.bytes, d)
    this.#bytes += dst.total
    this.#ops++
    defer(cb, arg, Status.Ok)
    return Status.Ok
  }

  #fit(which: 'src' | 'dst', n: number): IoVecList {
    if (which === 'src') {
      if (this.#src.capacity < n) this.#src = new IoVecList(Math.max(n, 2 * this.#src.capacity))
      return this.#src.clear()
    }
    if (this.#dst.capacity < n) this.#dst = new IoVecList(Math.max(n, 2 * this.#dst.capacity))
    return this.#dst.clear()
  }
}
