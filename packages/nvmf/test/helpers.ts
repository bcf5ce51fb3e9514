// Test fixtures: one physical memory (IPU side) for the target and the host, RAM bdevs, a
// target with a TCP listener on loopback, and hosts connected to it.
import { type Accel, createAccel } from '@ipukit/accel'
import { Bdevs, createMallocBdev } from '@ipukit/bdev'
import { createPhysicalMemory, type PhysicalMemory } from '@ipukit/memory'
import { NvmfHost, type NvmfHostOptions, NvmfTarget, type NvmfSubsystem, TcpTransport, type TcpTransportOptions } from '../src/index.js'

let shared: PhysicalMemory | undefined
export function memory(): PhysicalMemory {
  shared ??= createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 256 << 20, kernels: { scratchSlots: 12 } })
  return shared
}

export const SUBNQN = 'nqn.2026-12.io.ipukit:test'
export const HOSTNQN = 'nqn.2026-12.io.ipukit:host1'

export interface TargetFixture {
  pm: PhysicalMemory
  accel: Accel
  bdevs: Bdevs
  target: NvmfTarget
  tcp: TcpTransport
  subsystem: NvmfSubsystem
  port: number
  address: string
  host(o?: Partial<NvmfHostOptions>): Promise<NvmfHost>
  close(): Promise<void>
}

export async function targetFixture(o: { blocks?: number; blockSize?: number; transport?: TcpTransportOptions; allowAnyHost?: boolean; hosts?: string[] } = {}): Promise<TargetFixture> {
  const pm = memory()
  const accel = await createAccel({ physical: pm, aesni: false, driver: null, taskCount: 1024, sequenceCount: 256 })
  const bdevs = new Bdevs(accel, { ioCount: 1024 })
  createMallocBdev(bdevs, { name: 'ram0', blockCount: o.blocks ?? 8192, blockSize: o.blockSize ?? 512 })
  const target = new NvmfTarget({ bdevs })
  const tcp = new TcpTransport(target, o.transport)
  const l = await tcp.listen('127.0.0.1', 0)
  const subsystem = target.createSubsystem({ nqn: SUBNQN, allowAnyHost: o.allowAnyHost ?? true, hosts: o.hosts ?? [] })
  subsystem.addNamespace({ bdev: 'ram0' })
  subsystem.addListener(l.address)
  target.discovery.addListener(l.address)
  const hosts: NvmfHost[] = []
  return {
    pm,
    accel,
    bdevs,
    target,
    tcp,
    subsystem,
    port: Number(l.trsvcid),
    address: l.address,
    async host(h = {}) {
      const x = new NvmfHost({ physical: pm, traddr: '127.0.0.1', trsvcid: l.trsvcid, subnqn: SUBNQN, hostnqn: HOSTNQN, ...h })
      hosts.push(x)
      await x.connect()
      return x
    },
    async close() {
      for (const h of hosts) await h.close()
      await tcp.close()
      target.close()
      await bdevs.close()
      await accel.close()
    },
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

export const tick = () => new Promise((r) => setImmediate(r))

export function fuzzRuns(ci: number): number {
  const scale = Number(process.env.IPUKIT_FUZZ_SCALE ?? 1)
  return Math.max(1, Math.round(ci * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}
