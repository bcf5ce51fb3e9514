// The copy-offload scenario (Linux P2PDMA's motivating case, nvmet with p2pmem): copy N
// MiB from nvme0's namespace to nvme1's,
//
//   (a) through system memory: nvme0 DMA-writes each chunk to a host DRAM buffer, nvme1
//       DMA-reads it back: host DRAM sees 2N bytes, the switch's uplink 2N;
//   (b) peer to peer: nvme0 reads each chunk into its own CMB (published as p2pmem and
//       chosen by find_many), nvme1 DMA-reads it from there: host DRAM sees nothing.
//
// The bytes really move (the media are regions of the physical memory) and are compared
// at the end; the traffic counters of the fabric give the accounting.
//
//   layout 'switch'                        layout 'root-ports'
//   hb0 ─ rp0 ═ sw0 ─┬─ dsp0 ═ nvme0        hb0 ─┬─ rp0 ═ nvme0
//                    └─ dsp1 ═ nvme1             └─ rp1 ═ nvme1
import { checkInt, rangeError } from '@ipukit/kernels'
import { Access, createPhysicalMemory, drainCompletions, IoVecList, Iommu, PAGE, Status, statusName } from '@ipukit/memory'
import { loadTopology } from './document.js'
import { DmaEngine } from './dma-engine.js'
import type { P2pMapType } from './p2pdma.js'
import type { CpuSpec, PciFabric } from './topology.js'
import type { Estimate, TrafficReport } from './traffic.js'

export interface CopyOffloadOptions {
  /** MiB to copy; default 64 */
  mib?: number
  /** bytes per DMA (the CMB holds one chunk); default 1 MiB */
  chunk?: number
  layout?: 'switch' | 'root-ports'
  /** the host bridge device at 00.0; default Intel Skylake-E 8086:2020 (allowlisted) */
  hostBridge?: { vendorId: number; deviceId: number }
  cpu?: CpuSpec
}

export interface CopyOffloadPhase {
  /** 'Ok', or the status the first DMA that failed returned */
  readonly status: string
  /** whether nvme1's namespace holds nvme0's bytes afterwards */
  readonly verified: boolean
  readonly traffic: TrafficReport
  readonly estimate: Estimate
}

export interface CopyOffloadResult {
  readonly bytes: number
  readonly layout: 'switch' | 'root-ports'
  /** Linux's map type and distance from nvme0 (the CMB) to nvme1 */
  readonly mapType: P2pMapType
  readonly distance: number
  readonly topology: string
  readonly viaSystemMemory: CopyOffloadPhase
  readonly peerToPeer: CopyOffloadPhase
}

function topologyDocument(o: Required<Pick<CopyOffloadOptions, 'layout'>> & CopyOffloadOptions, cmbSize: number): unknown {
  const nvme = (name: string, cmb: boolean) => ({
    name,
    link: { gen: 4, width: 4 },
    functions: [
      {
        vendorId: 0x1b36,
        deviceId: 0x0010,
        classCode: 0x010802,
        bars: [{ index: 0, size: 16384, kind: 'registers' }, ...(cmb ? [{ index: 2, size: cmbSize, kind: 'memory', region: `${name}-cmb` }] : [])],
      },
    ],
  })
  const hb = { name: 'hb0', vendorId: o.hostBridge?.vendorId ?? 0x8086, deviceId: o.hostBridge?.deviceId ?? 0x2020 }
  const rootPorts =
    o.layout === 'switch'
      ? [
          {
            name: 'rp0',
            link: { gen: 4, width: 16 },
            switch: {
              name: 'sw0',
              link: { gen: 4, width: 16 },
              downstreamPorts: [
                { name: 'dsp0', endpoint: nvme('nvme0', true) },
                { name: 'dsp1', endpoint: nvme('nvme1', false) },
              ],
            },
          },
        ]
      : [
          { name: 'rp0', endpoint: nvme('nvme0', true) },
          { name: 'rp1', endpoint: nvme('nvme1', false) },
        ]
  return { ...(o.cpu && { cpu: o.cpu }), hostBridges: [{ ...hb, rootPorts }] }
}

const noop = (): void => {}

/** Runs both copies and returns what the fabric counted. */
export function copyOffload(options: CopyOffloadOptions = {}): CopyOffloadResult {
  const mib = options.mib ?? 64
  checkInt('mib', mib, 1, 1024)
  const chunk = options.chunk ?? 2 ** 20
  checkInt('chunk', chunk, PAGE, 2 ** 26)
  if (chunk % PAGE !== 0) throw rangeError(`chunk must be a multiple of ${PAGE}`)
  const layout = options.layout ?? 'switch'
  if (layout !== 'switch' && layout !== 'root-ports') throw rangeError(`layout must be 'switch' or 'root-ports', got ${String(layout)}`)
  const bytes = mib * 2 ** 20
  if (bytes % chunk !== 0) throw rangeError(`${mib} MiB is not a whole number of ${chunk}-byte chunks`)
  let cmbSize = PAGE
  while (cmbSize < chunk) cmbSize *= 2
  const physical = createPhysicalMemory({
    hostSize: Math.max(chunk, 2 ** 20),
    ipuSize: 2 ** 20,
    devices: [
      { name: 'nvme0-cmb', size: cmbSize },
      { name: 'nvme0-media', size: bytes },
      { name: 'nvme1-media', size: bytes },
    ],
    iobuf: { smallCount: 4, largeCount: 1 },
  })
  try {
    const iommu = new Iommu(physical)
    const fabric = loadTopology(topologyDocument({ ...options, layout }, cmbSize), { physical, iommu })
    const nvme0 = fabric.get('nvme0')
    const nvme1 = fabric.get('nvme1')
    const e0 = new DmaEngine(nvme0)
    const e1 = new DmaEngine(nvme1)
    const media0 = physical.region('nvme0-media')
    const media1 = physical.region('nvme1-media')
    const m = physical.bytes
    // a pattern that tells every 4-byte word apart
    const words = new Uint32Array(m.buffer, media0.base, bytes / 4)
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 0x9e3779b1) ^ 0x5bd1e995
    const same = () => {
      const a = new Uint32Array(m.buffer, media0.base, bytes / 4)
      const b = new Uint32Array(m.buffer, media1.base, bytes / 4)
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
      return true
    }
    const l0 = new IoVecList(1)
    const l1 = new IoVecList(1)
    const one = (l: IoVecList, addr: number, len: number) => l.clear().push(addr, len)

    // (a) through a host DRAM buffer at IOVA 0, mapped for both drives (the host driver's DMA mappings)
    iommu.map(nvme0.rid, 0, 0, chunk, Access.Write)
    iommu.map(nvme1.rid, 0, 0, chunk, Access.Read)
    fabric.traffic.reset()
    let rc: number = Status.Ok
    for (let off = 0; off < bytes && rc === Status.Ok; off += chunk) {
      rc = e0.copy(e0.bus, one(l0, 0, chunk), e0.local, one(l1, media0.base + off, chunk), noop, null)
      if (rc === Status.Ok) rc = e1.copy(e1.local, one(l0, media1.base + off, chunk), e1.bus, one(l1, 0, chunk), noop, null)
    }
    drainCompletions()
    const viaSystemMemory = phase(fabric, rc, same())

    // (b) through nvme0's CMB: add it as p2pmem, publish it, let find_many choose it
    m.fill(0, media1.base, media1.base + bytes)
    const p2p = fabric.p2pdma
    p2p.addResource(nvme0, 2)
    p2p.publish(nvme0, true)
    const provider = p2p.findMany([nvme0, nvme1])
    const mapType = p2p.mapType(nvme0, nvme1)
    const distance = p2p.distance(nvme0, nvme1)
    fabric.traffic.reset()
    rc = Status.Ok
    if (provider === null) rc = Status.RemoteIo
    else {
      const buf = p2p.alloc(provider, chunk)
      const bus = p2p.virtToBus(provider, buf)
      // BUS_ADDR: nvme1 is given the bus address; THRU_HOST_BRIDGE: an IOVA mapped to it
      let forNvme1 = bus
      if (p2p.mapType(provider, nvme1) !== 'BUS_ADDR') {
        forNvme1 = 2 ** 32
        iommu.map(nvme1.rid, forNvme1, bus, chunk, Access.Read)
      }
      for (let off = 0; off < bytes && rc === Status.Ok; off += chunk) {
        rc = e0.copy(e0.bus, one(l0, bus, chunk), e0.local, one(l1, media0.base + off, chunk), noop, null)
        if (rc === Status.Ok) rc = e1.copy(e1.local, one(l0, media1.base + off, chunk), e1.bus, one(l1, forNvme1, chunk), noop, null)
      }
      drainCompletions()
    }
    const peerToPeer = phase(fabric, rc, rc === Status.Ok && same())
    return { bytes, layout, mapType, distance, topology: fabric.render(), viaSystemMemory, peerToPeer }
  } finally {
    physical.close()
  }
}

function phase(fabric: PciFabric, rc: number, verified: boolean): CopyOffloadPhase {
  return { status: statusName(rc), verified, traffic: fabric.traffic.report(), estimate: fabric.traffic.estimate() }
}

const mb = (n: number) => `${Number.isInteger(n / 2 ** 20) ? n / 2 ** 20 : (n / 2 ** 20).toFixed(2)} MiB`

/** The result as a table for a terminal. */
export function formatCopyOffload(r: CopyOffloadResult): string {
  const lines = [r.topology, '', `copy ${mb(r.bytes)} nvme0 -> nvme1 (${r.layout}); nvme0's CMB to nvme1: ${r.mapType}, distance ${r.distance}`, '']
  const names = Object.keys(r.viaSystemMemory.traffic.links)
  const row = (label: string, a: string, b: string) => `${label.padEnd(28)}${a.padStart(18)}${b.padStart(18)}`
  lines.push(row('', '(a) system memory', '(b) peer to peer'))
  lines.push(row('status', r.viaSystemMemory.status, r.peerToPeer.status))
  lines.push(row('data verified', String(r.viaSystemMemory.verified), String(r.peerToPeer.verified)))
  const a = r.viaSystemMemory.traffic
  const b = r.peerToPeer.traffic
  lines.push(row('host DRAM read', mb(a.hostDram.read), mb(b.hostDram.read)))
  lines.push(row('host DRAM write', mb(a.hostDram.write), mb(b.hostDram.write)))
  for (const n of names) {
    const la = a.links[n]!
    const lb = b.links[n]!
    lines.push(row(`link ${n} up (x${la.width} gen${la.gen})`, mb(la.up), mb(lb.up)))
    lines.push(row(`link ${n} down`, mb(la.down), mb(lb.down)))
  }
  lines.push(row('root complex P2P', mb(a.rootComplexP2p), mb(b.rootComplexP2p)))
  const t = (e: Estimate) => `${(e.seconds * 1e3).toFixed(2)} ms`
  lines.push(row('time at link rates', t(r.viaSystemMemory.estimate), t(r.peerToPeer.estimate)))
  lines.push(row('bottleneck', r.viaSystemMemory.estimate.bottleneck, r.peerToPeer.estimate.bottleneck))
  return lines.join('\n')
}
