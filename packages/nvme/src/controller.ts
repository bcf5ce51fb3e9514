// The NVMe controller core (SPDK lib/nvmf/ctrlr.c and ctrlr_bdev.c): every admin and NVM
// command but the transport's own, independent of the transport. A transport (the PCIe
// front end here, NVMe/TCP in @ipukit/nvmf) fetches or receives a command, maps its data
// (transferLength() says how many bytes and which way), and calls execute(); the core runs
// it against the namespaces (bdevs) and hands the request back with dword 0, dword 1 and
// the status. Queue creation and deletion, and Abort of what the transport holds, go back
// to the transport through ControllerTransport.
//
// Data-path failures are statuses; nothing a host sends can throw out of here.
import { type AccelDifError, AccelStatus, type AccelSequence } from '@ipukit/accel'
import { type BdevChannel, type Bdevs, BDEV_NO_IO, NvmeStatus, piStatus } from '@ipukit/bdev'
import { createDifContext, type DifContext, piSizeOf } from '@ipukit/dif'
import { defer } from '@ipukit/memory'
import { type LbaFormat, type NamespaceOptions, NvmeNamespace } from './namespace.js'
import { NvmeRequest } from './request.js'
import { NvmeError } from './errors.js'
import { ControllerPages } from './internal/pages.js'
import { FeatureId } from './spec/features.js'
import { AdminOpcode, NvmOpcode } from './spec/opcodes.js'
import { AdminCommandStatus, NvmCommandStatus } from './spec/status.js'

/** The features the controller supports (NVMe Base §5.27.1). */
const Feature = {
  Arbitration: FeatureId.Arbitration,
  PowerManagement: FeatureId.PowerManagement,
  TemperatureThreshold: FeatureId.TemperatureThreshold,
  ErrorRecovery: FeatureId.ErrorRecovery,
  VolatileWriteCache: FeatureId.VolatileWriteCache,
  NumberOfQueues: FeatureId.NumberOfQueues,
  InterruptCoalescing: FeatureId.InterruptCoalescing,
  InterruptVectorConfig: FeatureId.InterruptVectorConfiguration,
  WriteAtomicity: FeatureId.WriteAtomicityNormal,
  AsyncEventConfig: FeatureId.AsyncEventConfiguration,
  Timestamp: FeatureId.Timestamp,
  KeepAliveTimer: FeatureId.KeepAliveTimer,
} as const
const Admin = AdminOpcode
const Nvm = NvmOpcode
const CommandStatus = {
  InvalidCompletionQueue: AdminCommandStatus.CompletionQueueInvalid,
  InvalidQueueIdentifier: AdminCommandStatus.InvalidQueueIdentifier,
  InvalidQueueSize: AdminCommandStatus.InvalidQueueSize,
  AsyncEventRequestLimitExceeded: AdminCommandStatus.AsyncEventRequestLimitExceeded,
  InvalidInterruptVector: AdminCommandStatus.InvalidInterruptVector,
  InvalidLogPage: AdminCommandStatus.InvalidLogPage,
  InvalidFormat: AdminCommandStatus.InvalidFormat,
  InvalidQueueDeletion: AdminCommandStatus.InvalidQueueDeletion,
  FeatureIdNotSaveable: AdminCommandStatus.FeatureIdentifierNotSaveable,
  FeatureNotNamespaceSpecific: AdminCommandStatus.FeatureNotNamespaceSpecific,
  InvalidProtectionInformation: NvmCommandStatus.InvalidProtectionInformation,
} as const

/** What the core needs from its transport. */
export interface ControllerTransport {
  /** 'pcie': memory-based queues (Create/Delete I/O SQ/CQ are commands); 'fabrics': Connect makes queues */
  readonly type: 'pcie' | 'fabrics'
  createIoCq?(req: NvmeRequest): number
  createIoSq?(req: NvmeRequest): number
  /** may wait for the queue's commands in flight */
  deleteIoSq?(req: NvmeRequest): number | Promise<number>
  deleteIoCq?(req: NvmeRequest): number
  /** aborts a command the transport holds (not yet at the core); true if it did */
  abort?(sqid: number, cid: number): boolean
  /** interrupt coalescing or vector configuration changed */
  interruptsChanged?(): void
  /** the keep-alive timer expired (a fabrics controller is torn down) */
  keepAliveExpired?(): void
}

export interface ControllerOptions {
  bdevs: Bdevs
  /** the channel the controller's I/O runs on (its thread) */
  ch: BdevChannel
  transport: ControllerTransport
  /** Controller ID (Identify CNTLID); default 1 */
  cntlid?: number
  serial?: string
  model?: string
  firmware?: string
  /** NVM subsystem NQN */
  subnqn?: string
  /** PCI vendor and subsystem vendor IDs for Identify */
  vid?: number
  ssvid?: number
  /** I/O queue pairs the controller offers (Number of Queues); default 64 */
  maxIoQueues?: number
  /** Maximum Data Transfer Size as a power of two of MPSMIN pages; default 5 (128 KiB at 4 KiB) */
  mdts?: number
  /** minimum memory page size, bytes (CAP.MPSMIN); default 4096 */
  pageSizeMin?: number
  /** Asynchronous Event Request Limit, 0's based; default 3 (4 outstanding) */
  aerl?: number
  /** Abort Command Limit, 0's based; default 3 */
  acl?: number
  /** entries of the Error Information log; default 64 */
  errorLogEntries?: number
  /** Keep Alive support granularity, 100 ms units (Identify KAS); 0: no keep alive (PCIe); default 0 */
  kas?: number
  /** namespaces */
  namespaces?: NamespaceOptions[]
  /** the PI-less write path goes straight to the bdev; ioccsz etc. for fabrics */
  fabrics?: { ioccsz: number; iorcsz: number; icdoff: number; msdbd: number }
  /** Identify CNTRLTYPE: 1 an I/O controller (default), 2 a discovery controller, 3 an administrative controller */
  cntrltype?: 1 | 2 | 3
  /**
   * Log pages of the transport or the subsystem (the discovery log, 70h): the page for log
   * identifier `lid`, or null when it has none (the core's own pages then apply)
   */
  logPage?: (lid: number, req: NvmeRequest) => Uint8Array | null
}

export interface ControllerFeatures {
  arbitration: number
  powerState: number
  /** the composite temperature's over- and under-temperature thresholds, Kelvin */
  temperatureThreshold: number
  underTemperatureThreshold: number
  errorRecovery: number
  volatileWriteCache: boolean
  /** granted (0's based) */
  ioSqs: number
  ioCqs: number
  /** Number of Queues may be set once, before any I/O queue is created */
  queuesSet: boolean
  coalescingThreshold: number
  coalescingTime: number
  /** vectors with coalescing disabled (Interrupt Vector Configuration CD) */
  readonly coalescingDisabled: Set<number>
  asyncEventConfig: number
  writeAtomicity: number
  /** ms; 0 disables */
  keepAliveTimeout: number
  /** ms since the epoch at the last Set Features Timestamp, and when it was set */
  timestamp: number
  timestampSetAt: number
}

export interface SmartCounters {
  dataUnitsRead: number
  dataUnitsWritten: number
  hostReadCommands: number
  hostWriteCommands: number
  /** ms with commands outstanding */
  busyMs: number
  powerCycles: number
  unsafeShutdowns: number
  mediaErrors: number
  errorLogEntries: number
}

export interface ErrorLogEntry {
  errorCount: number
  sqid: number
  cid: number
  status: number
  /** the Do Not Retry bit the completion carried (bit 15 of the log's Status Field) */
  dnr: boolean
  location: number
  lba: number
  nsid: number
}

const BROADCAST = 0xffffffff

/** Async Event Types and informations (NVMe Base §5.2.1). */
export const AsyncEvent = {
  /** type 0 error: write to an invalid doorbell register, or an invalid value */
  InvalidDoorbellRegister: 0x00_00,
  InvalidDoorbellValue: 0x01_00,
  /** type 2 notice: namespace attribute changed (the Changed Namespace List, log 04h) */
  NamespaceAttributeChanged: 0x00_02,
} as const

export class NvmeController {
  readonly bdevs: Bdevs
  readonly ch: BdevChannel
  readonly transport: ControllerTransport
  readonly cntlid: number
  readonly serial: string
  readonly model: string
  readonly firmware: string
  readonly subnqn: string
  readonly vid: number
  readonly ssvid: number
  readonly maxIoQueues: number
  readonly mdts: number
  readonly pageSizeMin: number
  readonly aerl: number
  readonly acl: number
  readonly kas: number
  readonly fabrics: ControllerOptions['fabrics']
  readonly cntrltype: 1 | 2 | 3
  /** @internal */
  readonly customLogPage: ControllerOptions['logPage']
  readonly namespaces = new Map<number, NvmeNamespace>()
  readonly features: ControllerFeatures
  readonly smart: SmartCounters = { dataUnitsRead: 0, dataUnitsWritten: 0, hostReadCommands: 0, hostWriteCommands: 0, busyMs: 0, powerCycles: 1, unsafeShutdowns: 0, mediaErrors: 0, errorLogEntries: 0 }
  readonly #errorLog: ErrorLogEntry[] = []
  readonly #errorLogSize: number
  #errorCount = 0
  /** namespaces changed since the host last read log 04h */
  readonly #changed = new Set<number>()
  /** outstanding Asynchronous Event Requests, and events waiting for one */
  readonly #aers: NvmeRequest[] = []
  readonly #events: number[] = []
  /** events reported and not yet cleared (their log page not read) */
  readonly #reported: number[] = []
  /** event types masked until the host reads the associated log page */
  #masked = 0
  /** the keep-alive check, and when the host last showed it is alive (ms, performance.now()) */
  #keepAlive: ReturnType<typeof setInterval> | null = null
  #lastKeepAlive = 0
  #bytesRead = 0
  #bytesWritten = 0
  readonly #pages: ControllerPages
  #outstanding = 0
  #busySince = 0
  #closed = false

  constructor(o: ControllerOptions) {
    this.bdevs = o.bdevs
    this.ch = o.ch
    this.transport = o.transport
    this.cntlid = o.cntlid ?? 1
    this.serial = o.serial ?? 'IPUKIT0001'
    this.model = o.model ?? 'ipukit NVMe controller'
    this.firmware = o.firmware ?? '0.1'
    this.subnqn = o.subnqn ?? 'nqn.2026-12.io.ipukit:ctrl'
    this.vid = o.vid ?? 0x1b36
    this.ssvid = o.ssvid ?? 0x1af4
    this.maxIoQueues = o.maxIoQueues ?? 64
    this.mdts = o.mdts ?? 5
    this.pageSizeMin = o.pageSizeMin ?? 4096
    this.aerl = o.aerl ?? 3
    this.acl = o.acl ?? 3
    this.kas = o.kas ?? 0
    this.fabrics = o.fabrics
    this.cntrltype = o.cntrltype ?? 1
    this.customLogPage = o.logPage
    this.#errorLogSize = o.errorLogEntries ?? 64
    for (const [k, v, lo, hi] of [
      ['cntlid', this.cntlid, 0, 0xffef],
      ['maxIoQueues', this.maxIoQueues, 1, 65535],
      ['mdts', this.mdts, 0, 16],
      ['aerl', this.aerl, 0, 255],
      ['acl', this.acl, 0, 255],
      ['errorLogEntries', this.#errorLogSize, 1, 256],
    ] as const) {
      if (!Number.isInteger(v) || v < lo || v > hi) throw new NvmeError('NVME_BAD_ARGUMENT', `${k} must be an integer in [${lo}, ${hi}], got ${v}`)
    }
    this.features = defaultFeatures(this.maxIoQueues)
    this.#pages = new ControllerPages(this)
    for (const ns of o.namespaces ?? []) this.addNamespace(ns)
    // the namespaces it starts with are not changes (the Changed Namespace List starts empty)
    this.#changed.clear()
  }

  // ---- namespaces ----

  /** Attaches a bdev as namespace `nsid`; the host is told with a namespace attribute notice. */
  addNamespace(o: NamespaceOptions): NvmeNamespace {
    if (this.namespaces.has(o.nsid)) throw new NvmeError('NVME_NAMESPACE', `namespace ${o.nsid} exists`)
    const ns = new NvmeNamespace(this.bdevs, o, (n) => this.#nsRemoved(n))
    this.namespaces.set(ns.nsid, ns)
    this.#nsChanged(ns.nsid)
    return ns
  }

  /** Detaches namespace `nsid` (its bdev stays). */
  removeNamespace(nsid: number): void {
    const ns = this.namespaces.get(nsid)
    if (ns === undefined) throw new NvmeError('NVME_NAMESPACE', `no namespace ${nsid}`)
    this.namespaces.delete(nsid)
    ns.close()
    this.#nsChanged(nsid)
  }

  #nsRemoved(ns: NvmeNamespace): void {
    // hot remove of the bdev: the namespace goes; in-flight I/O still completes
    if (this.namespaces.get(ns.nsid) !== ns) return
    this.namespaces.delete(ns.nsid)
    ns.close()
    this.#nsChanged(ns.nsid)
  }

  #nsChanged(nsid: number): void {
    this.#changed.add(nsid)
    // Namespace Attribute Notices (Asynchronous Event Configuration bit 8)
    if ((this.features.asyncEventConfig & (1 << 8)) !== 0) this.raiseEvent(AsyncEvent.NamespaceAttributeChanged | (0x04 << 16))
  }

  /** @internal namespaces changed since the last read of log 04h (and clears them when `clear`) */
  changedNamespaces(clear: boolean): number[] {
    const out = [...this.#changed].sort((a, b) => a - b)
    if (clear) this.#changed.clear()
    return out
  }

  // ---- the command interface ----

  /**
   * Bytes the command transfers and which way (NVMe: opcode bits 1:0; the size from its
   * fields), for a transport that maps data pointers before execution: PCIe walks PRPs or
   * SGLs for exactly this many bytes. Returns a negative status when the command is
   * malformed before any data moves (the transport completes it with -result).
   */
  transferLength(req: NvmeRequest): { bytes: number; toHost: boolean } | number {
    const op = req.opcode
    if (req.qid === 0) {
      switch (op) {
        case Admin.Identify:
          return { bytes: 4096, toHost: true }
        case Admin.GetLogPage: {
          const numd = ((req.cdw(10) >>> 16) | ((req.cdw(11) & 0xffff) << 16)) >>> 0
          const bytes = (numd + 1) * 4
          // the page is staged in one iobuf buffer (internal/pages.ts): a bound even without an MDTS
          if (bytes > Math.min(this.maxTransfer(), this.ch.accel.iobuf.largeSize)) return -NvmeStatus.InvalidField
          return { bytes, toHost: true }
        }
        case Admin.GetFeatures:
          return { bytes: (req.cdw(10) & 0xff) === Feature.Timestamp ? 8 : 0, toHost: true }
        case Admin.SetFeatures:
          return { bytes: (req.cdw(10) & 0xff) === Feature.Timestamp ? 8 : 0, toHost: false }
        default:
          return { bytes: 0, toHost: false }
      }
    }
    const ns = this.namespaces.get(req.cmdNsid)
    switch (op) {
      case Nvm.Read:
      case Nvm.Write:
      case Nvm.Compare: {
        if (ns === undefined) return { bytes: 0, toHost: op === Nvm.Read }
        const blocks = (req.cdw(12) & 0xffff) + 1
        const bytes = blocks * this.hostBlockLen(ns, req)
        if (bytes > this.maxTransfer()) return -NvmeStatus.InvalidField
        return { bytes, toHost: op === Nvm.Read }
      }
      case Nvm.DatasetManagement:
        return { bytes: ((req.cdw(10) & 0xff) + 1) * 16, toHost: false }
      default:
        return { bytes: 0, toHost: false }
    }
  }

  /** The largest transfer (MDTS), bytes. */
  maxTransfer(): number {
    return this.mdts === 0 ? 2 ** 31 : this.pageSizeMin * 2 ** this.mdts
  }

  /** Bytes per block the host transfers for a read, write or compare on `ns` (PRACT strips PI of a PI-only metadata). */
  hostBlockLen(ns: NvmeNamespace, req: NvmeRequest): number {
    const b = ns.bdev
    if (b.mdSize === 0) return b.blockSize
    const pract = (req.cdw(12) >>> 29) & 1
    if (pract === 1 && b.pi.type !== 0 && b.mdSize === piSizeOf(b.pi.format)) return b.blockSize
    return b.blockLen
  }

  /** Runs a command; req.done(req) follows (never inside this call), with the status set. */
  execute(req: NvmeRequest): void {
    req.owner = this
    if (this.#closed) return this.complete(req, NvmeStatus.CommandSequenceError)
    if (this.#outstanding++ === 0) this.#busySince = performance.now()
    if (req.fuse !== 0) return this.fail(req, NvmeStatus.InvalidField, 1)
    if (req.qid === 0) this.#admin(req)
    else this.#io(req)
  }

  /** A command the transport could not map (a bad data pointer): completed with `status`, logged. */
  reject(req: NvmeRequest, status: number, byte: number): void {
    req.owner = this
    if (this.#outstanding++ === 0) this.#busySince = performance.now()
    this.fail(req, status, byte)
  }

  /** @internal completes a request with `status` (0 success) after the current call returns */
  complete(req: NvmeRequest, status: number): void {
    req.status = status
    req.owner = this
    defer(finish, req, status)
  }

  /** @internal a field error: the status, with the byte of the command it was found in */
  fail(req: NvmeRequest, status: number, byte: number): void {
    req.errorLocation = byte
    req.dnr = true
    this.complete(req, status)
  }

  /** @internal */
  finished(req: NvmeRequest): void {
    if (--this.#outstanding === 0) this.smart.busyMs += performance.now() - this.#busySince
    if (req.status !== NvmeStatus.Success) this.#logError(req)
    // any command shows the host alive (the check below reads this: no timer per command)
    this.#lastKeepAlive = performance.now()
    const d = req.done
    if (d !== null) d(req)
  }

  #logError(req: NvmeRequest): void {
    // aborted commands and AERs failing at reset are not errors of the host's making
    if (req.status === NvmeStatus.AbortRequested || req.status === NvmeStatus.SqDeletionAbort) return
    this.#errorCount++
    this.smart.errorLogEntries++
    const sct = (req.status >> 8) & 7
    if (sct === 2) this.smart.mediaErrors++
    this.#errorLog.unshift({ errorCount: this.#errorCount, sqid: req.qid, cid: req.cid, status: req.status, dnr: req.dnr, location: req.errorLocation, lba: req.lba, nsid: req.nsid })
    if (this.#errorLog.length > this.#errorLogSize) this.#errorLog.length = this.#errorLogSize
  }

  /** @internal the error log, newest first */
  get errorLog(): readonly ErrorLogEntry[] {
    return this.#errorLog
  }

  /** @internal entries the error log keeps (Identify ELPE + 1) */
  get errorLogSize(): number {
    return this.#errorLogSize
  }

  // ---- asynchronous events ----

  /** Reports an asynchronous event (dword 0 of the AER completion: type, info, log page). */
  raiseEvent(dw0: number): void {
    const type = dw0 & 7
    // the same event again before the host has read its log page is one event: the log
    // page (the changed namespace list, say) holds both, and one read clears it (§5.2)
    if (this.#events.includes(dw0) || this.#reported.includes(dw0)) return
    // an event of a type masked until its log is read waits; so does one with no AER outstanding
    this.#events.push(dw0)
    this.#deliverEvents()
    void type
  }

  #deliverEvents(): void {
    while (this.#events.length > 0 && this.#aers.length > 0) {
      const i = this.#events.findIndex((e) => (this.#masked & (1 << (e & 7))) === 0)
      if (i < 0) return
      const dw0 = this.#events.splice(i, 1)[0]!
      const aer = this.#aers.shift()!
      this.#masked |= 1 << (dw0 & 7)
      this.#reported.push(dw0)
      aer.cdw0 = dw0
      this.complete(aer, NvmeStatus.Success)
    }
  }

  /** @internal the host read a log page without Retain Asynchronous Event: that type's events flow again */
  unmask(type: number): void {
    this.#masked &= ~(1 << type)
    for (let i = this.#reported.length - 1; i >= 0; i--) if ((this.#reported[i]! & 7) === type) this.#reported.splice(i, 1)
    this.#deliverEvents()
  }

  // ---- keep alive ----

  /**
   * Sets the Keep Alive Timeout (ms, rounded up to the KAS granularity; 0 disables): the
   * transport's keepAliveExpired() runs when no command has completed for that long (NVMe
   * Base §3.9). Fabrics take it from Connect's KATO; Set Features Keep Alive Timer sets it.
   * One interval timer checks the time of the last completion: nothing per command.
   */
  setKeepAliveTimeout(ms: number): void {
    const g = Math.max(1, this.kas) * 100
    this.features.keepAliveTimeout = ms <= 0 ? 0 : Math.ceil(ms / g) * g
    if (this.#keepAlive !== null) clearInterval(this.#keepAlive)
    this.#keepAlive = null
    const t = this.features.keepAliveTimeout
    if (t === 0 || this.#closed) return
    this.#lastKeepAlive = performance.now()
    this.#keepAlive = setInterval(() => {
      if (performance.now() - this.#lastKeepAlive < t) return
      clearInterval(this.#keepAlive!)
      this.#keepAlive = null
      this.transport.keepAliveExpired?.()
    }, Math.max(10, Math.min(1000, t / 4)))
    this.#keepAlive.unref?.()
  }

  /** Aborts what is waiting (AERs) and stops the keep-alive timer: a reset or a teardown. */
  reset(): void {
    for (const aer of this.#aers.splice(0)) this.complete(aer, NvmeStatus.SqDeletionAbort)
    this.#events.length = 0
    this.#reported.length = 0
    this.#masked = 0
    if (this.#keepAlive !== null) clearInterval(this.#keepAlive)
    this.#keepAlive = null
    const keep = this.features.coalescingDisabled
    keep.clear()
    Object.assign(this.features, defaultFeatures(this.maxIoQueues), { coalescingDisabled: keep })
  }

  /** Closes the namespaces' descriptors; the controller takes no more commands. */
  close(): void {
    if (this.#closed) return
    this.reset()
    this.#closed = true
    for (const ns of this.namespaces.values()) ns.close()
    this.namespaces.clear()
  }

  // ---- admin commands ----

  #admin(req: NvmeRequest): void {
    switch (req.opcode) {
      case Admin.Identify:
        return this.#pages.identify(req)
      case Admin.GetLogPage:
        return this.#pages.logPage(req)
      case Admin.SetFeatures:
        return this.#setFeatures(req)
      case Admin.GetFeatures:
        return this.#getFeatures(req)
      case Admin.AsyncEventRequest:
        if (this.#aers.length > this.aerl) return this.fail(req, CommandStatus.AsyncEventRequestLimitExceeded, 0)
        this.#aers.push(req)
        return this.#deliverEvents()
      case Admin.Abort:
        return this.#abort(req)
      case Admin.KeepAlive:
        // the keep-alive timer restarts (finished() notes the time of every completion)
        return this.complete(req, NvmeStatus.Success)
      case Admin.FormatNvm:
        return this.#format(req)
      case Admin.CreateIoCq:
      case Admin.CreateIoSq:
      case Admin.DeleteIoCq:
      case Admin.DeleteIoSq:
        return this.#queueCommand(req)
      default:
        return this.fail(req, NvmeStatus.InvalidOpcode, 0)
    }
  }

  #queueCommand(req: NvmeRequest): void {
    const t = this.transport
    const fn = req.opcode === Admin.CreateIoCq ? t.createIoCq : req.opcode === Admin.CreateIoSq ? t.createIoSq : req.opcode === Admin.DeleteIoCq ? t.deleteIoCq : t.deleteIoSq
    if (t.type !== 'pcie' || fn === undefined) return this.fail(req, NvmeStatus.InvalidOpcode, 0)
    const st = fn.call(t, req)
    const done = (s: number) => {
      if (s !== NvmeStatus.Success) return this.fail(req, s, 40)
      if (req.opcode === Admin.CreateIoCq || req.opcode === Admin.CreateIoSq) this.features.queuesSet = true
      this.complete(req, NvmeStatus.Success)
    }
    if (typeof st === 'number') done(st)
    else void st.then(done)
  }

  #abort(req: NvmeRequest): void {
    const sqid = req.cdw(10) & 0xffff
    const cid = (req.cdw(10) >>> 16) & 0xffff
    // dword 0 bit 0: 0 the command was aborted, 1 it was not (it ran, or will)
    req.cdw0 = 1
    if (sqid === 0) {
      const i = this.#aers.findIndex((a) => a.cid === cid)
      if (i >= 0) {
        const aer = this.#aers.splice(i, 1)[0]!
        this.complete(aer, NvmeStatus.AbortRequested)
        req.cdw0 = 0
      }
    } else if (this.transport.abort?.(sqid, cid) === true) req.cdw0 = 0
    this.complete(req, NvmeStatus.Success)
  }

  #setFeatures(req: NvmeRequest): void {
    const fid = req.cdw(10) & 0xff
    const save = (req.cdw(10) >>> 31) === 1
    const v = req.cdw(11)
    const f = this.features
    if (save) return this.fail(req, CommandStatus.FeatureIdNotSaveable, 43)
    if (req.cmdNsid !== 0 && req.cmdNsid !== BROADCAST) return this.fail(req, CommandStatus.FeatureNotNamespaceSpecific, 4)
    switch (fid) {
      case Feature.Arbitration:
        f.arbitration = v
        break
      case Feature.PowerManagement:
        // one power state (NPSS 0): PS 0 only
        if ((v & 0x1f) !== 0) return this.fail(req, NvmeStatus.InvalidField, 44)
        f.powerState = v & 0xff
        break
      case Feature.TemperatureThreshold: {
        // TMPSEL (19:16): the composite temperature (0h) or all sensors (Fh); the SMART log
        // has no other sensor. THSEL (21:20): 00b over, 01b under (NVMe Base §5.27.1.3)
        const tmpsel = (v >>> 16) & 0xf
        const thsel = (v >>> 20) & 3
        if ((tmpsel !== 0 && tmpsel !== 0xf) || thsel > 1) return this.fail(req, NvmeStatus.InvalidField, 46)
        if (thsel === 0) f.temperatureThreshold = v & 0xffff
        else f.underTemperatureThreshold = v & 0xffff
        break
      }
      case Feature.ErrorRecovery:
        f.errorRecovery = v
        break
      case Feature.VolatileWriteCache:
        f.volatileWriteCache = (v & 1) === 1
        break
      case Feature.NumberOfQueues: {
        const nsqr = v & 0xffff
        const ncqr = v >>> 16
        if (nsqr === 0xffff || ncqr === 0xffff) return this.fail(req, NvmeStatus.InvalidField, 44)
        // once I/O queues exist, the count cannot change (NVMe Base §5.27.1.5)
        if (f.queuesSet) return this.fail(req, NvmeStatus.CommandSequenceError, 0)
        f.ioSqs = Math.min(nsqr, this.maxIoQueues - 1)
        f.ioCqs = Math.min(ncqr, this.maxIoQueues - 1)
        req.cdw0 = (f.ioCqs << 16) | f.ioSqs
        break
      }
      case Feature.InterruptCoalescing:
        f.coalescingThreshold = v & 0xff
        f.coalescingTime = (v >>> 8) & 0xff
        this.transport.interruptsChanged?.()
        break
      case Feature.InterruptVectorConfig: {
        const iv = v & 0xffff
        if (iv > this.maxIoQueues) return this.fail(req, NvmeStatus.InvalidField, 44)
        if (((v >>> 16) & 1) === 1) f.coalescingDisabled.add(iv)
        else f.coalescingDisabled.delete(iv)
        this.transport.interruptsChanged?.()
        break
      }
      case Feature.WriteAtomicity:
        f.writeAtomicity = v & 1
        break
      case Feature.AsyncEventConfig:
        f.asyncEventConfig = v
        break
      case Feature.KeepAliveTimer:
        if (this.kas === 0) return this.fail(req, NvmeStatus.InvalidField, 40)
        // rounded up to the granularity (KAS, 100 ms units)
        this.setKeepAliveTimeout(v)
        break
      case Feature.Timestamp:
        return this.#pages.setTimestamp(req)
      default:
        return this.fail(req, NvmeStatus.InvalidField, 40)
    }
    this.complete(req, NvmeStatus.Success)
  }

  #getFeatures(req: NvmeRequest): void {
    const fid = req.cdw(10) & 0xff
    const sel = (req.cdw(10) >>> 8) & 7
    const f = this.features
    if (sel > 3) return this.fail(req, NvmeStatus.InvalidField, 41)
    // SEL 011b: capabilities (bit 2 changeable; nothing is saveable or namespace specific)
    if (sel === 3) {
      if (!SUPPORTED_FEATURES.has(fid)) return this.fail(req, NvmeStatus.InvalidField, 40)
      req.cdw0 = 0b100
      return this.complete(req, NvmeStatus.Success)
    }
    // SEL 000b: current; 001b default; 010b saved: nothing is saveable, so the default (NVMe Base §5.15, Figure "Select"; as QEMU)
    const d = sel === 0 ? f : defaultFeatures(this.maxIoQueues)
    switch (fid) {
      case Feature.Arbitration:
        req.cdw0 = d.arbitration
        break
      case Feature.PowerManagement:
        req.cdw0 = d.powerState
        break
      case Feature.TemperatureThreshold: {
        const v = req.cdw(11)
        const tmpsel = (v >>> 16) & 0xf
        const thsel = (v >>> 20) & 3
        if ((tmpsel !== 0 && tmpsel !== 0xf) || thsel > 1) return this.fail(req, NvmeStatus.InvalidField, 46)
        req.cdw0 = (thsel === 0 ? d.temperatureThreshold : d.underTemperatureThreshold) | (tmpsel << 16) | (thsel << 20)
        break
      }
      case Feature.ErrorRecovery:
        req.cdw0 = d.errorRecovery
        break
      case Feature.VolatileWriteCache:
        req.cdw0 = d.volatileWriteCache ? 1 : 0
        break
      case Feature.NumberOfQueues:
        req.cdw0 = (d.ioCqs << 16) | d.ioSqs
        break
      case Feature.InterruptCoalescing:
        req.cdw0 = (d.coalescingTime << 8) | d.coalescingThreshold
        break
      case Feature.InterruptVectorConfig: {
        const iv = req.cdw(11) & 0xffff
        if (iv > this.maxIoQueues) return this.fail(req, NvmeStatus.InvalidField, 44)
        req.cdw0 = iv | (d.coalescingDisabled.has(iv) ? 1 << 16 : 0)
        break
      }
      case Feature.WriteAtomicity:
        req.cdw0 = d.writeAtomicity
        break
      case Feature.AsyncEventConfig:
        req.cdw0 = d.asyncEventConfig
        break
      case Feature.KeepAliveTimer:
        if (this.kas === 0) return this.fail(req, NvmeStatus.InvalidField, 40)
        req.cdw0 = d.keepAliveTimeout
        break
      case Feature.Timestamp:
        return this.#pages.getTimestamp(req)
      default:
        return this.fail(req, NvmeStatus.InvalidField, 40)
    }
    this.complete(req, NvmeStatus.Success)
  }

  // ---- Format NVM ----

  #format(req: NvmeRequest): void {
    const cdw10 = req.cdw(10)
    const lbaf = (cdw10 & 0xf) | (((cdw10 >>> 12) & 3) << 4)
    const mset = (cdw10 >>> 4) & 1
    const pi = (cdw10 >>> 5) & 7
    const pil = (cdw10 >>> 8) & 1
    const ses = (cdw10 >>> 9) & 7
    const nsid = req.cmdNsid
    const targets = nsid === BROADCAST ? [...this.namespaces.values()] : [this.namespaces.get(nsid)].filter((n) => n !== undefined)
    if (targets.length === 0) return this.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
    if (ses > 2 || pi > 3) return this.fail(req, NvmeStatus.InvalidField, 41)
    for (const ns of targets) {
      const f = ns.formats[lbaf]
      if (f === undefined) return this.fail(req, CommandStatus.InvalidFormat, 40)
      // separate metadata (MSET 0) is not supported: only extended LBAs
      if (f.mdSize > 0 && mset === 0) return this.fail(req, CommandStatus.InvalidFormat, 40)
      // the PI tuple must fit the metadata: 8 bytes (16b guard), 16 (32b and 64b guards)
      if (pi !== 0 && (f.mdSize < piSizeOf(ns.bdev.pi.format) || (ns.formatFn === undefined && pi !== ns.bdev.pi.type))) return this.fail(req, CommandStatus.InvalidFormat, 40)
      if (ns.formatFn === undefined && (lbaf !== ns.formatIndex() || pi !== ns.bdev.pi.type)) return this.fail(req, CommandStatus.InvalidFormat, 40)
    }
    req.pending = targets.length
    req.status = NvmeStatus.Success
    for (const ns of targets) void this.#formatOne(req, ns, lbaf, pi, pil, ses)
  }

  async #formatOne(req: NvmeRequest, ns: NvmeNamespace, index: number, pi: number, pil: number, ses: number): Promise<void> {
    const f: LbaFormat = ns.formats[index]!
    ns.formatting = true
    let st: number = NvmeStatus.Success
    try {
      if (ns.formatFn !== undefined) {
        ns.close()
        const name = await ns.formatFn({ format: f, index, pi: { type: pi as 0 | 1 | 2 | 3, format: ns.bdev.pi.format, location: pil === 1 ? 'first' : 'last' }, secureErase: ses })
        ns.replace(name)
      } else {
        // same format: every block deallocated (a user data erase)
        st = await new Promise<number>((resolve) => {
          const rc = ns.desc.unmap(this.ch, 0, ns.bdev.blockCount, (_: null, s) => resolve(s), null)
          if (rc !== 0) resolve(NvmeStatus.InternalError)
        })
      }
    } catch {
      st = NvmeStatus.InternalError
    }
    ns.formatting = false
    this.#nsChanged(ns.nsid)
    if (st !== NvmeStatus.Success && req.status === NvmeStatus.Success) req.status = st
    if (--req.pending === 0) this.complete(req, req.status)
  }

  // ---- NVM I/O commands ----

  #io(req: NvmeRequest): void {
    const op = req.opcode
    if (op === Nvm.Flush) return this.#flush(req)
    const nsid = req.cmdNsid
    req.nsid = nsid
    const ns = this.namespaces.get(nsid)
    if (ns === undefined) return this.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
    if (ns.formatting) return this.complete(req, NvmeStatus.FormatInProgress)
    req.ns = ns
    switch (op) {
      case Nvm.Read:
      case Nvm.Write:
        this.#count(req, ns, op === Nvm.Write)
        return this.#rw(req, ns)
      case Nvm.Compare:
        this.#count(req, ns, false)
        return this.#compare(req, ns)
      case Nvm.WriteZeroes:
        return this.#writeZeroes(req, ns)
      case Nvm.DatasetManagement:
        return this.#dsm(req, ns)
      case Nvm.Verify:
        this.#count(req, ns, false)
        return this.#verify(req, ns)
      default:
        return this.fail(req, NvmeStatus.InvalidOpcode, 0)
    }
  }

  /**
   * SMART host read and write commands and their data units, once per command (not again on a
   * retry; a command out of range is not counted): Read, Compare and Verify read, Write writes
   * (NVM Command Set 1.0, SMART / Health Information); data only, not metadata (NVMe Base §5.16.1.3).
   */
  #count(req: NvmeRequest, ns: NvmeNamespace, write: boolean): void {
    const nlb = (req.cdw(12) & 0xffff) + 1
    if (req.u64(40) + nlb > ns.bdev.blockCount) return
    if (write) {
      this.smart.hostWriteCommands++
      this.#bytesWritten += nlb * ns.bdev.blockSize
    } else {
      this.smart.hostReadCommands++
      this.#bytesRead += nlb * ns.bdev.blockSize
    }
  }

  #range(req: NvmeRequest, ns: NvmeNamespace): boolean {
    const slba = req.u64(40)
    const nlb = (req.cdw(12) & 0xffff) + 1
    req.lba = slba
    if (slba + nlb > ns.bdev.blockCount) {
      this.fail(req, NvmeStatus.LbaOutOfRange, 40)
      return false
    }
    return true
  }

  /** The DIF context for a command's PRINFO (cached per namespace, checks and tags). */
  #difFor(ns: NvmeNamespace, req: NvmeRequest, checks: number): DifContext {
    const b = ns.bdev
    const lbat = req.cdw(15) & 0xffff
    const lbatm = req.cdw(15) >>> 16
    const key = checks * 2 ** 32 + lbatm * 65536 + lbat
    const cache = ns.difContexts as Map<number, DifContext>
    let c = cache.get(key)
    if (c === undefined) {
      if (cache.size > 256) cache.clear()
      c = createDifContext({
        dataBlockSize: b.blockSize,
        mdSize: b.mdSize,
        type: b.pi.type,
        piFormat: b.pi.format,
        piLocation: b.pi.location,
        appTag: lbat,
        appTagMask: lbatm,
        checks: { guard: (checks & 4) !== 0, appTag: (checks & 2) !== 0, refTag: (checks & 1) !== 0 },
        kernels: this.bdevs.accel.physical.kernels,
      })
      cache.set(key, c)
    }
    return c
  }

  #rw(req: NvmeRequest, ns: NvmeNamespace): void {
    if (!this.#range(req, ns)) return
    const write = req.opcode === Nvm.Write
    const b = ns.bdev
    const nlb = (req.cdw(12) & 0xffff) + 1
    const cdw12 = req.cdw(12)
    const fua = (cdw12 >>> 30) & 1
    const pract = (cdw12 >>> 29) & 1
    const prchk = (cdw12 >>> 26) & 7
    const opts = ioOpts(req)
    opts.fua = fua === 1
    opts.seq = null
    opts.difError = null
    if (b.pi.type === 0 || (pract === 0 && prchk === 0)) return this.#submitRw(req, ns, write, req.iovs, req.domain, nlb)
    // protection information the host asked the controller to act on or check
    if (b.pi.type === 1 && (prchk & 1) !== 0 && req.cdw(14) !== (req.lba % 2 ** 32) >>> 0) return this.fail(req, CommandStatus.InvalidProtectionInformation, 56)
    // PRACT on a write, and on a read that strips the PI, goes through one local buffer (#accelBuf): never more than it holds
    if ((write || b.mdSize === piSizeOf(b.pi.format)) && pract === 1 && nlb * b.blockLen > this.bdevs.accel.physical.layout.iobuf.largeSize) return this.fail(req, NvmeStatus.InvalidField, 48)
    const ctx = this.#difFor(ns, req, prchk)
    const seq = this.ch.accel.sequence()
    if (seq === null) return this.#retry(req, () => this.#rw(req, ns))
    const call = difCall(req, b.pi.type)
    const strip = pract === 1 && b.mdSize === piSizeOf(b.pi.format)
    req.err.kind = undefined
    if (write) {
      if (pract === 0) {
        // check the host's PI before the data goes anywhere
        if (seq.appendDifVerify(req.iovs, req.domain, nlb, ctx, req.err, call) !== 0) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
        opts.seq = seq
        return this.#submitRw(req, ns, true, req.iovs, req.domain, nlb)
      }
      const buf = this.#accelBuf(req, nlb * b.blockLen)
      if (buf === null) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
      const genCtx = this.#difFor(ns, req, 7)
      if (strip) {
        // PRACT with PI-only metadata: the host sends data; the controller inserts the PI
        if (seq.appendDifGenerateCopy(buf, this.ch.accel.accelDomain, req.iovs, req.domain, nlb, genCtx, call) !== 0) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
      } else if (seq.appendCopy(buf, this.ch.accel.accelDomain, req.iovs, req.domain) !== 0 || seq.appendDifGenerate(buf, this.ch.accel.accelDomain, nlb, genCtx, call) !== 0) {
        return this.#seqRetry(req, seq, () => this.#rw(req, ns))
      }
      opts.seq = seq
      return this.#submitRw(req, ns, true, buf, this.ch.accel.accelDomain, nlb)
    }
    if (strip) {
      // PRACT on a read with PI-only metadata: verify per PRCHK, strip, the host gets data
      const buf = this.#accelBuf(req, nlb * b.blockLen)
      if (buf === null) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
      if (seq.appendDifVerifyCopy(req.iovs, req.domain, buf, this.ch.accel.accelDomain, nlb, ctx, req.err, call) !== 0) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
      opts.seq = seq
      return this.#submitRw(req, ns, false, buf, this.ch.accel.accelDomain, nlb)
    }
    // the host gets the metadata too: checked after it arrives (the bottom reverses the sequence)
    if (seq.appendDifVerify(req.iovs, req.domain, nlb, ctx, req.err, call) !== 0) return this.#seqRetry(req, seq, () => this.#rw(req, ns))
    opts.seq = seq
    this.#submitRw(req, ns, false, req.iovs, req.domain, nlb)
  }

  #accelBuf(req: NvmeRequest, bytes: number): import('@ipukit/memory').IoVecList | null {
    if (req.bufs[0] === 0) {
      if (bytes > this.bdevs.accel.physical.layout.iobuf.largeSize) return null
      req.bufs[0] = this.ch.accel.getBuf(bytes)
      if (req.bufs[0] === 0) return null
    }
    return req.lists[0].clear().push(req.bufs[0]!, bytes)
  }

  #submitRw(req: NvmeRequest, ns: NvmeNamespace, write: boolean, iovs: import('@ipukit/memory').IoVecList, domain: import('@ipukit/memory').MemoryDomain | null, nlb: number): void {
    const slba = req.lba
    const opts = ioOpts(req)
    const rc = write ? ns.desc.writev(this.ch, iovs, domain, slba, nlb, rwDone, req, opts) : ns.desc.readv(this.ch, iovs, domain, slba, nlb, rwDone, req, opts)
    if (rc === BDEV_NO_IO) {
      if (opts.seq !== null) {
        opts.seq.abort()
        opts.seq = null
      }
      this.#freeBufs(req)
      return this.#retry(req, () => this.#rw(req, ns))
    }
  }

  /** @internal a read or write came back from the bdev */
  rwDone(req: NvmeRequest, status: number): void {
    this.#freeBufs(req)
    if (status !== NvmeStatus.Success && req.err.kind !== undefined) status = piStatus(req.err.kind)
    this.complete(req, status)
  }

  #freeBufs(req: NvmeRequest): void {
    if (req.bufs[0] !== 0) {
      this.ch.accel.putBuf(req.bufs[0]!)
      req.bufs[0] = 0
    }
  }

  #seqRetry(req: NvmeRequest, seq: AccelSequence, again: () => void): void {
    seq.abort()
    this.#freeBufs(req)
    this.#retry(req, again)
  }

  /** Tries again on a later turn: a pool (accel tasks, buffers, bdev I/Os) was empty. */
  #retry(req: NvmeRequest, again: () => void): void {
    setImmediate(() => {
      if (req.aborted) return this.complete(req, NvmeStatus.AbortRequested)
      again()
    })
  }

  #flush(req: NvmeRequest): void {
    const nsid = req.cmdNsid
    req.nsid = nsid
    const targets = nsid === BROADCAST ? [...this.namespaces.values()] : [this.namespaces.get(nsid)].filter((n) => n !== undefined)
    if (targets.length === 0) return nsid === BROADCAST ? this.complete(req, NvmeStatus.Success) : this.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
    req.pending = targets.length
    req.status = NvmeStatus.Success
    for (const ns of targets) this.#flushOne(req, ns)
  }

  #flushOne(req: NvmeRequest, ns: NvmeNamespace): void {
    const rc = ns.desc.flush(this.ch, 0, ns.bdev.blockCount, flushDone, req)
    // the channel's I/O objects are all in use: again on the next turn, as reads and writes do
    if (rc === BDEV_NO_IO) setImmediate(() => this.#flushOne(req, ns))
    else if (rc !== 0) flushDone(req, NvmeStatus.InternalError)
  }

  #writeZeroes(req: NvmeRequest, ns: NvmeNamespace): void {
    if (!this.#range(req, ns)) return
    const nlb = (req.cdw(12) & 0xffff) + 1
    // DEAC (bit 25): deallocate, if the bdev can
    const deac = ((req.cdw(12) >>> 25) & 1) === 1 && ns.bdev.ioTypeSupported('unmap')
    const rc = deac ? ns.desc.unmap(this.ch, req.lba, nlb, plainDone, req) : ns.desc.writeZeroes(this.ch, req.lba, nlb, plainDone, req)
    if (rc === BDEV_NO_IO) this.#retry(req, () => this.#writeZeroes(req, ns))
  }

  #dsm(req: NvmeRequest, ns: NvmeNamespace): void {
    // attribute Deallocate (cdw11 bit 2); Integral Dataset for Read/Write are hints
    if (((req.cdw(11) >>> 2) & 1) === 0) return this.complete(req, NvmeStatus.Success)
    if (!ns.bdev.ioTypeSupported('unmap')) return this.complete(req, NvmeStatus.Success)
    this.#pages.pullData(req, (r, ok, at) => {
      if (!ok) return this.complete(r, NvmeStatus.DataTransferError)
      const n = (r.cdw(10) & 0xff) + 1
      // every range checked before any is deallocated (16-byte descriptors: attributes, blocks, SLBA)
      const d = this.#pages.memoryView
      for (let i = 0; i < n; i++) {
        const len = d.getUint32(at + 16 * i + 4, true)
        const slba = d.getUint32(at + 16 * i + 12, true) * 0x100000000 + d.getUint32(at + 16 * i + 8, true)
        if (slba + len > ns.bdev.blockCount) {
          r.lba = slba
          return this.fail(r, NvmeStatus.LbaOutOfRange, 0xffff)
        }
        r.ranges[2 * i] = slba
        r.ranges[2 * i + 1] = len
      }
      r.pending = n
      r.progress = 0
      r.status = NvmeStatus.Success
      this.#dsmNext(r, ns)
    })
  }

  #dsmNext(req: NvmeRequest, ns: NvmeNamespace): void {
    while (req.progress < req.pending) {
      const slba = req.ranges[2 * req.progress]!
      const len = req.ranges[2 * req.progress + 1]!
      req.progress++
      if (len === 0) continue
      const rc = ns.desc.unmap(this.ch, slba, len, dsmDone, req)
      if (rc !== 0) return this.complete(req, NvmeStatus.InternalError)
      return
    }
    this.complete(req, NvmeStatus.Success)
  }

  /** @internal */
  dsmStep(req: NvmeRequest, status: number): void {
    if (status !== NvmeStatus.Success) return this.complete(req, status)
    this.#dsmNext(req, req.ns as NvmeNamespace)
  }

  #compare(req: NvmeRequest, ns: NvmeNamespace): void {
    if (!this.#range(req, ns)) return
    const nlb = (req.cdw(12) & 0xffff) + 1
    const bytes = nlb * ns.bdev.blockLen
    // the local buffers hold req.lists[1].capacity large iobuf buffers at most
    if (bytes > req.lists[1].capacity * this.ch.accel.iobuf.largeSize) return this.fail(req, NvmeStatus.InvalidField, 48)
    // read the blocks into local buffers, then compare them with the host's data
    this.#pages.localBuffers(req, bytes, (r, local) => {
      if (local === null) return this.#retry(r, () => this.#compare(r, ns))
      const rc = ns.desc.readv(this.ch, local, null, r.lba, nlb, (rr: NvmeRequest, st: number) => {
        if (st !== NvmeStatus.Success) {
          this.#pages.releaseLocal(rr)
          return this.complete(rr, st)
        }
        // PRACT with PI-only metadata: the host sent the data alone (hostBlockLen), so the blocks'
        // PI is checked per PRCHK and stripped, and the data compared (as QEMU: the PI is not compared)
        const b = ns.bdev
        const iobuf = this.ch.accel.iobuf
        let data = local
        if (this.hostBlockLen(ns, rr) !== b.blockLen) {
          // the data alone, in local memory (a compare's second list must be)
          const n = nlb * b.blockSize
          const at = n <= iobuf.largeSize ? iobuf.get(n) : -1
          if (at <= 0) this.#pages.releaseLocal(rr)
          if (at < 0) return this.complete(rr, NvmeStatus.InternalError)
          if (at === 0) return this.#retry(rr, () => this.#compare(rr, ns))
          rr.bufs[2] = at
          data = rr.lists[0].clear().push(at, n)
        }
        const release = (x: NvmeRequest) => {
          if (x.bufs[2] !== 0) iobuf.put(x.bufs[2]!)
          x.bufs[2] = 0
          this.#pages.releaseLocal(x)
        }
        const seq = this.ch.accel.sequence()
        rr.err.kind = undefined
        if (
          seq === null ||
          (data !== local && seq.appendDifVerifyCopy(data, null, local, null, nlb, this.#difFor(ns, rr, (rr.cdw(12) >>> 26) & 7), rr.err, difCall(rr, b.pi.type)) !== 0) ||
          seq.appendCompare(rr.iovs, rr.domain, data, null) !== 0
        ) {
          seq?.abort()
          release(rr)
          return this.complete(rr, NvmeStatus.InternalError)
        }
        seq.finish((x: NvmeRequest, s: number) => {
          release(x)
          if (s === AccelStatus.Io && x.err.kind !== undefined) return this.complete(x, piStatus(x.err.kind))
          this.complete(x, s === AccelStatus.Ok ? NvmeStatus.Success : s === AccelStatus.Miscompare ? NvmeStatus.CompareFailure : s === AccelStatus.Fault ? NvmeStatus.DataTransferError : NvmeStatus.InternalError)
        }, rr)
      }, r)
      if (rc !== 0) {
        this.#pages.releaseLocal(r)
        this.#retry(r, () => this.#compare(r, ns))
      }
    })
  }

  #verify(req: NvmeRequest, ns: NvmeNamespace): void {
    if (!this.#range(req, ns)) return
    const b = ns.bdev
    const nlb = (req.cdw(12) & 0xffff) + 1
    // Verify Size Limit (Identify NVM VSL = MDTS; data and metadata, as QEMU's nvme_verify):
    // the blocks are read into local buffers, which bound it even without an MDTS
    if (nlb * b.blockLen > Math.min(this.maxTransfer(), req.lists[1].capacity * this.ch.accel.iobuf.largeSize)) return this.fail(req, NvmeStatus.InvalidField, 48)
    const prchk = (req.cdw(12) >>> 26) & 7
    // type 1: the expected initial reference tag is the SLBA's low 32 bits (NVM Command Set §5.3.1.3), as for Read
    if (b.pi.type === 1 && (prchk & 1) !== 0 && req.cdw(14) !== (req.lba % 2 ** 32) >>> 0) return this.fail(req, CommandStatus.InvalidProtectionInformation, 56)
    // read the blocks (the layers below check what they check: a dif bdev its PI), check
    // the namespace's own PI per PRCHK, and transfer nothing
    this.#pages.localBuffers(req, nlb * b.blockLen, (r, local) => {
      if (local === null) return this.#retry(r, () => this.#verify(r, ns))
      let seq: AccelSequence | null = null
      if (b.pi.type !== 0 && prchk !== 0) {
        seq = this.ch.accel.sequence()
        r.err.kind = undefined
        if (seq === null || seq.appendDifVerify(local, null, nlb, this.#difFor(ns, r, prchk), r.err, difCall(r, b.pi.type)) !== 0) {
          seq?.abort()
          this.#pages.releaseLocal(r)
          return this.#retry(r, () => this.#verify(r, ns))
        }
      }
      const rc = ns.desc.readv(this.ch, local, null, r.lba, nlb, (rr: NvmeRequest, st: number) => {
        this.#pages.releaseLocal(rr)
        if (st !== NvmeStatus.Success && rr.err.kind !== undefined) st = piStatus(rr.err.kind)
        this.complete(rr, st)
      }, r, { seq })
      if (rc !== 0) {
        seq?.abort()
        this.#pages.releaseLocal(r)
        this.#retry(r, () => this.#verify(r, ns))
      }
    })
  }

  /** SMART data units: thousands of 512-byte units, rounded up (NVMe Base §5.16.1.3). */
  dataUnits(): { read: number; written: number } {
    return { read: Math.ceil(this.#bytesRead / 512_000), written: Math.ceil(this.#bytesWritten / 512_000) }
  }
}

const SUPPORTED_FEATURES = new Set<number>(Object.values(Feature))

function defaultFeatures(maxIoQueues: number): ControllerFeatures {
  return {
    arbitration: 0,
    powerState: 0,
    temperatureThreshold: 343, // 70 °C, in Kelvin
    underTemperatureThreshold: 0,
    errorRecovery: 0,
    volatileWriteCache: true,
    ioSqs: maxIoQueues - 1,
    ioCqs: maxIoQueues - 1,
    queuesSet: false,
    coalescingThreshold: 0,
    coalescingTime: 0,
    coalescingDisabled: new Set(),
    asyncEventConfig: 0,
    writeAtomicity: 0,
    keepAliveTimeout: 0,
    timestamp: 0,
    timestampSetAt: 0,
  }
}

function finish(req: NvmeRequest, _status: number): void {
  ;(req.owner as NvmeController).finished(req)
}

/** The request's DIF call options: the LBA, and EILBRT as the initial ref tag (Types 2 and 3; Type 1 takes the LBA). */
function difCall(req: NvmeRequest, type: number): { lba: number; initRefTag?: number } {
  const c = req.difCall
  c.lba = req.lba
  c.initRefTag = type === 1 ? undefined : req.cdw(14)
  return c as { lba: number; initRefTag?: number }
}

function ioOpts(req: NvmeRequest): { seq: AccelSequence | null; fua: boolean; difError: AccelDifError | null } {
  return req.bdevOpts
}

function rwDone(req: NvmeRequest, status: number): void {
  const c = ctrlOf(req)
  c.rwDone(req, status)
}

function dsmDone(req: NvmeRequest, status: number): void {
  ctrlOf(req).dsmStep(req, status)
}

function plainDone(req: NvmeRequest, status: number): void {
  ctrlOf(req).complete(req, status)
}

function flushDone(req: NvmeRequest, status: number): void {
  if (status !== NvmeStatus.Success && req.status === NvmeStatus.Success) req.status = status
  if (--req.pending === 0) ctrlOf(req).complete(req, req.status)
}

function ctrlOf(req: NvmeRequest): NvmeController {
  return req.owner as NvmeController
}

