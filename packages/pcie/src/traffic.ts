// Traffic accounting: every DMA is charged, per direction, to each link it crosses and to
// the memory it reads or writes. A link is the wire between a root port or downstream
// port and the device below it (an endpoint, or a switch's upstream port); ports inside a
// switch or a root complex have none. "Up" is towards the root complex.
//
//   host DRAM ── root complex ── root port ═[link]═ switch USP ── DSP ═[link]═ endpoint
//
// The link model turns bytes into time: a lane carries `gen`'s rate after line coding
// (8b/10b for Gen1-2, 128b/130b for Gen3-5, 242B/256B FLITs for Gen6), and each TLP of
// `maxPayload` bytes pays about 24 bytes of framing, sequence number, header and LCRC. A
// DMA-heavy workload moves at the pace of its busiest link direction or memory.
import { checkInt, rangeError } from '@ipukit/kernels'
import type { LinkSpec, PciDevice, PciFunction } from './topology.js'

/** Bytes per second one lane carries after line coding (PCIe Base 6.0 §4.2, §8). */
export const LANE_BYTES_PER_SECOND: Readonly<Record<LinkSpec['gen'], number>> = Object.freeze({
  1: (2.5e9 * 8) / 10 / 8,
  2: (5e9 * 8) / 10 / 8,
  3: (8e9 * 128) / 130 / 8,
  4: (16e9 * 128) / 130 / 8,
  5: (32e9 * 128) / 130 / 8,
  6: (64e9 * 242) / 256 / 8,
})

/** Per-TLP overhead bytes: STP framing 4, sequence 2, 4DW header 16, LCRC 4 (rounded to 24 with ECRC off). */
export const TLP_OVERHEAD = 24

/** Data bytes per second a link carries in one direction. */
export function linkBandwidth(link: LinkSpec, maxPayload = 256): number {
  checkInt('maxPayload', maxPayload, 128, 4096)
  if ((maxPayload & (maxPayload - 1)) !== 0) throw rangeError(`maxPayload must be a power of two, got ${maxPayload}`)
  const lane = LANE_BYTES_PER_SECOND[link.gen]
  if (lane === undefined) throw rangeError(`link gen must be 1 to 6, got ${String(link.gen)}`)
  return lane * link.width * (maxPayload / (maxPayload + TLP_OVERHEAD))
}

/** One link of the fabric. */
export interface LinkInfo {
  readonly index: number
  /** the port above the link */
  readonly port: PciFunction
  /** the device below it */
  readonly device: PciDevice
  readonly spec: LinkSpec
  /** false when the topology did not say and the fabric's default applies */
  readonly specified: boolean
}

export interface DirectionBytes {
  readonly up: number
  readonly down: number
}

export interface ReadWriteBytes {
  readonly read: number
  readonly write: number
}

/** Everything charged so far. */
export interface TrafficReport {
  /** per link, named by the device below it */
  readonly links: Readonly<Record<string, DirectionBytes & { gen: number; width: number }>>
  /** per memory region (host DRAM, IPU DRAM, each device window) */
  readonly memory: Readonly<Record<string, ReadWriteBytes & { kind: string }>>
  /** host DRAM, summed */
  readonly hostDram: ReadWriteBytes
  /** bytes a root complex forwarded between two of its ports (P2P through the host bridge) */
  readonly rootComplexP2p: number
  /** bytes that crossed between host bridges (the inter-socket link) */
  readonly interHostBridge: number
  readonly dmas: number
}

export interface EstimateOptions {
  /** bytes per TLP payload (Max_Payload_Size); default 256 */
  maxPayload?: number
  /** bytes per second per memory kind; a memory without one is not a bottleneck candidate */
  memoryBandwidth?: { host?: number; ipu?: number; device?: number }
  /** bytes per second between host bridges; default unlimited */
  interHostBridgeBandwidth?: number
}

export interface Estimate {
  /** seconds the busiest resource needs */
  readonly seconds: number
  /** what that resource is: 'link nvme0 up', 'memory host', ... ('idle' when nothing moved) */
  readonly bottleneck: string
  /** seconds per resource, busiest first */
  readonly resources: readonly { name: string; seconds: number; bytes: number; bytesPerSecond: number }[]
}

interface RegionSlot {
  name: string
  kind: string
}

/** The counters of one fabric. */
export class Traffic {
  readonly links: readonly LinkInfo[]
  /** [2 i] bytes up, [2 i + 1] bytes down, for link i */
  readonly linkBytes: Float64Array
  /** per region slot: bytes read, bytes written */
  readonly regionRead: Float64Array
  readonly regionWrite: Float64Array
  readonly #regions: readonly RegionSlot[]
  rootComplexP2p = 0
  interHostBridge = 0
  dmas = 0

  constructor(links: readonly LinkInfo[], regions: readonly RegionSlot[]) {
    this.links = links
    this.linkBytes = new Float64Array(2 * links.length)
    this.#regions = regions
    this.regionRead = new Float64Array(regions.length)
    this.regionWrite = new Float64Array(regions.length)
  }

  /** Zeroes every counter. */
  reset(): void {
    this.linkBytes.fill(0)
    this.regionRead.fill(0)
    this.regionWrite.fill(0)
    this.rootComplexP2p = 0
    this.interHostBridge = 0
    this.dmas = 0
  }

  /** @internal charges `bytes` along a path of link entries (link << 1 | down) */
  chargePath(path: Int32Array, bytes: number, flip: number): void {
    const lb = this.linkBytes
    for (let i = 0; i < path.length; i++) {
      const e = path[i]! ^ flip
      lb[e] = lb[e]! + bytes
    }
  }

  /** @internal charges a read (access 1) or a write (2) of `bytes` to a region slot */
  chargeMemory(slot: number, access: number, bytes: number): void {
    if (slot < 0) return
    const a = access === 2 ? this.regionWrite : this.regionRead
    a[slot] = a[slot]! + bytes
  }

  /** The counters as a plain object. */
  report(): TrafficReport {
    const links: Record<string, DirectionBytes & { gen: number; width: number }> = {}
    for (const l of this.links) {
      links[l.device.name] = { up: this.linkBytes[2 * l.index]!, down: this.linkBytes[2 * l.index + 1]!, gen: l.spec.gen, width: l.spec.width }
    }
    const memory: Record<string, ReadWriteBytes & { kind: string }> = {}
    let hr = 0
    let hw = 0
    this.#regions.forEach((r, i) => {
      memory[r.name] = { kind: r.kind, read: this.regionRead[i]!, write: this.regionWrite[i]! }
      if (r.kind === 'host') {
        hr += this.regionRead[i]!
        hw += this.regionWrite[i]!
      }
    })
    return { links, memory, hostDram: { read: hr, write: hw }, rootComplexP2p: this.rootComplexP2p, interHostBridge: this.interHostBridge, dmas: this.dmas }
  }

  /** The time the charged bytes take at the links' (and, if given, the memories') rates. */
  estimate(options: EstimateOptions = {}): Estimate {
    const resources: { name: string; seconds: number; bytes: number; bytesPerSecond: number }[] = []
    for (const l of this.links) {
      const bw = linkBandwidth(l.spec, options.maxPayload ?? 256)
      for (const dir of [0, 1]) {
        const bytes = this.linkBytes[2 * l.index + dir]!
        if (bytes > 0) resources.push({ name: `link ${l.device.name} ${dir === 0 ? 'up' : 'down'}`, seconds: bytes / bw, bytes, bytesPerSecond: bw })
      }
    }
    const mb = options.memoryBandwidth ?? {}
    const perKind = new Map<string, number>()
    this.#regions.forEach((r, i) => perKind.set(r.kind, (perKind.get(r.kind) ?? 0) + this.regionRead[i]! + this.regionWrite[i]!))
    for (const [kind, bytes] of perKind) {
      const bw = (mb as Record<string, number | undefined>)[kind]
      if (bw !== undefined && bytes > 0) resources.push({ name: `memory ${kind}`, seconds: bytes / bw, bytes, bytesPerSecond: bw })
    }
    if (options.interHostBridgeBandwidth !== undefined && this.interHostBridge > 0) {
      resources.push({ name: 'inter-host-bridge', seconds: this.interHostBridge / options.interHostBridgeBandwidth, bytes: this.interHostBridge, bytesPerSecond: options.interHostBridgeBandwidth })
    }
    resources.sort((a, b) => b.seconds - a.seconds)
    const top = resources[0]
    return { seconds: top?.seconds ?? 0, bottleneck: top?.name ?? 'idle', resources }
  }
}
