// The accel framework (SPDK lib/accel/accel.c's global state): the registered modules and
// the opcode each one runs, the platform driver, the crypto key registry, and the channels.
//
//   const accel = await createAccel({ physical, workers: 2, driver: 'ipu' })
//   const ch = accel.channel()
//   const seq = ch.sequence()!
//   seq.appendEncrypt(key, buf, ch.accelDomain, hostIovs, hostDomain, lba, 4096)
//   seq.appendDifGenerateCopy(sendIovs, null, buf, ch.accelDomain, blocks, difCtx)
//   seq.finish(onDone, request)
//
// Opcode assignment (spdk_accel_initialize): every module that supports an opcode bids its
// priority, the highest wins (software, at -1, is everyone's fallback), and assign()
// overrides before start. encrypt and decrypt must land on one module, and so must
// compress and decompress.
import type { PhysicalMemory } from '@ipukit/memory'
import type { RegionAllocator } from '@ipukit/memory'
import type { PciFabric, PciFunction } from '@ipukit/pcie'
import { AesniModule } from './aesni-module.js'
import { AccelChannel, type ChannelStats, type DomainStats, type OpcodeStats } from './channel.js'
import { DESC_SIZE } from './descriptor.js'
import { DmaEngineModule } from './dma-engine-module.js'
import { AccelError } from './errors.js'
import { IpuDriver } from './ipu-driver.js'
import { type AccelCipher, KeyRegistry } from './keys.js'
import type { AccelDriver, AccelModule } from './module.js'
import { isOpcode, Opc, OPCODES, type Opcode } from './opcodes.js'
import { SoftwareModule } from './software-module.js'
import { WorkersModule, type WorkersOptions } from './workers-module.js'

export interface AccelOptions {
  /** the shared memory every buffer and descriptor lives in */
  physical: PhysicalMemory
  /** register the `workers` module with this many threads (or options); default: not registered */
  workers?: number | WorkersOptions
  /** register the `aesni` module (node:crypto AES-NI for encrypt/decrypt); default true */
  aesni?: boolean
  /** register the `dma-engine` module on this fabric (copies by the IPU's DMA engine) */
  dmaEngine?: { fabric: PciFabric; function?: PciFunction }
  /** the platform driver: 'ipu', a driver object, or null (default) */
  driver?: 'ipu' | AccelDriver | null
  /** opcode -> module name overrides (SPDK accel_assign_opc) */
  assign?: Partial<Record<Opcode, string>>
  /** per channel: tasks (each with a 5 KiB descriptor) and sequences; defaults 1024 and 256 */
  taskCount?: number
  sequenceCount?: number
  /** per channel: virtual accel-domain buffers; default 4096 */
  accelBuffers?: number
}

/** Counters of every channel, added up. */
export interface AccelStats {
  /** per opcode, per module */
  readonly opcodes: Record<string, Record<string, OpcodeStats>>
  readonly sequences: { completed: number; failed: number; elided: number; fused: number }
  /** per memory domain id */
  readonly domains: Record<string, { type: string; read: number; written: number }>
  readonly retry: { iobuf: number; task: number; sequence: number }
}

export class Accel {
  readonly physical: PhysicalMemory
  readonly keys: KeyRegistry
  readonly #modules = new Map<string, AccelModule>()
  readonly #overrides = new Map<number, string>()
  readonly #assigned: AccelModule[] = []
  readonly #channels: AccelChannel[] = []
  /** counters of closed channels */
  readonly #retired: AccelStats = emptyStats()
  readonly #options: AccelOptions
  #driver: AccelDriver | null = null
  #started = false
  #closed = false
  readonly #allocations: number[] = []

  constructor(options: AccelOptions) {
    if (options === null || typeof options !== 'object' || options.physical === undefined) throw new AccelError('ACCEL_BAD_ARGUMENT', 'options.physical is required')
    this.#options = options
    this.physical = options.physical
    this.keys = new KeyRegistry(this.physical.kernels, (cipher, bits) => this.#cipherRefusal(cipher, bits))
    this.register(new SoftwareModule())
    if (options.aesni !== false) this.register(new AesniModule())
    if (options.workers !== undefined && options.workers !== 0) this.register(new WorkersModule(typeof options.workers === 'number' ? { threads: options.workers } : options.workers))
    if (options.dmaEngine !== undefined) this.register(new DmaEngineModule(options.dmaEngine.fabric, options.dmaEngine.function))
    const d = options.driver ?? null
    if (d !== null) this.setDriver(d === 'ipu' ? new IpuDriver() : d)
    for (const [op, name] of Object.entries(options.assign ?? {})) this.assign(op as Opcode, name)
  }

  /** Adds a module (before start). */
  register(module: AccelModule): void {
    this.#notStarted()
    if (module === null || typeof module !== 'object' || typeof module.name !== 'string' || typeof module.submit !== 'function') {
      throw new AccelError('ACCEL_BAD_MODULE', 'a module needs a name, a priority, supportsOpcode, canAccess and submit')
    }
    if (this.#modules.has(module.name)) throw new AccelError('ACCEL_BAD_MODULE', `a module named '${module.name}' is registered`)
    this.#modules.set(module.name, module)
  }

  /** Runs `opcode` on the module `name`, whatever the priorities (before start). */
  assign(opcode: Opcode, name: string): void {
    this.#notStarted()
    if (!isOpcode(opcode)) throw new AccelError('ACCEL_BAD_ARGUMENT', `unknown opcode '${String(opcode)}'`)
    this.#overrides.set(Opc[opcode], name)
  }

  /** Sets (or clears) the platform driver (before start). */
  setDriver(driver: AccelDriver | null): void {
    this.#notStarted()
    if (driver !== null && (typeof driver.examine !== 'function' || typeof driver.translate !== 'function')) throw new AccelError('ACCEL_BAD_ARGUMENT', 'a driver needs examine, canAccess and translate')
    this.#driver = driver
  }

  get driver(): AccelDriver | null {
    return this.#driver
  }

  get started(): boolean {
    return this.#started
  }

  #notStarted(): void {
    if (this.#started) throw new AccelError('ACCEL_STATE', 'modules, assignments and the driver are set before start()')
  }

  /** Starts the modules and fixes which module runs each opcode. */
  async start(): Promise<void> {
    this.#notStarted()
    for (const m of this.#modules.values()) await m.init?.(this)
    for (const [opc, name] of this.#overrides) {
      const m = this.#modules.get(name)
      if (m === undefined) throw new AccelError('ACCEL_BAD_MODULE', `no module named '${name}' (have ${[...this.#modules.keys()].join(', ')})`)
      if (!m.supportsOpcode(OPCODES[opc]!)) throw new AccelError('ACCEL_BAD_MODULE', `module '${name}' does not support ${OPCODES[opc]}`)
    }
    const byPriority = [...this.#modules.values()].sort((a, b) => a.priority - b.priority)
    OPCODES.forEach((op, i) => {
      let chosen: AccelModule | undefined
      for (const m of byPriority) if (m.supportsOpcode(op)) chosen = m
      const o = this.#overrides.get(i)
      if (o !== undefined) chosen = this.#modules.get(o)
      this.#assigned[i] = chosen!
    })
    if (this.#assigned[Opc.encrypt] !== this.#assigned[Opc.decrypt]) throw new AccelError('ACCEL_BAD_MODULE', 'encrypt and decrypt must run on the same module')
    if (this.#assigned[Opc.compress] !== this.#assigned[Opc.decompress]) throw new AccelError('ACCEL_BAD_MODULE', 'compress and decompress must run on the same module')
    await this.#driver?.init?.(this)
    this.#started = true
  }

  #cipherRefusal(cipher: AccelCipher, bits: number): string | undefined {
    const m = this.#started ? this.#assigned[Opc.encrypt]! : undefined
    if (m === undefined) return undefined
    if (m.supportsCipher?.(cipher, bits) !== true) return `module '${m.name}' (encrypt) does not support ${cipher} with ${bits}-bit keys`
    return undefined
  }

  /** The module that runs an opcode (after start). */
  moduleFor(opc: number): AccelModule {
    const m = this.#assigned[opc]
    if (m === undefined) throw new AccelError('ACCEL_STATE', 'start() the framework first')
    return m
  }

  /** Opcode -> module name (SPDK accel_get_opc_assignments). */
  assignments(): Record<Opcode, string> {
    return Object.fromEntries(OPCODES.map((op, i) => [op, this.moduleFor(i).name])) as Record<Opcode, string>
  }

  module(name: string): AccelModule | undefined {
    return this.#modules.get(name)
  }

  get moduleNames(): string[] {
    return [...this.#modules.keys()]
  }

  /** @internal shared-memory space for descriptors and batch lists, freed by close() */
  allocShared(bytes: number): number {
    const a = sharedAllocator(this.physical).alloc(bytes)
    if (a < 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `IPU DRAM has no ${bytes} bytes left for accel descriptors: raise ipuSize or lower taskCount`)
    this.#allocations.push(a)
    return a
  }

  /** @internal gives back an allocShared() area */
  freeShared(address: number): void {
    const i = this.#allocations.indexOf(address)
    if (i < 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `${address} is not an accel shared allocation`)
    this.#allocations.splice(i, 1)
    sharedAllocator(this.physical).free(address)
  }

  /** A channel for the calling thread (spdk_accel_get_io_channel). */
  channel(): AccelChannel {
    if (!this.#started) throw new AccelError('ACCEL_STATE', 'start() the framework first')
    if (this.#closed) throw new AccelError('ACCEL_STATE', 'the framework was closed')
    const tasks = this.#options.taskCount ?? 1024
    const seqs = this.#options.sequenceCount ?? 256
    if (!Number.isInteger(tasks) || tasks < 8) throw new AccelError('ACCEL_BAD_ARGUMENT', `taskCount must be at least 8, got ${tasks}`)
    if (!Number.isInteger(seqs) || seqs < 1) throw new AccelError('ACCEL_BAD_ARGUMENT', `sequenceCount must be at least 1, got ${seqs}`)
    const base = this.allocShared(tasks * DESC_SIZE)
    const ch = new AccelChannel(this, base, tasks, seqs, this.#options.accelBuffers ?? 4096)
    this.#channels.push(ch)
    return ch
  }

  /** Every channel's counters, added up, closed channels included (SPDK accel_get_stats). */
  stats(): AccelStats {
    const out = emptyStats()
    addStats(out, this.#retired)
    for (const ch of this.#channels) addChannel(ch.stats, out.opcodes, out.domains, out.sequences, out.retry)
    return out
  }

  /** @internal a channel closed: keep its counters, free its descriptors */
  channelClosed(ch: AccelChannel, descBase: number): void {
    const i = this.#channels.indexOf(ch)
    if (i < 0) return
    this.#channels.splice(i, 1)
    addChannel(ch.stats, this.#retired.opcodes, this.#retired.domains, this.#retired.sequences, this.#retired.retry)
    this.freeShared(descBase)
  }

  /** Stops the modules (workers exit) and destroys every key. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const ch of [...this.#channels]) ch.close()
    for (const m of this.#modules.values()) await m.fini?.()
    this.keys.destroyAll()
    const alloc = sharedAllocator(this.physical)
    for (const a of this.#allocations) alloc.free(a)
    this.#allocations.length = 0
  }
}

// Descriptors and batch lists live in IPU DRAM past the iobuf pools, from the memory's one
// allocator (so frameworks and RAM disks that share a memory never overlap).
function sharedAllocator(pm: PhysicalMemory): RegionAllocator {
  return pm.ipuAllocator
}

function emptyStats(): AccelStats {
  return { opcodes: {}, sequences: { completed: 0, failed: 0, elided: 0, fused: 0 }, domains: {}, retry: { iobuf: 0, task: 0, sequence: 0 } }
}

function addStats(into: AccelStats, from: AccelStats): void {
  for (const [op, per] of Object.entries(from.opcodes)) {
    for (const [m, o] of Object.entries(per)) {
      const t = ((into.opcodes[op] ??= {})[m] ??= { executed: 0, failed: 0, bytesIn: 0, bytesOut: 0 })
      t.executed += o.executed
      t.failed += o.failed
      t.bytesIn += o.bytesIn
      t.bytesOut += o.bytesOut
    }
  }
  for (const [id, d] of Object.entries(from.domains)) {
    const t = (into.domains[id] ??= { type: d.type, read: 0, written: 0 })
    t.read += d.read
    t.written += d.written
  }
  for (const k of ['completed', 'failed', 'elided', 'fused'] as const) into.sequences[k] += from.sequences[k]
  for (const k of ['iobuf', 'task', 'sequence'] as const) into.retry[k] += from.retry[k]
}

function addChannel(s: ChannelStats, opcodes: AccelStats['opcodes'], domains: Record<string, { type: string; read: number; written: number }>, sequences: AccelStats['sequences'], retry: AccelStats['retry']): void {
  for (const [module, arr] of s.opcodes) {
    arr.forEach((o, i) => {
      if (o.executed === 0 && o.failed === 0) return
      const op = OPCODES[i]!
      const per = (opcodes[op] ??= {})
      const t = (per[module] ??= { executed: 0, failed: 0, bytesIn: 0, bytesOut: 0 })
      t.executed += o.executed
      t.failed += o.failed
      t.bytesIn += o.bytesIn
      t.bytesOut += o.bytesOut
    })
  }
  for (const d of s.domains.values() as Iterable<DomainStats>) {
    const t = (domains[d.id] ??= { type: d.type, read: 0, written: 0 })
    t.read += d.read
    t.written += d.written
  }
  sequences.completed += s.sequencesCompleted
  sequences.failed += s.sequencesFailed
  sequences.elided += s.elided
  sequences.fused += s.fused
  retry.iobuf += s.retryIobuf
  retry.task += s.retryTask
  retry.sequence += s.retrySequence
}

/** Creates and starts a framework. */
export async function createAccel(options: AccelOptions): Promise<Accel> {
  const a = new Accel(options)
  await a.start()
  return a
}
