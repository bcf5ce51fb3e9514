// The PDU fuzzer (NVMe/TCP 1.0 §3.6 the PDUs, §3.6.2.3 C2HTermReq and its FES/FEI, §3.6.1
// digests, §3.3.4 R2T and H2CData): thousands of connections, each an I/O queue of one
// controller, that send valid traffic (in-capsule and R2T writes split into random H2CData
// PDUs, reads, flushes, dribbled a byte at a time or pipelined) and then, most of them, one
// fault: a PDU type wrong for the state, a bad HLEN/PLEN/PDO/flag, a wrong header or data
// digest, H2CData beyond what the R2T granted or for nothing, in-capsule data beyond the
// limit, a truncated PDU, random bytes, random mutations of a valid PDU, a flood of capsules.
//
// What must hold:
// - each fault with one right answer ends the connection with a C2HTermReq carrying that
//   FES and FEI, and the PDU in error's header as its data; nothing follows it;
// - a data digest error fails that command with Transient Transport Error, writes nothing,
//   and the connection goes on;
// - random input ends in a well-formed C2HTermReq or a plain close, never a hang;
// - the valid traffic before a fault is answered and correct (a model of the namespace),
//   including the target's own header and data digests;
// - a healthy host doing verified I/O on its own connections all along sees no error and
//   no reconnect, and afterwards the target holds no connection, buffer or memory more.
//
// IPUKIT_FUZZ_SCALE multiplies the session count (scripts/fuzz.sh runs 100×).
import net from 'node:net'
import { NvmeStatus } from '@ipukit/bdev'
import { crc32c } from '@ipukit/kernels'
import { AdminOpcode } from '@ipukit/nvme'
import { IoVecList } from '@ipukit/memory'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CAPSULE_CMD_HLEN,
  CONNECT_DATA_SIZE,
  ConnectAttribute,
  DATA_HLEN,
  DIGEST_SIZE,
  encodeConnect,
  encodeConnectData,
  encodeICReq,
  ICREQ_SIZE,
  layoutPdu,
  type NvmfHost,
  PDU_HLEN,
  PduFlag,
  PduType,
  TcpSgl,
  TERM_REQ_HLEN,
  TERM_REQ_MAX_DATA,
  TermReqFes,
} from '../src/index.js'
import { fuzzRuns, HOSTNQN, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'
import { RawHost, until } from './support/raw-host.js'

const BS = 512
const SLOTS = 8 // I/O queues fuzzed at once, qid 1..8
const SLICES = 16
const SLICE_BLOCKS = 16
const REGION = SLICES * SLICE_BLOCKS // blocks per slot
const HEALTHY_LBA = SLOTS * REGION
const HEALTHY_BLOCKS = 512
const ICD_MAX = 4096

// ---- a seeded generator, so a failure names its seed and replays ----

class Rng {
  #s: number
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9
  }
  u32(): number {
    let s = this.#s
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    this.#s = s >>> 0
    return this.#s
  }
  int(n: number): number {
    return this.u32() % n
  }
  bool(p = 0.5): boolean {
    return this.u32() / 2 ** 32 < p
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!
  }
}

// ---- PDUs, as a host writes them ----

interface Digests {
  hd: boolean
  dd: boolean
}

/** A PDU of `type`: header fields by `fill` (offsets from the PDU's start), data, digests. */
function pdu(type: number, g: Digests, fill: (v: DataView) => void, data: Uint8Array | null, extraFlags = 0): Uint8Array {
  const l = layoutPdu(type, data?.length ?? 0, g.hd, g.dd, 0, extraFlags)
  const b = new Uint8Array(l.plen)
  const v = new DataView(b.buffer)
  v.setUint8(0, type)
  v.setUint8(1, l.flags)
  v.setUint8(2, l.hlen)
  v.setUint8(3, l.pdo)
  v.setUint32(4, l.plen, true)
  fill(v)
  if ((l.flags & PduFlag.HDGSTF) !== 0) v.setUint32(l.hlen, crc32c(b.subarray(0, l.hlen)), true)
  if (data !== null && data.length > 0) {
    b.set(data, l.pdo)
    if ((l.flags & PduFlag.DDGSTF) !== 0) v.setUint32(l.pdo + data.length, crc32c(data), true)
  }
  return b
}

function icreq(g: Digests, o: { pfv?: number; hpda?: number } = {}): Uint8Array {
  const b = new Uint8Array(ICREQ_SIZE)
  encodeICReq(new DataView(b.buffer), 0, { pfv: o.pfv ?? 0, hpda: o.hpda ?? 0, hdgst: g.hd, ddgst: g.dd, maxr2t: 0 })
  return b
}

/** A command capsule; the SQE's fields by `sqe` (offsets within the SQE). */
function capsule(g: Digests, cid: number, sqe: (v: DataView) => void, icd: Uint8Array | null = null): Uint8Array {
  return pdu(
    PduType.CapsuleCmd,
    g,
    (v) => {
      const s = new DataView(v.buffer, 8, 64)
      s.setUint8(1, 0x40) // PSDT 01b: SGLs
      sqe(s)
      s.setUint16(2, cid, true)
    },
    icd,
  )
}

function rw(op: number, lba: number, blocks: number, sgl: number): (v: DataView) => void {
  return (v) => {
    v.setUint8(0, op)
    v.setUint32(4, 1, true)
    v.setUint32(32, blocks * BS, true)
    v.setUint8(39, sgl)
    v.setUint32(40, lba, true)
    v.setUint32(48, blocks - 1, true)
  }
}

function h2c(g: Digests, cid: number, ttag: number, offset: number, data: Uint8Array, last: boolean, datal = data.length): Uint8Array {
  return pdu(
    PduType.H2CData,
    g,
    (v) => {
      v.setUint16(8, cid, true)
      v.setUint16(10, ttag, true)
      v.setUint32(12, offset, true)
      v.setUint32(16, datal, true)
    },
    data,
    last ? PduFlag.LAST_PDU : 0,
  )
}

// ---- a connection, as the fuzzer sees it ----

interface Term {
  fes: number
  fei: number
  hlen: number
  plen: number
  data: Uint8Array
}

interface R2T {
  cid: number
  ttag: number
  offset: number
  length: number
}

class Conn {
  readonly socket: net.Socket
  g: Digests = { hd: false, dd: false }
  #buf: Buffer = Buffer.alloc(0)
  icresp: { maxh2c: number } | null = null
  term: Term | null = null
  /** PDUs received after the C2HTermReq (there must be none) */
  afterTerm = 0
  /** received PDUs whose digests or layout were wrong (there must be none) */
  readonly bad: string[] = []
  readonly status = new Map<number, number>()
  readonly c2h = new Map<number, Buffer[]>()
  readonly r2ts: R2T[] = []
  closed = false
  #wake: (() => void) | null = null
  #cid = 1

  constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (b: Buffer) => this.#data(b))
    socket.on('end', () => socket.end())
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.#kick()
    })
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, noDelay: true })
      s.once('connect', () => resolve(new Conn(s)))
      s.once('error', reject)
    })
  }

  cid(): number {
    const c = this.#cid
    this.#cid = (this.#cid + 1) & 0xffff || 1
    return c
  }

  send(b: Uint8Array): void {
    if (!this.closed) this.socket.write(b)
  }

  /** Resolves once `cond` holds (checked on every arrival), rejects after `ms`. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms
    while (!cond()) {
      const left = end - Date.now()
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  #kick(): void {
    const w = this.#wake
    this.#wake = null
    w?.()
  }

  #data(b: Buffer): void {
    this.#buf = this.#buf.length === 0 ? b : Buffer.concat([this.#buf, b])
    while (this.#buf.length >= 8) {
      const plen = this.#buf.readUInt32LE(4)
      if (plen < 8 || plen > 1 << 20) {
        this.bad.push(`PLEN ${plen}`)
        this.#buf = Buffer.alloc(0)
        break
      }
      if (this.#buf.length < plen) break
      const p = this.#buf.subarray(0, plen)
      this.#buf = this.#buf.subarray(plen)
      this.#pdu(p)
    }
    this.#kick()
  }

  #pdu(p: Buffer): void {
    const type = p[0]!
    const flags = p[1]!
    const hlen = p[2]!
    const pdo = p[3]!
    if (this.term !== null) this.afterTerm++
    if (PDU_HLEN[type] !== hlen) this.bad.push(`type ${type} HLEN ${hlen}`)
    // the target's digests, as negotiated
    const hd = (flags & PduFlag.HDGSTF) !== 0
    const dd = (flags & PduFlag.DDGSTF) !== 0
    const hasHd = type !== PduType.ICResp && type !== PduType.C2HTermReq
    if (hasHd && hd !== this.g.hd && this.icresp !== null) this.bad.push(`type ${type}: HDGSTF ${hd}`)
    if (hd && p.readUInt32LE(hlen) !== crc32c(p.subarray(0, hlen))) this.bad.push(`type ${type}: header digest`)
    switch (type) {
      case PduType.ICResp:
        this.icresp = { maxh2c: p.readUInt32LE(12) }
        return
      case PduType.CapsuleResp:
        this.status.set(p.readUInt16LE(20), (p.readUInt16LE(22) >>> 1) & 0x7ff)
        return
      case PduType.C2HData: {
        const cid = p.readUInt16LE(8)
        const datal = p.readUInt32LE(16)
        const data = p.subarray(pdo, pdo + datal)
        if (dd !== this.g.dd) this.bad.push(`C2HData: DDGSTF ${dd}`)
        if (dd && p.readUInt32LE(pdo + datal) !== crc32c(data)) this.bad.push('C2HData: data digest')
        if (pdo + datal + (dd ? DIGEST_SIZE : 0) !== p.length) this.bad.push(`C2HData: PDO ${pdo} DATAL ${datal} PLEN ${p.length}`)
        let l = this.c2h.get(cid)
        if (l === undefined) this.c2h.set(cid, (l = []))
        l.push(Buffer.from(data))
        if ((flags & PduFlag.SUCCESS) !== 0) this.status.set(cid, 0)
        return
      }
      case PduType.R2T:
        this.r2ts.push({ cid: p.readUInt16LE(8), ttag: p.readUInt16LE(10), offset: p.readUInt32LE(12), length: p.readUInt32LE(16) })
        return
      case PduType.C2HTermReq:
        this.term = { fes: p.readUInt16LE(8), fei: p.readUInt32LE(10), hlen, plen: p.length, data: new Uint8Array(p.subarray(hlen)) }
        return
      default:
        this.bad.push(`unexpected PDU type ${type}`)
    }
  }

  /** Ends our side; resolves once the connection has closed. */
  async finish(ms = 5000): Promise<void> {
    this.socket.end()
    await this.until(() => this.closed, ms, 'the connection closes after our FIN')
  }
}

// ---- the fuzzer ----

interface Stats {
  sessions: number
  pdus: number
  faults: Record<string, number>
  terms: Record<string, number>
  ops: number
}

const FAULTS = [
  'none',
  'type-c2h',
  'type-unknown',
  'icreq-again',
  'hlen',
  'hdgstf',
  'ddgstf',
  'plen-short',
  'pdo',
  'hdgst',
  'icd-limit',
  'h2c-unsolicited',
  'h2c-cccid',
  'h2c-offset',
  'h2c-beyond',
  'h2c-datal',
  'h2c-limit',
  'ddgst-capsule',
  'ddgst-h2c',
  'truncate',
  'garbage',
  'mutate',
  'flood',
  'h2c-termreq',
  'pre-icreq-capsule',
  'icreq-pfv',
  'icreq-hpda',
  'dribble',
] as const
type Fault = (typeof FAULTS)[number]

const FES_VALID = new Set<number>(Object.values(TermReqFes))

class Fuzzer {
  readonly f: TargetFixture
  readonly cntlid: number
  readonly hostid: Uint8Array
  readonly model = new Uint8Array(SLOTS * REGION * BS)
  readonly stats: Stats = { sessions: 0, pdus: 0, faults: {}, terms: {}, ops: 0 }

  constructor(f: TargetFixture, cntlid: number, hostid: Uint8Array) {
    this.f = f
    this.cntlid = cntlid
    this.hostid = hostid
  }

  #send(c: Conn, b: Uint8Array): void {
    this.stats.pdus++
    c.send(b)
  }

  /** A connection through ICReq/ICResp, with digests as `g` says. */
  async #open(g: Digests): Promise<Conn> {
    const c = await Conn.open(this.f.port)
    c.g = g
    this.#send(c, icreq(g))
    await c.until(() => c.icresp !== null || c.closed, 5000, 'ICResp')
    if (c.icresp === null) throw new Error('no ICResp')
    return c
  }

  async #connect(c: Conn, qid: number, cattr: number): Promise<void> {
    const data = new Uint8Array(CONNECT_DATA_SIZE)
    encodeConnectData(data, { hostid: this.hostid, cntlid: this.cntlid, subnqn: SUBNQN, hostnqn: HOSTNQN })
    for (let tries = 0; ; tries++) {
      const cid = c.cid()
      this.#send(
        c,
        capsule(
          c.g,
          cid,
          (v) => {
            encodeConnect(v, { recfmt: 0, qid, sqsize: 31, cattr, kato: 0 })
            v.setUint32(32, CONNECT_DATA_SIZE, true)
            v.setUint8(39, TcpSgl.InCapsule)
          },
          data,
        ),
      )
      await c.until(() => c.status.has(cid) || c.closed, 5000, 'Connect response')
      const st = c.status.get(cid)
      if (st === 0) return
      // the qid's last connection may still be closing on the target's side
      if (tries > 200) throw new Error(`Connect qid ${qid}: status ${st?.toString(16)}h`)
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  /** Valid commands on distinct slices, pipelined; checks every answer against the model. */
  async #valid(c: Conn, slot: number, rng: Rng, n: number, dribble: boolean): Promise<void> {
    const slices = Array.from({ length: SLICES }, (_, i) => i)
    const wire: Uint8Array[] = []
    const checks: (() => void)[] = []
    const cids: number[] = []
    const writes: { cid: number; data: Uint8Array; lba: number }[] = []
    const r2tData = new Map<number, Uint8Array>()
    for (let k = 0; k < n; k++) {
      const slice = slices.splice(rng.int(slices.length), 1)[0]!
      const lba = slot * REGION + slice * SLICE_BLOCKS
      const cid = c.cid()
      cids.push(cid)
      const kind = rng.int(4)
      if (kind === 0) {
        const blocks = 1 + rng.int(ICD_MAX / BS)
        const data = rng.bytes(blocks * BS)
        wire.push(capsule(c.g, cid, rw(0x01, lba, blocks, TcpSgl.InCapsule), data))
        writes.push({ cid, data, lba })
      } else if (kind === 1) {
        const blocks = 1 + rng.int(SLICE_BLOCKS)
        const data = rng.bytes(blocks * BS)
        wire.push(capsule(c.g, cid, rw(0x01, lba, blocks, TcpSgl.Transport)))
        writes.push({ cid, data, lba })
        r2tData.set(cid, data)
      } else if (kind === 2) {
        const blocks = 1 + rng.int(SLICE_BLOCKS)
        const want = this.model.slice(lba * BS, (lba + blocks) * BS)
        wire.push(capsule(c.g, cid, rw(0x02, lba, blocks, TcpSgl.Transport)))
        checks.push(() => {
          const got = Buffer.concat(c.c2h.get(cid) ?? [])
          if (!Buffer.from(want).equals(got)) throw new Error(`read cid ${cid} LBA ${lba}+${blocks}: data differs from the model`)
        })
      } else wire.push(capsule(c.g, cid, (v) => (v.setUint8(0, 0x00), v.setUint32(4, 1, true))))
    }
    for (const b of wire) {
      if (dribble) {
        for (let i = 0; i < b.length; ) {
          const n = 1 + rng.int(7)
          this.#sendRaw(c, b.subarray(i, Math.min(b.length, i + n)))
          i += n
          if (rng.bool(0.3)) await new Promise((r) => setImmediate(r))
        }
        this.stats.pdus++
      } else this.#send(c, b)
    }
    // answer the R2Ts as they come: H2CData in random pieces
    const answered = new Set<number>()
    await c.until(
      () => {
        for (const r of c.r2ts) {
          const data = r2tData.get(r.cid)
          if (data === undefined || answered.has(r.cid)) continue
          answered.add(r.cid)
          if (r.offset !== 0 || r.length !== data.length) throw new Error(`R2T cid ${r.cid}: offset ${r.offset} length ${r.length}, ${data.length} wanted`)
          for (let at = 0; at < data.length; ) {
            const len = Math.min(data.length - at, 1 + rng.int(data.length))
            this.#send(c, h2c(c.g, r.cid, r.ttag, at, data.subarray(at, at + len), at + len === data.length))
            at += len
          }
        }
        return cids.every((x) => c.status.has(x)) || c.closed
      },
      10000,
      'answers to valid commands',
    )
    if (c.closed) throw new Error(`the connection closed during valid traffic${c.term === null ? '' : `, C2HTermReq FES ${c.term.fes.toString(16)}h FEI ${c.term.fei}`}`)
    for (const x of cids) if (c.status.get(x) !== 0) throw new Error(`cid ${x}: status ${c.status.get(x)?.toString(16)}h`)
    for (const ch of checks) ch()
    for (const w of writes) this.model.set(w.data, w.lba * BS)
    this.stats.ops += n
  }

  #sendRaw(c: Conn, b: Uint8Array): void {
    c.send(b)
  }

  /** Waits for the C2HTermReq and the close; checks FES, FEI and the header it carries. */
  async #expectTerm(c: Conn, fes: number, fei: number, offending: Uint8Array, what: string): Promise<void> {
    await c.until(() => c.closed, 5000, `${what}: the connection ends`)
    const t = c.term
    if (t === null) throw new Error(`${what}: closed without a C2HTermReq`)
    this.#wellFormed(t, what)
    if (t.fes !== fes || t.fei !== fei) throw new Error(`${what}: C2HTermReq FES ${t.fes.toString(16)}h FEI ${t.fei}, wanted FES ${fes.toString(16)}h FEI ${fei}`)
    // the data is the PDU in error's header (as much of it as had arrived)
    if (t.data.length < 8 || !Buffer.from(offending.subarray(0, t.data.length)).equals(Buffer.from(t.data))) throw new Error(`${what}: the C2HTermReq's data is not the offending PDU's header`)
    this.#count(t)
  }

  #wellFormed(t: Term, what: string): void {
    if (t.hlen !== TERM_REQ_HLEN || t.plen !== TERM_REQ_HLEN + t.data.length || t.data.length > TERM_REQ_MAX_DATA) throw new Error(`${what}: C2HTermReq HLEN ${t.hlen} PLEN ${t.plen}`)
    if (!FES_VALID.has(t.fes)) throw new Error(`${what}: C2HTermReq FES ${t.fes.toString(16)}h is not one the specification defines`)
  }

  #count(t: Term): void {
    const k = `${t.fes.toString(16).padStart(2, '0')}h`
    this.stats.terms[k] = (this.stats.terms[k] ?? 0) + 1
  }

  /** One session on I/O queue `slot + 1`. */
  async session(slot: number, seed: number): Promise<void> {
    const rng = new Rng(seed)
    const fault: Fault = rng.pick(FAULTS)
    this.stats.faults[fault] = (this.stats.faults[fault] ?? 0) + 1
    this.stats.sessions++
    const g: Digests = { hd: rng.bool(), dd: rng.bool() }
    const what = `session seed ${seed} (${fault}, hd ${g.hd}, dd ${g.dd})`
    try {
      await this.#session(slot, rng, fault, g, what)
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`)
    }
  }

  async #session(slot: number, rng: Rng, fault: Fault, g: Digests, what: string): Promise<void> {
    // faults before ICReq: a fresh socket
    if (fault === 'pre-icreq-capsule' || fault === 'icreq-pfv' || fault === 'icreq-hpda') {
      const c = await Conn.open(this.f.port)
      c.g = g
      const b = fault === 'pre-icreq-capsule' ? capsule(g, 1, (v) => v.setUint8(0, 0x00)) : icreq(g, fault === 'icreq-pfv' ? { pfv: 1 + rng.int(0xffff) } : { hpda: 32 + rng.int(224) })
      this.#send(c, b)
      const [fes, fei] = fault === 'pre-icreq-capsule' ? [TermReqFes.PduSequenceError, 0] : [TermReqFes.UnsupportedParameter, fault === 'icreq-pfv' ? 8 : 10]
      await this.#expectTerm(c, fes, fei, b, what)
      return this.#done(c, what)
    }
    const c = await this.#open(g)
    const qid = slot + 1
    const cattr = rng.bool(0.3) ? ConnectAttribute.DisableSqFlowControl : 0
    await this.#connect(c, qid, cattr)
    await this.#valid(c, slot, rng, rng.int(9), fault === 'dribble')
    const lba = slot * REGION + rng.int(SLICES) * SLICE_BLOCKS
    const T = (fes: number, fei: number, b: Uint8Array) => {
      this.#send(c, b)
      return this.#expectTerm(c, fes, fei, b, what)
    }
    /** a write asking for R2T, and the R2T */
    const r2t = async (blocks: number): Promise<R2T> => {
      const cid = c.cid()
      this.#send(c, capsule(g, cid, rw(0x01, lba, blocks, TcpSgl.Transport)))
      await c.until(() => c.r2ts.some((r) => r.cid === cid) || c.closed, 5000, 'R2T')
      return c.r2ts.find((r) => r.cid === cid)!
    }
    switch (fault) {
      case 'none':
      case 'dribble':
        break
      case 'type-c2h': {
        const type = rng.pick([PduType.ICResp, PduType.C2HTermReq, PduType.CapsuleResp, PduType.C2HData, PduType.R2T])
        const b = new Uint8Array(PDU_HLEN[type]!)
        b[0] = type
        b[2] = b.length
        new DataView(b.buffer).setUint32(4, b.length, true)
        await T(TermReqFes.InvalidPduHeaderField, 0, b)
        break
      }
      case 'type-unknown': {
        const b = rng.bytes(8 + rng.int(64))
        b[0] = 0x0a + rng.int(0xf6)
        await T(TermReqFes.InvalidPduHeaderField, 0, b)
        break
      }
      case 'icreq-again':
        await T(TermReqFes.PduSequenceError, 0, icreq(g))
        break
      case 'hlen': {
        const b = capsule(g, c.cid(), rw(0x02, lba, 1, TcpSgl.Transport))
        let h = rng.int(256)
        if (h === CAPSULE_CMD_HLEN) h++
        b[2] = h
        await T(TermReqFes.InvalidPduHeaderField, 2, b)
        break
      }
      case 'hdgstf': {
        const b = capsule(g, c.cid(), rw(0x02, lba, 1, TcpSgl.Transport))
        b[1]! ^= PduFlag.HDGSTF
        await T(TermReqFes.InvalidPduHeaderField, 1, b)
        break
      }
      case 'ddgstf': {
        const b = capsule(g, c.cid(), rw(0x01, lba, 1, TcpSgl.InCapsule), rng.bytes(BS))
        b[1]! ^= PduFlag.DDGSTF
        await T(TermReqFes.InvalidPduHeaderField, 1, b)
        break
      }
      case 'plen-short': {
        const b = capsule(g, c.cid(), rw(0x02, lba, 1, TcpSgl.Transport))
        new DataView(b.buffer).setUint32(4, rng.int(CAPSULE_CMD_HLEN + (g.hd ? DIGEST_SIZE : 0)), true)
        await T(TermReqFes.InvalidPduHeaderField, 4, b)
        break
      }
      case 'pdo': {
        const b = capsule(g, c.cid(), rw(0x01, lba, 1, TcpSgl.InCapsule), rng.bytes(BS))
        b[3] = rng.int(CAPSULE_CMD_HLEN + (g.hd ? DIGEST_SIZE : 0))
        await T(TermReqFes.InvalidPduHeaderField, 3, b)
        break
      }
      case 'hdgst': {
        const b = capsule({ hd: true, dd: g.dd }, c.cid(), rw(0x02, lba, 1, TcpSgl.Transport))
        if (!g.hd) {
          // no header digests on this connection: the flag is the error
          await T(TermReqFes.InvalidPduHeaderField, 1, b)
          break
        }
        b[CAPSULE_CMD_HLEN + rng.int(4)]! ^= 1 + rng.int(255)
        await T(TermReqFes.HeaderDigestError, 0, b)
        break
      }
      case 'icd-limit': {
        const blocks = ICD_MAX / BS + 1 + rng.int(8)
        await T(TermReqFes.DataTransferLimitExceeded, 4, capsule(g, c.cid(), rw(0x01, lba, blocks, TcpSgl.InCapsule), rng.bytes(blocks * BS)))
        break
      }
      case 'h2c-unsolicited':
        await T(TermReqFes.InvalidPduHeaderField, 10, h2c(g, c.cid(), rng.int(0x10000), 0, rng.bytes(BS), true))
        break
      case 'h2c-cccid': {
        const r = await r2t(2)
        await T(TermReqFes.InvalidPduHeaderField, 8, h2c(g, (r.cid + 1 + rng.int(0xfffe)) & 0xffff, r.ttag, 0, rng.bytes(r.length), true))
        break
      }
      case 'h2c-offset': {
        const r = await r2t(4)
        await T(TermReqFes.DataTransferOutOfRange, 12, h2c(g, r.cid, r.ttag, 1 + rng.int(r.length - 1), rng.bytes(BS), false))
        break
      }
      case 'h2c-beyond': {
        // data beyond what the R2T granted: more than R2TL from its start, or a second PDU past the end
        const r = await r2t(1 + rng.int(8))
        if (rng.bool()) await T(TermReqFes.DataTransferOutOfRange, 12, h2c(g, r.cid, r.ttag, 0, rng.bytes(r.length + 1 + rng.int(BS)), true))
        else {
          const first = r.length - BS
          if (first > 0) this.#send(c, h2c(g, r.cid, r.ttag, 0, rng.bytes(first), false))
          await T(TermReqFes.DataTransferOutOfRange, 12, h2c(g, r.cid, r.ttag, Math.max(first, 0), rng.bytes(BS + 1 + rng.int(BS)), true))
        }
        break
      }
      case 'h2c-datal': {
        const r = await r2t(2)
        await T(TermReqFes.InvalidPduHeaderField, 16, h2c(g, r.cid, r.ttag, 0, rng.bytes(r.length), true, r.length + 1 + rng.int(64)))
        break
      }
      case 'h2c-limit': {
        const r = await r2t(2)
        await T(TermReqFes.DataTransferLimitExceeded, 16, h2c(g, r.cid, r.ttag, 0, new Uint8Array(c.icresp!.maxh2c + BS), true))
        break
      }
      case 'ddgst-capsule':
      case 'ddgst-h2c': {
        if (!g.dd) break
        // a data digest error fails the command, writes nothing, and the connection goes on
        const blocks = 1 + rng.int(8)
        const data = rng.bytes(blocks * BS)
        let cid: number
        if (fault === 'ddgst-capsule') {
          cid = c.cid()
          const b = capsule(g, cid, rw(0x01, lba, blocks, TcpSgl.InCapsule), data)
          b[b.length - 1 - rng.int(4)]! ^= 1 + rng.int(255)
          this.#send(c, b)
        } else {
          const r = await r2t(blocks)
          cid = r.cid
          const b = h2c(g, r.cid, r.ttag, 0, data, true)
          b[b.length - 1 - rng.int(4)]! ^= 1 + rng.int(255)
          this.#send(c, b)
        }
        await c.until(() => c.status.has(cid) || c.closed, 5000, 'the failed write answered')
        if (c.status.get(cid) !== NvmeStatus.TransientTransportError) throw new Error(`data digest error: status ${c.status.get(cid)?.toString(16)}h, wanted Transient Transport Error`)
        await this.#valid(c, slot, rng, 3, false)
        // read the slice back: the failed write left it as it was
        const rcid = c.cid()
        this.#send(c, capsule(g, rcid, rw(0x02, lba, blocks, TcpSgl.Transport)))
        await c.until(() => c.status.has(rcid) || c.closed, 5000, 'the read back')
        const got = Buffer.concat(c.c2h.get(rcid) ?? [])
        if (!got.equals(Buffer.from(this.model.subarray(lba * BS, (lba + blocks) * BS)))) throw new Error('a write that failed its data digest changed the namespace')
        break
      }
      case 'truncate': {
        // a PDU cut short, then our FIN: a plain close, nothing answered
        const cid = c.cid()
        const b = capsule(g, cid, rw(0x01, lba, 2, TcpSgl.InCapsule), rng.bytes(2 * BS))
        this.#send(c, b.subarray(0, 1 + rng.int(b.length - 1)))
        await c.finish()
        if (c.term !== null) throw new Error(`a truncated PDU drew C2HTermReq FES ${c.term.fes.toString(16)}h`)
        if (c.status.has(cid)) throw new Error('a truncated write was answered')
        return this.#done(c, what)
      }
      case 'garbage':
      case 'mutate': {
        let b: Uint8Array
        const cid = c.cid()
        const data = rng.bytes(BS)
        const write = fault === 'mutate' && rng.bool()
        if (fault === 'garbage') b = rng.bytes(1 + rng.int(600))
        else {
          b = write ? capsule(g, cid, rw(0x01, lba, 1, TcpSgl.InCapsule), data) : capsule(g, cid, rw(0x02, lba, 1, TcpSgl.Transport))
          // the common header only: a mutated SQE could be a valid write elsewhere
          for (let k = 1 + rng.int(4); k > 0; k--) b[rng.int(8)] = rng.u32() & 0xff
        }
        this.#send(c, b)
        // whatever it was, the target answers, ends the connection, or waits for more bytes
        // (a PLEN made larger): then our FIN. A write the target took (a flag bit it ignores)
        // is in the model.
        await c.until(() => c.status.has(cid) || c.closed, 100, 'an answer').catch(() => {})
        if (write && c.status.get(cid) === 0) this.model.set(data, lba * BS)
        if (!c.closed) await c.finish()
        if (c.term !== null) {
          this.#wellFormed(c.term, what)
          this.#count(c.term)
        }
        // whatever the mutated write was, the model's range must still read as the model says
        return this.#done(c, what)
      }
      case 'flood': {
        // far more capsules than the queue's 32 entries at once: the target stops reading
        // while its requests are busy, or ends the connection; never buffers without bound
        const n = 300 + rng.int(300)
        const cids: number[] = []
        const parts: Uint8Array[] = []
        for (let k = 0; k < n; k++) {
          const cid = c.cid()
          cids.push(cid)
          parts.push(capsule(g, cid, (v) => (v.setUint8(0, 0x00), v.setUint32(4, 1, true))))
        }
        this.stats.pdus += n
        c.send(Buffer.concat(parts))
        await c.until(() => cids.every((x) => c.status.has(x)) || c.closed, 10000, 'the flood answered or ended')
        if (c.closed) {
          if (c.term === null) throw new Error('the flood: closed without a C2HTermReq')
          if (c.term.fes !== TermReqFes.InvalidPduHeaderField) throw new Error(`the flood: FES ${c.term.fes.toString(16)}h`)
          this.#count(c.term)
          return this.#done(c, what)
        }
        for (const x of cids) if (c.status.get(x) !== 0) throw new Error(`the flood: Flush status ${c.status.get(x)?.toString(16)}h`)
        break
      }
      case 'h2c-termreq': {
        const b = new Uint8Array(TERM_REQ_HLEN)
        b[0] = PduType.H2CTermReq
        b[2] = TERM_REQ_HLEN
        new DataView(b.buffer).setUint32(4, TERM_REQ_HLEN, true)
        new DataView(b.buffer).setUint16(8, TermReqFes.InvalidPduHeaderField, true)
        this.#send(c, b)
        await c.until(() => c.closed, 5000, 'the target closes after H2CTermReq')
        if (c.term !== null) throw new Error('the target answered an H2CTermReq with a C2HTermReq')
        return this.#done(c, what)
      }
    }
    if (!c.closed) {
      // the connection is still good: one more valid round, then a clean close
      await this.#valid(c, slot, rng, 2, false)
      await c.finish()
      if (c.term !== null) throw new Error(`C2HTermReq FES ${c.term.fes.toString(16)}h on a healthy connection`)
    }
    return this.#done(c, what)
  }

  async #done(c: Conn, what: string): Promise<void> {
    if (!c.closed) await c.finish()
    if (c.bad.length > 0) throw new Error(`the target sent PDUs that are wrong: ${c.bad.slice(0, 3).join('; ')}`)
    if (c.afterTerm > 0) throw new Error(`${c.afterTerm} PDUs after the C2HTermReq`)
    // the target's side is gone too before the slot's qid is used again
    const me = `${c.socket.localAddress}:${c.socket.localPort}`
    await until(() => ![...this.f.tcp.connections].some((q) => q.peer === me), 5000, `${what}: the target drops the connection`)
  }
}

/** A host that does verified writes and reads on its own range the whole time. */
function healthy(f: TargetFixture, h: NvmfHost, stop: () => boolean): Promise<{ ops: number; errors: string[] }> {
  const pm = f.pm
  const bufs = [0, 1].map(() => pm.ipuAllocator.alloc(16 * BS))
  const errors: string[] = []
  let ops = 0
  const io = (q: number, write: boolean, lba: number, blocks: number, addr: number) =>
    new Promise<number>((resolve) => {
      const rc = h.rw(q, write, 1, lba, blocks, new IoVecList(1).push(addr, blocks * BS), (_: null, c) => resolve(c.status), null)
      if (rc !== 0) resolve(-rc)
    })
  const lane = async (q: number) => {
    const buf = bufs[q]!
    let seed = 1 + q
    while (!stop()) {
      const blocks = 1 + (seed % 16)
      const lba = HEALTHY_LBA + q * (HEALTHY_BLOCKS / 2) + ((seed * 7) % (HEALTHY_BLOCKS / 2 - 16))
      const want = new Uint8Array(blocks * BS).map((_, i) => (i * 31 + seed) & 0xff)
      pm.bytes.set(want, buf)
      const w = await io(q, true, lba, blocks, buf)
      pm.bytes.fill(0, buf, buf + blocks * BS)
      const r = await io(q, false, lba, blocks, buf)
      if (w !== 0 || r !== 0) errors.push(`write ${w.toString(16)}h read ${r.toString(16)}h`)
      else if (!Buffer.from(pm.bytes.subarray(buf, buf + blocks * BS)).equals(Buffer.from(want))) errors.push(`LBA ${lba}: data differs`)
      ops += 2
      seed++
    }
  }
  return Promise.all([lane(0), lane(1)]).then(() => {
    for (const b of bufs) pm.ipuAllocator.free(b)
    return { ops, errors }
  })
}

describe('the PDU fuzzer', () => {
  let f: TargetFixture
  let admin: RawHost
  let fz: Fuzzer

  beforeAll(async () => {
    f = await targetFixture({ blocks: HEALTHY_LBA + HEALTHY_BLOCKS })
    admin = await RawHost.open(f.port)
    const cntlid = await admin.admin(SUBNQN, HOSTNQN)
    const nq = await admin.command((v) => (v.setUint8(0, AdminOpcode.SetFeatures), v.setUint32(40, 0x07, true), v.setUint32(44, ((SLOTS - 1) << 16) | (SLOTS - 1), true)))
    expect(nq.status).toBe(0)
    fz = new Fuzzer(f, cntlid, admin.hostid)
  })

  afterAll(async () => {
    await admin?.close()
    await f?.close()
  })

  it('thousands of connections of valid and broken PDUs: the right C2HTermReq each time, no hang, no harm to the others', { timeout: 1_800_000 }, async () => {
    const sessions = fuzzRuns(1000)
    const h = await f.host({ hdgst: true, ddgst: true, ioQueues: 2, hostnqn: 'nqn.2026-12.io.ipukit:healthy' })
    const iobuf = f.target.ch.accel.iobuf
    const freeBefore = f.pm.ipuAllocator.available
    let stop = false
    const good = healthy(f, h, () => stop)
    const t0 = performance.now()
    const base = 0x1f00d
    let next = 0
    const failures: string[] = []
    await Promise.all(
      Array.from({ length: SLOTS }, async (_, slot) => {
        while (failures.length === 0) {
          const k = next++
          if (k >= sessions) return
          await fz.session(slot, base + k).catch((e: Error) => failures.push(e.message))
        }
      }),
    )
    const ms = performance.now() - t0
    stop = true
    const healthyRun = await good
    expect(failures).toEqual([])
    const s = fz.stats
    console.log(
      `fuzz-pdu: ${s.sessions} sessions, ${s.pdus} PDUs sent (${s.ops} valid commands checked) in ${(ms / 1000).toFixed(1)} s; ` +
        `C2HTermReqs by FES ${JSON.stringify(s.terms)}; healthy host ${healthyRun.ops} verified I/Os`,
    )
    // every fault ran, every FES the target can send was seen
    for (const x of FAULTS) expect(s.faults[x] ?? 0, x).toBeGreaterThan(0)
    for (const fes of ['01h', '02h', '03h', '04h', '05h', '06h']) expect(s.terms[fes] ?? 0, `FES ${fes}`).toBeGreaterThan(0)
    // the healthy host never noticed
    expect(healthyRun.errors).toEqual([])
    expect(healthyRun.ops).toBeGreaterThan(0)
    expect(h.stats.reconnects).toBe(0)
    expect(h.stats.termReqs).toBe(0)
    // and nothing the fuzz connections held is still held
    await h.close()
    await until(() => f.tcp.connections.size === 1, 5000, 'only the harness admin queue stays')
    await until(() => iobuf.waiting(0) === 0 && iobuf.waiting(1) === 0, 2000, 'no one waits for an iobuf buffer')
    expect(f.pm.ipuAllocator.available).toBeGreaterThanOrEqual(freeBefore)
  })

  it('a storm of connections that open, send part of an ICReq or nothing, and vanish', async () => {
    const before = f.tcp.connections.size
    const rng = new Rng(77)
    const n = fuzzRuns(200)
    for (let done = 0; done < n; done += 200) await Promise.all(
      Array.from({ length: Math.min(200, n - done) }, async () => {
        const c = await Conn.open(f.port)
        const k = rng.int(3)
        if (k === 1) c.send(icreq({ hd: false, dd: false }).subarray(0, 1 + rng.int(ICREQ_SIZE - 1)))
        if (k === 2) c.send(icreq({ hd: rng.bool(), dd: rng.bool() }))
        if (rng.bool()) c.socket.destroy()
        else await c.finish()
      }),
    )
    await until(() => f.tcp.connections.size === before, 5000, 'every storm connection is dropped')
    // the target still serves
    const c = await Conn.open(f.port)
    c.send(icreq({ hd: true, dd: true }))
    await c.until(() => c.icresp !== null, 2000, 'ICResp after the storm')
    await c.finish()
  })
})
