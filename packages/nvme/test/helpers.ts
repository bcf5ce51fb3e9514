// Test fixtures: a fabric with a host and an IPU NVMe function (BAR0 registers, MSI-X, and
// optionally a CMB), the accel framework and bdevs, RAM namespaces, the PCIe controller, and
// the host driver.
import { type Accel, createAccel } from '@ipukit/accel'
import { type BdevChannel, Bdevs, createMallocBdev } from '@ipukit/bdev'
import { createPhysicalMemory, drainCompletions, Iommu, type PhysicalMemory } from '@ipukit/memory'
import { PciFabric, type PciFunction } from '@ipukit/pcie'
import { type NamespaceOptions, NvmeHostDriver, type HostDriverOptions, NvmePcieController, nvmeFunctionSpec, type PcieControllerOptions } from '../src/index.js'

export interface Fixture {
  pm: PhysicalMemory
  iommu: Iommu
  fabric: PciFabric
  fn: PciFunction
  accel: Accel
  bdevs: Bdevs
  ch: BdevChannel
  ctrl: NvmePcieController
  close(): Promise<void>
}

let shared: PhysicalMemory | undefined
export function memory(): PhysicalMemory {
  shared ??= createPhysicalMemory({ hostSize: 64 << 20, ipuSize: 192 << 20, devices: [{ name: 'cmb', size: 1 << 20 }, { name: 'pmr', size: 1 << 20 }], kernels: { scratchSlots: 12 } })
  return shared
}

export interface FixtureOptions {
  /** RAM namespaces: blocks, block size, metadata, PI */
  namespaces?: { blocks: number; blockSize?: number; mdSize?: number; pi?: { type: 0 | 1 | 2 | 3; format?: 16 | 32 | 64; location?: 'first' | 'last' } }[]
  controller?: Partial<Omit<PcieControllerOptions, 'fabric' | 'fn' | 'bdevs' | 'ch'>>
  cmb?: boolean
  pmr?: boolean
  driver?: 'ipu' | null
}

export async function fixture(o: FixtureOptions = {}): Promise<Fixture> {
  const pm = memory()
  const iommu = new Iommu(pm)
  const fabric = new PciFabric({ physical: pm, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 8 } }), {
    name: 'nvme0',
    link: { gen: 4, width: 8 },
    functions: [nvmeFunctionSpec({ vectors: 17, ...(o.cmb === true && { cmb: { region: 'cmb', size: 1 << 20 } }), ...(o.pmr === true && { pmr: { region: 'pmr', size: 1 << 20 } }) })],
  })
  fabric.enumerate()
  const fn = fabric.get('nvme0')
  const accel = await createAccel({ physical: pm, aesni: false, driver: o.driver ?? null, taskCount: 1024, sequenceCount: 512 })
  const bdevs = new Bdevs(accel, { ioCount: 1024 })
  const ch = bdevs.channel()
  const namespaces: NamespaceOptions[] = (o.namespaces ?? [{ blocks: 2048 }]).map((n, i) => {
    const b = createMallocBdev(bdevs, { name: `ns${i + 1}`, blockCount: n.blocks, blockSize: n.blockSize ?? 512, mdSize: n.mdSize ?? 0, ...(n.pi !== undefined && { pi: n.pi }) })
    return { nsid: i + 1, bdev: b.name }
  })
  const ctrl = new NvmePcieController({ fabric, fn, bdevs, ch, namespaces, maxIoQueues: 16, ...o.controller })
  return {
    pm,
    iommu,
    fabric,
    fn,
    accel,
    bdevs,
    ch,
    ctrl,
    async close() {
      drainCompletions()
      ctrl.core.close()
      await bdevs.close()
      await accel.close()
    },
  }
}

export async function host(f: Fixture, o: Partial<Omit<HostDriverOptions, 'fabric' | 'fn' | 'iommu'>> = {}): Promise<NvmeHostDriver> {
  const d = new NvmeHostDriver({ fabric: f.fabric, fn: f.fn, iommu: f.iommu, ...o })
  await d.init()
  return d
}

export function random(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let s = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    out[i] = s & 0xff
  }
  return out
}

export const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

export const tick = () => new Promise((r) => setImmediate(r))

export function fuzzRuns(ci: number): number {
  const scale = Number(process.env.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(ci * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}
