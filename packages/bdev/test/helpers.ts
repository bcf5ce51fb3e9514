// Test fixtures: a physical memory with host DRAM behind an IOMMU, an IPU NVMe function on a
// PCIe fabric (its bus-master domain is "the host domain" of an I/O), an accel framework and
// the bdev layer with a channel; and promise wrappers around the callback API.
import { type Accel, type AccelOptions, createAccel } from '@ipukit/accel'
import { createPhysicalMemory, drainCompletions, Iommu, IoVecList, type MemoryDomain, type PhysicalMemory } from '@ipukit/memory'
import { PciFabric, type PciFunction } from '@ipukit/pcie'
import { type BdevChannel, type BdevDesc, type BdevIoOptions, Bdevs } from '../src/index.js'

export interface Fixture {
  pm: PhysicalMemory
  iommu: Iommu
  fabric: PciFabric
  nvme: PciFunction
  host: MemoryDomain
  accel: Accel
  bdevs: Bdevs
  ch: BdevChannel
  /** test scratch in IPU DRAM: the top 16 MiB (allocations come from the bottom) */
  local: (offset: number) => number
  /** host DRAM mapped for the NVMe function at IOVA iova(offset) */
  iova: (offset: number) => number
  hostBytes: (offset: number, n: number) => Uint8Array
  close(): Promise<void>
}

let shared: PhysicalMemory | undefined

/** One physical memory per test file (big enough for a few RAM disks). */
export function memory(): PhysicalMemory {
  shared ??= createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 160 << 20, kernels: { scratchSlots: 12 } })
  return shared
}

const IOVA = 0x40_0000

export async function fixture(options: Omit<AccelOptions, 'physical'> = {}): Promise<Fixture> {
  const pm = memory()
  const iommu = new Iommu(pm)
  const fabric = new PciFabric({ physical: pm, iommu })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 8 } }), { name: 'ipu-nvme', link: { gen: 4, width: 8 }, functions: [{ vendorId: 0x1b36, deviceId: 0x0010 }] })
  fabric.enumerate()
  const nvme = fabric.get('ipu-nvme')
  // all of host DRAM but the first MiB, readable and writable by the function
  iommu.map(nvme.rid, IOVA, 1 << 20, (16 << 20) - (1 << 20), 3)
  const accel = await createAccel({ physical: pm, taskCount: 512, sequenceCount: 128, aesni: false, ...options })
  const bdevs = new Bdevs(accel, { ioCount: 256 })
  const ch = bdevs.channel()
  const ipu = pm.region('ipu')
  const top = ipu.base + ipu.size - (16 << 20)
  const hostBase = pm.region('host').base
  return {
    pm,
    iommu,
    fabric,
    nvme,
    host: fabric.busMaster(nvme),
    accel,
    bdevs,
    ch,
    local: (off) => top + off,
    iova: (off) => IOVA + off,
    hostBytes: (off, n) => pm.bytes.subarray(hostBase + (1 << 20) + off, hostBase + (1 << 20) + off + n),
    async close() {
      drainCompletions()
      await bdevs.close()
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

type Done = (arg: null, status: number) => void

/** The status of one I/O, as a promise. */
export function io(submit: (cb: Done) => number): Promise<number> {
  return new Promise((resolve, reject) => {
    const rc = submit((_, st) => resolve(st))
    if (rc !== 0) reject(new Error(`submission refused: ${rc}`))
  })
}

export const readBlocks = (d: BdevDesc, ch: BdevChannel, iovs: IoVecList, domain: MemoryDomain | null, lba: number, n: number, opts?: BdevIoOptions) => io((cb) => d.readv(ch, iovs, domain, lba, n, cb, null, opts))
export const writeBlocks = (d: BdevDesc, ch: BdevChannel, iovs: IoVecList, domain: MemoryDomain | null, lba: number, n: number, opts?: BdevIoOptions) => io((cb) => d.writev(ch, iovs, domain, lba, n, cb, null, opts))

/** Every pool back to full: bdev I/Os, accel tasks and sequences, accel buffers, iobuf caches balanced. */
export function poolsFull(f: Fixture): { ios: boolean; tasks: boolean; accelBuffers: boolean } {
  return { ios: f.ch.freeIos === f.ch.ioCount, tasks: f.ch.accel.freeTasks === 512, accelBuffers: f.ch.accel.accelDomain.inUse === 0 }
}

/** CRC16 T10-DIF, bit by bit from its definition (poly 0x8BB7, init 0, not reflected): a reader's own. */
export function crc16Reference(data: Uint8Array): number {
  let crc = 0
  for (const byte of data) {
    crc ^= byte << 8
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8bb7) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

export function fuzzRuns(ci: number): number {
  const scale = Number(process.env.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(ci * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}
