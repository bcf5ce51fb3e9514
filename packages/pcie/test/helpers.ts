// Small builders for the tests: endpoints with one function, NVMe-like IDs.
import { createPhysicalMemory, Iommu, type PhysicalMemoryOptions } from '@ipukit/memory'
import { type CpuSpec, type EndpointSpec, type FunctionSpec, PciFabric, type PciFabricOptions } from '../src/index.js'

export const NVME = { vendorId: 0x1b36, deviceId: 0x0010, classCode: 0x010802 } as const

export function ep(name: string, extra: Partial<FunctionSpec> = {}, functions = 1): EndpointSpec {
  return {
    name,
    functions: Array.from({ length: functions }, (_, i) => ({ ...NVME, ...extra, ...(functions > 1 && { name: `${name}.${i}` }) })),
  }
}

export function fabric(cpu?: CpuSpec, options: PciFabricOptions = {}): PciFabric {
  return new PciFabric({ ...(cpu && { cpu }), ...options })
}

/** A fabric over a small physical memory with an IOMMU, and device regions by name. */
export function memoryFabric(devices: { name: string; size: number }[], options: Partial<PhysicalMemoryOptions> & { cpu?: CpuSpec } = {}) {
  const physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, devices, iobuf: { smallCount: 4, largeCount: 1 }, ...options })
  const iommu = new Iommu(physical)
  const f = new PciFabric({ physical, iommu, ...(options.cpu && { cpu: options.cpu }) })
  return { physical, iommu, fabric: f }
}

/** A property test's run count: `ci` in CI, times IPUKIT_FUZZ_SCALE in the long runs (scripts/fuzz.sh). */
export function fuzzRuns(ci: number): number {
  const scale = Number(process.env.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(ci * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}

/** The `code` of what `fn` throws ('none' when it returns). */
export function thrownCode(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).name
  }
  return 'none'
}
