// Test fixtures: a physical memory with host DRAM behind an IOMMU, an IPU NVMe function on a
// PCIe fabric (its bus-master domain is "the host domain" of a request), and a started
// accel framework.
import { createPhysicalMemory, drainCompletions, Iommu, IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { PciFabric, type PciFunction } from '@ipukit/pcie'
import { type Accel, type AccelChannel, type AccelOptions, createAccel } from '../src/index.js'

export interface Fixture {
  pm: PhysicalMemory
  iommu: Iommu
  fabric: PciFabric
  nvme: PciFunction
  accel: Accel
  ch: AccelChannel
  /** local scratch: [base, base + size) in IPU DRAM, past the framework's own allocations */
  local: (offset: number) => number
  close(): Promise<void>
}

const pms: PhysicalMemory[] = []

/** One physical memory per test file (worker threads attach to it once). */
export function memory(): PhysicalMemory {
  if (pms.length === 0) pms.push(createPhysicalMemory({ hostSize: 8 << 20, ipuSize: 96 << 20, kernels: { scratchSlots: 12 } }))
  return pms[0]!
}

export async function fixture(options: Omit<AccelOptions, 'physical'> = {}): Promise<Fixture> {
  const pm = memory()
  const iommu = new Iommu(pm)
  const fabric = new PciFabric({ physical: pm, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 8 } }), { name: 'ipu-nvme', link: { gen: 4, width: 8 }, functions: [{ vendorId: 0x1b36, deviceId: 0x0010 }] })
  fabric.enumerate()
  const nvme = fabric.get('ipu-nvme')
  const accel = await createAccel({ physical: pm, taskCount: 256, sequenceCount: 64, ...options, ...(options.dmaEngine && { dmaEngine: { fabric } }) })
  const ch = accel.channel()
  const ipu = pm.region('ipu')
  // the last 24 MiB of IPU DRAM are the tests' (the framework allocates from the bottom)
  const base = ipu.base + ipu.size - (24 << 20)
  return {
    pm,
    iommu,
    fabric,
    nvme,
    accel,
    ch,
    local: (off) => base + off,
    async close() {
      drainCompletions()
      await accel.close()
    },
  }
}

export const list = (...pairs: [number, number][]) => {
  const l = new IoVecList(Math.max(1, pairs.length))
  for (const [a, n] of pairs) l.push(a, n)
  return l
}

/** Splits [addr, addr + total) at cut points into a list, pieces `gap` bytes apart. */
export function scattered(addr: number, total: number, cuts: number[], gap = 64): IoVecList {
  const points = [...new Set(cuts.map((c) => c % (total + 1)))].filter((c) => c > 0 && c < total).sort((x, y) => x - y)
  const l = new IoVecList(points.length + 1)
  let prev = 0
  let at = addr
  for (const p of [...points, total]) {
    l.push(at, p - prev)
    at += p - prev + gap
    prev = p
  }
  return l
}

export function read(pm: PhysicalMemory, l: IoVecList): Uint8Array {
  const out = new Uint8Array(l.total)
  let o = 0
  for (let i = 0; i < l.count; i++) {
    out.set(pm.bytes.subarray(l.addr[i]!, l.addr[i]! + l.len[i]!), o)
    o += l.len[i]!
  }
  return out
}

export function write(pm: PhysicalMemory, l: IoVecList, data: Uint8Array): void {
  let o = 0
  for (let i = 0; i < l.count; i++) {
    pm.bytes.set(data.subarray(o, o + l.len[i]!), l.addr[i]!)
    o += l.len[i]!
  }
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

/** Finishes a sequence and resolves with its status. */
export function run(seq: { finish<T>(cb: (arg: T, status: number) => void, arg: T): void }): Promise<number> {
  return new Promise((resolve) => seq.finish((_: null, st) => resolve(st), null))
}

/** A one-shot submission, as a promise of its status. */
export function submit(fn: (cb: (arg: null, status: number) => void) => number): Promise<number> {
  return new Promise((resolve) => {
    const rc = fn((_, st) => resolve(st))
    if (rc !== 0) resolve(rc)
  })
}

export function fuzzRuns(ci: number): number {
  const scale = Number(process.env.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(ci * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}
