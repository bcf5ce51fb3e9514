// Peer-to-peer DMA as Linux decides it (drivers/pci/p2pdma.c, v6.2 and later:
// calc_map_type_and_dist(), host_bridge_whitelist(), cpu_supports_p2pdma(),
// pci_p2pdma_distance_many(), pci_p2pmem_find_many(), and the p2pmem pool).
//
// For a provider P (the device with the memory) and a client C (the device doing DMA):
//
//   1. a = P, dist_a = 0. While a: dist_b = 0; if a has ACS redirect (RR, CR or EC in ACS
//      Control), count it (before the search, so the common bridge's own ACS counts);
//      walk bb = C, up(C), ... (dist_b++ per step); if bb == a, a is the common upstream
//      bridge: go to 3. Else a = up(a), dist_a++.
//   2. No common bridge: dist = dist_a + dist_b (both whole chains), go to 5.
//   3. Walk bb from C up to a (a excluded) counting ACS redirects. dist = dist_a + dist_b.
//   4. No ACS redirect counted: BUS_ADDR. Otherwise warn ("ACS redirect is set between the
//      client and provider", with the pci=disable_acs_redir=<bdf;bdf> list) and go on.
//   5. THRU_HOST_BRIDGE, unless the CPU is not an AMD Zen (family 0x17 or later) and the
//      host bridges are not allowlisted: then NOT_SUPPORTED.
//
// up(x) is pci_upstream_bridge(x): the bridge above x's bus (a VF answers for its PF), and
// null on a root bus. Worked distances: one function 0; two functions of one device 2; two
// endpoints under one switch 4 (A, DSP0, USP, DSP1, B); different root ports 4 and over
// the host bridge.
import { checkInt, rangeError, typeError } from '@ipukit/kernels'
import { PAGE, RegionAllocator } from '@ipukit/memory'
import { PcieError } from './errors.js'
import type { PciFabric, PciFunction } from './topology.js'

/** enum pci_p2pdma_map_type, by name (Linux renumbered it when it added MAP_NONE). */
export type P2pMapType = 'BUS_ADDR' | 'THRU_HOST_BRIDGE' | 'NOT_SUPPORTED'
const MAP_TYPES: readonly P2pMapType[] = ['NOT_SUPPORTED', 'BUS_ADDR', 'THRU_HOST_BRIDGE']

/** One entry of pci_p2pdma_whitelist[]. */
export interface HostBridgeAllowlistEntry {
  vendor: number
  device: number
  /** REQ_SAME_HOST_BRIDGE: only between devices below the same host bridge */
  sameHostBridge: boolean
  comment: string
}

/** The host bridges Linux lets P2P traffic cross (pci_p2pdma_whitelist[]). */
export const HOST_BRIDGE_ALLOWLIST: readonly HostBridgeAllowlistEntry[] = Object.freeze([
  { vendor: 0x8086, device: 0x3c00, sameHostBridge: true, comment: 'Intel Xeon E5/Core i7' },
  { vendor: 0x8086, device: 0x3c01, sameHostBridge: true, comment: 'Intel Xeon E5/Core i7' },
  { vendor: 0x8086, device: 0x2f00, sameHostBridge: true, comment: 'Intel Xeon E7 v3/Xeon E5 v3/Core i7' },
  { vendor: 0x8086, device: 0x2f01, sameHostBridge: true, comment: 'Intel Xeon E7 v3/Xeon E5 v3/Core i7' },
  { vendor: 0x8086, device: 0x2030, sameHostBridge: false, comment: 'Intel Skylake-E' },
  { vendor: 0x8086, device: 0x2031, sameHostBridge: false, comment: 'Intel Skylake-E' },
  { vendor: 0x8086, device: 0x2032, sameHostBridge: false, comment: 'Intel Skylake-E' },
  { vendor: 0x8086, device: 0x2033, sameHostBridge: false, comment: 'Intel Skylake-E' },
  { vendor: 0x8086, device: 0x2020, sameHostBridge: false, comment: 'Intel Skylake-E' },
  { vendor: 0x8086, device: 0x09a2, sameHostBridge: false, comment: 'Intel (listed after Skylake-E)' },
])

/** What calc_map_type_and_dist() computes for one provider and one client. */
export interface P2pPath {
  readonly mapType: P2pMapType
  /** dist_a + dist_b (also set when the map type is NOT_SUPPORTED, as in Linux) */
  readonly distance: number
  /** the devices with ACS redirect that force the path through the host bridge */
  readonly acsRedirects: readonly PciFunction[]
  /** the bridge both reach, or null when the path crosses the host bridge */
  readonly commonBridge: PciFunction | null
  /** what Linux would pci_warn() with verbose set */
  readonly warnings: readonly string[]
}

/** cpu_supports_p2pdma(): x86 AMD with family 0x17 (Zen) or later. */
export function cpuSupportsP2pdma(fabric: PciFabric): boolean {
  return fabric.cpu.vendor === 'amd' && fabric.cpu.family >= 0x17
}

function hostBridgeAllowed(fabric: PciFabric, f: PciFunction, same: boolean, warnings: string[] | null): boolean {
  const hb = f.device.bus.hostBridge
  const root = hb.hostBridgeDevice()
  if (root === null) return false
  const vendor = root.vendorId
  const device = root.deviceId
  for (const e of fabric.allowlist) {
    if (e.vendor !== vendor || e.device !== device) continue
    return !e.sameHostBridge || same
  }
  warnings?.push(`${root.bdf}: Host bridge not in P2PDMA whitelist: ${hex4(vendor)}:${hex4(device)}`)
  return false
}

/** host_bridge_whitelist(a, b, warn). */
export function hostBridgeWhitelist(a: PciFunction, b: PciFunction, warnings: string[] | null = null): boolean {
  const fabric = a.fabric
  if (a.device.bus.hostBridge === b.device.bus.hostBridge) return hostBridgeAllowed(fabric, a, true, warnings)
  return hostBridgeAllowed(fabric, a, false, warnings) && hostBridgeAllowed(fabric, b, false, warnings)
}

/** calc_map_type_and_dist(provider, client): the map type and distance, uncached. */
export function calcMapTypeAndDist(provider: PciFunction, client: PciFunction): P2pPath {
  if (provider.fabric !== client.fabric) throw rangeError('the provider and the client are in different fabrics')
  const warnings: string[] = []
  const acs: PciFunction[] = []
  let a: PciFunction | null = provider
  let distA = 0
  let distB = 0
  let common: PciFunction | null = null
  search: while (a !== null) {
    distB = 0
    if (a.hasAcsRedirect()) acs.push(a)
    let bb: PciFunction | null = client
    while (bb !== null) {
      if (bb === a) {
        common = a
        break search
      }
      bb = bb.upstreamBridge()
      distB++
    }
    a = a.upstreamBridge()
    distA++
  }
  const distance = distA + distB
  let acsRedirects = false
  if (common !== null) {
    for (let bb: PciFunction | null = client; bb !== null && bb !== common; bb = bb.upstreamBridge()) {
      if (bb.hasAcsRedirect()) acs.push(bb)
    }
    if (acs.length === 0) return { mapType: 'BUS_ADDR', distance, acsRedirects: acs, commonBridge: common, warnings }
    warnings.push(`${client.bdf}: ACS redirect is set between the client and provider (${provider.bdf})`)
    warnings.push(`${client.bdf}: to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=${acs.map((f) => f.bdf).join(';')}`)
    acsRedirects = true
  }
  let mapType: P2pMapType = 'THRU_HOST_BRIDGE'
  if (!cpuSupportsP2pdma(provider.fabric) && !hostBridgeWhitelist(provider, client, acsRedirects ? warnings : null)) {
    warnings.push(
      `${client.bdf}: cannot be used for peer-to-peer DMA as the client and provider (${provider.bdf}) do not share an upstream bridge or whitelisted host bridge`,
    )
    mapType = 'NOT_SUPPORTED'
  }
  return { mapType, distance, acsRedirects: acs, commonBridge: null, warnings }
}

/** One add_resource() chunk of a provider's pool. */
interface Chunk {
  readonly bar: number
  /** offset of the chunk in the BAR */
  readonly offset: number
  readonly size: number
  readonly pool: RegionAllocator
}

/** A provider's p2pmem (struct pci_p2pdma): its pool and whether it is published. */
export interface P2pmemInfo {
  /** registered bytes (sysfs p2pmem/size) */
  readonly size: number
  /** unallocated bytes (p2pmem/available) */
  readonly available: number
  /** p2pmem/published */
  readonly published: boolean
}

class ProviderState {
  readonly chunks: Chunk[] = []
  published = false
}

export interface P2pdmaOptions {
  /** uniform in [0, 1): picks among equally close providers (default Math.random) */
  random?: () => number
  /** receives what Linux would print with pci_warn() when a query is verbose */
  warn?: (message: string) => void
}

/** PAGE_SIZE / sizeof(struct pci_dev *): how many equally close providers find_many weighs. */
export const FIND_MANY_MAX_CANDIDATES = 512

/**
 * The P2PDMA state of one fabric: map types and distances (cached per provider and
 * client, forgotten when ACS, SR-IOV or BARs change), provider selection, and p2pmem.
 */
export class P2pdma {
  readonly fabric: PciFabric
  readonly #random: () => number
  readonly #warn: ((message: string) => void) | undefined
  /** provider -> (client key -> distance * 4 + map type index) */
  readonly #cache = new Map<PciFunction, Map<number, number>>()
  readonly #state = new Map<PciFunction, ProviderState>()
  readonly #candidates: PciFunction[] = []
  #hits = 0
  #misses = 0

  constructor(fabric: PciFabric, options: P2pdmaOptions = {}) {
    if (options.random !== undefined && typeof options.random !== 'function') throw typeError('random must be a function')
    if (options.warn !== undefined && typeof options.warn !== 'function') throw typeError('warn must be a function')
    this.fabric = fabric
    this.#random = options.random ?? Math.random
    this.#warn = options.warn
    fabric.onP2pChange(() => this.#cache.clear())
  }

  /** Cache hits and misses so far (a miss runs calc_map_type_and_dist). */
  get cacheStats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses }
  }

  #lookup(provider: PciFunction, client: PciFunction): number {
    let m = this.#cache.get(provider)
    const key = client.device.bus.hostBridge.domain * 65536 + client.rid
    if (m !== undefined) {
      const v = m.get(key)
      if (v !== undefined) {
        this.#hits++
        return v
      }
    } else this.#cache.set(provider, (m = new Map()))
    this.#misses++
    const p = calcMapTypeAndDist(provider, client)
    const v = p.distance * 4 + MAP_TYPES.indexOf(p.mapType)
    m.set(key, v)
    return v
  }

  /** pci_p2pdma_map_type(): BUS_ADDR, THRU_HOST_BRIDGE or NOT_SUPPORTED (cached). */
  mapType(provider: PciFunction, client: PciFunction): P2pMapType {
    return MAP_TYPES[this.#lookup(provider, client) & 3]!
  }

  /** pci_p2pdma_distance(): the distance, or -1 when P2P is not supported (cached). */
  distance(provider: PciFunction, client: PciFunction): number {
    const v = this.#lookup(provider, client)
    return (v & 3) === 0 ? -1 : v >>> 2
  }

  /** The whole calculation, with the ACS devices and the warnings (not cached). */
  explain(provider: PciFunction, client: PciFunction): P2pPath {
    return calcMapTypeAndDist(provider, client)
  }

  /**
   * pci_p2pdma_distance_many(): the sum of the distances from `provider` to every client,
   * or -1 when there are no clients or any is NOT_SUPPORTED. Not verbose, it stops at the
   * first failure; verbose, it goes on and reports every warning through `warn`.
   */
  distanceMany(provider: PciFunction, clients: readonly PciFunction[], verbose = false): number {
    if (clients.length === 0) return -1
    let total = 0
    let notSupported = false
    for (const c of clients) {
      if (c === null || typeof c !== 'object' || c.fabric !== this.fabric) throw typeError('clients must be functions of this fabric')
      if (verbose) {
        const p = calcMapTypeAndDist(provider, c)
        for (const w of p.warnings) this.#warn?.(w)
        if (p.mapType === 'NOT_SUPPORTED') notSupported = true
        total += p.distance
        continue
      }
      const v = this.#lookup(provider, c)
      if ((v & 3) === 0) {
        notSupported = true
        break
      }
      total += v >>> 2
    }
    return notSupported ? -1 : total
  }

  /**
   * pci_p2pmem_find_many(): the published provider with the least total distance to all
   * clients, chosen at random among at most 512 equally close ones; null when none can
   * serve them all.
   */
  findMany(clients: readonly PciFunction[]): PciFunction | null {
    if (clients.length === 0) return null
    const best = this.#candidates
    best.length = 0
    let closest = Number.MAX_SAFE_INTEGER
    for (const f of this.fabric.functionsInBusOrder()) {
      if (!this.hasP2pmem(f)) continue
      const d = this.distanceMany(f, clients)
      if (d < 0 || d > closest) continue
      if (d === closest && best.length >= FIND_MANY_MAX_CANDIDATES) continue
      if (d < closest) {
        best.length = 0
        closest = d
      }
      best.push(f)
    }
    if (best.length === 0) return null
    const r = this.#random()
    const i = Math.min(best.length - 1, Math.floor(r * best.length))
    const pick = best[i]!
    best.length = 0
    return pick
  }

  // ---- p2pmem ----

  /**
   * pci_p2pdma_add_resource(): registers [offset, offset + size) of a memory BAR as P2P
   * memory (size 0: the rest of the BAR). Page aligned (Linux also needs the hotplug
   * alignment of memremap, usually 2 MiB; this model's pages are 4 KiB).
   */
  addResource(provider: PciFunction, bar: number, size = 0, offset = 0): void {
    const b = provider.bars.find((x) => x.index === bar)
    if (b === undefined) throw new PcieError('PCIE_P2PMEM', `${provider.name} has no BAR ${bar}`)
    if (b.kind !== 'memory') throw new PcieError('PCIE_P2PMEM', `${provider.name}: BAR ${bar} is a register BAR, not memory`)
    checkInt('offset', offset, 0, 2 ** 52)
    checkInt('size', size, 0, 2 ** 52)
    if (offset >= b.size) throw new PcieError('PCIE_P2PMEM', `${provider.name}: offset ${offset} is beyond BAR ${bar} (${b.size} bytes)`)
    const n = size === 0 ? b.size - offset : size
    if (n + offset > b.size) throw new PcieError('PCIE_P2PMEM', `${provider.name}: ${n} bytes at ${offset} run past BAR ${bar} (${b.size} bytes)`)
    if (offset % PAGE !== 0 || n % PAGE !== 0) throw new PcieError('PCIE_P2PMEM', `${provider.name}: p2pmem offset and size must be multiples of ${PAGE}`)
    let s = this.#state.get(provider)
    if (s === undefined) this.#state.set(provider, (s = new ProviderState()))
    for (const c of s.chunks) {
      if (c.bar === bar && offset < c.offset + c.size && c.offset < offset + n) throw new PcieError('PCIE_P2PMEM', `${provider.name}: BAR ${bar} [${offset}, ${offset + n}) is already p2pmem`)
    }
    s.chunks.push({ bar, offset, size: n, pool: new RegionAllocator(b.region!, offset, n) })
  }

  /** pci_p2pmem_publish(): whether find_many may hand this provider's memory to others. */
  publish(provider: PciFunction, publish: boolean): void {
    if (typeof publish !== 'boolean') throw typeError('publish must be a boolean')
    const s = this.#state.get(provider)
    if (s !== undefined) s.published = publish
  }

  /** pci_has_p2pmem(): has p2pmem and published it. */
  hasP2pmem(provider: PciFunction): boolean {
    return this.#state.get(provider)?.published ?? false
  }

  /** The sysfs p2pmem/ files of a provider, or undefined without p2pmem. */
  info(provider: PciFunction): P2pmemInfo | undefined {
    const s = this.#state.get(provider)
    if (s === undefined) return undefined
    let size = 0
    let available = 0
    for (const c of s.chunks) {
      size += c.size
      available += c.pool.available
    }
    return { size, available, published: s.published }
  }

  /**
   * pci_alloc_p2pmem(): `size` bytes (whole pages) of the provider's p2pmem; returns the
   * memory address (this model's kernel virtual address), or -1 when none is left.
   * Chunks are tried in the order they were added.
   */
  alloc(provider: PciFunction, size: number): number {
    checkInt('size', size, 1, 2 ** 52)
    const s = this.#state.get(provider)
    if (s === undefined) return -1
    for (const c of s.chunks) {
      if (c.pool.available < size) continue
      const at = c.pool.alloc(size)
      if (at >= 0) return at
    }
    return -1
  }

  /** pci_free_p2pmem(). */
  free(provider: PciFunction, address: number, size: number): void {
    const c = this.#chunkOf(provider, address)
    const had = c.pool.sizeOf(address)
    if (had === 0) throw new PcieError('PCIE_P2PMEM', `${provider.name}: ${address} is not the start of a p2pmem allocation`)
    if (Math.ceil(size / PAGE) * PAGE !== had) throw new PcieError('PCIE_P2PMEM', `${provider.name}: freeing ${size} bytes of a ${had}-byte allocation`)
    c.pool.free(address)
  }

  /** pci_p2pmem_virt_to_bus(): the PCI bus address of a p2pmem address. */
  virtToBus(provider: PciFunction, address: number): number {
    const c = this.#chunkOf(provider, address)
    const b = provider.bars.find((x) => x.index === c.bar)!
    if (b.address < 0) throw new PcieError('PCIE_P2PMEM', `${provider.name}: BAR ${c.bar} does not decode (memory space disabled)`)
    return b.address + (address - b.region!.base)
  }

  #chunkOf(provider: PciFunction, address: number): Chunk {
    const s = this.#state.get(provider)
    if (s === undefined) throw new PcieError('PCIE_P2PMEM', `${provider.name} has no p2pmem`)
    for (const c of s.chunks) if (address >= c.pool.base && address < c.pool.base + c.pool.size) return c
    throw new PcieError('PCIE_P2PMEM', `${address} is not in ${provider.name}'s p2pmem`)
  }
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0')
