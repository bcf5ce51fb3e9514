// `ipukit target`: a standalone NVMe/TCP target. One subsystem with one namespace (a file
// in the extended-LBA layout, or RAM), optionally with metadata and protection information,
// on one listener; or whatever an SPDK JSON configuration describes. Structured logs (pino,
// JSON lines): a first "listening" line that other programs wait for, then controllers as
// hosts connect and go. SIGINT or SIGTERM stops it cleanly: the listeners close, hosts are
// disconnected, file namespaces are fsynced, the bdevs closed; "stopped"; exit code 0. A
// second signal during that exits at once (130 / 143).
import { fsyncSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { createAccel, type Accel } from '@ipukit/accel'
import { BdevError, Bdevs, type BdevPi, createFileBdev, createMallocBdev, FileBdev } from '@ipukit/bdev'
import { createPhysicalMemory, type PhysicalMemory } from '@ipukit/memory'
import { statusName } from '@ipukit/nvme'
import { applyNvmfConfig, type ListenerInfo, nqnProblem, NvmfError, NvmfTarget, type TargetEvents, TcpTransport } from '@ipukit/nvmf'
import { pino, type Logger, type LevelWithSilent } from 'pino'
import { CliError, ExitCode, usage } from './errors.js'
import { errnoOf, isNoSpace, spaced } from './errno.js'
import { fmt } from './flags.js'

export type PiTypeName = 'none' | 'type1' | 'type2' | 'type3'
export type PiFormat = 16 | 32 | 64

export const TARGET_DEFAULTS = {
  listen: { host: '127.0.0.1', port: 4420 },
  nqn: 'nqn.2026-12.io.ipukit:target',
  /** a RAM namespace's data bytes when --size is not given */
  ramSize: 256 * 1024 * 1024,
  blockSize: 4096,
  logLevel: 'info' as LevelWithSilent,
} as const

/** The most RAM namespaces may hold (data and metadata): the IPU memory is one wasm32 address space of 4 GiB. */
export const RAM_LIMIT = 3 * 1024 ** 3
/** IPU memory besides RAM namespaces: the iobuf pools (about 25 MiB), connections' staging areas and transmit slabs. */
const IPU_BASE = 160 * 1024 * 1024
/**
 * Bytes a command may move, data and interleaved metadata (the transport's maxIoSize, and
 * the iobuf large buffer that holds it): 65 pages, so MDTS (a power of two in 4 KiB pages)
 * is 256 KiB. With 128 KiB (the nvmf default) a host's 128 KiB I/O of 512 + 8 byte blocks
 * (133 120 bytes on the wire) would be split into 252 + 4 blocks: twice the commands.
 */
const MAX_IO_BYTES = 65 * 4096

export interface TargetOptions {
  /** default 127.0.0.1:4420; port 0 picks a free one */
  listen?: { host: string; port: number }
  /** the subsystem's NQN; default nqn.2026-12.io.ipukit:target */
  nqn?: string
  /** the namespace is this file (created, or grown to `size`); otherwise RAM */
  file?: string
  /** the namespace's data bytes (a whole number of blocks); default 256 MiB of RAM, or with `file` the whole blocks it holds */
  size?: number
  /** 512 or 4096; default 4096 */
  blockSize?: number
  /** metadata bytes per block, interleaved after its data; default 0, or with `pi` the PI's size (8; 16 for 32b and 64b guards) */
  mdSize?: number
  /** default none */
  pi?: PiTypeName
  /** the guard: 16 (CRC16 T10-DIF), 32 (CRC32C), 64 (CRC64-NVMe); default 16 */
  piFormat?: PiFormat
  /** the PI in the first or the last bytes of the metadata; default last */
  piLocation?: 'first' | 'last'
  /** host NQNs allowed to connect; none: any host */
  allowHosts?: string[]
  /** an SPDK JSON configuration instead of all of the above but the logger */
  config?: string
  /** pino level; default info. The "listening" line is at info */
  logLevel?: LevelWithSilent
  /** a logger to use instead of JSON lines on stdout */
  logger?: Logger
}

export interface TargetNamespaceInfo {
  nsid: number
  bdev: string
  file: string | null
  blocks: number
  blockSize: number
  mdSize: number
  pi: PiTypeName
  piFormat: PiFormat
  piLocation: 'first' | 'last'
}

export interface RunningTarget {
  /** the first listener's address and port, and its subsystem (the only one without --config) */
  address: string
  port: number
  nqn: string
  listeners: { address: string; port: number; nqns: string[] }[]
  /** the namespace the flags made (null with --config) */
  namespace: TargetNamespaceInfo | null
  readonly target: NvmfTarget
  readonly transport: TcpTransport
  readonly bdevs: Bdevs
  readonly logger: Logger
  /** controllers made so far (admin Connects accepted) */
  readonly controllersCreated: number
  /** Stops listening, disconnects the hosts, fsyncs file bdevs, closes everything; logs "stopped". Idempotent. */
  stop(reason?: string): Promise<void>
}

/** Pino to stdout, one JSON line per entry, written synchronously (no line is lost at exit, and the first one is out at once). */
export function createTargetLogger(level: LevelWithSilent = TARGET_DEFAULTS.logLevel): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: true }),
  )
}

const NAMESPACE_FLAGS: [keyof TargetOptions, string][] = [
  ['listen', '--listen'],
  ['nqn', '--nqn'],
  ['file', '--file'],
  ['size', '--size'],
  ['blockSize', '--block-size'],
  ['mdSize', '--md-size'],
  ['pi', '--pi'],
  ['piFormat', '--pi-format'],
  ['piLocation', '--pi-location'],
  ['allowHosts', '--allow-host'],
]

interface Plan {
  listen: { host: string; port: number }
  nqn: string
  file: string | null
  /** undefined: the whole blocks the existing file holds */
  blocks: number | undefined
  blockSize: number
  mdSize: number
  pi: BdevPi
  piName: PiTypeName
  allowHosts: string[]
}

const PI_TYPES: Record<PiTypeName, 0 | 1 | 2 | 3> = { none: 0, type1: 1, type2: 2, type3: 3 }
const piBytes = (f: PiFormat) => (f === 16 ? 8 : 16)

/** Checks the flags together; a CliError (usage) naming the flag otherwise. */
export function planTarget(o: TargetOptions): Plan | { config: string } {
  if (o.config !== undefined) {
    const given = NAMESPACE_FLAGS.filter(([k]) => o[k] !== undefined).map(([, f]) => f)
    if (given.length > 0) throw usage(`--config cannot be combined with ${given.join(', ')}: the configuration defines the subsystems, namespaces, hosts and listeners`)
    return { config: o.config }
  }
  const listen = o.listen ?? TARGET_DEFAULTS.listen
  if (net.isIP(listen.host) === 0) throw usage(`--listen ${listen.host}:${listen.port}: the host must be an IP address (127.0.0.1, 0.0.0.0, ::1)`)
  if (!Number.isInteger(listen.port) || listen.port < 0 || listen.port > 65535) throw usage(`--listen: the port must be from 0 to 65535, got ${listen.port}`)
  const nqn = o.nqn ?? TARGET_DEFAULTS.nqn
  const why = nqnProblem(nqn)
  if (why !== null) throw usage(`--nqn '${nqn}' ${why}`)
  for (const h of o.allowHosts ?? []) {
    const w = nqnProblem(h)
    if (w !== null) throw usage(`--allow-host '${h}' ${w}`)
  }
  const blockSize = o.blockSize ?? TARGET_DEFAULTS.blockSize
  if (blockSize !== 512 && blockSize !== 4096) throw usage(`--block-size must be 512 or 4096, got ${blockSize}`)
  const piName = o.pi ?? 'none'
  if (!(piName in PI_TYPES)) throw usage(`--pi must be none, type1, type2 or type3, got '${String(piName)}'`)
  const type = PI_TYPES[piName]
  if (type === 0 && o.piFormat !== undefined) throw usage('--pi-format needs --pi type1, type2 or type3')
  if (type === 0 && o.piLocation !== undefined) throw usage('--pi-location needs --pi type1, type2 or type3')
  const format = o.piFormat ?? 16
  if (format !== 16 && format !== 32 && format !== 64) throw usage(`--pi-format must be 16, 32 or 64, got ${String(format)}`)
  const mdSize = o.mdSize ?? (type === 0 ? 0 : piBytes(format))
  if (!Number.isInteger(mdSize) || mdSize < 0 || mdSize > 4096) throw usage(`--md-size must be from 0 to 4096, got ${mdSize}`)
  if (type !== 0) {
    if (mdSize < piBytes(format)) throw usage(`--pi ${piName} with --pi-format ${format} needs --md-size of at least ${piBytes(format)} (the PI's size), got ${mdSize}`)
    if (format !== 16 && blockSize % 4096 !== 0) throw usage(`--pi-format ${format} needs --block-size 4096 (32b and 64b guards come with 4 KiB blocks)`)
  }
  const file = o.file ?? null
  if (file === '') throw usage('--file needs a path')
  let blocks: number | undefined
  const size = o.size ?? (file === null ? TARGET_DEFAULTS.ramSize : undefined)
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size <= 0) throw usage(`--size must be a positive number of bytes, got ${size}`)
    if (size % blockSize !== 0) throw usage(`--size ${size} is not a whole number of ${blockSize}-byte blocks`)
    blocks = size / blockSize
    if (file === null && blocks * (blockSize + mdSize) > RAM_LIMIT) throw usage(`--size ${fmt(size)}: a RAM namespace holds at most ${fmt(RAM_LIMIT)} with its metadata (the IPU memory is one 4 GiB wasm32 address space); use --file`)
  }
  return { listen, nqn, file, blocks, blockSize, mdSize, pi: { type, format, location: o.piLocation ?? 'last' }, piName, allowHosts: [...(o.allowHosts ?? [])] }
}

/** Bytes the RAM bdevs (bdev_malloc_create) of a configuration take, to size the IPU memory. */
function mallocBytes(doc: unknown): number {
  let n = 0
  const subs = (doc as { subsystems?: unknown })?.subsystems
  if (!Array.isArray(subs)) return 0
  for (const s of subs) {
    const config = (s as { config?: unknown })?.config
    if (!Array.isArray(config)) continue
    for (const m of config) {
      const p = (m as { method?: unknown; params?: Record<string, unknown> }) ?? {}
      if (p.method !== 'bdev_malloc_create' || typeof p.params !== 'object' || p.params === null) continue
      const blocks = Number(p.params.num_blocks ?? 0)
      const len = Number(p.params.block_size ?? 512) + Number(p.params.md_size ?? 0)
      if (Number.isFinite(blocks * len)) n += blocks * len
    }
  }
  return n
}

function readConfig(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw usage(`--config ${path}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw usage(`--config ${path}: not JSON: ${(e as Error).message}`)
  }
}

function hex3(status: number): string {
  return `${status.toString(16).padStart(3, '0')}h`
}

function events(logger: Logger, counters: { created: number }): TargetEvents {
  return {
    connect(e) {
      const peer = (e.qpair as { peer?: string }).peer
      if (e.status !== 0) {
        logger.warn({ peer, qid: e.qid, hostnqn: e.hostnqn, subnqn: e.subnqn, status: hex3(e.status), statusName: spaced(statusName(e.status, 'fabrics')) }, 'connect refused')
      } else if (e.qid === 0) {
        counters.created++
        logger.info({ peer, cntlid: e.ctrl?.cntlid, hostnqn: e.hostnqn, subnqn: e.subnqn }, 'controller created')
      } else {
        logger.debug({ peer, cntlid: e.ctrl?.cntlid, qid: e.qid, hostnqn: e.hostnqn, subnqn: e.subnqn }, 'io queue connected')
      }
    },
    controllerDestroyed(c, reason) {
      logger.info({ cntlid: c.cntlid, hostnqn: c.hostnqn, subnqn: c.subsystem.nqn, reason }, 'controller destroyed')
    },
  }
}

/** What went wrong while starting, as a CliError with the right exit code. */
function startError(e: unknown, where: { listen?: { host: string; port: number }; file?: string | null; config?: string }): CliError {
  if (e instanceof CliError) return e
  const code = errnoOf(e)
  const msg = (e as Error)?.message ?? String(e)
  const at = where.listen !== undefined ? `${where.listen.host}:${where.listen.port}` : 'the configured address'
  if (code === 'EADDRINUSE') return new CliError('CLI_FAILED', `cannot listen on ${at}: the address is already in use (another target? --listen HOST:0 picks a free port)`, { cause: e })
  if (code === 'EACCES' && e instanceof NvmfError) return new CliError('CLI_FAILED', `cannot listen on ${at}: permission denied (ports below 1024 need privileges)`, { cause: e })
  if (code === 'EADDRNOTAVAIL') return usage(`cannot listen on ${at}: the address is not one of this machine's`)
  if (where.config !== undefined) {
    if (isNoSpace(code)) return new CliError('CLI_NO_SPACE', `--config ${where.config}: no space: ${msg}`, { cause: e })
    return new CliError('CLI_USAGE', `--config ${where.config}: ${msg}`, { cause: e })
  }
  if (e instanceof BdevError && e.code === 'BDEV_FILE') {
    // the system's words ("no such file or directory"), without the bdev's and Node's wrapping
    const sys = code !== undefined ? /E[A-Z0-9_]+: ([^,]+)/.exec(msg)?.[1] : undefined
    if (isNoSpace(code)) return new CliError('CLI_NO_SPACE', `--file ${where.file}: no space to create or grow it: ${sys ?? msg} (${code})`, { cause: e })
    if (code !== undefined && /cannot open/.test(msg)) return new CliError('CLI_USAGE', `--file ${where.file}: cannot open or create it: ${sys ?? msg} (${code})`, { cause: e })
    return new CliError('CLI_USAGE', `--file ${where.file}: ${msg.replace(/^[^:]+: /, '')}`, { cause: e })
  }
  if (e instanceof BdevError || (e instanceof NvmfError && e.code === 'NVMF_BAD_ARGUMENT')) return new CliError('CLI_USAGE', msg, { cause: e })
  return new CliError(isNoSpace(code) ? 'CLI_NO_SPACE' : 'CLI_FAILED', msg, { cause: e })
}

/** Starts the target; resolves once it listens (and the "listening" line is out). */
export async function startTarget(o: TargetOptions = {}): Promise<RunningTarget> {
  const plan = planTarget(o)
  const cfg = 'config' in plan ? plan.config : undefined
  const doc = cfg !== undefined ? readConfig(cfg) : undefined
  const logger = o.logger ?? createTargetLogger(o.logLevel)
  const p = 'config' in plan ? null : plan
  const ramBytes = p === null ? mallocBytes(doc) : p.file === null ? p.blocks! * (p.blockSize + p.mdSize) : 0
  if (ramBytes > RAM_LIMIT) throw usage(`--config ${cfg}: its RAM bdevs take ${fmt(ramBytes)}; at most ${fmt(RAM_LIMIT)} fit in the IPU memory (one 4 GiB wasm32 address space)`)
  const ipuSize = IPU_BASE + Math.ceil(ramBytes / (1 << 20)) * (1 << 20)
  let physical: PhysicalMemory | null = null
  let accel: Accel | null = null
  let bdevs: Bdevs | null = null
  let target: NvmfTarget | null = null
  let tcp: TcpTransport | null = null
  const teardown = async () => {
    if (tcp !== null) await tcp.close().catch(() => {})
    target?.close()
    if (bdevs !== null) await bdevs.close().catch(() => {})
    if (accel !== null) await accel.close().catch(() => {})
    physical?.close()
  }
  const counters = { created: 0 }
  let namespace: TargetNamespaceInfo | null = null
  try {
    physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize, iobuf: { largeSize: MAX_IO_BYTES } })
    accel = await createAccel({ physical, aesni: false, driver: null, taskCount: 1024, sequenceCount: 256 })
    bdevs = new Bdevs(accel, { ioCount: 1024 })
    target = new NvmfTarget({ bdevs, events: events(logger, counters) })
    if (p === null) {
      const r = await applyNvmfConfig(doc, { bdevs, target })
      tcp = r.transport
      if (tcp === null) throw usage(`--config ${cfg}: no TCP transport (nvmf_create_transport with trtype TCP)`)
      if (target.listeners().length === 0) throw usage(`--config ${cfg}: no listener (nvmf_subsystem_add_listener): hosts could not reach anything`)
    } else {
      const name = p.file === null ? 'Malloc0' : 'AIO0'
      if (p.file === null) createMallocBdev(bdevs, { name, blockCount: p.blocks!, blockSize: p.blockSize, mdSize: p.mdSize, pi: p.pi })
      else await createFileBdev(bdevs, { name, path: p.file, blockSize: p.blockSize, mdSize: p.mdSize, pi: p.pi, ...(p.blocks !== undefined && { blockCount: p.blocks }) })
      const b = bdevs.get(name)!
      tcp = new TcpTransport(target, { maxIoSize: MAX_IO_BYTES })
      const l = await tcp.listen(p.listen.host, p.listen.port)
      const s = target.createSubsystem({ nqn: p.nqn, allowAnyHost: p.allowHosts.length === 0, hosts: p.allowHosts })
      const nsid = s.addNamespace({ bdev: name })
      s.addListener(l.address)
      target.discovery.addListener(l.address)
      namespace = { nsid, bdev: name, file: p.file, blocks: b.blockCount, blockSize: b.blockSize, mdSize: b.mdSize, pi: p.piName, piFormat: b.pi.format, piLocation: b.pi.location }
    }
  } catch (e) {
    await teardown()
    throw startError(e, { ...(p !== null && { listen: p.listen, file: p.file }), ...(cfg !== undefined && { config: cfg }) })
  }
  const t = target
  const transport = tcp
  const bd = bdevs
  const listeners = t.listeners().map((l: ListenerInfo) => ({
    address: l.traddr,
    port: Number(l.trsvcid),
    nqns: [...t.subsystems.values()].filter((s) => s.type === 'nvme' && s.listeners.has(l.address)).map((s) => s.nqn),
  }))
  const first = listeners.find((l) => l.nqns.length > 0) ?? listeners[0]!
  const nqn = first.nqns[0] ?? [...t.subsystems.values()].find((s) => s.type === 'nvme')?.nqn ?? ''
  const subsystems = [...t.subsystems.values()].filter((s) => s.type === 'nvme').map((s) => ({ nqn: s.nqn, namespaces: [...s.namespaces.values()].map((n) => ({ nsid: n.nsid, bdev: n.bdev })), allowAnyHost: s.allowAnyHost, hosts: [...s.hosts] }))
  logger.info({ address: first.address, port: first.port, nqn, url: `nvme+tcp://${first.address.includes(':') ? `[${first.address}]` : first.address}:${first.port}/${nqn}`, ...(namespace !== null && { namespace }), ...(p !== null && { allowHosts: p.allowHosts.length === 0 ? 'any' : p.allowHosts }), ...(p === null && { listeners, subsystems }) }, 'listening')
  let stopping: Promise<void> | null = null
  return {
    address: first.address,
    port: first.port,
    nqn,
    listeners,
    namespace,
    target: t,
    transport,
    bdevs: bd,
    logger,
    get controllersCreated() {
      return counters.created
    },
    stop(reason?: string) {
      stopping ??= (async () => {
        logger.info({ reason }, 'stopping')
        await transport.close()
        t.close()
        // file namespaces: what the hosts wrote reaches the disk (fsync: data and the file's size)
        let flushError: unknown = null
        for (const b of bd.list()) {
          if (!(b instanceof FileBdev) || b.readonly) continue
          try {
            fsyncSync(b.fd)
            logger.debug({ bdev: b.name, file: b.path }, 'flushed')
          } catch (e) {
            flushError ??= e
            logger.error({ bdev: b.name, file: b.path, err: (e as Error).message }, 'flush failed')
          }
        }
        await bd.close()
        await accel!.close()
        physical!.close()
        logger.info({ reason, controllers: counters.created }, 'stopped')
        if (flushError !== null) {
          const code = errnoOf(flushError)
          throw new CliError(isNoSpace(code) ? 'CLI_NO_SPACE' : 'CLI_FAILED', `flushing the namespace failed: ${(flushError as Error).message}`, { cause: flushError })
        }
      })()
      return stopping
    },
  }
}

export interface RunTargetOptions extends TargetOptions {
  /** also stop when stdin ends (the parent's end of a pipe closed): a child never outlives its parent */
  exitWithStdin?: boolean
}

export interface RunTargetResult {
  /** what stopped it: SIGINT, SIGTERM, or 'stdin closed' */
  reason: string
  controllers: number
}

/**
 * Starts the target and serves until SIGINT or SIGTERM (or stdin's end with `exitWithStdin`),
 * then stops it cleanly. A second signal while stopping exits the process at once with
 * 130 (SIGINT) or 143 (SIGTERM).
 */
export async function runTarget(o: RunTargetOptions = {}): Promise<RunTargetResult> {
  // the handlers go in before the target starts: a signal that comes right after the
  // "listening" line (or while starting) must stop it cleanly, not kill it by default
  let got: string | null = null
  let wake: ((why: string) => void) | null = null
  let started: RunningTarget | null = null
  const on = (why: string) => {
    if (got !== null) {
      // a second signal: no more waiting
      if (why === 'SIGINT' || why === 'SIGTERM') {
        started?.logger.warn({ signal: why }, 'second signal while stopping: exiting now')
        process.exit(why === 'SIGINT' ? ExitCode.Interrupted : ExitCode.Terminated)
      }
      return
    }
    got = why
    wake?.(why)
  }
  const onInt = () => on('SIGINT')
  const onTerm = () => on('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  let t: RunningTarget
  try {
    t = await startTarget(o)
  } catch (e) {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    throw e
  }
  started = t
  const reason = await new Promise<string>((resolve) => {
    if (got !== null) return resolve(got)
    wake = resolve
    if (o.exitWithStdin === true) {
      process.stdin.on('end', () => on('stdin closed'))
      process.stdin.on('error', () => on('stdin closed'))
      process.stdin.resume()
    }
  })
  if (o.exitWithStdin === true) process.stdin.destroy()
  await t.stop(reason)
  return { reason, controllers: t.controllersCreated }
}
