// The receive side of an NVMe/TCP connection, for the target and the host alike: frames
// PDUs out of the byte stream, checks what the transport specification fixes (header
// lengths, digests, PDO and PLEN), and lands each PDU's data where its owner says, straight
// from the socket: Node's onread hands us the buffer to read into, so a PDU's header goes
// into a small staging area and its data, past what the staging area already holds, is read
// directly into the destination (an iobuf buffer in IPU memory, say). As SPDK reads a
// payload into the request's buffer with readv, nothing is copied twice and nothing is
// allocated per PDU.
//
// The owner (a sink) decides per header: receive the data into `dest`, discard it, or stall
// (no buffer now: the receiver keeps the header and waits for resume()). Protocol errors
// the receiver finds go to sink.onFatal with the TermReq's FES and FEI; the sink sends the
// TermReq and closes.
import { IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { CH_SIZE, DIGEST_SIZE, hasHeaderDigest, mayHaveData, PDU_HLEN, PduFlag, PduType, TERM_REQ_HLEN, TERM_REQ_MAX_DATA, TermReqFes } from '../spec/pdu.js'

/** What the sink does with a PDU's data. */
export const Receive = {
  /** into receiver.dest (the sink filled it with exactly the data's length) */
  Data: 0,
  /** read and drop it */
  Discard: 1,
  /** not now: the header stays, and resume() tries again */
  Stall: 2,
  /** the sink found a protocol error and called fatal(): stop */
  Fatal: 3,
} as const

export interface PduInfo {
  type: number
  flags: number
  hlen: number
  pdo: number
  plen: number
  /** data bytes (0: none) */
  dataLen: number
  /** where the header sits in the staging area (valid in onHeader) */
  at: number
}

export interface ReceiverSink {
  /** 0 if a PDU of `type` may come now, else (FES << 16) | FEI for the TermReq */
  accept(type: number): number
  /** the header (and its digest) is in: the view holds it at info.at; returns a Receive */
  onHeader(view: DataView, info: PduInfo): number
  /** the PDU is whole; dataOk is false when its data digest did not match */
  onPdu(info: PduInfo, dataOk: boolean): void
  /** a protocol error: the TermReq's FES and FEI, and the header in error (stage bytes) */
  onFatal(fes: number, fei: number, header: Uint8Array): void
}

const ST_CH = 0
const ST_HEADER = 1
const ST_PAD = 2
const ST_DATA = 3
const ST_DDGST = 4
const ST_DEAD = 5
/** data reads at least this big go straight to the destination */
const DIRECT_MIN = 1024

export class PduReceiver {
  readonly physical: PhysicalMemory
  /** the staging area: an address in IPU memory and its size */
  readonly stageAt: number
  readonly stageSize: number
  /** digests negotiated (set after ICReq/ICResp) */
  hdgst = false
  ddgst = false
  /** the PDO alignment this side asked the peer for (HPDA or CPDA, 0's based dwords) */
  pda = 0
  /** where the current PDU's data goes (the sink fills it in onHeader) */
  readonly dest = new IoVecList(64)
  /** PDUs received, bytes of data received */
  pdus = 0
  dataBytes = 0
  readonly #sink: ReceiverSink
  #start = 0
  #end = 0
  #state = ST_CH
  #stalled = false
  #info: PduInfo = { type: 0, flags: 0, hlen: 0, pdo: 0, plen: 0, dataLen: 0, at: 0 }
  #hd = false
  #dd = false
  #discard = false
  /** data bytes still to come, and where in dest the next one goes */
  #left = 0
  #iov = 0
  #iovAt = 0
  #padLeft = 0
  /** the buffer last handed to the socket is the destination (a direct read), not the staging area */
  #direct = false
  #view: DataView
  #bytes: Uint8Array

  constructor(physical: PhysicalMemory, stageAt: number, stageSize: number, sink: ReceiverSink) {
    this.physical = physical
    this.stageAt = stageAt
    this.stageSize = stageSize
    this.#sink = sink
    this.#bytes = physical.bytes
    this.#view = new DataView(physical.memory.buffer)
  }

  get dead(): boolean {
    return this.#state === ST_DEAD
  }

  get stalled(): boolean {
    return this.#stalled
  }

  #refresh(): void {
    if (this.#bytes.buffer !== this.physical.memory.buffer) {
      this.#bytes = this.physical.bytes
      this.#view = new DataView(this.physical.memory.buffer)
    }
  }

  /** onread's buffer(): where the socket's next read lands. */
  buffer(): Uint8Array {
    this.#refresh()
    if (this.#state === ST_DATA && !this.#discard && this.#start === this.#end) {
      const left = Math.min(this.#left, this.dest.len[this.#iov]! - this.#iovAt)
      if (left >= DIRECT_MIN) {
        const a = this.dest.addr[this.#iov]! + this.#iovAt
        this.#direct = true
        return this.#bytes.subarray(a, a + left)
      }
    }
    this.#direct = false
    // compact the staging area when its free tail is small
    if (this.#start === this.#end) this.#start = this.#end = 0
    else if (this.#end > this.stageSize - 256 || this.#start > this.stageSize >> 1) {
      this.#bytes.copyWithin(this.stageAt, this.stageAt + this.#start, this.stageAt + this.#end)
      this.#end -= this.#start
      this.#start = 0
    }
    return this.#bytes.subarray(this.stageAt + this.#end, this.stageAt + this.stageSize)
  }

  /** onread's callback: n bytes landed in the buffer buffer() gave. */
  received(n: number): void {
    if (this.#state === ST_DEAD || n <= 0) return
    if (this.#direct) {
      this.#direct = false
      // a direct read into the destination
      this.#advanceData(n)
      this.dataBytes += n
      if (this.#left === 0) this.#state = this.#dd ? ST_DDGST : ST_CH
      if (this.#left === 0 && !this.#dd) this.#finish(true)
    } else this.#end += n
    this.#parse()
  }

  /** The sink has what it lacked (a buffer, a request): parse what is waiting. */
  resume(): void {
    if (!this.#stalled || this.#state === ST_DEAD) return
    this.#stalled = false
    this.#parse()
  }

  /** Stops: nothing more is parsed (after a fatal error, or a close). */
  kill(): void {
    this.#state = ST_DEAD
  }

  #avail(): number {
    return this.#end - this.#start
  }

  #fatal(fes: number, fei: number, headerLen: number): void {
    const at = this.stageAt + this.#start
    const n = Math.min(headerLen, this.#avail(), TERM_REQ_MAX_DATA)
    this.#state = ST_DEAD
    this.#sink.onFatal(fes, fei, this.#bytes.slice(at, at + n))
  }

  #parse(): void {
    this.#refresh()
    const v = this.#view
    const sink = this.#sink
    while (!this.#stalled) {
      switch (this.#state) {
        case ST_CH: {
          if (this.#avail() < CH_SIZE) return
          const at = this.stageAt + this.#start
          const type = v.getUint8(at)
          const flags = v.getUint8(at + 1)
          const hlen = v.getUint8(at + 2)
          const pdo = v.getUint8(at + 3)
          const plen = v.getUint32(at + 4, true)
          const ok = sink.accept(type)
          if (ok !== 0) return this.#fatal(ok >>> 16, ok & 0xffff, CH_SIZE)
          if (PDU_HLEN[type] !== hlen) return this.#fatal(TermReqFes.InvalidPduHeaderField, 2, CH_SIZE)
          const term = type === PduType.H2CTermReq || type === PduType.C2HTermReq
          const hd = this.hdgst && hasHeaderDigest(type)
          // a digest flag must say what was negotiated (§3.6.1: HDGSTF, DDGSTF)
          if (((flags & PduFlag.HDGSTF) !== 0) !== hd) return this.#fatal(TermReqFes.InvalidPduHeaderField, 1, CH_SIZE)
          const head = hlen + (hd ? DIGEST_SIZE : 0)
          if (plen < head) return this.#fatal(TermReqFes.InvalidPduHeaderField, 4, CH_SIZE)
          let dataLen = 0
          let dd = false
          if (term) {
            // a TermReq carries the header in error, at most 128 bytes (PLEN 24 to 152)
            if (plen > TERM_REQ_HLEN + TERM_REQ_MAX_DATA) return this.#fatal(TermReqFes.InvalidPduHeaderField, 4, CH_SIZE)
            dataLen = plen - hlen
            this.#padLeft = 0
          } else if (type === PduType.ICReq || type === PduType.ICResp) {
            if (plen !== hlen) return this.#fatal(TermReqFes.InvalidPduHeaderField, 4, CH_SIZE)
          } else if (plen > head) {
            if (!mayHaveData(type)) return this.#fatal(TermReqFes.InvalidPduHeaderField, 4, CH_SIZE)
            dd = this.ddgst
            if (((flags & PduFlag.DDGSTF) !== 0) !== dd) return this.#fatal(TermReqFes.InvalidPduHeaderField, 1, CH_SIZE)
            if (pdo < head || pdo > plen) return this.#fatal(TermReqFes.InvalidPduHeaderField, 3, CH_SIZE)
            if (this.pda !== 0 && pdo % ((this.pda + 1) * 4) !== 0) return this.#fatal(TermReqFes.InvalidPduHeaderField, 3, CH_SIZE)
            dataLen = plen - pdo - (dd ? DIGEST_SIZE : 0)
            if (dataLen <= 0) return this.#fatal(TermReqFes.InvalidPduHeaderField, 4, CH_SIZE)
            this.#padLeft = pdo - head
          } else if ((flags & PduFlag.DDGSTF) !== 0) return this.#fatal(TermReqFes.InvalidPduHeaderField, 1, CH_SIZE)
          const i = this.#info
          i.type = type
          i.flags = flags
          i.hlen = hlen
          i.pdo = pdo
          i.plen = plen
          i.dataLen = dataLen
          this.#hd = hd
          this.#dd = dd
          this.#state = ST_HEADER
          break
        }
        case ST_HEADER: {
          const i = this.#info
          const term = i.type === PduType.H2CTermReq || i.type === PduType.C2HTermReq
          const need = term ? i.plen : i.hlen + (this.#hd ? DIGEST_SIZE : 0)
          if (this.#avail() < need) return
          const at = this.stageAt + this.#start
          if (this.#hd) {
            const got = v.getUint32(at + i.hlen, true)
            if (this.physical.kernels.crc32cAt(at, i.hlen) !== got) return this.#fatal(TermReqFes.HeaderDigestError, 0, i.hlen)
          }
          i.at = at
          if (term) {
            this.#start += need
            this.#state = ST_CH
            this.pdus++
            sink.onPdu(i, true)
            if (this.dead) return
            break
          }
          this.dest.clear()
          const r = sink.onHeader(v, i)
          if (r === Receive.Stall) {
            this.#stalled = true
            return
          }
          if (r === Receive.Fatal || this.dead) {
            this.#state = ST_DEAD
            return
          }
          this.#start += need
          this.#discard = r === Receive.Discard
          if (i.dataLen === 0) {
            this.#state = ST_CH
            this.#finish(true)
            if (this.dead) return
            break
          }
          if (!this.#discard && this.dest.total !== i.dataLen) {
            // a sink bug, not the peer's: say so loudly rather than write past the buffer
            throw new Error(`receiver: the sink gave ${this.dest.total} bytes of destination for ${i.dataLen} bytes of data`)
          }
          this.#left = i.dataLen
          this.#iov = 0
          this.#iovAt = 0
          this.#state = this.#padLeft > 0 ? ST_PAD : ST_DATA
          break
        }
        case ST_PAD: {
          const n = Math.min(this.#padLeft, this.#avail())
          this.#start += n
          this.#padLeft -= n
          if (this.#padLeft > 0) return
          this.#state = ST_DATA
          break
        }
        case ST_DATA: {
          const n = Math.min(this.#left, this.#avail())
          if (n === 0) return
          if (!this.#discard) this.#copyIn(this.stageAt + this.#start, n)
          else this.#left -= n
          this.#start += n
          this.dataBytes += n
          if (this.#left > 0) return
          if (this.#dd) this.#state = ST_DDGST
          else {
            this.#state = ST_CH
            this.#finish(true)
            if (this.dead) return
          }
          break
        }
        case ST_DDGST: {
          if (this.#avail() < DIGEST_SIZE) return
          const got = v.getUint32(this.stageAt + this.#start, true)
          this.#start += DIGEST_SIZE
          this.#state = ST_CH
          this.#finish(this.#discard || this.#dataCrc() === got)
          if (this.dead) return
          break
        }
        default:
          return
      }
    }
  }

  /** Copies n staged bytes at `from` into dest, advancing. */
  #copyIn(from: number, n: number): void {
    const d = this.dest
    let src = from
    let left = n
    while (left > 0) {
      const room = d.len[this.#iov]! - this.#iovAt
      const k = Math.min(room, left)
      this.#bytes.copyWithin(d.addr[this.#iov]! + this.#iovAt, src, src + k)
      src += k
      left -= k
      this.#advanceData(k)
    }
  }

  #advanceData(n: number): void {
    this.#left -= n
    this.#iovAt += n
    while (this.#iov < this.dest.count && this.#iovAt >= this.dest.len[this.#iov]!) {
      this.#iovAt -= this.dest.len[this.#iov]!
      this.#iov++
    }
  }

  #dataCrc(): number {
    const d = this.dest
    const k = this.physical.kernels
    let crc = 0
    for (let i = 0; i < d.count; i++) crc = k.crc32cAt(d.addr[i]!, d.len[i]!, crc)
    return crc
  }

  #finish(dataOk: boolean): void {
    this.pdus++
    this.#sink.onPdu(this.#info, dataOk)
  }
}
