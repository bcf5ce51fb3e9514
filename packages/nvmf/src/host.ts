// The NVMe/TCP host (initiator), in the manner of Linux's nvme-tcp and SPDK's nvme_tcp.c:
// an admin queue and N I/O queues, each a TCP connection that starts with ICReq/ICResp
// and a Fabrics Connect; then Property Get/Set to enable the controller, Identify, Number of
// Queues, and keep-alive. Commands carry their data in the capsule when it fits the
// controller's IOCCSZ, else the controller asks for it with R2T and gets H2CData PDUs;
// reads come back in C2HData PDUs, received straight into the caller's buffers.
//
// Trouble: a connection that drops, a TermReq, a command or keep-alive that times out, start
// error recovery as Linux's does: every queue is closed, and after `reconnectDelayMs` the
// host connects again (a new controller of the same subsystem) and sends the commands that
// were in flight once more; if it cannot within `ctrlLossTimeoutMs`, they fail with Host
// Pathing Error.
import net from 'node:net'
import { randomUUID } from 'node:crypto'
import { NvmeStatus } from '@ipukit/bdev'
import { IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { AdminOpcode, decodeIdentifyController, decodeIdentifyNamespace, decodeNamespaceList, decodeNvmIdentifyNamespace, dpsPiFirst, dpsPiType, NvmOpcode, Reg } from '@ipukit/nvme'
import { NvmfError } from './errors.js'
import { PduReceiver, type PduInfo, Receive, type ReceiverSink } from './internal/receiver.js'
import { CNTLID_DYNAMIC, ConnectAttribute, CONNECT_DATA_SIZE, decodeDiscoveryLog, DISCOVERY_NQN, type DiscoveryLogEntry, encodeConnect, encodeConnectData, encodePropertyGet, encodePropertySet, FABRICS_OPCODE, nqnProblem, TcpSgl } from './spec/fabrics.js'
import { CAPSULE_CMD_HLEN, DATA_HLEN, DIGEST_SIZE, encodeICReq, ICREQ_SIZE, layoutPdu, PDA_MAX, PduFlag, PduType, TERM_REQ_HLEN, TERM_REQ_MAX_DATA, TermReqFes, writeCommonHeader, writeTermReq } from './spec/pdu.js'

/** Path Related Status (SCT 3): 70h Internal Path Error; Linux's host uses 370h (Host Pathing Error) when a controller is lost */
export const HOST_PATH_ERROR = 0x370
/** 371h: the host aborted the command (a close) */
export const HOST_ABORTED = 0x371

export interface HostCompletion {
  /** NVMe status (SCT << 8 | SC); 0 success */
  status: number
  cdw0: number
  cdw1: number
  dnr: boolean
}

export type HostCallback<T> = (arg: T, c: HostCompletion) => void

export interface NvmfHostOptions {
  /** the memory the host's buffers live in (staging areas and headers are allocated here) */
  physical: PhysicalMemory
  traddr: string
  trsvcid: string | number
  subnqn: string
  /** default nqn.2014-08.org.nvmexpress:uuid:<hostid> */
  hostnqn?: string
  /** 16 bytes; default random */
  hostid?: Uint8Array
  /** I/O queues to connect; default 1 */
  ioQueues?: number
  /** entries per I/O queue; default 128 */
  queueDepth?: number
  /** admin queue entries; default 32 */
  adminDepth?: number
  /** keep-alive timeout, ms (Connect's KATO; 0 none); default 5000 as Linux's */
  kato?: number
  hdgst?: boolean
  ddgst?: boolean
  /** send write data in the capsule when it fits IOCCSZ; default true */
  inCapsule?: boolean
  /** ask the controller not to report SQ heads (CATTR bit 2), which lets it use C2HData SUCCESS; default false */
  disableSqFlowControl?: boolean
  /** the host's PDO alignment (HPDA); default 0 */
  hpda?: number
  /** ms before a reconnect attempt; default 1000 */
  reconnectDelayMs?: number
  /** ms after a loss before the commands in flight fail; default 600 000 (Linux's ctrl_loss_tmo) */
  ctrlLossTimeoutMs?: number
  /** ms a command may take before the host starts error recovery; default 30 000 */
  ioTimeoutMs?: number
  /** ms for ICReq, Connect and each bring-up command; default 10 000 */
  connectTimeoutMs?: number
}

export interface NvmfNamespacePi {
  /** 0: none; 1, 2 or 3: the PI type the namespace is formatted with (DPS) */
  type: 0 | 1 | 2 | 3
  /** the guard's width: 16b CRC16 T10-DIF, 32b CRC32C, 64b CRC64-NVMe (ELBAF.PIF) */
  format: 16 | 32 | 64
  /** the PI in the first or the last bytes of each block's metadata (DPS.PIP) */
  location: 'first' | 'last'
}

export interface NvmfNamespace {
  nsid: number
  blocks: number
  blockSize: number
  /** metadata bytes per block, interleaved with the data (extended LBAs) */
  mdSize: number
  pi: NvmfNamespacePi
}

export type HostState = 'new' | 'connecting' | 'live' | 'resetting' | 'failed' | 'closed'

const STAGE = 64 * 1024
/** per slot: the capsule header (CH + SQE, digest, padding up to 128) [0, 256), data digests [256, 272), H2CData headers [272, 512) */
const SLOT_TX = 512
const TX_DDGST = 256
const TX_H2C = 272
const H2C_SLOTS = 4

class Slot {
  busy = false
  cb: HostCallback<unknown> | null = null
  arg: unknown = null
  /** the command as built (64 bytes), kept to send it again after a reconnect */
  readonly sqe = new Uint8Array(64)
  readonly data = new IoVecList(32)
  dataLen = 0
  toHost = false
  inCapsule = false
  /** sent on the current connection; H2CData sent, C2HData received */
  sent = false
  h2c = 0
  c2h = 0
  dataOk = true
  started = 0
  /** the R2T's TTAG, echoed in each H2CData */
  ttag = 0
  /** a command of the bring-up (Connect, Property Get/Set, Identify): it fails, rather than waits, when the connection drops */
  bringUp = false
  readonly part = new IoVecList(32)
  constructor(
    readonly cid: number,
    readonly tx: number,
  ) {}
}

/** One queue: its connection, slots and receiver. */
class HostQueue implements ReceiverSink {
  socket: net.Socket | null = null
  rx: PduReceiver | null = null
  state: 'down' | 'icresp' | 'connecting' | 'up' = 'down'
  readonly slots: Slot[] = []
  readonly free: number[] = []
  cpda = 0
  maxh2cdata = 0
  corked = false
  #icresp: ((err: Error | null) => void) | null = null
  #pendingResp: { cid: number; status: number; cdw0: number; cdw1: number; dnr: boolean } = { cid: 0, status: 0, cdw0: 0, cdw1: 0, dnr: false }
  #c2hSlot: Slot | null = null
  #c2hFlags = 0
  #r2t = { slot: null as Slot | null, offset: 0, length: 0 }

  constructor(
    readonly host: NvmfHost,
    readonly qid: number,
    readonly depth: number,
    readonly stage: number,
    readonly txBase: number,
  ) {
    // one slot short of the queue: SQHD flow control, as a PCIe queue
    for (let i = 0; i < depth - 1; i++) {
      this.slots.push(new Slot(i, txBase + i * SLOT_TX))
      this.free.push(depth - 2 - i)
    }
  }

  get pm(): PhysicalMemory {
    return this.host.physical
  }

  /** Opens the connection and exchanges ICReq/ICResp. */
  open(): Promise<void> {
    const h = this.host
    return new Promise<void>((resolve, reject) => {
      let done = false
      const finish = (e: Error | null) => {
        if (done) return
        done = true
        clearTimeout(timer)
        this.#icresp = null
        if (e !== null) {
          this.close()
          reject(e)
        } else resolve()
      }
      const timer = setTimeout(() => finish(new NvmfError('NVMF_TRANSPORT', `queue ${this.qid}: no ICResp within ${h.connectTimeoutMs} ms`)), h.connectTimeoutMs)
      const rx = new PduReceiver(this.pm, this.stage, STAGE, this)
      rx.pda = h.hpda
      this.rx = rx
      this.state = 'icresp'
      this.#icresp = finish
      const s = net.connect({ host: h.traddr, port: h.port, noDelay: true, onread: { buffer: () => rx.buffer(), callback: (n: number) => (rx.received(n), true) } } as net.NetConnectOpts)
      this.socket = s
      s.on('error', (e) => {
        finish(new NvmfError('NVMF_TRANSPORT', `queue ${this.qid}: ${e.message}`, { cause: e }))
        this.#lost(`socket error: ${e.message}`)
      })
      s.on('close', () => {
        finish(new NvmfError('NVMF_TRANSPORT', `queue ${this.qid}: the connection closed`))
        this.#lost('the connection closed')
      })
      s.on('connect', () => {
        const at = this.txBase + (this.depth - 1) * SLOT_TX
        encodeICReq(this.host.view(), at, { pfv: 0, hpda: h.hpda, hdgst: h.hdgst, ddgst: h.ddgst, maxr2t: 0 })
        s.write(this.pm.bytes.subarray(at, at + ICREQ_SIZE))
      })
    })
  }

  #lost(why: string): void {
    if (this.state === 'down') return
    this.state = 'down'
    this.rx?.kill()
    // the bring-up's commands on this queue fail now (their connect attempt is over)
    for (const s of this.slots) if (s.busy && s.bringUp) this.host.complete(this, s, HOST_PATH_ERROR, 0, 0, false)
    this.host.queueLost(this, why)
  }

  close(): void {
    const s = this.socket
    this.socket = null
    this.state = 'down'
    this.rx?.kill()
    s?.destroy()
  }

  // ---- ReceiverSink ----

  accept(type: number): number {
    if (this.state === 'icresp') return type === PduType.ICResp ? 0 : (TermReqFes.PduSequenceError << 16) | 0
    if (type === PduType.ICResp) return (TermReqFes.PduSequenceError << 16) | 0
    if (type === PduType.CapsuleResp || type === PduType.C2HData || type === PduType.R2T || type === PduType.C2HTermReq) return 0
    return (TermReqFes.InvalidPduHeaderField << 16) | 0
  }

  onHeader(v: DataView, i: PduInfo): number {
    const at = i.at
    switch (i.type) {
      case PduType.ICResp: {
        const pfv = v.getUint16(at + 8, true)
        const cpda = v.getUint8(at + 10)
        const dgst = v.getUint8(at + 11)
        const maxh2c = v.getUint32(at + 12, true)
        // Linux's checks (nvme_tcp_init_connection): PFV 0, the digests asked, MAXH2CDATA >= 4096 and dword aligned
        if (pfv !== 0) return this.#fatal(TermReqFes.UnsupportedParameter, 8, at, i.hlen)
        if (cpda > PDA_MAX) return this.#fatal(TermReqFes.UnsupportedParameter, 10, at, i.hlen)
        if (dgst !== ((this.host.hdgst ? 1 : 0) | (this.host.ddgst ? 2 : 0))) return this.#fatal(TermReqFes.UnsupportedParameter, 11, at, i.hlen)
        if (maxh2c < 4096 || maxh2c % 4 !== 0) return this.#fatal(TermReqFes.UnsupportedParameter, 12, at, i.hlen)
        this.cpda = cpda
        this.maxh2cdata = maxh2c
        this.rx!.hdgst = this.host.hdgst
        this.rx!.ddgst = this.host.ddgst
        this.state = 'connecting'
        this.#icresp?.(null)
        return Receive.Data
      }
      case PduType.CapsuleResp: {
        const r = this.#pendingResp
        r.cdw0 = v.getUint32(at + 8, true)
        r.cdw1 = v.getUint32(at + 12, true)
        r.cid = v.getUint16(at + 20, true)
        const sf = v.getUint16(at + 22, true)
        r.status = (sf >>> 1) & 0x7ff
        r.dnr = (sf & 0x8000) !== 0
        const s = this.slots[r.cid]
        if (s === undefined || !s.busy || !s.sent) return this.#fatal(TermReqFes.InvalidPduHeaderField, 20, at, i.hlen)
        return Receive.Data
      }
      case PduType.C2HData: {
        const cccid = v.getUint16(at + 8, true)
        const datao = v.getUint32(at + 12, true)
        const datal = v.getUint32(at + 16, true)
        const s = this.slots[cccid]
        if (s === undefined || !s.busy || !s.sent || !s.toHost) return this.#fatal(TermReqFes.InvalidPduHeaderField, 8, at, i.hlen)
        if (datal !== i.dataLen) return this.#fatal(TermReqFes.InvalidPduHeaderField, 16, at, i.hlen)
        if (datao !== s.c2h || datao + datal > s.dataLen) return this.#fatal(TermReqFes.DataTransferOutOfRange, 12, at, i.hlen)
        if ((i.flags & PduFlag.SUCCESS) !== 0 && ((i.flags & PduFlag.LAST_PDU) === 0 || datao + datal !== s.dataLen)) return this.#fatal(TermReqFes.InvalidPduHeaderField, 1, at, i.hlen)
        this.#c2hSlot = s
        this.#c2hFlags = i.flags
        slice(s.data, datao, datal, this.rx!.dest)
        return Receive.Data
      }
      case PduType.R2T: {
        const cccid = v.getUint16(at + 8, true)
        const r2to = v.getUint32(at + 12, true)
        const r2tl = v.getUint32(at + 16, true)
        const s = this.slots[cccid]
        if (s === undefined || !s.busy || !s.sent || s.toHost || s.inCapsule) return this.#fatal(TermReqFes.InvalidPduHeaderField, 8, at, i.hlen)
        if (r2tl === 0 || r2to !== s.h2c || r2to + r2tl > s.dataLen) return this.#fatal(TermReqFes.DataTransferOutOfRange, 12, at, i.hlen)
        this.#r2t.slot = s
        this.#r2t.offset = r2to
        this.#r2t.length = r2tl
        s.ttag = v.getUint16(at + 10, true)
        return Receive.Data
      }
      default:
        return Receive.Discard
    }
  }

  onPdu(i: PduInfo, dataOk: boolean): void {
    switch (i.type) {
      case PduType.CapsuleResp: {
        const r = this.#pendingResp
        this.host.complete(this, this.slots[r.cid]!, r.status, r.cdw0, r.cdw1, r.dnr)
        return
      }
      case PduType.C2HData: {
        const s = this.#c2hSlot!
        this.#c2hSlot = null
        s.c2h += i.dataLen
        if (!dataOk) s.dataOk = false
        if ((this.#c2hFlags & PduFlag.SUCCESS) !== 0) this.host.complete(this, s, s.dataOk ? 0 : NvmeStatus.TransientTransportError, 0, 0, false)
        return
      }
      case PduType.R2T: {
        const r = this.#r2t
        this.host.sendH2C(this, r.slot!, r.offset, r.length, r.slot!.ttag)
        r.slot = null
        return
      }
      case PduType.C2HTermReq: {
        const v = this.host.view()
        this.host.queueLost(this, `the controller sent C2HTermReq FES ${v.getUint16(i.at + 8, true).toString(16)}h FEI ${v.getUint32(i.at + 10, true)}`)
        this.close()
        return
      }
    }
  }

  onFatal(fes: number, fei: number, header: Uint8Array): void {
    this.#termReq(fes, fei, header)
  }

  #fatal(fes: number, fei: number, at: number, len: number): number {
    this.#termReq(fes, fei, this.pm.bytes.slice(at, at + Math.min(len, TERM_REQ_MAX_DATA)))
    return Receive.Fatal
  }

  /** An H2CTermReq, then the connection closes and error recovery starts. */
  #termReq(fes: number, fei: number, header: Uint8Array): void {
    const s = this.socket
    this.rx?.kill()
    const n = Math.min(header.length, TERM_REQ_MAX_DATA)
    const out = new Uint8Array(TERM_REQ_HLEN + n)
    writeTermReq(new DataView(out.buffer), 0, PduType.H2CTermReq, { fes, fei }, n)
    out.set(header.subarray(0, n), TERM_REQ_HLEN)
    this.host.stats.termReqs++
    if (s !== null) {
      s.end(out)
      setTimeout(() => s.destroy(), 1000).unref()
    }
    this.#lost(`protocol error: H2CTermReq FES ${fes.toString(16)}h FEI ${fei}`)
  }

  write(view: Uint8Array): void {
    const s = this.socket
    if (s === null) return
    if (!this.corked) {
      this.corked = true
      s.cork()
      queueMicrotask(this.#uncork)
    }
    s.write(view)
  }

  /** made once: a closure per corked turn would be an allocation per I/O */
  readonly #uncork = (): void => {
    this.corked = false
    this.socket?.uncork()
  }
}

/** The part [offset, offset + length) of an iovec list, into `out`. */
function slice(l: IoVecList, offset: number, length: number, out: IoVecList): void {
  out.clear()
  let skip = offset
  let left = length
  for (let i = 0; i < l.count && left > 0; i++) {
    const n = l.len[i]!
    if (skip >= n) {
      skip -= n
      continue
    }
    const k = Math.min(n - skip, left)
    out.push(l.addr[i]! + skip, k)
    left -= k
    skip = 0
  }
}

/** An NVMe/TCP host: one controller of one subsystem. */
export class NvmfHost {
  readonly physical: PhysicalMemory
  readonly traddr: string
  readonly port: number
  readonly subnqn: string
  readonly hostnqn: string
  readonly hostid: Uint8Array
  readonly hdgst: boolean
  readonly ddgst: boolean
  readonly hpda: number
  readonly connectTimeoutMs: number
  readonly namespaces = new Map<number, NvmfNamespace>()
  readonly stats = { commands: 0, completions: 0, reconnects: 0, retried: 0, termReqs: 0, timeouts: 0, inCapsule: 0, r2t: 0 }
  /** Identify Controller, as of the last connect */
  identify: Uint8Array = new Uint8Array(4096)
  cntlid = 0
  /** bytes of write data that fit in a capsule (IOCCSZ * 16 - 64) */
  icd = 0
  /** the largest transfer, bytes (MDTS) */
  maxTransfer = 0
  state: HostState = 'new'
  /** why the last error recovery started */
  lastError = ''
  readonly #ioQueuesWanted: number
  readonly #depth: number
  readonly #adminDepth: number
  readonly #kato: number
  readonly #inCapsule: boolean
  readonly #sqflowOff: boolean
  readonly #reconnectDelay: number
  readonly #lossTimeout: number
  readonly #ioTimeout: number
  #admin: HostQueue | null = null
  readonly #io: HostQueue[] = []
  readonly #allocs: number[] = []
  #dv: DataView
  #keepAlive: ReturnType<typeof setInterval> | null = null
  #watchdog: ReturnType<typeof setInterval> | null = null
  #lossDeadline = 0
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null
  #connecting: Promise<void> | null = null
  /** a buffer for the host's own admin data (Identify, Connect data, logs) */
  #scratch = 0
  readonly #scratchList = new IoVecList(1)
  readonly #listeners = new Set<(s: HostState) => void>()

  constructor(o: NvmfHostOptions) {
    this.physical = o.physical
    this.traddr = o.traddr
    this.port = Number(o.trsvcid)
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw new NvmfError('NVMF_BAD_ARGUMENT', `trsvcid must be a port number, got '${o.trsvcid}'`)
    if (nqnProblem(o.subnqn) !== null) throw new NvmfError('NVMF_BAD_ARGUMENT', `subnqn '${o.subnqn}' ${nqnProblem(o.subnqn)}`)
    this.hostid = o.hostid ?? uuidBytes(randomUUID())
    if (this.hostid.length !== 16) throw new NvmfError('NVMF_BAD_ARGUMENT', 'hostid is 16 bytes')
    this.hostnqn = o.hostnqn ?? `nqn.2014-08.org.nvmexpress:uuid:${uuidString(this.hostid)}`
    if (nqnProblem(this.hostnqn) !== null) throw new NvmfError('NVMF_BAD_ARGUMENT', `hostnqn '${this.hostnqn}' ${nqnProblem(this.hostnqn)}`)
    this.subnqn = o.subnqn
    this.hdgst = o.hdgst ?? false
    this.ddgst = o.ddgst ?? false
    this.hpda = o.hpda ?? 0
    const int = (name: string, v: number | undefined, def: number, lo: number, hi: number) => {
      const x = v ?? def
      if (!Number.isInteger(x) || x < lo || x > hi) throw new NvmfError('NVMF_BAD_ARGUMENT', `${name} must be an integer in [${lo}, ${hi}], got ${x}`)
      return x
    }
    int('hpda', this.hpda, 0, 0, PDA_MAX)
    this.#ioQueuesWanted = int('ioQueues', o.ioQueues, 1, 0, 1024)
    this.#depth = int('queueDepth', o.queueDepth, 128, 2, 4096)
    this.#adminDepth = int('adminDepth', o.adminDepth, 32, 2, 4096)
    this.#kato = int('kato', o.kato, 5000, 0, 0xffffffff)
    this.#reconnectDelay = int('reconnectDelayMs', o.reconnectDelayMs, 1000, 0, 3_600_000)
    this.#lossTimeout = int('ctrlLossTimeoutMs', o.ctrlLossTimeoutMs, 600_000, 0, 86_400_000)
    this.#ioTimeout = int('ioTimeoutMs', o.ioTimeoutMs, 30_000, 10, 3_600_000)
    this.connectTimeoutMs = int('connectTimeoutMs', o.connectTimeoutMs, 10_000, 10, 600_000)
    this.#inCapsule = o.inCapsule ?? true
    this.#sqflowOff = o.disableSqFlowControl ?? false
    this.#dv = new DataView(this.physical.memory.buffer)
  }

  /** @internal */
  view(): DataView {
    if (this.#dv.buffer !== this.physical.memory.buffer) this.#dv = new DataView(this.physical.memory.buffer)
    return this.#dv
  }

  onState(fn: (s: HostState) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  #setState(s: HostState): void {
    this.state = s
    for (const f of this.#listeners) f(s)
  }

  #alloc(bytes: number): number {
    const a = this.physical.ipuAllocator.alloc(bytes)
    if (a < 0) throw new NvmfError('NVMF_BAD_ARGUMENT', `IPU memory has no ${bytes} free bytes for the host's queues`)
    this.#allocs.push(a)
    return a
  }

  #queue(qid: number, depth: number): HostQueue {
    return new HostQueue(this, qid, depth, this.#alloc(STAGE), this.#alloc(depth * SLOT_TX))
  }

  get ioQueues(): number {
    return this.#io.length
  }

  // ---- bring-up ----

  /** Connects the admin queue and the I/O queues, enables the controller, learns its namespaces. */
  connect(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new NvmfError('NVMF_STATE', 'the host is closed'))
    if (this.#connecting !== null) return this.#connecting
    this.#setState('connecting')
    this.#connecting = this.#bringUp()
      .then(() => {
        this.#setState('live')
        this.#startTimers()
        this.#resend()
      })
      .finally(() => {
        this.#connecting = null
      })
    return this.#connecting
  }

  async #bringUp(): Promise<void> {
    if (this.#scratch === 0) this.#scratch = this.#alloc(8192)
    // a bring-up command of an earlier attempt that timed out (#cmd rejected) still holds its
    // slot: it is over; free it, lest such slots fill the admin queue or #resend send them again
    for (const q of [this.#admin, ...this.#io]) if (q !== null) for (const s of q.slots) if (s.busy && s.bringUp) this.complete(q, s, HOST_PATH_ERROR, 0, 0, false)
    this.#admin ??= this.#queue(0, this.#adminDepth)
    const a = this.#admin
    await a.open()
    let c = await this.#fabricsConnect(a, 0, this.#adminDepth, CNTLID_DYNAMIC)
    this.cntlid = c.cdw0 & 0xffff
    // CAP, then CC: NVM, 4 KiB pages, IOSQES 6, IOCQES 4, EN; wait for CSTS.RDY
    c = await this.#admin_(a, (v) => encodePropertyGet(v, Reg.CAP, 8), null)
    if (c.status !== 0) throw this.#failed('Property Get CAP', c)
    const mqes = (c.cdw0 & 0xffff) + 1
    const to = ((c.cdw0 >>> 24) & 0xff) * 500
    c = await this.#admin_(a, (v) => encodePropertySet(v, Reg.CC, 4, BigInt((6 << 16) | (4 << 20) | 1)), null)
    if (c.status !== 0) throw this.#failed('Property Set CC', c)
    const until = performance.now() + Math.max(to, 500)
    for (;;) {
      c = await this.#admin_(a, (v) => encodePropertyGet(v, Reg.CSTS, 4), null)
      if (c.status !== 0) throw this.#failed('Property Get CSTS', c)
      if ((c.cdw0 & 2) !== 0) throw new NvmfError('NVMF_CONNECT', 'the controller set CSTS.CFS')
      if ((c.cdw0 & 1) === 1) break
      if (performance.now() > until) throw new NvmfError('NVMF_CONNECT', `CSTS.RDY did not come within CAP.TO (${to} ms)`)
      await new Promise((r) => setTimeout(r, 5))
    }
    // Identify Controller
    c = await this.#adminData(a, AdminOpcode.Identify, 0, { 10: 1 }, 4096)
    if (c.status !== 0) throw this.#failed('Identify Controller', c)
    this.identify = this.physical.bytes.slice(this.#scratch, this.#scratch + 4096)
    const id = decodeIdentifyController(this.identify)
    this.icd = this.#inCapsule ? Math.max(0, id.ioccsz * 16 - 64) : 0
    this.maxTransfer = id.mdts === 0 ? 2 ** 31 : 4096 * 2 ** id.mdts
    a.state = 'up'
    if (this.subnqn === DISCOVERY_NQN) return
    // Number of Queues: as many I/O queues as asked, or as granted
    if (this.#ioQueuesWanted > 0) {
      const n = this.#ioQueuesWanted - 1
      c = await this.#admin_(a, (v) => {
        v.setUint8(0, AdminOpcode.SetFeatures)
        v.setUint32(40, 0x07, true)
        v.setUint32(44, (n << 16) | n, true)
      }, null)
      if (c.status !== 0) throw this.#failed('Set Features Number of Queues', c)
      const granted = Math.min((c.cdw0 & 0xffff) + 1, (c.cdw0 >>> 16) + 1, this.#ioQueuesWanted)
      const depth = Math.min(this.#depth, mqes)
      for (let q = 1; q <= granted; q++) {
        const io = (this.#io[q - 1] ??= this.#queue(q, depth))
        await io.open()
        await this.#fabricsConnect(io, q, depth, this.cntlid)
        io.state = 'up'
      }
      this.#io.length = granted
    }
    // namespaces
    c = await this.#adminData(a, AdminOpcode.Identify, 0, { 10: 2 }, 4096)
    if (c.status !== 0) throw this.#failed('Identify active namespace list', c)
    const nsids = decodeNamespaceList(this.physical.bytes.slice(this.#scratch, this.#scratch + 4096))
    this.namespaces.clear()
    for (const nsid of nsids) {
      c = await this.#adminData(a, AdminOpcode.Identify, nsid, { 10: 0 }, 4096)
      if (c.status !== 0) throw this.#failed(`Identify Namespace ${nsid}`, c)
      const ns = decodeIdentifyNamespace(this.physical.bytes.slice(this.#scratch, this.#scratch + 4096))
      const f = ns.lbaf[ns.flbas & 0xf]!
      // PI (NVMe Base §5.17.2.1 DPS; NVM Command Set §4.1.5.2 ELBAF.PIF): the type and
      // where it sits from DPS; the guard's width from the NVM command set's Identify
      // Namespace (CNS 05h, CSI 00h) where the metadata can hold more than 8 bytes of PI
      const type = f.ms >= 8 ? dpsPiType(ns.dps) : 0
      let format: 16 | 32 | 64 = 16
      if (type !== 0 && f.ms >= 16) {
        c = await this.#adminData(a, AdminOpcode.Identify, nsid, { 10: 0x05, 11: 0 }, 4096)
        if (c.status === 0) {
          const pif = decodeNvmIdentifyNamespace(this.physical.bytes.slice(this.#scratch, this.#scratch + 4096)).elbaf[ns.flbas & 0xf]?.pif ?? 0
          format = pif === 1 ? 32 : pif === 2 ? 64 : 16
        }
      }
      const pi: NvmfNamespacePi = { type: type as 0 | 1 | 2 | 3, format, location: dpsPiFirst(ns.dps) ? 'first' : 'last' }
      this.namespaces.set(nsid, { nsid, blocks: Number(ns.nsze), blockSize: 2 ** f.lbads, mdSize: f.ms, pi })
    }
  }

  #failed(what: string, c: HostCompletion): NvmfError {
    return new NvmfError('NVMF_CONNECT', `${what} failed: status ${c.status.toString(16).padStart(3, '0')}h`)
  }

  async #fabricsConnect(q: HostQueue, qid: number, depth: number, cntlid: number): Promise<HostCompletion> {
    encodeConnectData(this.physical.bytes.subarray(this.#scratch, this.#scratch + CONNECT_DATA_SIZE), { hostid: this.hostid, cntlid, subnqn: this.subnqn, hostnqn: this.hostnqn })
    const list = this.#scratchList.clear().push(this.#scratch, CONNECT_DATA_SIZE)
    const c = await this.#cmd(q, (v) => encodeConnect(v, { recfmt: 0, qid, sqsize: depth - 1, cattr: this.#sqflowOff ? ConnectAttribute.DisableSqFlowControl : 0, kato: qid === 0 ? this.#kato : 0 }), list, false, true)
    if (c.status !== 0) throw new NvmfError('NVMF_CONNECT', `Connect (queue ${qid}) to ${this.subnqn} at ${this.traddr}:${this.port} failed: status ${c.status.toString(16).padStart(3, '0')}h${c.status === 0x182 ? ` (invalid parameter at offset ${c.cdw0 & 0xffff} of the ${(c.cdw0 >>> 16) & 1 ? 'Connect data' : 'command'})` : ''}`)
    q.state = qid === 0 ? 'connecting' : 'up'
    return c
  }

  /** An admin command with `bytes` of data to the host in the scratch buffer. */
  #adminData(q: HostQueue, opcode: number, nsid: number, cdws: Record<number, number>, bytes: number): Promise<HostCompletion> {
    const list = this.#scratchList.clear().push(this.#scratch, bytes)
    return this.#admin_(
      q,
      (v) => {
        v.setUint8(0, opcode)
        v.setUint32(4, nsid, true)
        for (const [k, x] of Object.entries(cdws)) v.setUint32(4 * Number(k), x >>> 0, true)
      },
      list,
      true,
    )
  }

  #admin_(q: HostQueue, build: (v: DataView) => void, data: IoVecList | null, toHost = false): Promise<HostCompletion> {
    return this.#cmd(q, build, data, toHost, true)
  }

  #cmd(q: HostQueue, build: (v: DataView) => void, data: IoVecList | null, toHost: boolean, bringUp: boolean): Promise<HostCompletion> {
    return new Promise<HostCompletion>((resolve, reject) => {
      const timer = setTimeout(() => reject(new NvmfError('NVMF_TRANSPORT', `queue ${q.qid}: no response within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs)
      const rc = this.#submit(
        q,
        build,
        data,
        toHost,
        (_: null, c) => {
          clearTimeout(timer)
          resolve(c)
        },
        null,
        bringUp,
      )
      if (rc !== 0) {
        clearTimeout(timer)
        reject(new NvmfError('NVMF_STATE', `queue ${q.qid} is full`))
      }
    })
  }

  // ---- commands ----

  /**
   * An admin command (any opcode): `build` fills the SQE (a DataView over its 64 bytes; CID,
   * PSDT and SGL1 are set here), `data` its buffer in this host's physical memory.
   */
  admin(build: (v: DataView) => void, data: IoVecList | null = null, toHost = false): Promise<HostCompletion> {
    if (this.#admin === null) return Promise.reject(new NvmfError('NVMF_STATE', 'not connected'))
    return new Promise((resolve) => {
      const rc = this.#submit(this.#admin!, build, data, toHost, (_: null, c) => resolve(c), null, false)
      if (rc !== 0) resolve({ status: NvmeStatus.InternalError, cdw0: 0, cdw1: 0, dnr: false })
    })
  }

  /**
   * Reads or writes `blocks` blocks at `lba` of `nsid` from or into `iovs` (physical memory)
   * on I/O queue `queue` (0-based). cb(arg, completion) later; returns -12 when the queue is full.
   */
  rw<T>(queue: number, write: boolean, nsid: number, lba: number, blocks: number, iovs: IoVecList, cb: HostCallback<T>, arg: T, cdw12 = 0): number {
    const q = this.#io[queue]
    if (q === undefined) throw new NvmfError('NVMF_BAD_ARGUMENT', `no I/O queue ${queue} (have ${this.#io.length})`)
    return this.#submit(
      q,
      (v) => {
        v.setUint8(0, write ? NvmOpcode.Write : NvmOpcode.Read)
        v.setUint32(4, nsid, true)
        v.setUint32(40, lba % 0x1_0000_0000, true)
        v.setUint32(44, Math.floor(lba / 0x1_0000_0000), true)
        v.setUint32(48, ((blocks - 1) & 0xffff) | cdw12, true)
      },
      iovs,
      !write,
      cb,
      arg,
      false,
    )
  }

  /** Any I/O command on queue `queue`. */
  io<T>(queue: number, build: (v: DataView) => void, data: IoVecList | null, toHost: boolean, cb: HostCallback<T>, arg: T): number {
    const q = this.#io[queue]
    if (q === undefined) throw new NvmfError('NVMF_BAD_ARGUMENT', `no I/O queue ${queue} (have ${this.#io.length})`)
    return this.#submit(q, build, data, toHost, cb, arg, false)
  }

  #submit<T>(q: HostQueue, build: (v: DataView) => void, data: IoVecList | null, toHost: boolean, cb: HostCallback<T>, arg: T, bringUp: boolean): number {
    if (this.state === 'failed' || this.state === 'closed') {
      queueMicrotask(() => cb(arg, { status: HOST_PATH_ERROR, cdw0: 0, cdw1: 0, dnr: false }))
      return 0
    }
    const i = q.free.pop()
    if (i === undefined) return -12
    const s = q.slots[i]!
    s.busy = true
    s.cb = cb as HostCallback<unknown>
    s.arg = arg
    s.sqe.fill(0)
    build(new DataView(s.sqe.buffer))
    // CID, PSDT 01b (SGLs: every fabrics command), SGL1
    s.sqe[1] = (s.sqe[1]! & 0x3f) | 0x40
    new DataView(s.sqe.buffer).setUint16(2, s.cid, true)
    s.data.clear()
    if (data !== null) for (let k = 0; k < data.count; k++) s.data.push(data.addr[k]!, data.len[k]!)
    s.dataLen = s.data.total
    s.toHost = toHost
    s.bringUp = bringUp
    const icdLimit = q.qid === 0 ? 8192 : this.icd
    s.inCapsule = !toHost && s.dataLen > 0 && (bringUp || q.qid === 0 || this.#inCapsule) && s.dataLen <= icdLimit
    const sv = new DataView(s.sqe.buffer)
    sv.setUint32(24, 0, true)
    sv.setUint32(28, 0, true)
    sv.setUint32(32, s.dataLen, true)
    s.sqe[39] = s.inCapsule ? TcpSgl.InCapsule : TcpSgl.Transport
    this.stats.commands++
    s.sent = false
    if (bringUp || (this.state === 'live' && q.state === 'up')) this.#send(q, s)
    return 0
  }

  /** Writes the capsule (and in-capsule data) of slot s. */
  #send(q: HostQueue, s: Slot): void {
    s.sent = true
    s.h2c = 0
    s.c2h = 0
    s.dataOk = true
    s.started = performance.now()
    const pm = this.physical
    const v = this.view()
    const dataLen = s.inCapsule ? s.dataLen : 0
    const l = layoutPdu(PduType.CapsuleCmd, dataLen, this.hdgst, this.ddgst, q.cpda)
    const tx = s.tx
    writeCommonHeader(v, tx, { type: PduType.CapsuleCmd, flags: l.flags, hlen: CAPSULE_CMD_HLEN, pdo: l.pdo, plen: l.plen })
    pm.bytes.set(s.sqe, tx + 8)
    if (this.hdgst) v.setUint32(tx + CAPSULE_CMD_HLEN, pm.kernels.crc32cAt(tx, CAPSULE_CMD_HLEN), true)
    const head = dataLen > 0 ? l.pdo : l.plen
    for (let i = CAPSULE_CMD_HLEN + (this.hdgst ? DIGEST_SIZE : 0); i < head; i++) pm.bytes[tx + i] = 0
    q.write(pm.bytes.subarray(tx, tx + head))
    if (dataLen > 0) {
      this.stats.inCapsule++
      this.#writeData(q, s, s.data, tx + TX_DDGST)
    } else if (!s.toHost && s.dataLen > 0) this.stats.r2t++
  }

  /** Writes data iovecs, then their digest when enabled. */
  #writeData(q: HostQueue, _s: Slot, l: IoVecList, ddgstAt: number): void {
    const pm = this.physical
    let crc = 0
    for (let k = 0; k < l.count; k++) {
      q.write(pm.bytes.subarray(l.addr[k]!, l.addr[k]! + l.len[k]!))
      if (this.ddgst) crc = pm.kernels.crc32cAt(l.addr[k]!, l.len[k]!, crc)
    }
    if (this.ddgst) {
      this.view().setUint32(ddgstAt, crc, true)
      q.write(pm.bytes.subarray(ddgstAt, ddgstAt + DIGEST_SIZE))
    }
  }

  /** @internal H2CData PDUs for an R2T: at most MAXH2CDATA each. */
  sendH2C(q: HostQueue, s: Slot, offset: number, length: number, ttag: number): void {
    const pm = this.physical
    const v = this.view()
    let at = offset
    let n = 0
    while (at < offset + length) {
      const len = Math.min(q.maxh2cdata, offset + length - at)
      const last = at + len === offset + length
      const l = layoutPdu(PduType.H2CData, len, this.hdgst, this.ddgst, q.cpda, last ? PduFlag.LAST_PDU : 0)
      // a header area per PDU of this R2T, reused round robin (more than H2C_SLOTS in flight only when MAXH2CDATA is small)
      const hx = s.tx + TX_H2C + (n % H2C_SLOTS) * 56
      const ddgstAt = s.tx + TX_DDGST + (n % H2C_SLOTS) * 4
      writeCommonHeader(v, hx, { type: PduType.H2CData, flags: l.flags, hlen: DATA_HLEN, pdo: l.pdo, plen: l.plen })
      v.setUint16(hx + 8, s.cid, true)
      v.setUint16(hx + 10, ttag, true)
      v.setUint32(hx + 12, at, true)
      v.setUint32(hx + 16, len, true)
      v.setUint32(hx + 20, 0, true)
      if (this.hdgst) v.setUint32(hx + DATA_HLEN, pm.kernels.crc32cAt(hx, DATA_HLEN), true)
      for (let i = DATA_HLEN + (this.hdgst ? DIGEST_SIZE : 0); i < l.pdo; i++) pm.bytes[hx + i] = 0
      if (l.pdo > 56) throw new NvmfError('NVMF_TRANSPORT', `CPDA ${q.cpda} pads H2CData headers beyond what this host lays out`)
      q.write(pm.bytes.subarray(hx, hx + l.pdo))
      slice(s.data, at, len, s.part)
      this.#writeData(q, s, s.part, ddgstAt)
      at += len
      n++
    }
    s.h2c = offset + length
  }

  /** @internal a command completed (CapsuleResp, or C2HData with SUCCESS) */
  complete(q: HostQueue, s: Slot, status: number, cdw0: number, cdw1: number, dnr: boolean): void {
    if (!s.busy) return
    // a read whose data did not all come, or came with a bad digest
    if (status === 0 && s.toHost && (s.c2h !== s.dataLen || !s.dataOk)) status = NvmeStatus.TransientTransportError
    const cb = s.cb!
    const arg = s.arg
    s.busy = false
    s.cb = null
    s.arg = null
    q.free.push(s.cid)
    this.stats.completions++
    cb(arg, { status, cdw0, cdw1, dnr })
  }

  // ---- keep alive, timeouts, error recovery ----

  #startTimers(): void {
    if (this.#kato > 0 && this.#keepAlive === null) {
      this.#keepAlive = setInterval(() => {
        if (this.state !== 'live') return
        void this.admin((v) => v.setUint8(0, AdminOpcode.KeepAlive)).then((c) => {
          if (c.status !== 0 && this.state === 'live') this.queueLost(this.#admin!, `Keep Alive failed: status ${c.status.toString(16)}h`)
        })
      }, Math.max(50, this.#kato / 2))
      this.#keepAlive.unref()
    }
    if (this.#watchdog === null) {
      this.#watchdog = setInterval(() => this.#check(), Math.max(10, Math.min(1000, this.#ioTimeout / 4)))
      this.#watchdog.unref()
    }
  }

  #check(): void {
    if (this.state !== 'live') return
    const now = performance.now()
    for (const q of [this.#admin!, ...this.#io]) {
      for (const s of q.slots) {
        if (s.busy && s.sent && now - s.started > this.#ioTimeout) {
          this.stats.timeouts++
          this.queueLost(q, `command ${s.cid} on queue ${q.qid} timed out after ${this.#ioTimeout} ms`)
          return
        }
      }
    }
  }

  /** @internal a queue's connection failed: error recovery for the whole controller */
  queueLost(_q: HostQueue, why: string): void {
    if (this.state !== 'live') return
    this.lastError = why
    this.#setState('resetting')
    this.#lossDeadline = performance.now() + this.#lossTimeout
    for (const q of [this.#admin, ...this.#io]) q?.close()
    this.#scheduleReconnect()
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer !== null) return
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      void this.#reconnect()
    }, this.#reconnectDelay)
  }

  async #reconnect(): Promise<void> {
    if (this.state !== 'resetting') return
    // the bring-up's own commands need their slots: those of the old connection's bring-up are done
    this.stats.reconnects++
    for (const q of [this.#admin, ...this.#io]) q?.close()
    for (const q of [this.#admin, ...this.#io]) if (q !== null) for (const s of q.slots) s.sent = false
    try {
      this.state = 'connecting'
      await this.#bringUp()
      this.#setState('live')
      this.#resend()
    } catch (e) {
      // close() during the attempt (which is why it failed): recovery is over, the queues' memory is freed
      if ((this.state as HostState) === 'closed') return
      this.lastError = (e as Error).message
      for (const q of [this.#admin, ...this.#io]) q?.close()
      this.state = 'resetting'
      if (performance.now() > this.#lossDeadline) return this.#fail(`controller loss timeout (${this.#lossTimeout} ms): ${this.lastError}`)
      this.#scheduleReconnect()
    }
  }

  /** Sends again what was in flight (or queued while the controller was away). */
  #resend(): void {
    for (const q of [this.#admin, ...this.#io]) {
      if (q === null) continue
      for (const s of q.slots) {
        if (!s.busy || s.sent) continue
        this.stats.retried++
        this.#send(q, s)
      }
    }
  }

  #fail(why: string): void {
    this.lastError = why
    this.#setState('failed')
    this.#failAll(HOST_PATH_ERROR)
  }

  #failAll(status: number): void {
    for (const q of [this.#admin, ...this.#io]) {
      if (q === null) continue
      for (const s of q.slots) if (s.busy) this.complete(q, s, status, 0, 0, false)
    }
  }

  /** Closes every queue; commands in flight complete with Host Aborted. */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    if (this.#keepAlive !== null) clearInterval(this.#keepAlive)
    if (this.#watchdog !== null) clearInterval(this.#watchdog)
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#keepAlive = this.#watchdog = this.#reconnectTimer = null
    // a clean shutdown: CC.SHN, when the controller is there to hear it
    if (this.state === 'live' && this.#admin !== null) {
      await Promise.race([this.admin((v) => encodePropertySet(v, Reg.CC, 4, BigInt((6 << 16) | (4 << 20) | 1 | (1 << 14)))), new Promise((r) => setTimeout(r, 1000))])
    }
    this.#setState('closed')
    for (const q of [this.#admin, ...this.#io]) q?.close()
    this.#failAll(HOST_ABORTED)
    for (const a of this.#allocs) this.physical.ipuAllocator.free(a)
    this.#allocs.length = 0
  }

  // ---- discovery ----

  /** Connects to a discovery controller at traddr:trsvcid and reads the discovery log. */
  static async discover(o: Omit<NvmfHostOptions, 'subnqn' | 'ioQueues'>): Promise<DiscoveryLogEntry[]> {
    const h = new NvmfHost({ ...o, subnqn: DISCOVERY_NQN, ioQueues: 0, kato: 0 })
    try {
      await h.connect()
      // the header first for NUMREC, then the whole log (NVMe Base §5.16.1.23)
      const buf = h.physical.ipuAllocator.alloc(64 * 1024)
      try {
        const read = async (bytes: number) => {
          const numd = bytes / 4 - 1
          const c = await h.admin(
            (v) => {
              v.setUint8(0, AdminOpcode.GetLogPage)
              v.setUint32(40, 0x70 | ((numd & 0xffff) << 16), true)
              v.setUint32(44, numd >>> 16, true)
            },
            new IoVecList(1).push(buf, bytes),
            true,
          )
          if (c.status !== 0) throw new NvmfError('NVMF_CONNECT', `Get Log Page (discovery) failed: status ${c.status.toString(16)}h`)
          return decodeDiscoveryLog(h.physical.bytes.slice(buf, buf + bytes))
        }
        const head = await read(1024)
        const n = Math.min(head.numrec, 63)
        return n === 0 ? [] : (await read(1024 * (n + 1))).entries
      } finally {
        h.physical.ipuAllocator.free(buf)
      }
    } finally {
      await h.close()
    }
  }
}

function uuidBytes(u: string): Uint8Array {
  const hex = u.replace(/-/g, '')
  const b = new Uint8Array(16)
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return b
}

function uuidString(b: Uint8Array): string {
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export { FABRICS_OPCODE }
