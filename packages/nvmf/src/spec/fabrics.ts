// Fabrics commands and the data structures of NVMe over Fabrics (NVMe Base 2.0 §6, and the
// Discovery Log Page, §5.16.1.23), as they sit in a command capsule's SQE and data.
//
//   Fabrics command SQE (opcode 7Fh), the fields every one has (§6.1):
//    0  OPC 7Fh      1  flags (PSDT)     2  CID (u16)     4  FCTYPE (u8)
//   24  SGL1 (16 bytes)                  40  command specific (24 bytes)
//
//   Connect (FCTYPE 01h, §6.3):
//   40  RECFMT (u16, 0)   42  QID (u16)   44  SQSIZE (u16, 0's based)   46  CATTR (u8)
//   48  KATO (u32, ms)
//   Connect data (1024 bytes, in the capsule):
//    0  HOSTID (16)   16  CNTLID (u16: FFFFh dynamic, FFFEh any static)   18  reserved
//   256 SUBNQN (256, UTF-8, NUL terminated)   512 HOSTNQN (256)   768 reserved
//   Connect response DW0: CNTLID (15:0) on success; IPO (15:0) and IATTR (23:16) with
//   Connect Invalid Parameters
//
//   Property Get (04h) / Property Set (00h) (§6.5, §6.6):
//   40  ATTRIB (u8: bits 2:0 size, 0 4 bytes, 1 8 bytes)   44  OFST (u32)
//   48  VALUE (u64, Property Set)           response DW0/DW1: the value (Property Get)
//
//   Disconnect (08h, §6.4): 40 RECFMT (u16)
//
//   Discovery Log Page (LID 70h), a 1024-byte header and 1024 bytes per entry:
//    0  GENCTR (u64)   8  NUMREC (u64)   16  RECFMT (u16)   18  reserved
//   entry: 0 TRTYPE  1 ADRFAM  2 SUBTYPE  3 TREQ  4 PORTID (u16)  6 CNTLID (u16)
//          8 ASQSZ (u16)  10 EFLAGS (u16)  32 TRSVCID (32, ASCII, space padded)
//        256 SUBNQN (256, NUL padded)  512 TRADDR (256, ASCII, space padded)
//        768 TSAS (256; TCP: byte 0 SECTYPE)
import { NvmfError } from '../errors.js'

export const FABRICS_OPCODE = 0x7f
export const CONNECT_DATA_SIZE = 1024
export const NQN_FIELD_SIZE = 256
/** NVMe Base §4.5: an NQN is at most 223 bytes */
export const NQN_MAX_LENGTH = 223
export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery'
/** CNTLID in Connect: the dynamic controller model (any new controller), or any static controller */
export const CNTLID_DYNAMIC = 0xffff
export const CNTLID_ANY_STATIC = 0xfffe

/** CATTR bits (§6.3, Figure "Connect Command"). */
export const ConnectAttribute = {
  /** bit 2: Disable SQ Flow Control (SQHD in CQEs is FFFFh) */
  DisableSqFlowControl: 0x04,
} as const

export interface ConnectCommand {
  recfmt: number
  qid: number
  /** 0's based */
  sqsize: number
  cattr: number
  /** keep-alive timeout, ms (admin queue) */
  kato: number
}

export interface ConnectData {
  hostid: Uint8Array
  cntlid: number
  subnqn: string
  hostnqn: string
}

export function decodeConnect(sqe: DataView): ConnectCommand {
  return { recfmt: sqe.getUint16(40, true), qid: sqe.getUint16(42, true), sqsize: sqe.getUint16(44, true), cattr: sqe.getUint8(46), kato: sqe.getUint32(48, true) }
}

export function encodeConnect(sqe: DataView, c: ConnectCommand): void {
  sqe.setUint8(0, FABRICS_OPCODE)
  sqe.setUint8(4, 0x01)
  sqe.setUint16(40, c.recfmt, true)
  sqe.setUint16(42, c.qid, true)
  sqe.setUint16(44, c.sqsize, true)
  sqe.setUint8(46, c.cattr)
  sqe.setUint32(48, c.kato >>> 0, true)
}

const utf8 = new TextDecoder('utf-8', { fatal: false })
const enc = new TextEncoder()

/** A NUL-terminated (or NUL-padded) string field. */
export function readNulString(b: Uint8Array, at: number, size: number): string {
  let end = at
  while (end < at + size && b[end] !== 0) end++
  return utf8.decode(b.subarray(at, end))
}

/** Writes `s` NUL padded into `size` bytes (at most size - 1 of it). */
export function writeNulString(b: Uint8Array, at: number, size: number, s: string, field: string): void {
  const e = enc.encode(s)
  if (e.length >= size) throw new NvmfError('NVMF_BAD_ARGUMENT', `${field}: ${e.length} bytes do not fit in ${size - 1}`)
  b.fill(0, at, at + size)
  b.set(e, at)
}

/** An ASCII field padded with spaces (TRSVCID, TRADDR). */
export function writeSpaceString(b: Uint8Array, at: number, size: number, s: string, field: string): void {
  const e = enc.encode(s)
  if (e.length > size) throw new NvmfError('NVMF_BAD_ARGUMENT', `${field}: ${e.length} bytes do not fit in ${size}`)
  b.fill(0x20, at, at + size)
  b.set(e, at)
}

export function readSpaceString(b: Uint8Array, at: number, size: number): string {
  return utf8.decode(b.subarray(at, at + size)).replace(/[ \0]+$/, '')
}

export function decodeConnectData(d: Uint8Array): ConnectData {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength)
  return { hostid: d.slice(0, 16), cntlid: v.getUint16(16, true), subnqn: readNulString(d, 256, NQN_FIELD_SIZE), hostnqn: readNulString(d, 512, NQN_FIELD_SIZE) }
}

export function encodeConnectData(d: Uint8Array, c: ConnectData): void {
  if (d.length < CONNECT_DATA_SIZE) throw new NvmfError('NVMF_BAD_ARGUMENT', `Connect data needs ${CONNECT_DATA_SIZE} bytes`)
  d.fill(0, 0, CONNECT_DATA_SIZE)
  if (c.hostid.length !== 16) throw new NvmfError('NVMF_BAD_ARGUMENT', 'HOSTID is 16 bytes')
  d.set(c.hostid, 0)
  new DataView(d.buffer, d.byteOffset).setUint16(16, c.cntlid, true)
  writeNulString(d, 256, NQN_FIELD_SIZE, c.subnqn, 'SUBNQN')
  writeNulString(d, 512, NQN_FIELD_SIZE, c.hostnqn, 'HOSTNQN')
}

/** Connect Invalid Parameters' DW0 (§6.3, Figure "Connect Response"): the byte offset of the bad field, and whether it is in the Connect data (IATTR 1) or the SQE (0). */
export function connectInvalidParameter(offset: number, inData: boolean): number {
  return (offset & 0xffff) | ((inData ? 1 : 0) << 16)
}

/**
 * NQN syntax (NVMe Base §4.5): "nqn.yyyy-mm.<reverse domain>:<name>" or the UUID form
 * "nqn.2014-08.org.nvmexpress:uuid:<uuid>", UTF-8, at most 223 bytes. Returns a reason, or null.
 */
export function nqnProblem(nqn: string): string | null {
  const n = enc.encode(nqn).length
  if (n === 0) return 'is empty'
  if (n > NQN_MAX_LENGTH) return `is ${n} bytes; an NQN is at most ${NQN_MAX_LENGTH}`
  if (nqn === DISCOVERY_NQN) return null
  if (/^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nqn)) return null
  if (!/^nqn\.\d{4}-(0[1-9]|1[0-2])\.[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9](:.+)?$/.test(nqn)) return 'is not of the form nqn.yyyy-mm.reverse.domain[:name]'
  return null
}

// ---- Property Get / Set ----

export interface PropertyCommand {
  /** 4 or 8 bytes, or undefined for a reserved ATTRIB */
  size: 4 | 8 | undefined
  offset: number
  /** Property Set's value (exact below 2^53; CAP and the queue bases fit) */
  value: bigint
}

export function decodeProperty(sqe: DataView): PropertyCommand {
  const attrib = sqe.getUint8(40) & 7
  return { size: attrib === 0 ? 4 : attrib === 1 ? 8 : undefined, offset: sqe.getUint32(44, true), value: sqe.getBigUint64(48, true) }
}

export function encodePropertyGet(sqe: DataView, offset: number, size: 4 | 8): void {
  sqe.setUint8(0, FABRICS_OPCODE)
  sqe.setUint8(4, 0x04)
  sqe.setUint8(40, size === 8 ? 1 : 0)
  sqe.setUint32(44, offset, true)
}

export function encodePropertySet(sqe: DataView, offset: number, size: 4 | 8, value: bigint): void {
  sqe.setUint8(0, FABRICS_OPCODE)
  sqe.setUint8(4, 0x00)
  sqe.setUint8(40, size === 8 ? 1 : 0)
  sqe.setUint32(44, offset, true)
  sqe.setBigUint64(48, value, true)
}

// ---- the Discovery Log Page ----

export const DISCOVERY_LOG_HEADER_SIZE = 1024
export const DISCOVERY_LOG_ENTRY_SIZE = 1024
export const DISCOVERY_LOG_ID = 0x70

/** TRTYPE (NVMe Base §5.16.1.23, Figure "Discovery Log Page Entry"). */
export const TransportType = { RDMA: 1, FC: 2, TCP: 3, Loop: 254 } as const
/** ADRFAM */
export const AddressFamily = { IPv4: 1, IPv6: 2, IB: 3, FC: 4, Loop: 254 } as const
/** SUBTYPE */
export const SubsystemType = { DiscoveryReferral: 1, Nvme: 2, CurrentDiscovery: 3 } as const
/** TREQ bits 1:0 secure channel; bit 2: SQ flow control disable supported */
export const TransportRequirement = { SecureChannelNotSpecified: 0, SecureChannelRequired: 1, SecureChannelNotRequired: 2, SqFlowControlDisableSupported: 4 } as const

export interface DiscoveryLogEntry {
  trtype: number
  adrfam: number
  subtype: number
  treq: number
  portid: number
  cntlid: number
  asqsz: number
  eflags: number
  trsvcid: string
  subnqn: string
  traddr: string
  /** TCP: SECTYPE (0 none) */
  sectype: number
}

export function encodeDiscoveryLog(genctr: bigint, entries: readonly DiscoveryLogEntry[], out: Uint8Array): void {
  const need = DISCOVERY_LOG_HEADER_SIZE + entries.length * DISCOVERY_LOG_ENTRY_SIZE
  if (out.length < need) throw new NvmfError('NVMF_BAD_ARGUMENT', `the discovery log of ${entries.length} entries needs ${need} bytes`)
  out.fill(0, 0, need)
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength)
  v.setBigUint64(0, genctr, true)
  v.setBigUint64(8, BigInt(entries.length), true)
  v.setUint16(16, 0, true)
  entries.forEach((e, i) => {
    const at = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE
    v.setUint8(at, e.trtype)
    v.setUint8(at + 1, e.adrfam)
    v.setUint8(at + 2, e.subtype)
    v.setUint8(at + 3, e.treq)
    v.setUint16(at + 4, e.portid, true)
    v.setUint16(at + 6, e.cntlid, true)
    v.setUint16(at + 8, e.asqsz, true)
    v.setUint16(at + 10, e.eflags, true)
    writeSpaceString(out, at + 32, 32, e.trsvcid, 'TRSVCID')
    writeNulString(out, at + 256, NQN_FIELD_SIZE, e.subnqn, 'SUBNQN')
    writeSpaceString(out, at + 512, 256, e.traddr, 'TRADDR')
    v.setUint8(at + 768, e.sectype)
  })
}

export function decodeDiscoveryLog(b: Uint8Array): { genctr: bigint; numrec: number; recfmt: number; entries: DiscoveryLogEntry[] } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const numrec = Number(v.getBigUint64(8, true))
  const entries: DiscoveryLogEntry[] = []
  for (let i = 0; i < numrec; i++) {
    const at = DISCOVERY_LOG_HEADER_SIZE + i * DISCOVERY_LOG_ENTRY_SIZE
    if (at + DISCOVERY_LOG_ENTRY_SIZE > b.length) break
    entries.push({
      trtype: v.getUint8(at),
      adrfam: v.getUint8(at + 1),
      subtype: v.getUint8(at + 2),
      treq: v.getUint8(at + 3),
      portid: v.getUint16(at + 4, true),
      cntlid: v.getUint16(at + 6, true),
      asqsz: v.getUint16(at + 8, true),
      eflags: v.getUint16(at + 10, true),
      trsvcid: readSpaceString(b, at + 32, 32),
      subnqn: readNulString(b, at + 256, NQN_FIELD_SIZE),
      traddr: readSpaceString(b, at + 512, 256),
      sectype: v.getUint8(at + 768),
    })
  }
  return { genctr: v.getBigUint64(0, true), numrec, recfmt: v.getUint16(16, true), entries }
}

// ---- SGL descriptors of a capsule (§6.2 / NVMe/TCP §3.3.3) ----

/** SGL identifiers an NVMe/TCP capsule uses: in-capsule data (Data Block, Offset), and data moved by R2T/C2HData (Transport Data Block) */
export const TcpSgl = {
  /** type 0h Data Block, sub type 1h Offset: in-capsule data at ADDRESS bytes into the capsule's data */
  InCapsule: 0x01,
  /** type 5h Transport SGL Data Block, sub type Ah (transport specific): R2T / C2HData */
  Transport: 0x5a,
} as const
