// A topology as a JSON document. Every object is strict (an unknown key is an error, so a
// typo does not silently drop a device), IDs take numbers or "0x…" strings, sizes take
// numbers or "64 MiB"-style strings. Errors name the path of the offending value:
//
//   hostBridges[0].rootPorts[1].switch.downstreamPorts[0].endpoint.functions[0].bars[0].size:
//     must be a power of two
//
// {
//   "cpu": { "vendor": "intel", "family": 6 },
//   "hostMemory": "64 MiB",
//   "hostBridges": [{
//     "name": "hb0", "vendorId": "0x8086", "deviceId": "0x2020",
//     "rootPorts": [{
//       "name": "rp0", "link": { "gen": 4, "width": 16 },
//       "switch": { "name": "sw0", "downstreamPorts": [
//         { "name": "dsp0", "endpoint": { "name": "nvme0", "link": { "gen": 4, "width": 4 },
//           "functions": [{ "vendorId": "0x1b36", "deviceId": "0x0010", "classCode": "0x010802",
//             "bars": [{ "index": 0, "size": "16 KiB", "kind": "registers" },
//                      { "index": 2, "size": "64 MiB", "kind": "memory", "region": "nvme0-cmb" }] }] } }
//       ] }
//     }]
//   }]
// }
import { Iommu, createPhysicalMemory, type PhysicalMemory } from '@ipukit/memory'
import { z } from 'zod'
import { PcieError } from './errors.js'
import type { AcsSpec, BarSpec, CpuSpec, EndpointSpec, FunctionSpec, HostBridge, LinkSpec, PciFunction } from './topology.js'
import { PciFabric } from './topology.js'

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40 }

const id16 = z.union([z.number().int().min(0).max(0xffff), z.string().regex(/^0x[0-9a-f]{1,4}$/i).transform((s) => Number.parseInt(s, 16))], {
  error: 'must be a 16-bit ID: a number up to 65535 or a hex string like "0x8086"',
})
const id24 = z.union([z.number().int().min(0).max(0xffffff), z.string().regex(/^0x[0-9a-f]{1,6}$/i).transform((s) => Number.parseInt(s, 16))], {
  error: 'must be a 24-bit class code: a number or a hex string like "0x010802"',
})
const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi)
const size = z.union(
  [
    z.number().int().positive(),
    z
      .string()
      .regex(/^\s*\d+\s*(B|K|KiB|M|MiB|G|GiB|T|TiB)?\s*$/i)
      .transform((s) => {
        const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(s)!
        return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
      }),
  ],
  { error: 'must be a byte count like 4096 or "64 MiB" (units B, KiB, MiB, GiB, TiB)' },
)

const link = z.strictObject({
  gen: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4), z.literal(5), z.literal(6)], { error: 'must be a PCIe generation, 1 to 6' }),
  width: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8), z.literal(12), z.literal(16), z.literal(32)], { error: 'must be a link width: 1, 2, 4, 8, 12, 16 or 32' }),
})
const acs = z.strictObject({
  requestRedirect: z.boolean().optional(),
  completionRedirect: z.boolean().optional(),
  egressControl: z.boolean().optional(),
  sourceValidation: z.boolean().optional(),
  upstreamForwarding: z.boolean().optional(),
})
const bar = z.strictObject({
  index: z.union([z.literal(0), z.literal(2), z.literal(4)], { error: 'must be 0, 2 or 4 (64-bit BARs)' }),
  size,
  kind: z.enum(['registers', 'memory']),
  region: z.string().min(1).optional(),
  prefetchable: z.boolean().optional(),
})
const fn = z.strictObject({
  fn: int(0, 7).optional(),
  name: z.string().min(1).optional(),
  vendorId: id16,
  deviceId: id16,
  classCode: id24.optional(),
  bars: z.array(bar).max(3).optional(),
  msix: z.strictObject({ vectors: int(1, 2048), bar: z.union([z.literal(0), z.literal(2), z.literal(4)], { error: 'must be 0, 2 or 4' }), tableOffset: int(0, 2 ** 32), pbaOffset: int(0, 2 ** 32) }).optional(),
  acs: acs.optional(),
  sriov: z.strictObject({ totalVfs: int(1, 256), vfDeviceId: id16, firstVfOffset: int(1, 255).optional(), vfStride: int(1, 255).optional() }).optional(),
})
const endpoint = z.strictObject({
  name: z.string().min(1),
  device: int(0, 31).optional(),
  link: link.optional(),
  functions: z.array(fn).min(1).max(8),
})

interface PortDoc {
  name: string
  device?: number | undefined
  vendorId?: number | undefined
  deviceId?: number | undefined
  link?: LinkSpec | undefined
  acs?: AcsSpec | undefined
  switch?: SwitchDoc | undefined
  endpoint?: z.infer<typeof endpoint> | undefined
}
interface SwitchDoc {
  name: string
  vendorId?: number | undefined
  deviceId?: number | undefined
  link?: LinkSpec | undefined
  acs?: AcsSpec | undefined
  downstreamPorts: PortDoc[]
}

const port: z.ZodType<PortDoc> = z.lazy(() =>
  z
    .strictObject({
      name: z.string().min(1),
      device: int(0, 31).optional(),
      vendorId: id16.optional(),
      deviceId: id16.optional(),
      link: link.optional(),
      acs: acs.optional(),
      switch: sw.optional(),
      endpoint: endpoint.optional(),
    })
    .refine((p) => p.switch === undefined || p.endpoint === undefined, 'a port has a switch or an endpoint below it, not both'),
) as unknown as z.ZodType<PortDoc>
const sw: z.ZodType<SwitchDoc> = z.lazy(() =>
  z.strictObject({
    name: z.string().min(1),
    vendorId: id16.optional(),
    deviceId: id16.optional(),
    link: link.optional(),
    acs: acs.optional(),
    downstreamPorts: z.array(port).min(1).max(32),
  }),
) as unknown as z.ZodType<SwitchDoc>

const documentSchema = z.strictObject({
  cpu: z.strictObject({ vendor: z.enum(['intel', 'amd', 'other']), family: int(0, 0xff) }).optional(),
  hostMemory: size.optional(),
  defaultLink: link.optional(),
  hostBridges: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        vendorId: id16,
        deviceId: id16,
        domain: int(0, 0xffff).optional(),
        bus: int(0, 255).optional(),
        noHostBridgeDevice: z.boolean().optional(),
        rootPorts: z.array(port).max(31).optional(),
        endpoints: z.array(endpoint).optional(),
      }),
    )
    .min(1),
})

/** A topology document, after validation (IDs and sizes as numbers). */
export type TopologyDocument = z.infer<typeof documentSchema>

export interface LoadOptions {
  /** memory to place memory BARs in; default: created from the document (host memory plus one region per memory BAR) */
  physical?: PhysicalMemory
  /** default: a new IOMMU over `physical` */
  iommu?: Iommu
  /** leave the fabric unenumerated (to add functions from code first) */
  enumerate?: boolean
}

function pathOf(path: readonly PropertyKey[]): string {
  let s = ''
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s === '' ? String(k) : `.${String(k)}`
  return s === '' ? '(document)' : s
}

/** Validates a document (an object, or JSON text); throws PcieError PCIE_BAD_TOPOLOGY naming the path. */
export function parseTopology(input: unknown): TopologyDocument {
  let doc = input
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input)
    } catch (e) {
      throw new PcieError('PCIE_BAD_TOPOLOGY', `not JSON: ${(e as Error).message}`)
    }
  }
  const r = documentSchema.safeParse(doc)
  if (!r.success) {
    const issue = r.error.issues[0]!
    throw new PcieError('PCIE_BAD_TOPOLOGY', `${pathOf(issue.path)}: ${issue.message}`)
  }
  return r.data
}

/** The memory BAR regions a document asks for. */
function regionsOf(doc: TopologyDocument): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = []
  const seen = new Map<string, number>()
  const visitEndpoint = (e: z.infer<typeof endpoint>) => {
    for (const f of e.functions) {
      for (const b of f.bars ?? []) {
        if (b.kind !== 'memory' || b.region === undefined) continue
        const had = seen.get(b.region)
        if (had === undefined) {
          seen.set(b.region, b.size)
          out.push({ name: b.region, size: b.size })
        } else if (had < b.size) out.find((r) => r.name === b.region)!.size = b.size
      }
    }
  }
  const visitPort = (p: PortDoc) => {
    if (p.endpoint) visitEndpoint(p.endpoint)
    for (const d of p.switch?.downstreamPorts ?? []) visitPort(d)
  }
  for (const hb of doc.hostBridges) {
    for (const e of hb.endpoints ?? []) visitEndpoint(e)
    for (const p of hb.rootPorts ?? []) visitPort(p)
  }
  return out
}

/**
 * Builds (and by default enumerates) the fabric a document describes. Register BARs get
 * their device models afterwards, with PciFunction.setRegisterHandler().
 */
export function loadTopology(input: unknown, options: LoadOptions = {}): PciFabric {
  const doc = parseTopology(input)
  let physical = options.physical
  if (physical === undefined) {
    const devices = regionsOf(doc)
    physical = createPhysicalMemory({ hostSize: doc.hostMemory ?? 64 * 2 ** 20, ipuSize: 2 ** 20, devices, iobuf: { smallCount: 16, largeCount: 2 } })
  }
  const iommu = options.iommu ?? new Iommu(physical)
  const fabric = new PciFabric({
    physical,
    iommu,
    ...(doc.cpu && { cpu: doc.cpu as CpuSpec }),
    ...(doc.defaultLink && { defaultLink: doc.defaultLink }),
  })
  const at = <T>(path: string, build: () => T): T => {
    try {
      return build()
    } catch (e) {
      const code = (e as { code?: string }).code
      if (e instanceof PcieError || code === 'ERR_OUT_OF_RANGE' || code === 'ERR_INVALID_ARG_TYPE' || e instanceof RangeError || e instanceof TypeError) {
        throw new PcieError('PCIE_BAD_TOPOLOGY', `${path}: ${(e as Error).message}`)
      }
      throw e
    }
  }
  const buildEndpoint = (path: string, below: PciFunction | HostBridge, e: z.infer<typeof endpoint>) => {
    const spec: EndpointSpec = {
      name: e.name,
      ...(e.device !== undefined && { device: e.device }),
      ...(e.link && { link: e.link }),
      functions: e.functions.map((f) => dropUndefined(f) as FunctionSpec & { bars?: BarSpec[] }),
    }
    at(path, () => ('rootBus' in below ? below.addEndpoint(spec) : fabric.addEndpoint(below, spec)))
  }
  const buildPort = (path: string, portFn: PciFunction, p: PortDoc) => {
    if (p.endpoint) buildEndpoint(`${path}.endpoint`, portFn, p.endpoint)
    if (p.switch) {
      const s = p.switch
      const { downstream } = at(`${path}.switch`, () =>
        fabric.addSwitch(portFn, {
          name: s.name,
          ...(s.vendorId !== undefined && { vendorId: s.vendorId }),
          ...(s.deviceId !== undefined && { deviceId: s.deviceId }),
          ...(s.link && { link: s.link }),
          ...(s.acs && { acs: s.acs }),
          downstreamPorts: s.downstreamPorts.map((d) => dropUndefined({ name: d.name, device: d.device, vendorId: d.vendorId, deviceId: d.deviceId, link: d.link, acs: d.acs })),
        }),
      )
      s.downstreamPorts.forEach((d, i) => buildPort(`${path}.switch.downstreamPorts[${i}]`, downstream[i]!, d))
    }
  }
  doc.hostBridges.forEach((h, i) => {
    const path = `hostBridges[${i}]`
    const hb = at(path, () => fabric.addHostBridge(dropUndefined({ name: h.name, vendorId: h.vendorId, deviceId: h.deviceId, domain: h.domain, bus: h.bus, noHostBridgeDevice: h.noHostBridgeDevice })))
    ;(h.endpoints ?? []).forEach((e, k) => buildEndpoint(`${path}.endpoints[${k}]`, hb, e))
    ;(h.rootPorts ?? []).forEach((p, k) => {
      const rp = at(`${path}.rootPorts[${k}]`, () => hb.addRootPort(dropUndefined({ name: p.name, device: p.device, vendorId: p.vendorId, deviceId: p.deviceId, link: p.link, acs: p.acs })))
      buildPort(`${path}.rootPorts[${k}]`, rp, p)
    })
  })
  if (options.enumerate !== false) at('(document)', () => fabric.enumerate())
  return fabric
}

/** exactOptionalPropertyTypes: the builder's specs take absent keys, not undefined ones. */
function dropUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue
    out[k] = Array.isArray(v) ? v.map((x: unknown) => (x !== null && typeof x === 'object' ? dropUndefined(x) : x)) : v !== null && typeof v === 'object' ? dropUndefined(v) : v
  }
  return out as { [K in keyof T]: Exclude<T[K], undefined> }
}
