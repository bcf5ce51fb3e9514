// The NVMe/TCP transport of the target (NVMe/TCP Transport Specification 1.0; SPDK
// lib/nvmf/tcp.c): listeners, and per connection a queue pair that exchanges ICReq/ICResp,
// takes command capsules (with in-capsule data, or data it asks for with R2T and receives
// in H2CData PDUs), runs them on the fabrics controller, and answers with C2HData and
// CapsuleResp PDUs (or C2HData with SUCCESS alone). A protocol error ends the connection
// with a C2HTermReq carrying the Fatal Error Status and the offending header.
//
// Memory: each connection has a staging area for headers and a slab of transmit headers in
// IPU memory; command data lives in iobuf buffers, received into directly from the socket
// and sent from directly (see internal/receiver.ts). Backpressure: a connection stops
// reading when it has no request or buffer for the next PDU, or when more than
// `sendHighWater` bytes wait in its socket; a slow host cannot make the target buffer
// without bound.
import net from 'node:net'
import { NvmeStatus } from '@ipukit/bdev'
import { IobufEntry, IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { FabricsCommandStatus, FabricsCommandType, NvmeRequest } from '@ipukit/nvme'
import type { FabricsController, FabricsQpair } from './controller.js'
import { NvmfError } from './errors.js'
import { PduReceiver, type PduInfo, Receive, type ReceiverSink } from './internal/receiver.js'
import { ConnectAttribute, CONNECT_DATA_SIZE, decodeConnect, decodeConnectData, decodeProperty, FABRICS_OPCODE, TcpSgl } from './spec/fabrics.js'
import { CAPSULE_RESP_HLEN, DATA_HLEN, DIGEST_SIZE, encodeICResp, ICRESP_SIZE, layoutPdu, PDA_MAX, PduFlag, PduType, R2T_HLEN, TERM_REQ_HLEN, TERM_REQ_MAX_DATA, TermReqFes, writeCommonHeader, writeTermReq } from './spec/pdu.js'
import { AddressFamily, type ListenerInfo, type NvmfTarget, type TransportLimits, TransportType } from './target.js'

export interface TcpTransportOptions {
  /** entries per I/O queue at most; default 128 */
  maxQueueDepth?: number
  /** admin queue entries at most; default 128 */
  maxAqDepth?: number
  /** queues per controller, admin included; default 128 */
  maxQpairsPerCtrlr?: number
  /** in-capsule data of I/O commands, bytes; default 4096 (admin commands take 8192) */
  inCapsuleDataSize?: number
  /** the largest transfer, bytes (MDTS, MAXH2CDATA); default 131072 */
  maxIoSize?: number
  /** C2HData with SUCCESS and no CapsuleResp when the host disabled SQ flow control; default true */
  c2hSuccess?: boolean
  /** bytes waiting in a connection's socket before it stops reading; default 4 MiB */
  sendHighWater?: number
}

/** Admin commands take 8 KiB in the capsule (Linux's NVME_TCP_ADMIN_CCSZ, SPDK's in-capsule max) */
const ADMIN_ICD = 8192
const STAGE = 64 * 1024
/** per request: the data or R2T PDU header (with digest and padding up to 128), its data digest, the CapsuleResp */
const TX = 256
const TX_DDGST = 128
const TX_RESP = 160

const F_FREE = 0
const F_ICD = 1 // in-capsule data arriving
const F_H2C = 2 // R2T sent, H2CData arriving
const F_WAIT_BUF = 3 // waiting for an iobuf buffer
const F_EXEC = 4
const F_SEND = 5 // response written, waiting for the socket

class TcpRequest {
  readonly req = new NvmeRequest()
  state = F_FREE
  /** the data buffer (iobuf), its length; the in-capsule data's length */
  buf = 0
  len = 0
  icd = 0
  toHost = false
  /** H2CData received so far */
  h2c = 0
  dataOk = true
  /** what to do once a buffer arrives: 1 R2T, 2 execute (a read) */
  then = 0
  /** close the connection once the response is out (Disconnect) */
  closeAfter = false
  readonly entry: IobufEntry<TcpRequest>
  readonly onWritten: () => void
  constructor(
    readonly index: number,
    readonly tx: number,
    q: TcpQpair,
  ) {
    this.entry = new IobufEntry<TcpRequest>((e, a) => q.gotBuffer(e.data, a), this)
    this.onWritten = () => q.written(this)
  }
}

/** The target side of one NVMe/TCP connection: a queue pair of a fabrics controller once connected. */
export class TcpQpair implements FabricsQpair, ReceiverSink {
  readonly transport: TcpTransport
  readonly socket: net.Socket
  readonly listenAddress: string
  readonly peer: string
  qid = 0
  sqsize = 0
  ctrl: FabricsController | null = null
  /** counters, for tests and stats */
  readonly stats = { capsules: 0, r2ts: 0, h2cPdus: 0, c2hPdus: 0, responses: 0, termReqs: 0, digestErrors: 0, stalls: 0 }
  /** why the connection ended (a TermReq's reason, a Disconnect, a close) */
  closeReason = ''
  readonly #pm: PhysicalMemory
  readonly #rx: PduReceiver
  readonly #stage: number
  readonly #slab: number
  readonly #reqs: TcpRequest[] = []
  readonly #free: TcpRequest[] = []
  readonly #maxReqs: number
  #state: 'icreq' | 'running' | 'closing' | 'closed' = 'icreq'
  #hpda = 0
  #maxh2c: number
  #sqhd = 0
  #sqflow = true
  #corked = false
  #outPaused = false
  #sending = 0
  #pendingCapsule: TcpRequest | null = null
  readonly #dv: { v: DataView; b: ArrayBufferLike }
  readonly #one = new IoVecList(1)

  constructor(transport: TcpTransport, socket: net.Socket, listenAddress: string, handle: unknown) {
    this.transport = transport
    this.listenAddress = listenAddress
    this.#pm = transport.target.bdevs.accel.physical
    this.#maxh2c = transport.limits.maxIoSize
    this.#maxReqs = 2 * Math.max(transport.limits.maxQueueDepth, transport.limits.maxAqDepth)
    const alloc = this.#pm.ipuAllocator
    this.#stage = alloc.alloc(STAGE)
    // one transmit area per request, and one for the connection's own PDUs (ICResp)
    this.#slab = alloc.alloc((this.#maxReqs + 1) * TX)
    if (this.#stage < 0 || this.#slab < 0) {
      if (this.#stage >= 0) alloc.free(this.#stage)
      socket.destroy()
      throw new NvmfError('NVMF_TRANSPORT', 'IPU memory has no room for another connection')
    }
    this.#dv = { v: new DataView(this.#pm.memory.buffer), b: this.#pm.memory.buffer }
    this.#rx = new PduReceiver(this.#pm, this.#stage, STAGE, this)
    // the accepted socket's handle, re-wrapped so reads land where the receiver says (onread)
    const rx = this.#rx
    this.socket =
      handle !== null
        ? new net.Socket({ handle: handle as never, readable: true, writable: true, onread: { buffer: () => rx.buffer(), callback: (n: number) => (rx.received(n), true) } } as net.SocketConstructorOpts)
        : socket
    // from the socket that holds the handle: the accepted one lost it (remoteAddress would be undefined)
    this.peer = `${this.socket.remoteAddress}:${this.socket.remotePort}`
    if (handle === null) {
      // no handle to re-wrap (not a TCP socket): copy each chunk through the staging area
      socket.on('data', (chunk: Buffer) => {
        let at = 0
        while (at < chunk.length && !rx.dead) {
          const b = rx.buffer()
          const n = Math.min(b.length, chunk.length - at)
          b.set(chunk.subarray(at, at + n))
          rx.received(n)
          at += n
        }
      })
    }
    this.socket.setNoDelay(true)
    this.socket.on('error', (e) => this.#close(`socket error: ${e.message}`))
    this.socket.on('close', () => this.#close(this.closeReason || 'the host closed the connection'))
    this.socket.on('end', () => this.socket.end())
    this.socket.on('drain', () => {
      if (this.#outPaused) {
        this.#outPaused = false
        // the responses that waited for room, until the socket is full again
        while (!this.#outPaused && this.#deferred.length > 0) this.#reply(this.#deferred.shift()!)
        if (!this.#outPaused && !this.#rx.stalled) this.socket.resume()
      }
    })
    if (handle !== null) this.socket.resume()
  }

  #view(): DataView {
    const b = this.#pm.memory.buffer
    if (this.#dv.b !== b) {
      this.#dv.v = new DataView(b)
      this.#dv.b = b
    }
    return this.#dv.v
  }

  // ---- ReceiverSink ----

  accept(type: number): number {
    if (this.#state === 'icreq') return type === PduType.ICReq ? 0 : (TermReqFes.PduSequenceError << 16) | 0
    if (type === PduType.ICReq) return (TermReqFes.PduSequenceError << 16) | 0
    if (type === PduType.CapsuleCmd || type === PduType.H2CData || type === PduType.H2CTermReq) return 0
    return (TermReqFes.InvalidPduHeaderField << 16) | 0
  }

  onHeader(v: DataView, i: PduInfo): number {
    switch (i.type) {
      case PduType.ICReq:
        return this.#icreq(v, i.at)
      case PduType.CapsuleCmd:
        return this.#capsuleHeader(v, i)
      case PduType.H2CData:
        return this.#h2cHeader(v, i)
      default:
        return Receive.Discard
    }
  }

  onPdu(i: PduInfo, dataOk: boolean): void {
    if (i.type === PduType.CapsuleCmd) {
      const t = this.#pendingCapsule!
      this.#pendingCapsule = null
      t.dataOk = dataOk
      if (!dataOk) this.stats.digestErrors++
      this.#capsule(t)
    } else if (i.type === PduType.H2CData) this.#h2cDone(dataOk)
    else if (i.type === PduType.H2CTermReq) {
      const v = this.#view()
      // §3.6.2.3: the host ends the connection; nothing more is sent
      this.disconnect(`the host sent H2CTermReq FES ${v.getUint16(i.at + 8, true).toString(16)}h`)
    }
  }

  onFatal(fes: number, fei: number, header: Uint8Array): void {
    this.#termReq(fes, fei, header)
  }

  // ---- connection setup ----

  #icreq(v: DataView, at: number): number {
    const pfv = v.getUint16(at + 8, true)
    const hpda = v.getUint8(at + 10)
    const dgst = v.getUint8(at + 11)
    if (pfv !== 0) return this.#fatalHeader(TermReqFes.UnsupportedParameter, 8, at, ICRESP_SIZE)
    if (hpda > PDA_MAX) return this.#fatalHeader(TermReqFes.UnsupportedParameter, 10, at, ICRESP_SIZE)
    this.#hpda = hpda
    // digests as the host asks (SPDK and Linux's nvmet accept what is requested)
    this.#rx.hdgst = (dgst & 1) !== 0
    this.#rx.ddgst = (dgst & 2) !== 0
    this.#state = 'running'
    const t = this.#slab + this.#maxReqs * TX
    encodeICResp(this.#view(), t, { pfv: 0, cpda: 0, hdgst: this.#rx.hdgst, ddgst: this.#rx.ddgst, maxh2cdata: this.#maxh2c })
    this.#write(this.#pm.bytes.subarray(t, t + ICRESP_SIZE), null)
    return Receive.Data
  }

  #fatalHeader(fes: number, fei: number, at: number, len: number): number {
    this.#termReq(fes, fei, this.#pm.bytes.slice(at, at + Math.min(len, TERM_REQ_MAX_DATA)))
    return Receive.Fatal
  }

  // ---- capsules ----

  #request(): TcpRequest | null {
    const t = this.#free.pop()
    if (t !== undefined) return t
    if (this.#reqs.length >= this.#maxReqs) return null
    const r = new TcpRequest(this.#reqs.length, this.#slab + this.#reqs.length * TX, this)
    this.#reqs.push(r)
    return r
  }

  #capsuleHeader(v: DataView, i: PduInfo): number {
    let t = this.#pendingCapsule
    if (t === null) {
      t = this.#request()
      if (t === null) {
        // no request free: fine while responses are still in the socket (the host saw them
        // and may reuse their slots); else the host sent more than its queue holds
        if (this.#sending > 0) return this.#stall()
        return this.#fatalHeader(TermReqFes.InvalidPduHeaderField, 0, i.at, i.hlen)
      }
      this.#pendingCapsule = t
      t.req.cmd.set(this.#pm.bytes.subarray(i.at + 8, i.at + 72))
      t.state = F_ICD
      t.icd = i.dataLen
      t.dataOk = true
    }
    if (i.dataLen === 0) return Receive.Data
    const max = this.qid === 0 ? ADMIN_ICD : this.transport.limits.inCapsuleDataSize
    if (i.dataLen > max) return this.#fatalHeader(TermReqFes.DataTransferLimitExceeded, 4, i.at, i.hlen)
    if (t.buf === 0) {
      // re-presented while its buffer is still owed (another request's release resumed the
      // receiver): keep waiting, the entry is already queued
      if (t.state === F_WAIT_BUF) {
        this.socket.pause()
        return Receive.Stall
      }
      const a = this.#iobuf().get(i.dataLen, t.entry)
      if (a === 0) {
        t.then = 0
        t.state = F_WAIT_BUF
        return this.#stall()
      }
      t.buf = a
      t.len = i.dataLen
    }
    this.#rx.dest.push(t.buf, i.dataLen)
    return Receive.Data
  }

  #stall(): number {
    this.stats.stalls++
    this.socket.pause()
    return Receive.Stall
  }

  #unstall(): void {
    if (!this.#rx.stalled) return
    if (!this.#outPaused) this.socket.resume()
    this.#rx.resume()
  }

  #iobuf() {
    return this.transport.target.ch.accel.iobuf
  }

  /** @internal an iobuf buffer a request waited for */
  gotBuffer(t: TcpRequest, a: number): void {
    t.buf = a
    if (this.#state !== 'running') return this.#releaseAll(t)
    if (t.state === F_WAIT_BUF && t.then === 0) {
      // in-capsule data: the receiver stalled on this capsule's header
      t.state = F_ICD
      t.len = t.icd
      this.#unstall()
    } else if (t.then === 1) this.#sendR2T(t)
    else if (t.then === 2) this.#execute(t)
  }

  #capsule(t: TcpRequest): void {
    this.stats.capsules++
    if (this.#sqflow && this.sqsize > 0) this.#sqhd = (this.#sqhd + 1) % this.sqsize
    const req = t.req
    req.reset(this.qid)
    req.done = this.#completedFn
    req.transport = t
    t.closeAfter = false
    t.h2c = 0
    if (!t.dataOk) return this.#respond(t, NvmeStatus.TransientTransportError)
    if (req.opcode === FABRICS_OPCODE) return this.#fabrics(t)
    if (this.ctrl === null) return this.#respond(t, NvmeStatus.CommandSequenceError)
    // fabrics commands carry SGLs: PSDT 01b (Linux's nvmet refuses anything else)
    if (req.psdt !== 1) return this.#respond(t, NvmeStatus.InvalidField)
    const x = this.ctrl.core.transferLength(req)
    if (typeof x === 'number') return this.#respond(t, -x)
    this.#data(t, x.bytes, x.toHost)
  }

  /** Maps a command's data (SGL1): in the capsule, asked for with R2T, or to be sent with C2HData. */
  #data(t: TcpRequest, bytes: number, toHost: boolean): void {
    const req = t.req
    t.toHost = toHost
    if (bytes === 0) {
      if (t.buf !== 0) this.#releaseBuf(t)
      return this.#execute(t)
    }
    const id = req.cmd[39]!
    const sglLen = req.view.getUint32(32, true)
    if (!toHost) {
      if (id === TcpSgl.InCapsule) {
        if (req.u64(24) !== 0) return this.#respond(t, NvmeStatus.SglOffsetInvalid)
        if (sglLen !== bytes || t.icd !== sglLen) return this.#respond(t, NvmeStatus.DataSglLengthInvalid)
        t.len = bytes
        return this.#execute(t)
      }
      if (id !== TcpSgl.Transport) return this.#respond(t, NvmeStatus.SglDescriptorTypeInvalid)
      if (t.icd > 0) return this.#respond(t, NvmeStatus.InvalidField)
      if (sglLen !== bytes) return this.#respond(t, NvmeStatus.DataSglLengthInvalid)
      if (bytes > this.transport.limits.maxIoSize) return this.#respond(t, NvmeStatus.InvalidField)
      t.len = bytes
      const a = this.#iobuf().get(bytes, t.entry)
      if (a === 0) {
        t.then = 1
        t.state = F_WAIT_BUF
        return
      }
      t.buf = a
      return this.#sendR2T(t)
    }
    if (id !== TcpSgl.Transport) return this.#respond(t, NvmeStatus.SglDescriptorTypeInvalid)
    if (t.icd > 0) return this.#respond(t, NvmeStatus.InvalidField)
    if (sglLen !== bytes) return this.#respond(t, NvmeStatus.DataSglLengthInvalid)
    if (bytes > this.transport.limits.maxIoSize) return this.#respond(t, NvmeStatus.InvalidField)
    t.len = bytes
    const a = this.#iobuf().get(bytes, t.entry)
    if (a === 0) {
      t.then = 2
      t.state = F_WAIT_BUF
      return
    }
    t.buf = a
    this.#execute(t)
  }

  #execute(t: TcpRequest): void {
    const req = t.req
    if (t.len > 0) req.iovs.clear().push(t.buf, t.len)
    req.domain = null
    req.length = t.len
    if (req.opcode === FABRICS_OPCODE) return this.#fabricsWithData(t)
    t.state = F_EXEC
    this.ctrl!.execute(req)
  }

  // ---- R2T and H2CData ----

  #sendR2T(t: TcpRequest): void {
    if (this.#state !== 'running') return this.#releaseAll(t)
    t.state = F_H2C
    t.h2c = 0
    const l = layoutPdu(PduType.R2T, 0, this.#rx.hdgst, false, 0)
    const v = this.#view()
    writeCommonHeader(v, t.tx, { type: PduType.R2T, flags: l.flags, hlen: R2T_HLEN, pdo: 0, plen: l.plen })
    v.setUint16(t.tx + 8, t.req.cid, true)
    v.setUint16(t.tx + 10, t.index, true)
    v.setUint32(t.tx + 12, 0, true)
    v.setUint32(t.tx + 16, t.len, true)
    v.setUint32(t.tx + 20, 0, true)
    if (this.#rx.hdgst) v.setUint32(t.tx + R2T_HLEN, this.#pm.kernels.crc32cAt(t.tx, R2T_HLEN), true)
    this.stats.r2ts++
    this.#write(this.#pm.bytes.subarray(t.tx, t.tx + l.plen), null)
  }

  #h2cTarget: TcpRequest | null = null

  #h2cHeader(v: DataView, i: PduInfo): number {
    const at = i.at
    const cccid = v.getUint16(at + 8, true)
    const ttag = v.getUint16(at + 10, true)
    const datao = v.getUint32(at + 12, true)
    const datal = v.getUint32(at + 16, true)
    const t = this.#reqs[ttag]
    if (t === undefined || t.state !== F_H2C) return this.#fatalHeader(TermReqFes.InvalidPduHeaderField, 10, at, i.hlen)
    if (cccid !== t.req.cid) return this.#fatalHeader(TermReqFes.InvalidPduHeaderField, 8, at, i.hlen)
    if (datal !== i.dataLen) return this.#fatalHeader(TermReqFes.InvalidPduHeaderField, 16, at, i.hlen)
    if (datal > this.#maxh2c) return this.#fatalHeader(TermReqFes.DataTransferLimitExceeded, 16, at, i.hlen)
    if (datao !== t.h2c || datao + datal > t.len) return this.#fatalHeader(TermReqFes.DataTransferOutOfRange, 12, at, i.hlen)
    this.#h2cTarget = t
    this.#rx.dest.push(t.buf + datao, datal)
    return Receive.Data
  }

  #h2cDone(dataOk: boolean): void {
    const t = this.#h2cTarget!
    this.#h2cTarget = null
    this.stats.h2cPdus++
    t.h2c += this.#rx.dest.total
    if (!dataOk) {
      t.dataOk = false
      this.stats.digestErrors++
    }
    if (t.h2c < t.len) return
    if (!t.dataOk) return this.#respond(t, NvmeStatus.TransientTransportError)
    this.#execute(t)
  }

  // ---- fabrics commands (NVMe Base §6) ----

  #fabrics(t: TcpRequest): void {
    const req = t.req
    const fctype = req.cmd[4]!
    switch (fctype) {
      case FabricsCommandType.Connect:
        if (this.ctrl !== null) return this.#respond(t, NvmeStatus.CommandSequenceError)
        return this.#data(t, CONNECT_DATA_SIZE, false)
      case FabricsCommandType.PropertyGet:
      case FabricsCommandType.PropertySet: {
        if (this.ctrl === null || this.qid !== 0) return this.#respond(t, NvmeStatus.CommandSequenceError)
        const p = decodeProperty(req.view)
        if (p.size === undefined) return this.#respond(t, NvmeStatus.InvalidField)
        if (fctype === FabricsCommandType.PropertySet) return this.#respond(t, this.ctrl.propertySet(p.offset, p.size, p.value))
        const val = this.ctrl.propertyGet(p.offset, p.size)
        if (val === undefined) return this.#respond(t, NvmeStatus.InvalidField)
        req.cdw0 = Number(val & 0xffff_ffffn)
        req.cdw1 = Number(val >> 32n)
        return this.#respond(t, NvmeStatus.Success)
      }
      case FabricsCommandType.Disconnect:
        if (this.ctrl === null) return this.#respond(t, NvmeStatus.CommandSequenceError)
        if (this.qid === 0) return this.#respond(t, FabricsCommandStatus.InvalidQueueType)
        t.closeAfter = true
        return this.#respond(t, NvmeStatus.Success)
      default:
        // Authentication Send/Receive: no authentication here (Connect's AUTHREQ is 0)
        return this.#respond(t, NvmeStatus.InvalidOpcode)
    }
  }

  /** Connect, its data in: the target decides; the queue joins the controller. */
  #fabricsWithData(t: TcpRequest): void {
    const req = t.req
    const cmd = decodeConnect(req.view)
    const data = decodeConnectData(this.#pm.bytes.subarray(t.buf, t.buf + CONNECT_DATA_SIZE))
    const r = this.transport.target.connect(this, this.transport.limits, cmd, data)
    req.cdw0 = r.dw0
    if (r.ctrl !== null) {
      this.ctrl = r.ctrl
      this.qid = cmd.qid
      this.sqsize = cmd.sqsize + 1
      this.#sqflow = (cmd.cattr & ConnectAttribute.DisableSqFlowControl) === 0
      this.#sqhd = 1 % this.sqsize
    }
    this.#respond(t, r.status)
  }

  // ---- completion ----

  readonly #completedFn = (req: NvmeRequest): void => {
    const t = req.transport as TcpRequest
    if (this.#state !== 'running') return this.#releaseAll(t)
    // more than sendHighWater waits in the socket: the response waits for 'drain' (commands
    // already received still complete; queuing their data too would make the bound the queue depth)
    if (this.#outPaused) return void this.#deferred.push(t)
    this.#reply(t)
  }

  /** completed while the socket was full, waiting for 'drain' */
  readonly #deferred: TcpRequest[] = []

  #reply(t: TcpRequest): void {
    const req = t.req
    if (t.toHost && req.status === NvmeStatus.Success && t.len > 0) this.#sendC2H(t)
    else this.#respond(t, req.status)
  }

  /** C2HData with the read's data (and SUCCESS when the host disabled SQ flow control), then the CapsuleResp unless SUCCESS. */
  #sendC2H(t: TcpRequest): void {
    const req = t.req
    const success = this.transport.c2hSuccess && !this.#sqflow && req.cdw0 === 0 && req.cdw1 === 0
    const l = layoutPdu(PduType.C2HData, t.len, this.#rx.hdgst, this.#rx.ddgst, this.#hpda, PduFlag.LAST_PDU | (success ? PduFlag.SUCCESS : 0))
    const v = this.#view()
    const tx = t.tx
    writeCommonHeader(v, tx, { type: PduType.C2HData, flags: l.flags, hlen: DATA_HLEN, pdo: l.pdo, plen: l.plen })
    v.setUint16(tx + 8, req.cid, true)
    v.setUint16(tx + 10, 0, true)
    v.setUint32(tx + 12, 0, true)
    v.setUint32(tx + 16, t.len, true)
    v.setUint32(tx + 20, 0, true)
    if (this.#rx.hdgst) v.setUint32(tx + DATA_HLEN, this.#pm.kernels.crc32cAt(tx, DATA_HLEN), true)
    const b = this.#pm.bytes
    // padding to PDO (the host's HPDA) is zeros
    for (let i = DATA_HLEN + (this.#rx.hdgst ? DIGEST_SIZE : 0); i < l.pdo; i++) b[tx + i] = 0
    t.state = F_SEND
    this.stats.c2hPdus++
    this.#write(b.subarray(tx, tx + l.pdo), null)
    const last = this.#rx.ddgst ? null : success ? t.onWritten : null
    this.#write(b.subarray(t.buf, t.buf + t.len), last)
    if (this.#rx.ddgst) {
      v.setUint32(tx + TX_DDGST, this.#pm.kernels.crc32cAt(t.buf, t.len), true)
      this.#write(b.subarray(tx + TX_DDGST, tx + TX_DDGST + DIGEST_SIZE), success ? t.onWritten : null)
    }
    if (!success) this.#respond(t, NvmeStatus.Success)
  }

  /** The CapsuleResp: the CQE (dword 0, dword 1, SQ head and id, CID, status). */
  #respond(t: TcpRequest, status: number): void {
    if (this.#state !== 'running') return this.#releaseAll(t)
    const req = t.req
    const v = this.#view()
    const at = t.tx + TX_RESP
    const l = layoutPdu(PduType.CapsuleResp, 0, this.#rx.hdgst, false, 0)
    writeCommonHeader(v, at, { type: PduType.CapsuleResp, flags: l.flags, hlen: CAPSULE_RESP_HLEN, pdo: 0, plen: l.plen })
    v.setUint32(at + 8, req.cdw0 >>> 0, true)
    v.setUint32(at + 12, req.cdw1 >>> 0, true)
    v.setUint16(at + 16, this.#sqflow ? this.#sqhd : 0xffff, true)
    v.setUint16(at + 18, this.qid, true)
    v.setUint16(at + 20, req.cid, true)
    // the status field: phase (bit 0) 0 on fabrics, SC/SCT from bit 1, DNR bit 15
    v.setUint16(at + 22, (((status & 0x7ff) << 1) | (req.dnr && status !== 0 ? 0x8000 : 0)) & 0xffff, true)
    if (this.#rx.hdgst) v.setUint32(at + CAPSULE_RESP_HLEN, this.#pm.kernels.crc32cAt(at, CAPSULE_RESP_HLEN), true)
    t.state = F_SEND
    this.stats.responses++
    this.#write(this.#pm.bytes.subarray(at, at + l.plen), t.onWritten)
  }

  /** @internal the socket took a request's last PDU: its buffers and slot are free */
  written(t: TcpRequest): void {
    const close = t.closeAfter
    this.#releaseAll(t)
    if (close) this.disconnect('the host sent Disconnect')
  }

  #releaseBuf(t: TcpRequest): void {
    if (t.buf !== 0) {
      this.#iobuf().put(t.buf)
      t.buf = 0
    }
  }

  #releaseAll(t: TcpRequest): void {
    this.#releaseBuf(t)
    if (t.state === F_FREE) return
    if (t.state === F_SEND) this.#sending--
    t.state = F_FREE
    t.len = 0
    t.icd = 0
    t.closeAfter = false
    if (this.#state === 'closed') return
    this.#free.push(t)
    this.#unstall()
  }

  // ---- output ----

  #write(view: Uint8Array, cb: (() => void) | null): void {
    if (this.#state === 'closed') return
    if (!this.#corked) {
      this.#corked = true
      this.socket.cork()
      queueMicrotask(this.#uncork)
    }
    if (cb !== null) {
      this.#sending++
      this.socket.write(view, cb)
    } else this.socket.write(view)
    if (!this.#outPaused && this.socket.writableLength > this.transport.sendHighWater) {
      this.#outPaused = true
      this.socket.pause()
    }
  }

  readonly #uncork = (): void => {
    this.#corked = false
    this.socket.uncork()
  }

  /** A C2HTermReq (§3.6.2.4): the Fatal Error Status, its information, the header in error; then the connection closes. */
  #termReq(fes: number, fei: number, header: Uint8Array): void {
    if (this.#state === 'closing' || this.#state === 'closed') return
    this.#rx.kill()
    this.stats.termReqs++
    this.closeReason = `protocol error: C2HTermReq FES ${fes.toString(16).padStart(2, '0')}h, FEI ${fei}`
    const n = Math.min(header.length, TERM_REQ_MAX_DATA)
    const out = new Uint8Array(TERM_REQ_HLEN + n)
    writeTermReq(new DataView(out.buffer), 0, PduType.C2HTermReq, { fes, fei }, n)
    out.set(header.subarray(0, n), TERM_REQ_HLEN)
    this.#state = 'closing'
    this.socket.uncork()
    this.socket.end(out)
    // a host that never closes its side is cut off
    setTimeout(() => this.socket.destroy(), 2000).unref()
    this.ctrl?.qpairGone(this)
  }

  disconnect(reason: string): void {
    if (this.#state === 'closed') return
    this.closeReason ||= reason
    this.socket.destroy()
    this.#close(reason)
  }

  #close(reason: string): void {
    if (this.#state === 'closed') return
    this.closeReason ||= reason
    this.#state = 'closed'
    this.#rx.kill()
    this.ctrl?.qpairGone(this)
    this.ctrl = null
    // requests the core still runs release their buffers when they complete (#completedFn)
    for (const t of this.#reqs) if (t.state !== F_EXEC) this.#releaseBuf(t)
    // completed, their responses waiting for room: nothing will send them now
    for (const t of this.#deferred.splice(0)) this.#releaseAll(t)
    const alloc = this.#pm.ipuAllocator
    alloc.free(this.#stage)
    alloc.free(this.#slab)
    this.transport.connectionClosed(this)
  }

  get closed(): boolean {
    return this.#state === 'closed'
  }
}

/** The TCP transport of a target: its options, listeners and connections. */
export class TcpTransport {
  readonly target: NvmfTarget
  readonly limits: TransportLimits
  readonly c2hSuccess: boolean
  readonly sendHighWater: number
  readonly connections = new Set<TcpQpair>()
  readonly #servers = new Map<string, net.Server>()

  constructor(target: NvmfTarget, o: TcpTransportOptions = {}) {
    this.target = target
    const int = (name: string, v: number | undefined, def: number, lo: number, hi: number) => {
      const x = v ?? def
      if (!Number.isInteger(x) || x < lo || x > hi) throw new NvmfError('NVMF_BAD_ARGUMENT', `${name} must be an integer in [${lo}, ${hi}], got ${x}`)
      return x
    }
    const large = target.ch.accel.iobuf.largeSize
    this.limits = {
      maxQueueDepth: int('maxQueueDepth', o.maxQueueDepth, 128, 2, 65535),
      maxAqDepth: int('maxAqDepth', o.maxAqDepth, 128, 32, 4096),
      maxQpairsPerCtrlr: int('maxQpairsPerCtrlr', o.maxQpairsPerCtrlr, 128, 2, 65535),
      inCapsuleDataSize: int('inCapsuleDataSize', o.inCapsuleDataSize, 4096, 0, 8192),
      maxIoSize: int('maxIoSize', o.maxIoSize, 131072, 4096, large),
    }
    if (this.limits.inCapsuleDataSize % 16 !== 0) throw new NvmfError('NVMF_BAD_ARGUMENT', `inCapsuleDataSize must be a multiple of 16 (IOCCSZ counts 16-byte units), got ${this.limits.inCapsuleDataSize}`)
    if (this.limits.maxIoSize % 4096 !== 0) throw new NvmfError('NVMF_BAD_ARGUMENT', `maxIoSize must be a multiple of 4096, got ${this.limits.maxIoSize}`)
    this.c2hSuccess = o.c2hSuccess ?? true
    this.sendHighWater = int('sendHighWater', o.sendHighWater, 4 << 20, 65536, 1 << 30)
  }

  /** Listens on traddr:trsvcid (port 0: any free one); resolves to the listener's address ("TCP 127.0.0.1:4420"). */
  async listen(traddr: string, trsvcid: string | number, o: { sqFlowControlDisable?: boolean } = {}): Promise<ListenerInfo> {
    if (net.isIP(traddr) === 0) throw new NvmfError('NVMF_BAD_ARGUMENT', `traddr must be an IP address, got '${traddr}'`)
    const port = Number(trsvcid)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new NvmfError('NVMF_BAD_ARGUMENT', `trsvcid must be a port number, got '${trsvcid}'`)
    const server = net.createServer({ pauseOnConnect: true, noDelay: true })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new NvmfError('NVMF_TRANSPORT', `listen on ${traddr}:${port}: ${e.message}`, { cause: e })))
      server.listen(port, traddr, () => resolve())
    })
    const bound = (server.address() as net.AddressInfo).port
    const address = `TCP ${traddr}:${bound}`
    const info = this.target.addListenerInfo({ address, trtype: TransportType.TCP, adrfam: net.isIPv6(traddr) ? AddressFamily.IPv6 : AddressFamily.IPv4, traddr, trsvcid: String(bound), sqFlowControlDisable: o.sqFlowControlDisable ?? true })
    server.on('connection', (raw) => this.#accept(raw, address))
    server.on('error', () => {})
    this.#servers.set(address, server)
    return info
  }

  #accept(raw: net.Socket, address: string): void {
    // take the accepted socket's handle so reads go where the receiver says (onread)
    const r = raw as unknown as { _handle: unknown }
    const handle = r._handle ?? null
    let q: TcpQpair
    try {
      if (handle !== null) r._handle = null
      q = new TcpQpair(this, raw, address, handle)
    } catch {
      raw.destroy()
      return
    }
    // the server counts the accepted socket object; without its handle, destroying it closes
    // nothing but lets server.close() stop waiting for it (the qpair's socket is ours to close)
    if (handle !== null) raw.destroy()
    this.connections.add(q)
  }

  /** @internal */
  connectionClosed(q: TcpQpair): void {
    this.connections.delete(q)
  }

  async stopListen(address: string): Promise<void> {
    const s = this.#servers.get(address)
    if (s === undefined) throw new NvmfError('NVMF_NOT_FOUND', `no listener ${address}`)
    this.#servers.delete(address)
    this.target.removeListenerInfo(address)
    await new Promise<void>((r) => s.close(() => r()))
  }

  /** Closes the listeners and every connection. */
  async close(): Promise<void> {
    for (const q of [...this.connections]) q.disconnect('the target is shutting down')
    for (const a of [...this.#servers.keys()]) await this.stopListen(a)
  }
}
