// A bare NVMe/TCP host for tests (NVMe/TCP 1.0 §3.3, §3.6; NVMe Base 2.0 §6.3): one
// net.Socket that sends ICReq and CapsuleCmd PDUs exactly as told (a Connect with any field,
// a command with any SGL), answers R2Ts with H2CData, and hands back each command's
// CapsuleResp (or C2HData with SUCCESS) with its data. No digests, CPDA as the target says.
// NvmfHost would refuse to send most of what these tests send.
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { Reg } from '@ipukit/nvme'
import {
  CAPSULE_CMD_HLEN,
  CNTLID_DYNAMIC,
  CONNECT_DATA_SIZE,
  DATA_HLEN,
  decodeICResp,
  encodeConnect,
  encodeConnectData,
  encodeICReq,
  encodePropertyGet,
  encodePropertySet,
  type ICResp,
  ICREQ_SIZE,
  layoutPdu,
  PduFlag,
  PduType,
  readCommonHeader,
  readTermReq,
  type TcpQpair,
  TcpSgl,
  type TcpTransport,
  type TermReq,
  writeCommonHeader,
  writeDataHeader,
} from '../../src/index.js'

export interface RawResponse {
  /** SCT << 8 | SC */
  status: number
  cdw0: number
  cdw1: number
  sqhd: number
  sqid: number
  cid: number
  dnr: boolean
  /** C2HData received for the command */
  data: Uint8Array
  /** the FLAGS of each C2HData PDU */
  c2hFlags: number[]
  /** completed by a C2HData with SUCCESS, no CapsuleResp */
  bySuccess: boolean
}

export interface CommandOptions {
  /** data in the capsule (SGL Data Block, Offset) */
  inCapsule?: Uint8Array
  /** data the target asks for with R2T (SGL Transport Data Block) */
  write?: Uint8Array
  /** bytes the command reads (SGL Transport Data Block) */
  read?: number
  /** ms before the promise rejects; default 5000 */
  timeoutMs?: number
}

export interface RawConnect {
  subnqn: string
  hostnqn: string
  hostid?: Uint8Array
  qid?: number
  /** 0's based; default 31 */
  sqsize?: number
  cattr?: number
  kato?: number
  recfmt?: number
  cntlid?: number
}

interface Pending {
  resolve(r: RawResponse): void
  reject(e: Error): void
  timer: ReturnType<typeof setTimeout>
  data: Buffer[]
  flags: number[]
  write: Uint8Array | undefined
}

export class RawHost {
  readonly socket: net.Socket
  readonly hostid: Uint8Array
  icresp: ICResp | null = null
  /** C2HTermReqs received */
  readonly termReqs: TermReq[] = []
  /** every PDU type received, in order */
  readonly received: number[] = []
  /** resolves when the socket has closed */
  readonly closed: Promise<void>
  isClosed = false
  #buf: Buffer = Buffer.alloc(0)
  #cid = 0
  readonly #pending = new Map<number, Pending>()
  #icresp: ((r: ICResp) => void) | null = null

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.hostid = new Uint8Array(randomBytes(16))
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer)
          p.reject(new Error('the connection closed'))
        }
        this.#pending.clear()
        resolve()
      })
    })
    socket.on('error', () => {})
    socket.on('data', (b: Buffer) => this.#onData(b))
  }

  /** Connects to 127.0.0.1:port and exchanges ICReq/ICResp (unless icreq is false). */
  static async open(port: number, o: { host?: string; hpda?: number; icreq?: boolean } = {}): Promise<RawHost> {
    const s = net.connect({ host: o.host ?? '127.0.0.1', port, noDelay: true })
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve())
      s.once('error', reject)
    })
    const h = new RawHost(s)
    if (o.icreq === false) return h
    const got = new Promise<ICResp>((resolve) => (h.#icresp = resolve))
    const b = new Uint8Array(ICREQ_SIZE)
    encodeICReq(new DataView(b.buffer), 0, { pfv: 0, hpda: o.hpda ?? 0, hdgst: false, ddgst: false, maxr2t: 0 })
    s.write(b)
    h.icresp = await withTimeout(got, 5000, 'no ICResp')
    return h
  }

  send(b: Uint8Array): void {
    this.socket.write(b)
  }

  /**
   * Sends a command capsule: `build` fills the SQE after the defaults (PSDT 01b, SGL1 for
   * the data the options give, a CID) so it can break any of them; resolves with the
   * completion.
   */
  command(build: (v: DataView) => void, o: CommandOptions = {}): Promise<RawResponse> {
    const icd = o.inCapsule ?? new Uint8Array(0)
    const len = o.inCapsule?.length ?? o.write?.length ?? o.read ?? 0
    const l = layoutPdu(PduType.CapsuleCmd, icd.length, false, false, this.icresp?.cpda ?? 0)
    const pdu = new Uint8Array(l.plen)
    const v = new DataView(pdu.buffer)
    writeCommonHeader(v, 0, { type: PduType.CapsuleCmd, flags: l.flags, hlen: CAPSULE_CMD_HLEN, pdo: l.pdo, plen: l.plen })
    const sqe = new DataView(pdu.buffer, 8, 64)
    const cid = this.#cid
    this.#cid = (this.#cid + 1) & 0xffff
    sqe.setUint8(1, 0x40)
    if (len > 0) {
      sqe.setUint32(32, len, true)
      sqe.setUint8(39, o.inCapsule !== undefined ? TcpSgl.InCapsule : TcpSgl.Transport)
    }
    build(sqe)
    sqe.setUint16(2, cid, true)
    if (icd.length > 0) pdu.set(icd, l.pdo)
    const p = new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid)
        reject(new Error(`command ${cid} (opcode ${sqe.getUint8(0).toString(16)}h): no response within ${o.timeoutMs ?? 5000} ms`))
      }, o.timeoutMs ?? 5000)
      this.#pending.set(cid, { resolve, reject, timer, data: [], flags: [], write: o.write })
    })
    this.socket.write(pdu)
    return p
  }

  /** A Fabrics Connect with its 1024 bytes of data in the capsule. */
  connect(c: RawConnect, o: { timeoutMs?: number } = {}): Promise<RawResponse> {
    const data = new Uint8Array(CONNECT_DATA_SIZE)
    encodeConnectData(data, { hostid: c.hostid ?? this.hostid, cntlid: c.cntlid ?? CNTLID_DYNAMIC, subnqn: c.subnqn, hostnqn: c.hostnqn })
    return this.command((v) => encodeConnect(v, { recfmt: c.recfmt ?? 0, qid: c.qid ?? 0, sqsize: c.sqsize ?? 31, cattr: c.cattr ?? 0, kato: c.kato ?? 0 }), { inCapsule: data, ...o })
  }

  propertyGet(offset: number, size: 4 | 8): Promise<RawResponse> {
    return this.command((v) => encodePropertyGet(v, offset, size))
  }

  propertySet(offset: number, size: 4 | 8, value: bigint | number): Promise<RawResponse> {
    return this.command((v) => encodePropertySet(v, offset, size, BigInt(value)))
  }

  /** CC.EN 1 (NVM command set, IOSQES 6, IOCQES 4); throws unless CSTS.RDY follows. */
  async enable(): Promise<void> {
    const r = await this.propertySet(Reg.CC, 4, (6 << 16) | (4 << 20) | 1)
    if (r.status !== 0) throw new Error(`Property Set CC: status ${r.status.toString(16)}h`)
    const c = await this.propertyGet(Reg.CSTS, 4)
    if ((c.cdw0 & 1) !== 1) throw new Error(`CSTS ${c.cdw0.toString(16)}h: not ready`)
  }

  /** An admin queue connected to `subnqn` and enabled; resolves to the CNTLID. */
  async admin(subnqn: string, hostnqn: string, o: Partial<RawConnect> = {}): Promise<number> {
    const r = await this.connect({ subnqn, hostnqn, ...o })
    if (r.status !== 0) throw new Error(`Connect: status ${r.status.toString(16)}h`)
    await this.enable()
    return r.cdw0 & 0xffff
  }

  /** Stops reading the socket (the kernel's buffers fill, then the target's) / reads again. */
  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  close(): Promise<void> {
    this.socket.destroy()
    return this.closed
  }

  /** The target's end of this connection. */
  qpairOn(tcp: TcpTransport): TcpQpair {
    const me = `${this.socket.localAddress}:${this.socket.localPort}`
    for (const q of tcp.connections) if (q.peer === me) return q
    throw new Error(`no target connection for ${me}`)
  }

  #onData(b: Buffer): void {
    this.#buf = this.#buf.length === 0 ? b : Buffer.concat([this.#buf, b])
    while (this.#buf.length >= 8) {
      const v = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.length)
      const ch = readCommonHeader(v)
      if (this.#buf.length < ch.plen) return
      const pdu = this.#buf.subarray(0, ch.plen)
      this.#buf = this.#buf.subarray(ch.plen)
      this.received.push(ch.type)
      this.#pdu(ch.type, ch.flags, ch.pdo, pdu, new DataView(pdu.buffer, pdu.byteOffset, pdu.length))
    }
  }

  #pdu(type: number, flags: number, pdo: number, pdu: Buffer, v: DataView): void {
    switch (type) {
      case PduType.ICResp:
        this.#icresp?.(decodeICResp(v))
        this.#icresp = null
        return
      case PduType.CapsuleResp: {
        const cid = v.getUint16(20, true)
        const sf = v.getUint16(22, true)
        this.#finish(cid, { status: (sf >>> 1) & 0x7ff, dnr: (sf & 0x8000) !== 0, cdw0: v.getUint32(8, true), cdw1: v.getUint32(12, true), sqhd: v.getUint16(16, true), sqid: v.getUint16(18, true), cid, bySuccess: false })
        return
      }
      case PduType.C2HData: {
        const cid = v.getUint16(8, true)
        const p = this.#pending.get(cid)
        if (p === undefined) return
        p.data.push(Buffer.from(pdu.subarray(pdo, pdo + v.getUint32(16, true))))
        p.flags.push(flags)
        if ((flags & PduFlag.SUCCESS) !== 0) this.#finish(cid, { status: 0, dnr: false, cdw0: 0, cdw1: 0, sqhd: -1, sqid: -1, cid, bySuccess: true })
        return
      }
      case PduType.R2T: {
        const cid = v.getUint16(8, true)
        const ttag = v.getUint16(10, true)
        const off = v.getUint32(12, true)
        const len = v.getUint32(16, true)
        const data = this.#pending.get(cid)?.write
        if (data === undefined) return
        const max = this.icresp?.maxh2cdata ?? len
        for (let at = off; at < off + len; ) {
          const n = Math.min(max, off + len - at)
          const last = at + n === off + len
          const l = layoutPdu(PduType.H2CData, n, false, false, this.icresp?.cpda ?? 0, last ? PduFlag.LAST_PDU : 0)
          const h = new Uint8Array(l.pdo)
          const hv = new DataView(h.buffer)
          writeCommonHeader(hv, 0, { type: PduType.H2CData, flags: l.flags, hlen: DATA_HLEN, pdo: l.pdo, plen: l.plen })
          writeDataHeader(hv, 0, { cccid: cid, ttag, offset: at, length: n })
          this.socket.write(h)
          this.socket.write(data.subarray(at, at + n))
          at += n
        }
        return
      }
      case PduType.C2HTermReq:
        this.termReqs.push(readTermReq(v))
        return
    }
  }

  #finish(cid: number, r: Omit<RawResponse, 'data' | 'c2hFlags'>): void {
    const p = this.#pending.get(cid)
    if (p === undefined) return
    this.#pending.delete(cid)
    clearTimeout(p.timer)
    p.resolve({ ...r, data: new Uint8Array(Buffer.concat(p.data)), c2hFlags: p.flags })
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

/** Resolves once `cond()` holds, polling; rejects after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
