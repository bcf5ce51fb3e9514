// NVMe/TCP PDUs (NVM Express TCP Transport Specification 1.0, §3.6): a common header, a
// PDU-specific header, an optional header digest, padding to the data offset, data, and an
// optional data digest. Everything little-endian.
//
//   Common header (CH), 8 bytes, every PDU (§3.6.1):
//
//    0        1        2        3        4                                   8
//   +--------+--------+--------+--------+-----------------------------------+
//   |  TYPE  | FLAGS  |  HLEN  |  PDO   |            PLEN (u32)             |
//   +--------+--------+--------+--------+-----------------------------------+
//
//   HLEN  header length, CH included, header digest excluded
//   PDO   offset of the PDU's data from its start (0: no data)
//   PLEN  the whole PDU: header, header digest, padding, data, data digest
//
//   A data PDU on the wire:
//
//   | CH + PSH (HLEN) | HDGST (4)? | PAD (to PDO) | DATA (PLEN - PDO - DDGST) | DDGST (4)? |
//
//   ICReq / ICResp (HLEN 128, §3.6.2.2-3):        CapsuleCmd (HLEN 72, §3.6.2.5):
//    8  PFV (u16)                                   8   SQE (64 bytes)
//   10  HPDA / CPDA (u8, dwords, 0's based)       CapsuleResp (HLEN 24, §3.6.2.6):
//   11  DGST: bit 0 HDGST_ENABLE, 1 DDGST_ENABLE    8   CQE (16 bytes)
//   12  MAXR2T (ICReq, 0's based) /
//       MAXH2CDATA (ICResp, bytes) (u32)
//   16  reserved (112 bytes)
//
//   H2CData / C2HData / R2T (HLEN 24, §3.6.2.7-8, §3.6.2.10):
//    8  CCCID (u16)   10  TTAG (u16; C2HData: reserved)
//   12  DATAO / R2TO (u32)   16  DATAL / R2TL (u32)   20  reserved (4)
//
//   H2CTermReq / C2HTermReq (HLEN 24, §3.6.2.4):
//    8  FES (u16)   10  FEI (u32)   14  reserved (10); then the offending PDU's header (at
//   most 128 bytes) as data: PLEN 24 to 152
import { NvmfError } from '../errors.js'

/** PDU-Type (§3.6.1, Figure "PDU Types"). */
export const PduType = {
  ICReq: 0x00,
  ICResp: 0x01,
  H2CTermReq: 0x02,
  C2HTermReq: 0x03,
  CapsuleCmd: 0x04,
  CapsuleResp: 0x05,
  H2CData: 0x06,
  C2HData: 0x07,
  R2T: 0x09,
} as const
export type PduTypeValue = (typeof PduType)[keyof typeof PduType]

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(PduType).map(([k, v]) => [v, k]))
export function pduTypeName(t: number): string {
  return NAMES[t] ?? `reserved (${t.toString(16).padStart(2, '0')}h)`
}

/** FLAGS (§3.6.1). */
export const PduFlag = {
  /** a header digest follows the header */
  HDGSTF: 0x01,
  /** a data digest follows the data */
  DDGSTF: 0x02,
  /** the last data PDU of a command's transfer (H2CData, C2HData) */
  LAST_PDU: 0x04,
  /** C2HData: the command succeeded and no CapsuleResp follows (needs SQ flow control disabled) */
  SUCCESS: 0x08,
} as const

/** Fatal Error Status of a TermReq (§3.6.2.4, Figures "H2CTermReq/C2HTermReq FES Values"). */
export const TermReqFes = {
  InvalidPduHeaderField: 0x01,
  PduSequenceError: 0x02,
  HeaderDigestError: 0x03,
  /** C2HTermReq only */
  DataTransferOutOfRange: 0x04,
  /** C2HTermReq: Data Transfer Limit Exceeded; H2CTermReq: R2T Limit Exceeded */
  DataTransferLimitExceeded: 0x05,
  UnsupportedParameter: 0x06,
} as const

export const CH_SIZE = 8
export const ICREQ_SIZE = 128
export const ICRESP_SIZE = 128
export const CAPSULE_CMD_HLEN = 72
export const CAPSULE_RESP_HLEN = 24
export const DATA_HLEN = 24
export const R2T_HLEN = 24
export const TERM_REQ_HLEN = 24
/** a TermReq carries at most this much of the PDU header in error */
export const TERM_REQ_MAX_DATA = 128
export const DIGEST_SIZE = 4
/** NVMe/TCP's PFV 1.0 */
export const PFV_1_0 = 0
/** the largest HPDA / CPDA (dwords, 0's based: 128-byte alignment) */
export const PDA_MAX = 31

/** The header length each PDU type must have. */
export const PDU_HLEN: Readonly<Record<number, number>> = {
  [PduType.ICReq]: ICREQ_SIZE,
  [PduType.ICResp]: ICRESP_SIZE,
  [PduType.H2CTermReq]: TERM_REQ_HLEN,
  [PduType.C2HTermReq]: TERM_REQ_HLEN,
  [PduType.CapsuleCmd]: CAPSULE_CMD_HLEN,
  [PduType.CapsuleResp]: CAPSULE_RESP_HLEN,
  [PduType.H2CData]: DATA_HLEN,
  [PduType.C2HData]: DATA_HLEN,
  [PduType.R2T]: R2T_HLEN,
}

/** PDU types that carry a header digest when HDGST is enabled (all but ICReq, ICResp and the TermReqs, §3.6.1). */
export function hasHeaderDigest(type: number): boolean {
  return type === PduType.CapsuleCmd || type === PduType.CapsuleResp || type === PduType.H2CData || type === PduType.C2HData || type === PduType.R2T
}

/** PDU types that may carry data, and so a data digest when DDGST is enabled. */
export function mayHaveData(type: number): boolean {
  return type === PduType.CapsuleCmd || type === PduType.H2CData || type === PduType.C2HData
}

export interface CommonHeader {
  type: number
  flags: number
  hlen: number
  pdo: number
  plen: number
}

export function readCommonHeader(v: DataView, at = 0): CommonHeader {
  return { type: v.getUint8(at), flags: v.getUint8(at + 1), hlen: v.getUint8(at + 2), pdo: v.getUint8(at + 3), plen: v.getUint32(at + 4, true) }
}

export function writeCommonHeader(v: DataView, at: number, h: CommonHeader): void {
  v.setUint8(at, h.type)
  v.setUint8(at + 1, h.flags)
  v.setUint8(at + 2, h.hlen)
  v.setUint8(at + 3, h.pdo)
  v.setUint32(at + 4, h.plen >>> 0, true)
}

/**
 * Where a data PDU's data starts: after the header and its digest, aligned up to the
 * receiver's PDA ((pda + 1) dwords; 0 means none, §3.6.1: "PDO ... shall be a multiple of
 * (HPDA + 1) * 4" for C2H PDUs, CPDA for H2C).
 */
export function dataOffset(hlen: number, hdgst: boolean, pda: number): number {
  const at = hlen + (hdgst ? DIGEST_SIZE : 0)
  if (pda === 0) return at
  const align = (pda + 1) * 4
  return Math.ceil(at / align) * align
}

/** The layout of a PDU: its header fields and how long it is on the wire. */
export interface PduLayout {
  hlen: number
  pdo: number
  plen: number
  flags: number
}

/** Lays out a PDU of `type` with `dataLen` bytes of data under the connection's digests and the receiver's PDA. */
export function layoutPdu(type: number, dataLen: number, hdgst: boolean, ddgst: boolean, pda: number, extraFlags = 0): PduLayout {
  const hlen = PDU_HLEN[type]
  if (hlen === undefined) throw new NvmfError('NVMF_BAD_ARGUMENT', `no layout for PDU type ${pduTypeName(type)}`)
  const hd = hdgst && hasHeaderDigest(type)
  const dd = ddgst && dataLen > 0 && mayHaveData(type)
  let flags = extraFlags
  if (hd) flags |= PduFlag.HDGSTF
  if (dd) flags |= PduFlag.DDGSTF
  if (dataLen === 0) return { hlen, pdo: 0, plen: hlen + (hd ? DIGEST_SIZE : 0), flags }
  const pdo = dataOffset(hlen, hd, pda)
  return { hlen, pdo, plen: pdo + dataLen + (dd ? DIGEST_SIZE : 0), flags }
}

// ---- ICReq / ICResp ----

export interface ICReq {
  pfv: number
  /** host PDU data alignment, dwords, 0's based */
  hpda: number
  hdgst: boolean
  ddgst: boolean
  /** R2Ts outstanding per command the host takes, 0's based */
  maxr2t: number
}

export interface ICResp {
  pfv: number
  /** controller PDU data alignment, dwords, 0's based */
  cpda: number
  hdgst: boolean
  ddgst: boolean
  /** the most data an H2CData PDU may carry, bytes */
  maxh2cdata: number
}

export function encodeICReq(v: DataView, at: number, r: ICReq): void {
  for (let i = 0; i < ICREQ_SIZE; i++) v.setUint8(at + i, 0)
  writeCommonHeader(v, at, { type: PduType.ICReq, flags: 0, hlen: ICREQ_SIZE, pdo: 0, plen: ICREQ_SIZE })
  v.setUint16(at + 8, r.pfv, true)
  v.setUint8(at + 10, r.hpda)
  v.setUint8(at + 11, (r.hdgst ? 1 : 0) | (r.ddgst ? 2 : 0))
  v.setUint32(at + 12, r.maxr2t >>> 0, true)
}

export function decodeICReq(v: DataView, at = 0): ICReq {
  const d = v.getUint8(at + 11)
  return { pfv: v.getUint16(at + 8, true), hpda: v.getUint8(at + 10), hdgst: (d & 1) !== 0, ddgst: (d & 2) !== 0, maxr2t: v.getUint32(at + 12, true) }
}

export function encodeICResp(v: DataView, at: number, r: ICResp): void {
  for (let i = 0; i < ICRESP_SIZE; i++) v.setUint8(at + i, 0)
  writeCommonHeader(v, at, { type: PduType.ICResp, flags: 0, hlen: ICRESP_SIZE, pdo: 0, plen: ICRESP_SIZE })
  v.setUint16(at + 8, r.pfv, true)
  v.setUint8(at + 10, r.cpda)
  v.setUint8(at + 11, (r.hdgst ? 1 : 0) | (r.ddgst ? 2 : 0))
  v.setUint32(at + 12, r.maxh2cdata >>> 0, true)
}

export function decodeICResp(v: DataView, at = 0): ICResp {
  const d = v.getUint8(at + 11)
  return { pfv: v.getUint16(at + 8, true), cpda: v.getUint8(at + 10), hdgst: (d & 1) !== 0, ddgst: (d & 2) !== 0, maxh2cdata: v.getUint32(at + 12, true) }
}

// ---- data PDUs and R2T (the fields after the CH) ----

/** CCCID, TTAG, offset, length: H2CData, C2HData (TTAG reserved) and R2T share the layout. */
export interface DataHeader {
  cccid: number
  ttag: number
  /** DATAO / R2TO */
  offset: number
  /** DATAL / R2TL */
  length: number
}

export function writeDataHeader(v: DataView, at: number, h: DataHeader): void {
  v.setUint16(at + 8, h.cccid, true)
  v.setUint16(at + 10, h.ttag, true)
  v.setUint32(at + 12, h.offset >>> 0, true)
  v.setUint32(at + 16, h.length >>> 0, true)
  v.setUint32(at + 20, 0, true)
}

export function readDataHeader(v: DataView, at = 0): DataHeader {
  return { cccid: v.getUint16(at + 8, true), ttag: v.getUint16(at + 10, true), offset: v.getUint32(at + 12, true), length: v.getUint32(at + 16, true) }
}

// ---- TermReq ----

export interface TermReq {
  fes: number
  /** Fatal Error Information: for Invalid PDU Header Field and Unsupported Parameter, the byte offset of the field in error */
  fei: number
}

export function writeTermReq(v: DataView, at: number, type: typeof PduType.H2CTermReq | typeof PduType.C2HTermReq, t: TermReq, dataLen: number): void {
  const plen = TERM_REQ_HLEN + Math.min(dataLen, TERM_REQ_MAX_DATA)
  // PDO 0: the error data simply follows the header (as SPDK's nvmf_tcp_send_c2h_term_req lays it out)
  writeCommonHeader(v, at, { type, flags: 0, hlen: TERM_REQ_HLEN, pdo: 0, plen })
  v.setUint16(at + 8, t.fes, true)
  v.setUint32(at + 10, t.fei >>> 0, true)
  for (let i = 14; i < TERM_REQ_HLEN; i++) v.setUint8(at + i, 0)
}

export function readTermReq(v: DataView, at = 0): TermReq {
  return { fes: v.getUint16(at + 8, true), fei: v.getUint32(at + 10, true) }
}
