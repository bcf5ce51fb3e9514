// ipukit topo: a PCIe topology, as lspci -tv draws it, then each endpoint function (BDF,
// name, [vendor:device], class, BARs, MSI-X vectors, the link above it) and, with --p2p, the
// P2PDMA distance and map type between every pair of endpoint functions, as Linux computes
// them (drivers/pci/p2pdma.c). The topology is the one `ipukit run` builds
// (internal/topology.ts), or a topology JSON document (--file; see @ipukit/pcie's README).
//
//   ipukit topo
//   ipukit topo --p2p
//   ipukit topo --file fabric.json --p2p --json
import { readFileSync } from 'node:fs'
import { createPhysicalMemory, Iommu } from '@ipukit/memory'
import { Cfg, linkBandwidth, loadTopology, type P2pMapType, PcieError, type PciFabric, type PciFunction } from '@ipukit/pcie'
import type { Command } from 'commander'
import { CliError } from '../internal/errors.js'
import { buildIpuTopology } from '../internal/topology.js'

/** Max_Payload_Size the link bandwidth is quoted for (linkBandwidth's default). */
const MAX_PAYLOAD = 256

export interface TopoBar {
  index: number
  /** bytes */
  size: number
  kind: 'registers' | 'memory'
  prefetchable: boolean
  /** the bus address, or null while the function does not decode memory */
  address: number | null
  /** the memory region behind a memory BAR */
  region: string | null
  /** programmed over another BAR: it does not decode */
  conflict: boolean
}

export interface TopoLink {
  /** the port above the link */
  port: string
  portBdf: string
  gen: number
  width: number
  /** data bytes per second in each direction, at Max_Payload_Size `maxPayload` */
  bytesPerSecond: number
  maxPayload: number
  /** false when the topology did not say and the fabric's default link applies */
  specified: boolean
}

export interface TopoFunction {
  bdf: string
  name: string
  /** "0x8086" */
  vendorId: string
  deviceId: string
  /** "0x010802": base class, subclass, programming interface */
  classCode: string
  /** what lspci calls the class (its base class and subclass), or null when not known here */
  className: string | null
  bars: TopoBar[]
  /** MSI-X table size, or null without MSI-X */
  msixVectors: number | null
  /** the link above the function's device; null for a root-complex integrated endpoint */
  link: TopoLink | null
}

export interface TopoP2p {
  /** the function with the memory */
  provider: string
  providerName: string
  /** the function doing the DMA */
  client: string
  clientName: string
  /** pci_p2pdma_distance(): -1 when P2P is not supported */
  distance: number
  mapType: P2pMapType
}

export interface TopoReport {
  /** 'ipukit run' (the default topology) or the document's path */
  source: string
  /** fabric.render(): the lspci -tv tree */
  tree: string
  functions: TopoFunction[]
  /** with p2p: every ordered pair of different endpoint functions */
  p2p?: TopoP2p[]
}

export interface TopoOptions {
  /** a topology JSON document; default: the topology of `ipukit run` */
  file?: string
  /** add the P2PDMA table */
  p2p?: boolean
}

/** The fabric of `ipukit run`, on a fresh physical memory and IOMMU. */
function defaultFabric(): PciFabric {
  const physical = createPhysicalMemory({ hostSize: 64 << 20, ipuSize: 1 << 20, iobuf: { smallCount: 16, largeCount: 2 }, shared: false })
  return buildIpuTopology({ physical, iommu: new Iommu(physical) }).fabric
}

function fileFabric(path: string): PciFabric {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new CliError('CLI_USAGE', `topo: --file ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'a directory, not a file' : err.message}`, { cause: e })
  }
  try {
    return loadTopology(text)
  } catch (e) {
    // PCIE_BAD_TOPOLOGY names the path of the bad value in the document
    if (e instanceof PcieError) throw new CliError('CLI_USAGE', `topo: --file ${path}: ${e.message}`, { cause: e })
    throw e
  }
}

/** Builds the report of a topology (the one `ipukit run` builds, or a document's). */
export function topo(o: TopoOptions = {}): TopoReport {
  const fabric = o.file === undefined ? defaultFabric() : fileFabric(o.file)
  return describeFabric(fabric, o.file ?? 'ipukit run', o.p2p ?? false)
}

/** The report of an enumerated fabric. */
export function describeFabric(fabric: PciFabric, source: string, p2p: boolean): TopoReport {
  const endpoints = fabric.functionsInBusOrder().filter((f) => f.kind === 'endpoint')
  const report: TopoReport = { source, tree: fabric.render(), functions: endpoints.map((f) => describeFunction(fabric, f)) }
  if (p2p) {
    report.p2p = []
    for (const provider of endpoints) {
      for (const client of endpoints) {
        if (client === provider) continue
        report.p2p.push({ provider: provider.bdf, providerName: provider.name, client: client.bdf, clientName: client.name, distance: fabric.p2pdma.distance(provider, client), mapType: fabric.p2pdma.mapType(provider, client) })
      }
    }
  }
  return report
}

function describeFunction(fabric: PciFabric, f: PciFunction): TopoFunction {
  const classCode = f.config.read(Cfg.REVISION, 4) >>> 8
  const device = (f.physfn ?? f).device
  const l = fabric.links.find((x) => x.device === device)
  return {
    bdf: f.bdf,
    name: f.name,
    vendorId: hex(f.vendorId, 4),
    deviceId: hex(f.deviceId, 4),
    classCode: hex(classCode, 6),
    className: className(classCode),
    bars: [...f.bars]
      .sort((a, b) => a.index - b.index)
      .map((b) => ({
        index: b.index,
        size: b.size,
        kind: b.kind,
        // BAR low dword bit 3: prefetchable
        prefetchable: (f.config.read(Cfg.BAR0 + 4 * b.index, 4) & 8) !== 0,
        address: b.address < 0 ? null : b.address,
        region: b.region?.name ?? null,
        conflict: b.conflict,
      })),
    msixVectors: f.msix?.vectors ?? null,
    link:
      l === undefined
        ? null
        : { port: l.port.name, portBdf: l.port.bdf, gen: l.spec.gen, width: l.spec.width, bytesPerSecond: linkBandwidth(l.spec, MAX_PAYLOAD), maxPayload: MAX_PAYLOAD, specified: l.specified },
  }
}

/** lspci's names for the classes a storage fabric has (base class and subclass). */
const CLASS_NAMES: Readonly<Record<number, string>> = {
  0x0000: 'Non-VGA unclassified device',
  0x0100: 'SCSI storage controller',
  0x0104: 'RAID bus controller',
  0x0106: 'SATA controller',
  0x0107: 'Serial Attached SCSI controller',
  0x0108: 'Non-Volatile memory controller',
  0x0180: 'Mass storage controller',
  0x0200: 'Ethernet controller',
  0x0207: 'Infiniband controller',
  0x0280: 'Network controller',
  0x0300: 'VGA compatible controller',
  0x0302: '3D controller',
  0x0500: 'RAM memory',
  0x0580: 'Memory controller',
  0x0600: 'Host bridge',
  0x0604: 'PCI bridge',
  0x0801: 'DMA controller',
  0x0880: 'System peripheral',
  0x0b40: 'Co-processor',
  0x1080: 'Encryption controller',
  0x1200: 'Processing accelerators',
  0xff00: 'Unassigned class',
}

function className(classCode: number): string | null {
  const name = CLASS_NAMES[classCode >>> 8]
  if (name === undefined) return null
  return classCode === 0x010802 ? `${name} (NVM Express)` : name
}

function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, '0')}`
}

// ---- text ----

function bytes(n: number): string {
  for (const [u, k] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= k && n % k === 0) return `${n / k} ${u}`
  return `${n} B`
}

function table(head: readonly string[], rows: readonly (readonly string[])[], indent = ''): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: readonly string[]) => `${indent}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i]!))).join('  ')}`.trimEnd()
  return [line(head), ...rows.map(line)]
}

/** The report for a terminal. */
export function formatTopo(r: TopoReport): string {
  const out: string[] = [r.tree, '']
  out.push(`Endpoint functions (${r.functions.length}):`)
  for (const f of r.functions) {
    out.push('')
    out.push(`${f.bdf}  ${f.name}  [${f.vendorId.slice(2)}:${f.deviceId.slice(2)}]  class ${f.classCode.slice(2)}${f.className !== null ? ` ${f.className}` : ''}`)
    if (f.bars.length === 0) out.push('  BARs:   none')
    else {
      out.push('  BARs:')
      const rows = f.bars.map((b) => [
        `BAR${b.index}`,
        bytes(b.size),
        `${b.kind}${b.prefetchable ? ', prefetchable' : ''}${b.region !== null ? ` (${b.region})` : ''}`,
        b.address === null ? 'not decoding' : `0x${b.address.toString(16)}${b.conflict ? ' (conflict: not decoding)' : ''}`,
      ])
      out.push(...table(['bar', 'size', 'kind', 'address'], rows, '    '))
    }
    out.push(`  MSI-X:  ${f.msixVectors === null ? 'none' : `${f.msixVectors} vectors`}`)
    const l = f.link
    out.push(
      `  link:   ${
        l === null
          ? 'none (on the root bus: root-complex integrated)'
          : `gen${l.gen} x${l.width} below ${l.port} (${l.portBdf}), ${(l.bytesPerSecond / 1e9).toFixed(2)} GB/s per direction (data, MPS ${l.maxPayload})${l.specified ? '' : ', the fabric default'}`
      }`,
    )
  }
  if (r.p2p !== undefined) {
    out.push('')
    out.push('P2PDMA (provider: the function with the memory; client: the function doing DMA):')
    if (r.p2p.length === 0) out.push('  fewer than two endpoint functions: no pairs')
    else {
      const rows = r.p2p.map((p) => [`${p.provider} ${p.providerName}`, `${p.client} ${p.clientName}`, p.distance < 0 ? '-' : String(p.distance), p.mapType])
      out.push(...table(['provider', 'client', 'distance', 'map type'], rows, '  '))
    }
  }
  return out.join('\n')
}

interface Flags {
  file?: string
  p2p?: true
  json?: true
}

export function registerTopo(p: Command): void {
  p.command('topo')
    .description('Show a PCIe topology: the tree (as lspci -tv), each endpoint function with its BARs, MSI-X and link, and with --p2p the P2PDMA distances (default: the topology of ipukit run)')
    .option('-f, --file <path>', 'a topology JSON document (see @ipukit/pcie: "As a JSON document") instead of the topology of ipukit run')
    .option('--p2p', 'add the P2PDMA distance and map type between every pair of endpoint functions')
    .option('--json', 'print the report as JSON')
    .action((f: Flags) => {
      const r = topo({ ...(f.file !== undefined && { file: f.file }), p2p: f.p2p === true })
      process.stdout.write(f.json === true ? `${JSON.stringify(r, null, 2)}\n` : `${formatTopo(r)}\n`)
    })
}
