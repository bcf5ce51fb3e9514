// The NVMe-oF target (SPDK lib/nvmf/nvmf.c, ctrlr.c's Connect): subsystems, the discovery
// subsystem and its log, listeners, and the Connect logic every transport shares: which
// subsystem, whether this host may, a new controller for an admin queue (the dynamic model)
// or the host's own controller for an I/O queue. Transports (TCP here) carry the queues.
import type { BdevChannel, Bdevs } from '@ipukit/bdev'
import { NvmeStatus } from '@ipukit/bdev'
import { FabricsCommandStatus } from '@ipukit/nvme'
import { FabricsController, type FabricsQpair } from './controller.js'
import { NvmfError } from './errors.js'
import {
  AddressFamily,
  CNTLID_DYNAMIC,
  type ConnectCommand,
  type ConnectData,
  connectInvalidParameter,
  DISCOVERY_LOG_ENTRY_SIZE,
  DISCOVERY_LOG_HEADER_SIZE,
  DISCOVERY_NQN,
  type DiscoveryLogEntry,
  encodeDiscoveryLog,
  nqnProblem,
  SubsystemType,
  TransportRequirement,
  TransportType,
} from './spec/fabrics.js'
import { NvmfSubsystem, type SubsystemOptions } from './subsystem.js'

/** The limits of the transport a queue came through (nvmf_create_transport's options). */
export interface TransportLimits {
  /** entries per I/O queue at most (max_queue_depth) */
  maxQueueDepth: number
  /** admin queue entries at most (max_aq_depth) */
  maxAqDepth: number
  /** queues per controller, admin included (max_qpairs_per_ctrlr) */
  maxQpairsPerCtrlr: number
  /** in-capsule data of I/O commands (in_capsule_data_size) */
  inCapsuleDataSize: number
  /** the largest transfer (max_io_size) */
  maxIoSize: number
}

/** A listener as the discovery log describes it. */
export interface ListenerInfo {
  /** "TCP 127.0.0.1:4420": how subsystems name it */
  address: string
  trtype: number
  adrfam: number
  traddr: string
  trsvcid: string
  portid: number
  /** the listener lets hosts disable SQ flow control (TREQ bit 2) */
  sqFlowControlDisable: boolean
}

/** What a Connect came to: the completion's status and dword 0, and the controller. */
export interface ConnectResult {
  status: number
  dw0: number
  ctrl: FabricsController | null
}

/** A Connect the target answered (any queue, any outcome), for logs. */
export interface ConnectEvent {
  /** the queue it came on (a TcpQpair has the peer's address in `peer`) */
  qpair: FabricsQpair
  qid: number
  subnqn: string
  hostnqn: string
  /** the answer: 0 and the controller, or the status it was refused with (dw0: the bad parameter) */
  status: number
  dw0: number
  ctrl: FabricsController | null
}

/** Hooks for logs and monitoring: they run on the target's own path, so they must not throw or block. */
export interface TargetEvents {
  connect?(e: ConnectEvent): void
  /** a controller was torn down: its admin queue closed, keep-alive expired, its host was removed, the target closed */
  controllerDestroyed?(ctrl: FabricsController, reason: string): void
}

export interface TargetOptions {
  bdevs: Bdevs
  /** the channel controllers run I/O on; default a new one */
  ch?: BdevChannel
  /** the discovery subsystem's serial; default IPUKITDISCOVERY */
  discoverySerial?: string
  events?: TargetEvents
}

export class NvmfTarget {
  readonly bdevs: Bdevs
  readonly ch: BdevChannel
  readonly subsystems = new Map<string, NvmfSubsystem>()
  readonly discovery: NvmfSubsystem
  readonly #listeners = new Map<string, ListenerInfo>()
  #genctr = 0n
  #nextPort = 1
  #closed = false
  readonly #ownCh: boolean
  readonly #events: TargetEvents | undefined

  constructor(o: TargetOptions) {
    this.bdevs = o.bdevs
    this.#events = o.events
    this.#ownCh = o.ch === undefined
    this.ch = o.ch ?? o.bdevs.channel()
    this.discovery = new NvmfSubsystem(this, { nqn: DISCOVERY_NQN, serial: o.discoverySerial ?? 'IPUKITDISCOVERY', allowAnyHost: true }, 'discovery')
    this.subsystems.set(DISCOVERY_NQN, this.discovery)
  }

  // ---- subsystems ----

  createSubsystem(o: SubsystemOptions): NvmfSubsystem {
    this.#live()
    if (this.subsystems.has(o.nqn)) throw new NvmfError('NVMF_EXISTS', `subsystem ${o.nqn} exists`)
    const s = new NvmfSubsystem(this, o)
    this.subsystems.set(s.nqn, s)
    this.changed()
    return s
  }

  subsystem(nqn: string): NvmfSubsystem {
    const s = this.subsystems.get(nqn)
    if (s === undefined) throw new NvmfError('NVMF_NOT_FOUND', `no subsystem ${nqn}`)
    return s
  }

  removeSubsystem(nqn: string): void {
    if (nqn === DISCOVERY_NQN) throw new NvmfError('NVMF_BAD_ARGUMENT', 'the discovery subsystem stays')
    const s = this.subsystem(nqn)
    s.close()
    this.subsystems.delete(nqn)
    this.changed()
  }

  // ---- listeners (transports register theirs) ----

  /** @internal a transport's listener is up */
  addListenerInfo(l: Omit<ListenerInfo, 'portid'>): ListenerInfo {
    if (this.#listeners.has(l.address)) throw new NvmfError('NVMF_EXISTS', `listener ${l.address} exists`)
    const info = { ...l, portid: this.#nextPort++ }
    this.#listeners.set(l.address, info)
    this.changed()
    return info
  }

  /** @internal a transport's listener is down: subsystems forget it */
  removeListenerInfo(address: string): void {
    if (!this.#listeners.delete(address)) return
    for (const s of this.subsystems.values()) if (s.listeners.has(address)) s.removeListener(address)
    this.changed()
  }

  hasListener(address: string): boolean {
    return this.#listeners.has(address)
  }

  listeners(): ListenerInfo[] {
    return [...this.#listeners.values()]
  }

  /** @internal something the discovery log shows changed: its generation counter moves */
  changed(): void {
    this.#genctr++
  }

  get generation(): bigint {
    return this.#genctr
  }

  /**
   * The discovery log page for `hostnqn` (NVMe Base §5.16.1.23): one entry per listener of
   * every subsystem the host may connect to, and one per listener of the discovery
   * subsystem itself (SUBTYPE 3, current discovery subsystem).
   */
  discoveryLog(hostnqn: string): Uint8Array {
    const entries: DiscoveryLogEntry[] = []
    for (const s of this.subsystems.values()) {
      if (!s.hostAllowed(hostnqn)) continue
      for (const a of s.listeners) {
        const l = this.#listeners.get(a)
        if (l === undefined) continue
        entries.push({
          trtype: l.trtype,
          adrfam: l.adrfam,
          subtype: s.type === 'discovery' ? SubsystemType.CurrentDiscovery : SubsystemType.Nvme,
          treq: TransportRequirement.SecureChannelNotRequired | (l.sqFlowControlDisable ? TransportRequirement.SqFlowControlDisableSupported : 0),
          portid: l.portid,
          cntlid: CNTLID_DYNAMIC,
          asqsz: 32,
          eflags: 0,
          trsvcid: l.trsvcid,
          subnqn: s.nqn,
          traddr: l.traddr,
          sectype: 0,
        })
      }
    }
    const out = new Uint8Array(DISCOVERY_LOG_HEADER_SIZE + entries.length * DISCOVERY_LOG_ENTRY_SIZE)
    encodeDiscoveryLog(this.#genctr, entries, out)
    return out
  }

  // ---- Connect (NVMe Base §6.3), for every transport ----

  /**
   * A Connect on queue `q` (its SQE fields and its data). Admin queue: a new controller of
   * the subsystem for this host. I/O queue: the host's controller, by CNTLID. The result's
   * status and dw0 go in the response (dw0: the CNTLID, or the offset of a bad parameter).
   */
  connect(q: FabricsQpair, limits: TransportLimits, cmd: ConnectCommand, data: ConnectData): ConnectResult {
    const r = this.#connect(q, limits, cmd, data)
    this.#events?.connect?.({ qpair: q, qid: cmd.qid, subnqn: data.subnqn, hostnqn: data.hostnqn, status: r.status, dw0: r.dw0, ctrl: r.ctrl })
    return r
  }

  #connect(q: FabricsQpair, limits: TransportLimits, cmd: ConnectCommand, data: ConnectData): ConnectResult {
    const bad = (offset: number, inData: boolean): ConnectResult => ({ status: FabricsCommandStatus.ConnectInvalidParameters, dw0: connectInvalidParameter(offset, inData), ctrl: null })
    if (this.#closed) return { status: FabricsCommandStatus.ConnectRestartDiscovery, dw0: 0, ctrl: null }
    if (cmd.recfmt !== 0) return { status: FabricsCommandStatus.IncompatibleFormat, dw0: 0, ctrl: null }
    const s = this.subsystems.get(data.subnqn)
    if (s === undefined) return bad(256, true)
    if (nqnProblem(data.hostnqn) !== null) return bad(512, true)
    if (!s.hostAllowed(data.hostnqn)) return { status: FabricsCommandStatus.ConnectInvalidHost, dw0: 0, ctrl: null }
    // a subsystem is reached only through its own listeners (SPDK: Invalid Host, as for an unknown host)
    if (!s.listeners.has(q.listenAddress)) return { status: FabricsCommandStatus.ConnectInvalidHost, dw0: 0, ctrl: null }
    if (cmd.qid === 0) {
      if (cmd.sqsize < 1 || cmd.sqsize + 1 > limits.maxAqDepth) return bad(44, false)
      if (data.cntlid !== CNTLID_DYNAMIC) return bad(16, true)
      const cntlid = s.allocateCntlid()
      if (cntlid < 0) return { status: FabricsCommandStatus.ControllerBusy, dw0: 0, ctrl: null }
      const ctrl = new FabricsController(
        {
          subsystem: s,
          bdevs: this.bdevs,
          ch: this.ch,
          cntlid,
          hostnqn: data.hostnqn,
          hostid: data.hostid,
          kato: cmd.kato,
          maxQueueDepth: limits.maxQueueDepth,
          maxIoQueues: limits.maxQpairsPerCtrlr - 1,
          inCapsuleDataSize: limits.inCapsuleDataSize,
          maxIoSize: limits.maxIoSize,
          ...(s.type === 'discovery' && { discoveryLog: (h: string) => this.discoveryLog(h) }),
        },
        (c, reason) => {
          s.controllers.delete(c.cntlid)
          this.#events?.controllerDestroyed?.(c, reason)
        },
      )
      ctrl.admin = q
      s.controllers.set(cntlid, ctrl)
      return { status: NvmeStatus.Success, dw0: cntlid, ctrl }
    }
    // an I/O queue: the host's own controller, enabled, a queue id it was granted, not in use
    const ctrl = s.controllers.get(data.cntlid)
    if (ctrl === undefined || ctrl.destroyed) return bad(16, true)
    if (ctrl.hostnqn !== data.hostnqn) return bad(512, true)
    if (!equalBytes(ctrl.hostid, data.hostid)) return bad(0, true)
    if (s.type === 'discovery') return bad(42, false)
    if (!ctrl.ready) return { status: NvmeStatus.CommandSequenceError, dw0: 0, ctrl: null }
    if (cmd.qid > ctrl.maxQid || ctrl.io.has(cmd.qid)) return bad(42, false)
    if (cmd.sqsize < 1 || cmd.sqsize + 1 > limits.maxQueueDepth) return bad(44, false)
    ctrl.io.set(cmd.qid, q)
    // I/O queues exist: Number of Queues may not change until a reset (NVMe Base §5.27.1.5)
    ctrl.core.features.queuesSet = true
    return { status: NvmeStatus.Success, dw0: ctrl.cntlid, ctrl }
  }

  /** Disconnects every controller and forgets the subsystems; transports close their listeners themselves. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const s of this.subsystems.values()) s.close()
    if (this.#ownCh) this.ch.close()
  }

  #live(): void {
    if (this.#closed) throw new NvmfError('NVMF_STATE', 'the target is closed')
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export { AddressFamily, TransportType }
