// The main job, `ipukit run`: a host writes a data set through the IPU to a remote NVMe/TCP
// target, reads it back through the same path and compares.
//
//   host thread                 IPU (this thread, the accel workers)                 remote
//   ───────────                 ─────────────────────────────────────                ──────
//   NvmeHostDriver ──PCIe──▶ NvmePcieController ─▶ crypto bdev ─▶ dif bdev ─▶ nvme-tcp bdev ──TCP──▶ NVMe/TCP target
//   (host DRAM buffers)      (memory-based transport)  encrypt       PI generate   (PDU buffers)       (file, data+metadata)
//
// On a write the crypto and dif bdevs append encrypt and DIF-generate to the I/O's accel
// sequence; the nvme-tcp bdev runs the sequence into its PDU data buffer, where the ipu
// driver fuses them: one pass reads the host's data (through the IOMMU, over the PCIe link)
// and writes the encrypted, protected blocks once, into the buffer the socket sends. A read
// runs the other way: DIF-verify and decrypt out of the received buffer into host memory.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { type Accel, type AccelStats, createAccel } from '@ipukit/accel'
import { Bdevs, createCryptoBdev, createDifBdev } from '@ipukit/bdev'
import { createPhysicalMemory, Iommu } from '@ipukit/memory'
import { NvmePcieController, NvmeStatus } from '@ipukit/nvme'
import { randomUUID } from 'node:crypto'
import { connectError, describeStatus } from './connect-error.js'
import { attachNvmeController, detachNvmeController } from '@ipukit/nvmf'
import type { TrafficReport } from '@ipukit/pcie'
import { CliError } from './errors.js'
import type { Phase, PhaseResult } from './host-job.js'
import { runHostJobIn, type HostRunner } from './host-runner.js'
import { buildIpuTopology } from './topology.js'
import { liveCode, liveHeap } from './heap.js'
import { startEmbeddedTarget } from './embedded-target.js'

export type Cipher = 'aes-xts-128' | 'aes-xts-256' | 'none'
export type PiType = 'none' | 'type1' | 'type2' | 'type3'

export interface RunOptions {
  /** bytes of generated data (ignored with input); default 256 MiB */
  size?: number
  /** a file whose bytes are written */
  input?: string
  /** bytes per I/O; default 128 KiB */
  ioBytes?: number
  queueDepth?: number
  cipher?: Cipher
  /** hex key1‖key2; generated and saved there when absent */
  keyFile?: string
  pi?: PiType
  piFormat?: 16 | 32 | 64
  blockSize?: 512 | 4096
  /** accel worker threads (0: the software module on this thread) */
  workers?: number
  /** an external target instead of the embedded one */
  target?: { host: string; port: number; nqn: string }
  /** ms for the connection to the target and each bring-up command; default 5000 */
  connectTimeoutMs?: number
  /** keep the embedded target's file here */
  targetFile?: string
  /** the host driver on its own thread (default) or on this one */
  hostThread?: boolean
  /** how the host driver learns of completions; default 'interrupt' (MSI-X) */
  hostMode?: 'interrupt' | 'poll'
  seed?: number
  progress?(phase: Phase, bytes: number, total: number): void
  /** aborts the run: what is in flight completes, then everything is torn down */
  signal?: AbortSignal
  log?(msg: string): void
}

export interface PhaseReport {
  bytes: number
  ios: number
  seconds: number
  bytesPerSec: number
  iops: number
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number }
}

export interface DomainBytes {
  type: string
  read: number
  written: number
}

export interface PhaseMemory {
  domains: Record<string, DomainBytes>
  regions: Record<string, { kind: string; read: number; written: number }>
  links: Record<string, { up: number; down: number; gen: number; width: number }>
}

/** Everything the run chose (the key file's path, never the key). */
export interface RunConfig {
  size: number
  input: string | null
  ioBytes: number
  queueDepth: number
  cipher: Cipher
  keyFile: string | null
  pi: PiType
  piFormat: 16 | 32 | 64 | null
  blockSize: 512 | 4096
  metadataSize: number
  workers: number
  hostThread: boolean
  hostMode: 'interrupt' | 'poll'
  /** 'embedded', or the external target's URL */
  target: string
  /** the embedded target's namespace file (removed after the run unless --target-file) */
  targetFile: string | null
  remote: { host: string; port: number; nqn: string }
  /** the bdev stack, top first */
  pipeline: string[]
}

export interface RunReport {
  verified: boolean
  interrupted: boolean
  bytesWritten: number
  bytesRead: number
  write: PhaseReport
  read: PhaseReport | null
  verify: { checkedBytes: number; mismatches: number; firstMismatch: number }
  /** bytes read and written per memory domain by the accel framework, and per memory region and link by the PCIe model */
  memory: {
    /** bytes the accel framework read and wrote per memory domain, over the run */
    domains: Record<string, DomainBytes>
    /** the write phase: per domain, and per memory region and link as the PCIe model charged them */
    write: PhaseMemory
    /** the read phase (null when it did not run) */
    read: PhaseMemory | null
    /**
     * the IPU's passes over the written data, per data byte: hostRead is what the accel read
     * from the host's memory domain (1: the host data once), ipuWritten what it wrote into
     * IPU memory (1 without PI; (block + metadata) / block with it: the protected blocks once)
     */
    writePasses: { hostRead: number; ipuWritten: number }
  }
  accel: {
    opcodes: AccelStats['opcodes']
    sequences: AccelStats['sequences']
  }
  /**
   * live heap from the warm write phase to the end; codeGrowthBytes is the part that is compiled
   * code and bytecode (the JIT: the read path first runs after the sample), dataGrowthBytes the rest
   */
  heap: { steadyBytes: number; endBytes: number; growthBytes: number; codeGrowthBytes: number; dataGrowthBytes: number; ios: number; hostThread: { growthBytes: number } | null }
  config: RunConfig
  /** the first failed I/O, when one failed (the job stops submitting at the first failure) */
  failure?: { message: string; phase: 'write' | 'read'; lba: number; status: number; noSpace: boolean }
}

interface KeyMaterial {
  key1: Buffer
  key2: Buffer
  path: string
  generated: boolean
}

/** Reads hex key1‖key2 from `path`, or makes one and saves it there (mode 0600). */
export function loadOrCreateKey(path: string, cipher: Exclude<Cipher, 'none'>): KeyMaterial {
  const half = cipher === 'aes-xts-128' ? 16 : 32
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8').trim()
    if (!/^[0-9a-fA-F]+$/.test(text) || text.length !== 4 * half) throw new CliError('CLI_USAGE', `--key-file ${path}: expected ${4 * half} hex digits (key1‖key2 for ${cipher}), found ${/^[0-9a-fA-F]*$/.test(text) ? `${text.length}` : 'other characters'}`)
    const k = Buffer.from(text, 'hex')
    const key1 = k.subarray(0, half)
    const key2 = k.subarray(half)
    if (key1.equals(key2)) throw new CliError('CLI_USAGE', `--key-file ${path}: key1 and key2 must differ (IEEE 1619)`)
    return { key1, key2, path, generated: false }
  }
  let k = randomBytes(2 * half)
  while (k.subarray(0, half).equals(k.subarray(half))) k = randomBytes(2 * half)
  try {
    writeFileSync(path, `${k.toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
  } catch (e) {
    throw new CliError((e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'CLI_NO_SPACE' : 'CLI_USAGE', `--key-file ${path}: cannot save the generated key: ${(e as Error).message}`)
  }
  return { key1: k.subarray(0, half), key2: k.subarray(half), path, generated: true }
}


function phaseReport(p: PhaseResult): PhaseReport {
  return { bytes: p.bytes, ios: p.ios, seconds: p.seconds, bytesPerSec: p.seconds > 0 ? p.bytes / p.seconds : 0, iops: p.seconds > 0 ? p.ios / p.seconds : 0, latencyUs: p.latencyUs }
}

export async function runFlow(o: RunOptions): Promise<RunReport> {
  const log = o.log ?? (() => {})
  const cipher = o.cipher ?? 'aes-xts-256'
  const pi = o.pi ?? 'type1'
  const piFormat = o.piFormat ?? 16
  const blockSize = o.blockSize ?? 512
  const ioBytes = o.ioBytes ?? 128 * 1024
  const qd = o.queueDepth ?? 32
  const workers = o.workers ?? 1
  const piType = pi === 'none' ? 0 : (Number(pi.slice(4)) as 1 | 2 | 3)
  if (piType !== 0 && piFormat !== 16 && blockSize !== 4096) throw new CliError('CLI_USAGE', `--pi-format ${piFormat} needs --block-size 4096 (the 32b and 64b guard formats protect 4 KiB blocks)`)
  if (ioBytes % blockSize !== 0) throw new CliError('CLI_USAGE', `--bs ${ioBytes} must be a multiple of --block-size ${blockSize}`)
  if (ioBytes > 128 * 1024) throw new CliError('CLI_USAGE', `--bs ${ioBytes} is larger than the 128 KiB the path carries in one I/O (MDTS)`)
  let size: number
  if (o.input !== undefined) {
    let st
    try {
      st = statSync(o.input)
    } catch (e) {
      throw new CliError('CLI_USAGE', `--input ${o.input}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`)
    }
    if (!st.isFile()) throw new CliError('CLI_USAGE', `--input ${o.input}: not a regular file`)
    if (st.size === 0) throw new CliError('CLI_USAGE', `--input ${o.input}: the file is empty`)
    size = st.size
  } else {
    size = o.size ?? 256 * 1024 * 1024
    if (size % blockSize !== 0) throw new CliError('CLI_USAGE', `--size ${size} must be a multiple of --block-size ${blockSize}`)
  }
  const blocks = Math.ceil(size / blockSize)
  const mdSize = piType === 0 ? 0 : piFormat === 16 ? 8 : 16
  const key = cipher === 'none' ? null : loadOrCreateKey(o.keyFile ?? defaultKeyFile(cipher), cipher)
  if (key?.generated) log(`generated a ${cipher} key in ${key.path}`)

  const cleanups: (() => Promise<void> | void)[] = []
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c()
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`)
      }
    }
  }
  try {
    // the remote first: nothing else is worth building if it cannot be reached
    let remote = o.target
    let targetFile: string | null = null
    if (remote === undefined) {
      const t = await startEmbeddedTarget({ size: blocks * blockSize, blockSize, mdSize, pi: pi, piFormat, ...(o.targetFile !== undefined && { file: o.targetFile, keepFile: true }) })
      cleanups.push(() => t.stop())
      remote = { host: t.host, port: t.port, nqn: t.nqn }
      targetFile = t.file
      log(`embedded target ${t.nqn} on ${t.host}:${t.port} (pid ${t.pid}), namespace file ${t.file}`)
    }
    o.signal?.throwIfAborted()

    const physical = createPhysicalMemory({ hostSize: Math.max(64 << 20, 2 * qd * ioBytes + (16 << 20)), ipuSize: 256 << 20, kernels: { scratchSlots: 8 } })
    const iommu = new Iommu(physical)
    const topo = buildIpuTopology({ physical, iommu })
    const accel: Accel = await createAccel({ physical, driver: 'ipu', workers: workers > 0 ? { threads: workers } : 0, dmaEngine: { fabric: topo.fabric, function: topo.dma }, taskCount: 4096, sequenceCount: 1024 })
    cleanups.push(() => accel.close())
    const bdevs = new Bdevs(accel, { ioCount: 1024 })
    cleanups.push(() => bdevs.close())
    const hostnqn = `nqn.2014-08.org.nvmexpress:uuid:${randomUUID()}`
    const at = remote
    const names = await attachNvmeController(bdevs, { name: 'Nvme0', traddr: at.host, trsvcid: at.port, subnqn: at.nqn, hostnqn, ioQueues: 1, queueDepth: 128, connectTimeoutMs: o.connectTimeoutMs ?? 5000 }).catch((e: Error) => {
      throw connectError(e, at, hostnqn)
    })
    cleanups.push(() => detachNvmeController(bdevs, 'Nvme0'))
    const base = bdevs.get(names[0]!)
    if (base === undefined) throw new CliError('CLI_TARGET', `the target ${remote.nqn} has no namespace`)
    if (base.blockSize !== blockSize) throw new CliError('CLI_TARGET', `the target's namespace has ${base.blockSize}-byte blocks; --block-size is ${blockSize}`)
    if (base.blockCount < blocks) throw new CliError('CLI_NO_SPACE', `the target's namespace holds ${base.blockCount * blockSize} bytes; the data needs ${blocks * blockSize}`)
    if (base.pi.type !== piType || (piType !== 0 && base.pi.format !== piFormat)) throw new CliError('CLI_TARGET', `the target's namespace is formatted with ${base.pi.type === 0 ? 'no PI' : `PI type ${base.pi.type}, ${base.pi.format}b guard`}; asked for ${piType === 0 ? 'no PI' : `type ${piType}, ${piFormat}b guard`}`)
    let top = names[0]!
    if (piType !== 0) {
      createDifBdev(bdevs, { name: 'Dif0', base: top })
      top = 'Dif0'
    }
    if (key !== null) {
      accel.keys.create({ name: 'key0', cipher: 'AES_XTS', key: key.key1, key2: key.key2 })
      createCryptoBdev(bdevs, { name: 'Crypto0', base: top, key: 'key0' })
      top = 'Crypto0'
    }
    const ch = bdevs.channel()
    const ctrl = new NvmePcieController({ fabric: topo.fabric, fn: topo.nvme, bdevs, ch, namespaces: [{ nsid: 1, bdev: top }], maxIoQueues: 4, model: 'ipukit IPU NVMe', serial: 'IPUKIT0001' })

    const before = accel.stats()
    topo.fabric.traffic.reset()
    let mid: { stats: AccelStats; traffic: TrafficReport } | null = null
    let steadyHeap = 0
    let steadyCode = 0
    const runner: HostRunner = { fabric: topo.fabric, fn: topo.nvme, iommu, thread: o.hostThread ?? true, ...(o.hostMode !== undefined && { mode: o.hostMode }) }
    const job = await runHostJobIn(
      runner,
      { nsid: 1, size, ioBytes, queueDepth: qd, seed: o.seed ?? 1, ...(o.input !== undefined && { input: o.input }) },
      {
        progress: (phase, bytes) => o.progress?.(phase, bytes, size),
        steady: () => {
          steadyHeap = liveHeap()
          steadyCode = liveCode()
        },
        between: () => {
          mid = { stats: accel.stats(), traffic: topo.fabric.traffic.report() }
          topo.fabric.traffic.reset()
        },
      },
      o.signal,
    )
    const endHeap = liveHeap()
    const endCode = liveCode()
    const after = accel.stats()
    const endTraffic = topo.fabric.traffic.report()
    const r = job.result
    const m = mid as { stats: AccelStats; traffic: TrafficReport } | null
    const writeMemory = phaseMemory(before, m?.stats ?? after, m?.traffic ?? endTraffic)
    const readMemory = m === null ? null : phaseMemory(m.stats, after, endTraffic)
    const report: RunReport = {
      verified: r.read !== null && r.write.failed === 0 && r.read.failed === 0 && r.verify.mismatches === 0 && r.verify.checkedBytes === size && !r.write.interrupted && !r.read.interrupted,
      interrupted: r.write.interrupted || (r.read?.interrupted ?? false) || (o.signal?.aborted ?? false),
      bytesWritten: r.write.bytes,
      bytesRead: r.read?.bytes ?? 0,
      write: phaseReport(r.write),
      read: r.read === null ? null : phaseReport(r.read),
      verify: r.verify,
      memory: {
        domains: diffDomains(before, after),
        write: writeMemory,
        read: readMemory,
        // per device byte written: the data, padded to whole blocks (a file's last block)
        writePasses: writePasses(writeMemory, Math.min(r.write.ios * ioBytes, blocks * blockSize)),
      },
      accel: { opcodes: diffOpcodes(before, after), sequences: { completed: after.sequences.completed - before.sequences.completed, failed: after.sequences.failed - before.sequences.failed, elided: after.sequences.elided - before.sequences.elided, fused: after.sequences.fused - before.sequences.fused } },
      heap: { steadyBytes: steadyHeap, endBytes: endHeap, growthBytes: steadyHeap > 0 ? endHeap - steadyHeap : 0, codeGrowthBytes: steadyHeap > 0 ? endCode - steadyCode : 0, dataGrowthBytes: steadyHeap > 0 ? endHeap - steadyHeap - (endCode - steadyCode) : 0, ios: r.write.ios + (r.read?.ios ?? 0), hostThread: job.hostHeapGrowth === null ? null : { growthBytes: job.hostHeapGrowth } },
      config: {
        size,
        input: o.input ?? null,
        ioBytes,
        queueDepth: qd,
        cipher,
        keyFile: key?.path ?? null,
        pi,
        piFormat: piType === 0 ? null : piFormat,
        blockSize,
        metadataSize: mdSize,
        workers,
        hostThread: o.hostThread ?? true,
        hostMode: runner.mode ?? 'interrupt',
        target: o.target === undefined ? 'embedded' : `nvme+tcp://${o.target.host}:${o.target.port}/${o.target.nqn}`,
        targetFile,
        remote: { host: remote.host, port: remote.port, nqn: remote.nqn },
        pipeline: ['nvme-pcie', ...(key !== null ? ['crypto'] : []), ...(piType !== 0 ? ['dif'] : []), 'nvme-tcp'],
      },
    }
    const failedPhase = r.write.failed > 0 ? r.write : (r.read?.failed ?? 0) > 0 ? r.read : null
    if (failedPhase !== null) {
      const which = failedPhase === r.write ? 'write' : 'read'
      const st = failedPhase.firstFailure
      const noSpace = st === NvmeStatus.CapacityExceeded
      const why = noSpace ? `the target is out of space${targetFile !== null ? ` (its file ${targetFile} is on a full file system)` : ''}` : `NVMe status ${describeStatus(st)}`
      report.failure = { message: `the ${which} of LBA ${failedPhase.firstFailureLba} failed: ${why}; ${failedPhase.failed} I/O${failedPhase.failed === 1 ? '' : 's'} failed, the job stopped there`, phase: which, lba: failedPhase.firstFailureLba, status: st, noSpace }
    }
    return report
  } finally {
    await cleanup()
  }
}

/** The write phase's passes over the data: host-domain bytes the accel read, IPU bytes it wrote, per data byte. */
function writePasses(w: PhaseMemory, dataBytes: number): { hostRead: number; ipuWritten: number } {
  let hostRead = 0
  let ipuWritten = 0
  for (const d of Object.values(w.domains)) {
    if (d.type === 'host') hostRead += d.read
    else ipuWritten += d.written
  }
  return dataBytes > 0 ? { hostRead: hostRead / dataBytes, ipuWritten: ipuWritten / dataBytes } : { hostRead: 0, ipuWritten: 0 }
}

function diffDomains(before: AccelStats, after: AccelStats): Record<string, DomainBytes> {
  const out: Record<string, DomainBytes> = {}
  for (const [id, d] of Object.entries(after.domains)) {
    const b = before.domains[id]
    const read = d.read - (b?.read ?? 0)
    const written = d.written - (b?.written ?? 0)
    if (read !== 0 || written !== 0) out[id] = { type: d.type, read, written }
  }
  return out
}

function phaseMemory(before: AccelStats, after: AccelStats, t: TrafficReport): PhaseMemory {
  return {
    domains: diffDomains(before, after),
    regions: Object.fromEntries(Object.entries(t.memory).filter(([, m]) => m.read + m.write > 0).map(([k, m]) => [k, { kind: m.kind, read: m.read, written: m.write }])),
    links: Object.fromEntries(Object.entries(t.links).map(([k, l]) => [k, { up: l.up, down: l.down, gen: l.gen, width: l.width }])),
  }
}

function diffOpcodes(before: AccelStats, after: AccelStats): AccelStats['opcodes'] {
  const out: Record<string, Record<string, { executed: number; failed: number; bytesIn: number; bytesOut: number }>> = {}
  for (const [op, mods] of Object.entries(after.opcodes)) {
    for (const [m, s] of Object.entries(mods)) {
      const b = before.opcodes[op]?.[m]
      const d = { executed: s.executed - (b?.executed ?? 0), failed: s.failed - (b?.failed ?? 0), bytesIn: s.bytesIn - (b?.bytesIn ?? 0), bytesOut: s.bytesOut - (b?.bytesOut ?? 0) }
      if (d.executed === 0 && d.failed === 0) continue
      ;(out[op] ??= {})[m] = d
    }
  }
  return out
}

function defaultKeyFile(cipher: string): string {
  return `ipukit-${cipher}.key`
}

