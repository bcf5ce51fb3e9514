// The Identify command (NVMe Base 2.0 §5.17) and the data structures it returns: Identify
// Controller (§5.17.2.1), the NVM command set's Identify Namespace (NVM Command Set 1.0
// §4.1.5.1) and its I/O Command Set specific structures (CNS 05h and 06h, §4.1.5.2-3), the
// namespace lists, the Namespace Identification Descriptor list (§5.17.2.3) and the I/O
// Command Set data structure (CNS 1Ch). Every structure is 4096 bytes, little-endian.
//
// The layouts below were checked field by field against libnvme's src/nvme/types.h (struct
// nvme_id_ctrl, nvme_id_psd, nvme_id_ns, nvme_nvm_id_ns, nvme_id_ctrl_nvm) and Linux's
// include/linux/nvme.h; where the two disagree with older headers (RRLS, NVMSR/VWCI/MEC, the
// 2.0 additions) the 2.0 figures win, as libnvme has them.
//
// Number representation: 8-byte counts and sizes (NSZE, NCAP, NUSE, DMSL) are numbers, exact
// below 2^53 (a namespace of 2^53 blocks is 4 EiB at 512 B); a decoded value above that is the
// nearest double. 16-byte capacities (TNVMCAP, UNVMCAP, NVMCAP, MEGCAP, MAXDNA) and 64-bit bit
// masks (LBSTM, the command set vectors) are bigints. Strings: SN, MN and FR are ASCII padded
// with spaces (decoded with the padding, and any NULs, trimmed); SUBNQN is UTF-8, NUL padded,
// with at least one NUL (so at most 255 bytes).
//
// Identify Controller (the offsets the table below encodes):
//
//   off   size  field                    off   size  field
//     0      2  VID                      263      1  NPSS (0's based)
//     2      2  SSVID                    264      1  AVSCC
//     4     20  SN    ASCII, spaces      265      1  APSTA
//    24     40  MN    ASCII, spaces      266      2  WCTEMP   (K)
//    64      8  FR    ASCII, spaces      268      2  CCTEMP   (K)
//    72      1  RAB                      270      2  MTFA
//    73      3  IEEE  OUI, little endian 272      4  HMPRE
//    76      1  CMIC                     276      4  HMMIN
//    77      1  MDTS                     280     16  TNVMCAP
//    78      2  CNTLID                   296     16  UNVMCAP
//    80      4  VER                      312      4  RPMBS
//    84      4  RTD3R                    316      2  EDSTT
//    88      4  RTD3E                    318      1  DSTO
//    92      4  OAES                     319      1  FWUG
//    96      4  CTRATT                   320      2  KAS
//   100      2  RRLS                     322      2  HCTMA
//   102      9  reserved                 324      2  MNTMT
//   111      1  CNTRLTYPE                326      2  MXTMT
//   112     16  FGUID                    328      4  SANICAP
//   128      2  CRDT1                    332      4  HMMINDS
//   130      2  CRDT2                    336      2  HMMAXD
//   132      2  CRDT3                    338      2  NSETIDMAX
//   134    119  reserved                 340      2  ENDGIDMAX
//   253      1  NVMSR  (NVMe-MI)         342      1  ANATT
//   254      1  VWCI   (NVMe-MI)         343      1  ANACAP
//   255      1  MEC    (NVMe-MI)         344      4  ANAGRPMAX
//   256      2  OACS                     348      4  NANAGRPID
//   258      1  ACL                      352      4  PELS
//   259      1  AERL                     356      2  DOMAINID
//   260      1  FRMW                     358     10  reserved
//   261      1  LPA                      368     16  MEGCAP
//   262      1  ELPE                     384    128  reserved
//
//   512      1  SQES                     532      2  ACWU
//   513      1  CQES                     534      2  OCFS
//   514      2  MAXCMD                   536      4  SGLS
//   516      4  NN                       540      4  MNAN
//   520      2  ONCS                     544     16  MAXDNA
//   522      2  FUSES                    560      4  MAXCNA
//   524      1  FNA                      564    204  reserved
//   525      1  VWC                      768    256  SUBNQN  UTF-8, NUL padded
//   526      2  AWUN                    1024    768  reserved
//   528      2  AWUPF                   1792      4  IOCCSZ   (NVMe over Fabrics from here)
//   530      1  ICSVSCC                 1796      4  IORCSZ
//   531      1  NWPC                    1800      2  ICDOFF
//                                       1802      1  FCATT
//  2048   1024  PSD0-31, 32 bytes each  1803      1  MSDBD
//  3072   1024  vendor specific         1804      2  OFCS
//                                       1806      1  DCTYPE
//                                       1807    241  reserved
//
// Power State Descriptor (32 bytes at 2048 + 32·n):
//
//   off   size  field
//     0      2  MP     maximum power (0.01 W, or 0.0001 W with MXPS)
//     2      1  reserved
//     3      1  bit 0 MXPS (max power scale), bit 1 NOPS (non-operational state)
//     4      4  ENLAT  entry latency (µs)
//     8      4  EXLAT  exit latency (µs)
//    12      1  RRT    bits 4:0   relative read throughput
//    13      1  RRL    bits 4:0   relative read latency
//    14      1  RWT    bits 4:0   relative write throughput
//    15      1  RWL    bits 4:0   relative write latency
//    16      2  IDLP   idle power
//    18      1  IPS    bits 7:6   idle power scale
//    19      1  reserved
//    20      2  ACTP   active power
//    22      1  APW bits 2:0 (active power workload), APS bits 7:6 (active power scale)
//    23      9  reserved

/** Every Identify data structure is 4096 bytes. */
export const IDENTIFY_DATA_SIZE = 4096

/** Controller or Namespace Structure values, Identify CDW10 bits 7:0 (NVMe Base 2.0 §5.17.1, Figure "CNS Values"). */
export const Cns = {
  Namespace: 0x00,
  Controller: 0x01,
  ActiveNamespaceList: 0x02,
  NamespaceIdDescriptorList: 0x03,
  NvmSetList: 0x04,
  IoCommandSetNamespace: 0x05,
  IoCommandSetController: 0x06,
  IoCommandSetActiveNamespaceList: 0x07,
  IoCommandSetIndependentNamespace: 0x08,
  AllocatedNamespaceList: 0x10,
  AllocatedNamespace: 0x11,
  NamespaceAttachedControllerList: 0x12,
  ControllerList: 0x13,
  PrimaryControllerCapabilities: 0x14,
  SecondaryControllerList: 0x15,
  NamespaceGranularityList: 0x16,
  UuidList: 0x17,
  DomainList: 0x18,
  EnduranceGroupList: 0x19,
  IoCommandSetAllocatedNamespaceList: 0x1a,
  IoCommandSetAllocatedNamespace: 0x1b,
  IoCommandSet: 0x1c,
} as const

/** Command Set Identifiers (NVMe Base 2.0, Figure "Command Set Identifiers"). */
export const Csi = {
  Nvm: 0x00,
  KeyValue: 0x01,
  Zoned: 0x02,
} as const

// ---------------------------------------------------------------------------------------------
// Identify command dwords
//
//   CDW10  31:16 CNTID (controller identifier), 7:0 CNS
//   CDW11  31:24 CSI, 15:0 CNS Specific Identifier (NVM Set ID, Endurance Group ID, ...)
//   CDW14  6:0 UUID Index

export interface IdentifyFields {
  cns: number
  cntid: number
  /** CNS Specific Identifier. */
  cnssid: number
  csi: number
  uuidIndex: number
}

export function encodeIdentify(f: Partial<IdentifyFields>): { cdw10: number; cdw11: number; cdw14: number } {
  return {
    cdw10: ((checkUint('cntid', f.cntid ?? 0, 0xffff) << 16) | checkUint('cns', f.cns ?? 0, 0xff)) >>> 0,
    cdw11: ((checkUint('csi', f.csi ?? 0, 0xff) << 24) | checkUint('cnssid', f.cnssid ?? 0, 0xffff)) >>> 0,
    cdw14: checkUint('uuidIndex', f.uuidIndex ?? 0, 0x7f),
  }
}

export function decodeIdentify(c: { cdw10: number; cdw11: number; cdw14: number }): IdentifyFields {
  return { cns: c.cdw10 & 0xff, cntid: c.cdw10 >>> 16, cnssid: c.cdw11 & 0xffff, csi: c.cdw11 >>> 24, uuidIndex: c.cdw14 & 0x7f }
}

// ---------------------------------------------------------------------------------------------
// Struct tables: a field list drives both the encoder and the decoder, so an offset is written
// down once. Shared with log-pages.ts.

/**
 * How a field is stored: little-endian integers (u64 as a number, u64n as a bigint, u128 as a
 * bigint), raw bytes, ASCII padded with spaces, UTF-8 padded with NULs.
 */
export type FieldKind = 'u8' | 'u16' | 'u24' | 'u32' | 'u64' | 'u64n' | 'u128' | 'bytes' | 'ascii' | 'utf8'

export interface FieldSpec<K extends string = string> {
  readonly name: K
  readonly offset: number
  readonly kind: FieldKind
  readonly size: number
}

const KIND_SIZE: Record<FieldKind, number> = { u8: 1, u16: 2, u24: 3, u32: 4, u64: 8, u64n: 8, u128: 16, bytes: 0, ascii: 0, utf8: 0 }

/** A field of a struct table (size defaults to the integer kind's width). */
export function field<K extends string>(name: K, offset: number, kind: FieldKind, size?: number): FieldSpec<K> {
  return { name, offset, kind, size: size ?? KIND_SIZE[kind] }
}

function checkUint(name: string, v: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${String(v)} is not an integer in 0..${max}`)
  return v
}

const TWO_32 = 0x100000000
const U64_MAX = (1n << 64n) - 1n
const U128_MAX = (1n << 128n) - 1n

/** A u64 as a number (exact below 2^53). */
export function readU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO_32
}

/** Write a u64 from a safe non-negative integer. */
export function writeU64(v: DataView, off: number, x: number): void {
  const lo = x >>> 0
  v.setUint32(off, lo, true)
  v.setUint32(off + 4, (x - lo) / TWO_32, true)
}

/** A 128-bit little-endian counter as a bigint. */
export function readU128(v: DataView, off: number): bigint {
  return (v.getBigUint64(off + 8, true) << 64n) | v.getBigUint64(off, true)
}

export function writeU128(v: DataView, off: number, x: bigint): void {
  v.setBigUint64(off, x & 0xffffffffffffffffn, true)
  v.setBigUint64(off + 8, x >> 64n, true)
}

/** An ASCII field with its trailing spaces and NULs trimmed. */
export function readAscii(bytes: Uint8Array, off: number, size: number): string {
  let end = off + size
  while (end > off && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0)) end--
  let s = ''
  for (let i = off; i < end; i++) s += String.fromCharCode(bytes[i]!)
  return s
}

/** Write printable ASCII (20h-7Eh), padded with spaces to `size`. */
export function writeAscii(bytes: Uint8Array, off: number, size: number, s: string, name: string): void {
  if (typeof s !== 'string') throw new TypeError(`${name} is not a string`)
  if (s.length > size) throw new RangeError(`${name} "${s}" is longer than ${size} characters`)
  for (let i = 0; i < size; i++) {
    if (i < s.length) {
      const c = s.charCodeAt(i)
      if (c < 0x20 || c > 0x7e) throw new RangeError(`${name} has a character that is not printable ASCII (code ${c})`)
      bytes[off + i] = c
    } else bytes[off + i] = 0x20
  }
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8')

/** A NUL-terminated (or NUL-padded) UTF-8 field. */
export function readUtf8(bytes: Uint8Array, off: number, size: number): string {
  let end = off
  while (end < off + size && bytes[end] !== 0) end++
  return utf8Decoder.decode(bytes.subarray(off, end))
}

/** Write UTF-8 padded with NULs; it must leave at least one NUL (so at most size - 1 bytes). */
export function writeUtf8(bytes: Uint8Array, off: number, size: number, s: string, name: string): void {
  if (typeof s !== 'string') throw new TypeError(`${name} is not a string`)
  const enc = utf8Encoder.encode(s)
  if (enc.length > size - 1) throw new RangeError(`${name} is ${enc.length} bytes of UTF-8, more than the ${size - 1} that fit`)
  if (enc.includes(0)) throw new RangeError(`${name} contains a NUL`)
  bytes.set(enc, off)
  bytes.fill(0, off + enc.length, off + size)
}

function writeField(dv: DataView, bytes: Uint8Array, base: number, f: FieldSpec, value: unknown): void {
  const off = base + f.offset
  switch (f.kind) {
    case 'u8':
      dv.setUint8(off, checkUint(f.name, value as number, 0xff))
      return
    case 'u16':
      dv.setUint16(off, checkUint(f.name, value as number, 0xffff), true)
      return
    case 'u24': {
      const v = checkUint(f.name, value as number, 0xffffff)
      dv.setUint16(off, v & 0xffff, true)
      dv.setUint8(off + 2, v >>> 16)
      return
    }
    case 'u32':
      dv.setUint32(off, checkUint(f.name, value as number, 0xffffffff), true)
      return
    case 'u64': {
      const v = value as number
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`${f.name} ${String(v)} is not a safe non-negative integer`)
      writeU64(dv, off, v)
      return
    }
    case 'u64n': {
      const v = value as bigint
      if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new RangeError(`${f.name} ${String(v)} is not a bigint in 0..2^64-1`)
      dv.setBigUint64(off, v, true)
      return
    }
    case 'u128': {
      const v = value as bigint
      if (typeof v !== 'bigint' || v < 0n || v > U128_MAX) throw new RangeError(`${f.name} ${String(v)} is not a bigint in 0..2^128-1`)
      writeU128(dv, off, v)
      return
    }
    case 'bytes': {
      const v = value as Uint8Array
      if (!(v instanceof Uint8Array) || v.length !== f.size) throw new RangeError(`${f.name} is not a Uint8Array of ${f.size} bytes`)
      bytes.set(v, off)
      return
    }
    case 'ascii':
      writeAscii(bytes, off, f.size, value as string, f.name)
      return
    case 'utf8':
      writeUtf8(bytes, off, f.size, value as string, f.name)
  }
}

function readField(dv: DataView, bytes: Uint8Array, base: number, f: FieldSpec): number | bigint | string | Uint8Array {
  const off = base + f.offset
  switch (f.kind) {
    case 'u8':
      return dv.getUint8(off)
    case 'u16':
      return dv.getUint16(off, true)
    case 'u24':
      return dv.getUint16(off, true) | (dv.getUint8(off + 2) << 16)
    case 'u32':
      return dv.getUint32(off, true)
    case 'u64':
      return readU64(dv, off)
    case 'u64n':
      return dv.getBigUint64(off, true)
    case 'u128':
      return readU128(dv, off)
    case 'bytes':
      return bytes.slice(off, off + f.size)
    case 'ascii':
      return readAscii(bytes, off, f.size)
    case 'utf8':
      return readUtf8(bytes, off, f.size)
  }
}

function defaultOf(f: FieldSpec): number | bigint | string | Uint8Array {
  switch (f.kind) {
    case 'u64n':
    case 'u128':
      return 0n
    case 'bytes':
      return new Uint8Array(f.size)
    case 'ascii':
    case 'utf8':
      return ''
    default:
      return 0
  }
}

/** A DataView over exactly a Uint8Array's bytes. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Write the fields of a struct table present in `value` at `base` in `bytes` (the caller
 * zeroes the structure first). Throws RangeError (TypeError for a wrong type) on a value that
 * does not fit its field.
 */
export function encodeStruct(fields: ReadonlyArray<FieldSpec>, value: object, bytes: Uint8Array, base = 0): void {
  const dv = viewOf(bytes)
  const rec = value as Record<string, unknown>
  for (const f of fields) {
    const v = rec[f.name]
    if (v !== undefined) writeField(dv, bytes, base, f, v)
  }
}

/** Read every field of a struct table at `base` in `bytes`. */
export function decodeStruct(fields: ReadonlyArray<FieldSpec>, bytes: Uint8Array, base = 0): Record<string, number | bigint | string | Uint8Array> {
  const dv = viewOf(bytes)
  const out: Record<string, number | bigint | string | Uint8Array> = {}
  for (const f of fields) out[f.name] = readField(dv, bytes, base, f)
  return out
}

/** The all-zero value of every field of a struct table (what an encoder writes for absent fields). */
export function zeroStruct(fields: ReadonlyArray<FieldSpec>): Record<string, number | bigint | string | Uint8Array> {
  const out: Record<string, number | bigint | string | Uint8Array> = {}
  for (const f of fields) out[f.name] = defaultOf(f)
  return out
}

function checkBuffer(name: string, buf: Uint8Array, size: number): void {
  if (!(buf instanceof Uint8Array) || buf.length < size) throw new RangeError(`${name} needs a Uint8Array of at least ${size} bytes`)
}

// ---------------------------------------------------------------------------------------------
// Identify Controller (CNS 01h; NVMe Base 2.0 §5.17.2.1, Figure "Identify – Identify Controller
// Data Structure, I/O Command Set Independent")

/** A Power State Descriptor (Identify Controller bytes 2048 + 32·n). */
export interface PowerStateDescriptor {
  /** Maximum Power, in 0.01 W (0.0001 W when mxps). */
  mp: number
  /** Max Power Scale: mp is in 0.0001 W units. */
  mxps: boolean
  /** Non-Operational State: no I/O commands are processed in this state. */
  nops: boolean
  /** Entry Latency, µs. */
  enlat: number
  /** Exit Latency, µs. */
  exlat: number
  /** Relative Read Throughput (5 bits). */
  rrt: number
  /** Relative Read Latency (5 bits). */
  rrl: number
  /** Relative Write Throughput (5 bits). */
  rwt: number
  /** Relative Write Latency (5 bits). */
  rwl: number
  /** Idle Power. */
  idlp: number
  /** Idle Power Scale (2 bits: 01b 0.0001 W, 10b 0.01 W). */
  ips: number
  /** Active Power. */
  actp: number
  /** Active Power Workload (3 bits). */
  apw: number
  /** Active Power Scale (2 bits). */
  aps: number
}

export const POWER_STATE_DESCRIPTOR_SIZE = 32
export const MAX_POWER_STATES = 32

/** Identify Controller, fields named after the spec's abbreviations. */
export interface IdentifyController {
  /** PCI Vendor ID. */
  vid: number
  /** PCI Subsystem Vendor ID. */
  ssvid: number
  /** Serial Number (ASCII, 20). */
  sn: string
  /** Model Number (ASCII, 40). */
  mn: string
  /** Firmware Revision (ASCII, 8). */
  fr: string
  /** Recommended Arbitration Burst (power of two). */
  rab: number
  /** IEEE OUI Identifier (24 bits; stored little endian). */
  ieee: number
  /** Controller Multi-Path I/O and Namespace Sharing Capabilities. */
  cmic: number
  /** Maximum Data Transfer Size: 2^mdts units of CAP.MPSMIN pages (0 = no limit). */
  mdts: number
  /** Controller ID. */
  cntlid: number
  /** Version (the VS register's value). */
  ver: number
  /** RTD3 Resume Latency, µs. */
  rtd3r: number
  /** RTD3 Entry Latency, µs. */
  rtd3e: number
  /** Optional Asynchronous Events Supported. */
  oaes: number
  /** Controller Attributes. */
  ctratt: number
  /** Read Recovery Levels Supported. */
  rrls: number
  /** Controller Type (1 I/O, 2 Discovery, 3 Administrative). */
  cntrltype: number
  /** FRU Globally Unique Identifier (16 bytes). */
  fguid: Uint8Array
  /** Command Retry Delay Time 1, 100 ms units. */
  crdt1: number
  /** Command Retry Delay Time 2. */
  crdt2: number
  /** Command Retry Delay Time 3. */
  crdt3: number
  /** NVM Subsystem Report (NVMe-MI). */
  nvmsr: number
  /** VPD Write Cycle Information (NVMe-MI). */
  vwci: number
  /** Management Endpoint Capabilities (NVMe-MI). */
  mec: number
  /** Optional Admin Command Support. */
  oacs: number
  /** Abort Command Limit (0's based). */
  acl: number
  /** Asynchronous Event Request Limit (0's based). */
  aerl: number
  /** Firmware Updates. */
  frmw: number
  /** Log Page Attributes. */
  lpa: number
  /** Error Log Page Entries (0's based). */
  elpe: number
  /** Number of Power States Support (0's based); derived from powerStates when encoding. */
  npss: number
  /** Admin Vendor Specific Command Configuration. */
  avscc: number
  /** Autonomous Power State Transition Attributes. */
  apsta: number
  /** Warning Composite Temperature Threshold, K. */
  wctemp: number
  /** Critical Composite Temperature Threshold, K. */
  cctemp: number
  /** Maximum Time for Firmware Activation, 100 ms units. */
  mtfa: number
  /** Host Memory Buffer Preferred Size, 4 KiB units. */
  hmpre: number
  /** Host Memory Buffer Minimum Size, 4 KiB units. */
  hmmin: number
  /** Total NVM Capacity, bytes (128 bits). */
  tnvmcap: bigint
  /** Unallocated NVM Capacity, bytes (128 bits). */
  unvmcap: bigint
  /** Replay Protected Memory Block Support. */
  rpmbs: number
  /** Extended Device Self-test Time, minutes. */
  edstt: number
  /** Device Self-test Options. */
  dsto: number
  /** Firmware Update Granularity, 4 KiB units. */
  fwug: number
  /** Keep Alive Support: granularity, 100 ms units (0 = not supported). */
  kas: number
  /** Host Controlled Thermal Management Attributes. */
  hctma: number
  /** Minimum Thermal Management Temperature, K. */
  mntmt: number
  /** Maximum Thermal Management Temperature, K. */
  mxtmt: number
  /** Sanitize Capabilities. */
  sanicap: number
  /** Host Memory Buffer Minimum Descriptor Entry Size, 4 KiB units. */
  hmminds: number
  /** Host Memory Maximum Descriptors Entries. */
  hmmaxd: number
  /** NVM Set Identifier Maximum. */
  nsetidmax: number
  /** Endurance Group Identifier Maximum. */
  endgidmax: number
  /** ANA Transition Time, s. */
  anatt: number
  /** Asymmetric Namespace Access Capabilities. */
  anacap: number
  /** ANA Group Identifier Maximum. */
  anagrpmax: number
  /** Number of ANA Group Identifiers. */
  nanagrpid: number
  /** Persistent Event Log Size, 64 KiB units. */
  pels: number
  /** Domain Identifier. */
  domainid: number
  /** Max Endurance Group Capacity, bytes (128 bits). */
  megcap: bigint
  /** Submission Queue Entry Size: required (3:0) and maximum (7:4), powers of two. */
  sqes: number
  /** Completion Queue Entry Size: required (3:0) and maximum (7:4), powers of two. */
  cqes: number
  /** Maximum Outstanding Commands (Fabrics). */
  maxcmd: number
  /** Number of Namespaces: the largest valid NSID. */
  nn: number
  /** Optional NVM Command Support. */
  oncs: number
  /** Fused Operation Support. */
  fuses: number
  /** Format NVM Attributes. */
  fna: number
  /** Volatile Write Cache. */
  vwc: number
  /** Atomic Write Unit Normal (0's based, blocks). */
  awun: number
  /** Atomic Write Unit Power Fail (0's based, blocks). */
  awupf: number
  /** I/O Command Set Vendor Specific Command Configuration. */
  icsvscc: number
  /** Namespace Write Protection Capabilities. */
  nwpc: number
  /** Atomic Compare & Write Unit (0's based, blocks). */
  acwu: number
  /** Optional Copy Formats Supported. */
  ocfs: number
  /** SGL Support. */
  sgls: number
  /** Maximum Number of Allowed Namespaces. */
  mnan: number
  /** Maximum Domain Namespace Attachments (128 bits). */
  maxdna: bigint
  /** Maximum I/O Controller Namespace Attachments. */
  maxcna: number
  /** NVM Subsystem NVMe Qualified Name (UTF-8). */
  subnqn: string
  /** I/O Queue Command Capsule Supported Size, 16-byte units (Fabrics). */
  ioccsz: number
  /** I/O Queue Response Capsule Supported Size, 16-byte units (Fabrics). */
  iorcsz: number
  /** In Capsule Data Offset, 16-byte units (Fabrics). */
  icdoff: number
  /** Fabrics Controller Attributes. */
  fcatt: number
  /** Maximum SGL Data Block Descriptors (Fabrics; 0 = no limit). */
  msdbd: number
  /** Optional Fabric Commands Support. */
  ofcs: number
  /** Discovery Controller Type. */
  dctype: number
  /** Power State Descriptors PS0..PSnpss. */
  powerStates: PowerStateDescriptor[]
}

/** What encodeIdentifyController() takes: any subset of the fields; NPSS follows from powerStates. */
export type IdentifyControllerInput = Partial<Omit<IdentifyController, 'npss' | 'powerStates'>> & {
  powerStates?: ReadonlyArray<Partial<PowerStateDescriptor>>
}

type CtrlScalar = Exclude<keyof IdentifyController, 'npss' | 'powerStates'>

/** The Identify Controller table (NPSS and the power states are handled apart). */
export const IDENTIFY_CONTROLLER_FIELDS: ReadonlyArray<FieldSpec<CtrlScalar>> = [
  field('vid', 0, 'u16'),
  field('ssvid', 2, 'u16'),
  field('sn', 4, 'ascii', 20),
  field('mn', 24, 'ascii', 40),
  field('fr', 64, 'ascii', 8),
  field('rab', 72, 'u8'),
  field('ieee', 73, 'u24'),
  field('cmic', 76, 'u8'),
  field('mdts', 77, 'u8'),
  field('cntlid', 78, 'u16'),
  field('ver', 80, 'u32'),
  field('rtd3r', 84, 'u32'),
  field('rtd3e', 88, 'u32'),
  field('oaes', 92, 'u32'),
  field('ctratt', 96, 'u32'),
  field('rrls', 100, 'u16'),
  field('cntrltype', 111, 'u8'),
  field('fguid', 112, 'bytes', 16),
  field('crdt1', 128, 'u16'),
  field('crdt2', 130, 'u16'),
  field('crdt3', 132, 'u16'),
  field('nvmsr', 253, 'u8'),
  field('vwci', 254, 'u8'),
  field('mec', 255, 'u8'),
  field('oacs', 256, 'u16'),
  field('acl', 258, 'u8'),
  field('aerl', 259, 'u8'),
  field('frmw', 260, 'u8'),
  field('lpa', 261, 'u8'),
  field('elpe', 262, 'u8'),
  field('avscc', 264, 'u8'),
  field('apsta', 265, 'u8'),
  field('wctemp', 266, 'u16'),
  field('cctemp', 268, 'u16'),
  field('mtfa', 270, 'u16'),
  field('hmpre', 272, 'u32'),
  field('hmmin', 276, 'u32'),
  field('tnvmcap', 280, 'u128'),
  field('unvmcap', 296, 'u128'),
  field('rpmbs', 312, 'u32'),
  field('edstt', 316, 'u16'),
  field('dsto', 318, 'u8'),
  field('fwug', 319, 'u8'),
  field('kas', 320, 'u16'),
  field('hctma', 322, 'u16'),
  field('mntmt', 324, 'u16'),
  field('mxtmt', 326, 'u16'),
  field('sanicap', 328, 'u32'),
  field('hmminds', 332, 'u32'),
  field('hmmaxd', 336, 'u16'),
  field('nsetidmax', 338, 'u16'),
  field('endgidmax', 340, 'u16'),
  field('anatt', 342, 'u8'),
  field('anacap', 343, 'u8'),
  field('anagrpmax', 344, 'u32'),
  field('nanagrpid', 348, 'u32'),
  field('pels', 352, 'u32'),
  field('domainid', 356, 'u16'),
  field('megcap', 368, 'u128'),
  field('sqes', 512, 'u8'),
  field('cqes', 513, 'u8'),
  field('maxcmd', 514, 'u16'),
  field('nn', 516, 'u32'),
  field('oncs', 520, 'u16'),
  field('fuses', 522, 'u16'),
  field('fna', 524, 'u8'),
  field('vwc', 525, 'u8'),
  field('awun', 526, 'u16'),
  field('awupf', 528, 'u16'),
  field('icsvscc', 530, 'u8'),
  field('nwpc', 531, 'u8'),
  field('acwu', 532, 'u16'),
  field('ocfs', 534, 'u16'),
  field('sgls', 536, 'u32'),
  field('mnan', 540, 'u32'),
  field('maxdna', 544, 'u128'),
  field('maxcna', 560, 'u32'),
  field('subnqn', 768, 'utf8', 256),
  field('ioccsz', 1792, 'u32'),
  field('iorcsz', 1796, 'u32'),
  field('icdoff', 1800, 'u16'),
  field('fcatt', 1802, 'u8'),
  field('msdbd', 1803, 'u8'),
  field('ofcs', 1804, 'u16'),
  field('dctype', 1806, 'u8'),
]

/** Byte offsets in Identify Controller that code outside the table needs. */
export const IdentifyControllerOffset = {
  npss: 263,
  powerStates: 2048,
  vendorSpecific: 3072,
} as const

const PS_DEFAULT: PowerStateDescriptor = {
  mp: 0,
  mxps: false,
  nops: false,
  enlat: 0,
  exlat: 0,
  rrt: 0,
  rrl: 0,
  rwt: 0,
  rwl: 0,
  idlp: 0,
  ips: 0,
  actp: 0,
  apw: 0,
  aps: 0,
}

/** Write a Power State Descriptor at `offset` of `out` (all 32 bytes). */
export function encodePowerState(out: DataView, offset: number, p: Partial<PowerStateDescriptor>): void {
  const d = { ...PS_DEFAULT, ...p }
  for (let i = 0; i < POWER_STATE_DESCRIPTOR_SIZE; i += 4) out.setUint32(offset + i, 0, true)
  out.setUint16(offset, checkUint('mp', d.mp, 0xffff), true)
  out.setUint8(offset + 3, (d.mxps ? 1 : 0) | (d.nops ? 2 : 0))
  out.setUint32(offset + 4, checkUint('enlat', d.enlat, 0xffffffff), true)
  out.setUint32(offset + 8, checkUint('exlat', d.exlat, 0xffffffff), true)
  out.setUint8(offset + 12, checkUint('rrt', d.rrt, 0x1f))
  out.setUint8(offset + 13, checkUint('rrl', d.rrl, 0x1f))
  out.setUint8(offset + 14, checkUint('rwt', d.rwt, 0x1f))
  out.setUint8(offset + 15, checkUint('rwl', d.rwl, 0x1f))
  out.setUint16(offset + 16, checkUint('idlp', d.idlp, 0xffff), true)
  out.setUint8(offset + 18, checkUint('ips', d.ips, 3) << 6)
  out.setUint16(offset + 20, checkUint('actp', d.actp, 0xffff), true)
  out.setUint8(offset + 22, checkUint('apw', d.apw, 7) | (checkUint('aps', d.aps, 3) << 6))
}

/** Read a Power State Descriptor at `offset` of `view`. */
export function decodePowerState(view: DataView, offset: number): PowerStateDescriptor {
  const flags = view.getUint8(offset + 3)
  const apws = view.getUint8(offset + 22)
  return {
    mp: view.getUint16(offset, true),
    mxps: (flags & 1) !== 0,
    nops: (flags & 2) !== 0,
    enlat: view.getUint32(offset + 4, true),
    exlat: view.getUint32(offset + 8, true),
    rrt: view.getUint8(offset + 12) & 0x1f,
    rrl: view.getUint8(offset + 13) & 0x1f,
    rwt: view.getUint8(offset + 14) & 0x1f,
    rwl: view.getUint8(offset + 15) & 0x1f,
    idlp: view.getUint16(offset + 16, true),
    ips: view.getUint8(offset + 18) >> 6,
    actp: view.getUint16(offset + 20, true),
    apw: apws & 7,
    aps: apws >> 6,
  }
}

/**
 * Encode Identify Controller into `out` (4096 bytes, zeroed first; absent fields stay 0).
 * NPSS is powerStates.length - 1 (PS0 all zero when none are given). Throws RangeError on a
 * string that does not fit or a value out of range.
 */
export function encodeIdentifyController(c: IdentifyControllerInput, out: Uint8Array): void {
  checkBuffer('Identify Controller', out, IDENTIFY_DATA_SIZE)
  const ps = c.powerStates ?? []
  if (ps.length > MAX_POWER_STATES) throw new RangeError(`${ps.length} power states, more than ${MAX_POWER_STATES}`)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  encodeStruct(IDENTIFY_CONTROLLER_FIELDS, c, out)
  const dv = viewOf(out)
  dv.setUint8(IdentifyControllerOffset.npss, Math.max(ps.length, 1) - 1)
  ps.forEach((p, i) => encodePowerState(dv, IdentifyControllerOffset.powerStates + POWER_STATE_DESCRIPTOR_SIZE * i, p))
}

/** Decode Identify Controller; powerStates holds PS0..PSnpss. */
export function decodeIdentifyController(buf: Uint8Array): IdentifyController {
  checkBuffer('Identify Controller', buf, IDENTIFY_DATA_SIZE)
  const dv = viewOf(buf)
  const npss = dv.getUint8(IdentifyControllerOffset.npss)
  const powerStates: PowerStateDescriptor[] = []
  for (let i = 0; i <= Math.min(npss, MAX_POWER_STATES - 1); i++) {
    powerStates.push(decodePowerState(dv, IdentifyControllerOffset.powerStates + POWER_STATE_DESCRIPTOR_SIZE * i))
  }
  const scalars = decodeStruct(IDENTIFY_CONTROLLER_FIELDS, buf) as unknown as Omit<IdentifyController, 'npss' | 'powerStates'>
  return { ...scalars, npss, powerStates }
}

// ---------------------------------------------------------------------------------------------
// Identify Namespace, NVM command set (CNS 00h; NVM Command Set 1.0 §4.1.5.1)
//
//   off   size  field                    off   size  field
//     0      8  NSZE  (blocks)            64      2  NPWG   (0's based)
//     8      8  NCAP  (blocks)            66      2  NPWA   (0's based)
//    16      8  NUSE  (blocks)            68      2  NPDG   (0's based)
//    24      1  NSFEAT                    70      2  NPDA   (0's based)
//    25      1  NLBAF (0's based)         72      2  NOWS   (0's based)
//    26      1  FLBAS                     74      2  MSSRL
//    27      1  MC                        76      4  MCL
//    28      1  DPC                       80      1  MSRC   (0's based)
//    29      1  DPS                       81      1  reserved (KPIOS in 2.1)
//    30      1  NMIC                      82      1  NULBAF
//    31      1  RESCAP                    83      9  reserved
//    32      1  FPI                       92      4  ANAGRPID
//    33      1  DLFEAT                    96      3  reserved
//    34      2  NAWUN                     99      1  NSATTR
//    36      2  NAWUPF                   100      2  NVMSETID
//    38      2  NACWU                    102      2  ENDGID
//    40      2  NABSN                    104     16  NGUID
//    42      2  NABO                     120      8  EUI64
//    44      2  NABSPF                   128    256  LBAF0-63, 4 bytes each
//    46      2  NOIOB                    384   3712  vendor specific
//    48     16  NVMCAP (bytes)
//
// FLBAS: bits 3:0 format index (low), bit 4 metadata at the end of each block's data (extended
// LBA) rather than in a separate buffer, bits 6:5 format index (high, for formats 16-63).
// DPS: bits 2:0 protection type (0 none, 1-3 types 1-3), bit 3 PI in the first bytes of the
// metadata rather than the last. An LBA Format is a u32:
//
//   bit  31      26 25  24 23          16 15                          0
//        | reserved |  RP  |    LBADS     |             MS              |
//
// MS metadata bytes per block, LBADS the data size as a power of two (9 = 512 B), RP relative
// performance (0 best .. 3 degraded). There are NLBAF + NULBAF + 1 formats (at most 64).

/** An LBA Format descriptor. */
export interface LbaFormatDescriptor {
  /** Metadata Size, bytes per logical block. */
  ms: number
  /** LBA Data Size as a power of two (9 = 512 bytes, 12 = 4096). */
  lbads: number
  /** Relative Performance, 0 best .. 3 degraded. */
  rp: number
}

export const MAX_LBA_FORMATS = 64

/** Identify Namespace, fields named after the spec's abbreviations. */
export interface IdentifyNamespace {
  /** Namespace Size, logical blocks. */
  nsze: number
  /** Namespace Capacity, logical blocks. */
  ncap: number
  /** Namespace Utilization, logical blocks. */
  nuse: number
  /** Namespace Features. */
  nsfeat: number
  /** Number of LBA Formats (0's based); derived from lbaf and nulbaf when encoding. */
  nlbaf: number
  /** Formatted LBA Size: format index and extended-LBA bit, see flbasFormatIndex(). */
  flbas: number
  /** Metadata Capabilities. */
  mc: number
  /** End-to-end Data Protection Capabilities. */
  dpc: number
  /** End-to-end Data Protection Type Settings, see dpsPiType(). */
  dps: number
  /** Namespace Multi-path I/O and Namespace Sharing Capabilities. */
  nmic: number
  /** Reservation Capabilities. */
  rescap: number
  /** Format Progress Indicator. */
  fpi: number
  /** Deallocate Logical Block Features. */
  dlfeat: number
  /** Namespace Atomic Write Unit Normal (0's based). */
  nawun: number
  /** Namespace Atomic Write Unit Power Fail (0's based). */
  nawupf: number
  /** Namespace Atomic Compare & Write Unit (0's based). */
  nacwu: number
  /** Namespace Atomic Boundary Size Normal. */
  nabsn: number
  /** Namespace Atomic Boundary Offset. */
  nabo: number
  /** Namespace Atomic Boundary Size Power Fail. */
  nabspf: number
  /** Namespace Optimal I/O Boundary. */
  noiob: number
  /** NVM Capacity, bytes (128 bits). */
  nvmcap: bigint
  /** Namespace Preferred Write Granularity (0's based). */
  npwg: number
  /** Namespace Preferred Write Alignment (0's based). */
  npwa: number
  /** Namespace Preferred Deallocate Granularity (0's based). */
  npdg: number
  /** Namespace Preferred Deallocate Alignment (0's based). */
  npda: number
  /** Namespace Optimal Write Size (0's based). */
  nows: number
  /** Maximum Single Source Range Length (Copy). */
  mssrl: number
  /** Maximum Copy Length. */
  mcl: number
  /** Maximum Source Range Count (0's based). */
  msrc: number
  /** Number of Unique Capability LBA Formats (formats NLBAF+1 .. NLBAF+NULBAF). */
  nulbaf: number
  /** ANA Group Identifier. */
  anagrpid: number
  /** Namespace Attributes (bit 0 write protected). */
  nsattr: number
  /** NVM Set Identifier. */
  nvmsetid: number
  /** Endurance Group Identifier. */
  endgid: number
  /** Namespace Globally Unique Identifier (16 bytes). */
  nguid: Uint8Array
  /** IEEE Extended Unique Identifier (8 bytes). */
  eui64: Uint8Array
  /** LBA Formats 0..NLBAF+NULBAF. */
  lbaf: LbaFormatDescriptor[]
}

/** What encodeIdentifyNamespace() takes: any subset of the fields; NLBAF follows from lbaf and nulbaf. */
export type IdentifyNamespaceInput = Partial<Omit<IdentifyNamespace, 'nlbaf' | 'lbaf'>> & { lbaf?: ReadonlyArray<Partial<LbaFormatDescriptor>> }

type NsScalar = Exclude<keyof IdentifyNamespace, 'nlbaf' | 'lbaf'>

export const IDENTIFY_NAMESPACE_FIELDS: ReadonlyArray<FieldSpec<NsScalar>> = [
  field('nsze', 0, 'u64'),
  field('ncap', 8, 'u64'),
  field('nuse', 16, 'u64'),
  field('nsfeat', 24, 'u8'),
  field('flbas', 26, 'u8'),
  field('mc', 27, 'u8'),
  field('dpc', 28, 'u8'),
  field('dps', 29, 'u8'),
  field('nmic', 30, 'u8'),
  field('rescap', 31, 'u8'),
  field('fpi', 32, 'u8'),
  field('dlfeat', 33, 'u8'),
  field('nawun', 34, 'u16'),
  field('nawupf', 36, 'u16'),
  field('nacwu', 38, 'u16'),
  field('nabsn', 40, 'u16'),
  field('nabo', 42, 'u16'),
  field('nabspf', 44, 'u16'),
  field('noiob', 46, 'u16'),
  field('nvmcap', 48, 'u128'),
  field('npwg', 64, 'u16'),
  field('npwa', 66, 'u16'),
  field('npdg', 68, 'u16'),
  field('npda', 70, 'u16'),
  field('nows', 72, 'u16'),
  field('mssrl', 74, 'u16'),
  field('mcl', 76, 'u32'),
  field('msrc', 80, 'u8'),
  field('nulbaf', 82, 'u8'),
  field('anagrpid', 92, 'u32'),
  field('nsattr', 99, 'u8'),
  field('nvmsetid', 100, 'u16'),
  field('endgid', 102, 'u16'),
  field('nguid', 104, 'bytes', 16),
  field('eui64', 120, 'bytes', 8),
]

export const IdentifyNamespaceOffset = {
  nlbaf: 25,
  lbaf: 128,
  vendorSpecific: 384,
} as const

/** An LBA Format descriptor's u32. */
export function encodeLbaFormat(f: Partial<LbaFormatDescriptor>): number {
  return (checkUint('ms', f.ms ?? 0, 0xffff) | (checkUint('lbads', f.lbads ?? 0, 0xff) << 16) | (checkUint('rp', f.rp ?? 0, 3) << 24)) >>> 0
}

export function decodeLbaFormat(v: number): LbaFormatDescriptor {
  return { ms: v & 0xffff, lbads: (v >>> 16) & 0xff, rp: (v >>> 24) & 3 }
}

/** The LBA format index in FLBAS (bits 3:0, and bits 6:5 as index bits 5:4). */
export function flbasFormatIndex(flbas: number): number {
  return (flbas & 0xf) | ((flbas >> 1) & 0x30)
}

/** FLBAS bit 4: metadata transferred at the end of each block's data (extended LBA). */
export function flbasExtended(flbas: number): boolean {
  return (flbas & 0x10) !== 0
}

/** FLBAS of a format index (0-63) and the extended-LBA choice. */
export function encodeFlbas(index: number, extended = false): number {
  checkUint('LBA format index', index, MAX_LBA_FORMATS - 1)
  return (index & 0xf) | ((index & 0x30) << 1) | (extended ? 0x10 : 0)
}

/** DPS bits 2:0: the protection type (0 none, 1-3). */
export function dpsPiType(dps: number): number {
  return dps & 7
}

/** DPS bit 3: PI in the first bytes of the metadata (else the last). */
export function dpsPiFirst(dps: number): boolean {
  return (dps & 8) !== 0
}

export function encodeDps(piType: number, piFirst = false): number {
  return checkUint('PI type', piType, 7) | (piFirst ? 8 : 0)
}

/** The LBA format in use, or undefined if FLBAS points past the formats. */
export function activeLbaFormat(ns: Pick<IdentifyNamespace, 'flbas' | 'lbaf'>): LbaFormatDescriptor | undefined {
  return ns.lbaf[flbasFormatIndex(ns.flbas)]
}

/**
 * Encode Identify Namespace into `out` (4096 bytes, zeroed first; absent fields stay 0).
 * NLBAF is lbaf.length - nulbaf - 1. Throws RangeError on a value out of range.
 */
export function encodeIdentifyNamespace(ns: IdentifyNamespaceInput, out: Uint8Array): void {
  checkBuffer('Identify Namespace', out, IDENTIFY_DATA_SIZE)
  const lbaf = ns.lbaf ?? []
  const nulbaf = ns.nulbaf ?? 0
  if (lbaf.length > MAX_LBA_FORMATS) throw new RangeError(`${lbaf.length} LBA formats, more than ${MAX_LBA_FORMATS}`)
  const nlbaf = Math.max(lbaf.length, 1) - 1 - nulbaf
  if (nlbaf < 0) throw new RangeError(`nulbaf ${nulbaf} leaves no LBA format for NLBAF (${lbaf.length} formats)`)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  encodeStruct(IDENTIFY_NAMESPACE_FIELDS, ns, out)
  const dv = viewOf(out)
  dv.setUint8(IdentifyNamespaceOffset.nlbaf, nlbaf)
  lbaf.forEach((f, i) => dv.setUint32(IdentifyNamespaceOffset.lbaf + 4 * i, encodeLbaFormat(f), true))
}

/** Decode Identify Namespace; lbaf holds formats 0..NLBAF+NULBAF (at most 64). */
export function decodeIdentifyNamespace(buf: Uint8Array): IdentifyNamespace {
  checkBuffer('Identify Namespace', buf, IDENTIFY_DATA_SIZE)
  const dv = viewOf(buf)
  const scalars = decodeStruct(IDENTIFY_NAMESPACE_FIELDS, buf) as unknown as Omit<IdentifyNamespace, 'nlbaf' | 'lbaf'>
  const nlbaf = dv.getUint8(IdentifyNamespaceOffset.nlbaf)
  const count = Math.min(nlbaf + scalars.nulbaf + 1, MAX_LBA_FORMATS)
  const lbaf: LbaFormatDescriptor[] = []
  for (let i = 0; i < count; i++) lbaf.push(decodeLbaFormat(dv.getUint32(IdentifyNamespaceOffset.lbaf + 4 * i, true)))
  return { ...scalars, nlbaf, lbaf }
}

// ---------------------------------------------------------------------------------------------
// I/O Command Set Independent Identify Namespace (CNS 08h; NVMe Base 2.0 §5.17.2, Figure "I/O
// Command Set Independent Identify Namespace Data Structure")
//
//   off  size  field        off  size  field
//     0     1  NSFEAT         8     1  NSATTR
//     1     1  NMIC           9     1  reserved
//     2     1  RESCAP        10     2  NVMSETID
//     3     1  FPI           12     2  ENDGID
//     4     4  ANAGRPID      14     1  NSTAT (bit 0 namespace ready)

export interface IndependentIdentifyNamespace {
  nsfeat: number
  nmic: number
  rescap: number
  fpi: number
  anagrpid: number
  nsattr: number
  nvmsetid: number
  endgid: number
  /** Namespace Status (bit 0: ready). */
  nstat: number
}

export const INDEPENDENT_IDENTIFY_NAMESPACE_FIELDS: ReadonlyArray<FieldSpec<keyof IndependentIdentifyNamespace>> = [
  field('nsfeat', 0, 'u8'),
  field('nmic', 1, 'u8'),
  field('rescap', 2, 'u8'),
  field('fpi', 3, 'u8'),
  field('anagrpid', 4, 'u32'),
  field('nsattr', 8, 'u8'),
  field('nvmsetid', 10, 'u16'),
  field('endgid', 12, 'u16'),
  field('nstat', 14, 'u8'),
]

export function encodeIndependentIdentifyNamespace(ns: Partial<IndependentIdentifyNamespace>, out: Uint8Array): void {
  checkBuffer('I/O Command Set Independent Identify Namespace', out, IDENTIFY_DATA_SIZE)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  encodeStruct(INDEPENDENT_IDENTIFY_NAMESPACE_FIELDS, ns, out)
}

export function decodeIndependentIdentifyNamespace(buf: Uint8Array): IndependentIdentifyNamespace {
  checkBuffer('I/O Command Set Independent Identify Namespace', buf, IDENTIFY_DATA_SIZE)
  return decodeStruct(INDEPENDENT_IDENTIFY_NAMESPACE_FIELDS, buf) as unknown as IndependentIdentifyNamespace
}

// ---------------------------------------------------------------------------------------------
// NVM command set specific Identify Namespace (CNS 05h, CSI 00h; NVM Command Set 1.0 §4.1.5.2)
//
//   off   size  field
//     0      8  LBSTM   Logical Block Storage Tag Mask
//     8      1  PIC     bit 0 16BPISTS, bit 1 16BPISTM, bit 2 STCRS
//     9      3  reserved
//    12    256  ELBAF0-63, one u32 per LBA format:
//
//   bit  31                  9 8     7 6               0
//        |      reserved      |  PIF  |       STS       |
//
// STS the storage tag size in bits; PIF the protection information format, 00b 16b guard
// (CRC-16), 01b 32b guard (CRC-32C), 10b 64b guard (CRC-64/NVME).

/** Protection Information Format (ELBAF bits 8:7). */
export const ProtectionInfoFormat = {
  Guard16: 0,
  Guard32: 1,
  Guard64: 2,
} as const

/** PIC bits. */
export const ProtectionInfoCapabilities = {
  /** 16b Guard Protection Information Storage Tag Support. */
  STS16: 1 << 0,
  /** 16b Guard Protection Information Storage Tag Mask. */
  STM16: 1 << 1,
  /** Storage Tag Check Read Support. */
  STCRS: 1 << 2,
} as const

export interface ExtendedLbaFormat {
  /** Storage Tag Size, bits (7 bits). */
  sts: number
  /** Protection Information Format (2 bits). */
  pif: number
}

export interface NvmIdentifyNamespace {
  /** Logical Block Storage Tag Mask. */
  lbstm: bigint
  /** Protection Information Capabilities. */
  pic: number
  /** Extended LBA Formats, one per LBA format. */
  elbaf: ExtendedLbaFormat[]
}

export function encodeExtendedLbaFormat(f: Partial<ExtendedLbaFormat>): number {
  return checkUint('sts', f.sts ?? 0, 0x7f) | (checkUint('pif', f.pif ?? 0, 3) << 7)
}

export function decodeExtendedLbaFormat(v: number): ExtendedLbaFormat {
  return { sts: v & 0x7f, pif: (v >>> 7) & 3 }
}

export function encodeNvmIdentifyNamespace(ns: { lbstm?: bigint; pic?: number; elbaf?: ReadonlyArray<Partial<ExtendedLbaFormat>> }, out: Uint8Array): void {
  checkBuffer('NVM Identify Namespace', out, IDENTIFY_DATA_SIZE)
  const elbaf = ns.elbaf ?? []
  if (elbaf.length > MAX_LBA_FORMATS) throw new RangeError(`${elbaf.length} extended LBA formats, more than ${MAX_LBA_FORMATS}`)
  const lbstm = ns.lbstm ?? 0n
  if (typeof lbstm !== 'bigint' || lbstm < 0n || lbstm > 0xffffffffffffffffn) throw new RangeError(`lbstm ${String(lbstm)} is not a 64-bit bigint`)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  const dv = viewOf(out)
  dv.setBigUint64(0, lbstm, true)
  dv.setUint8(8, checkUint('pic', ns.pic ?? 0, 0xff))
  elbaf.forEach((f, i) => dv.setUint32(12 + 4 * i, encodeExtendedLbaFormat(f), true))
}

/** Decode the NVM command set specific Identify Namespace; `count` formats (NLBAF + NULBAF + 1 of Identify Namespace). */
export function decodeNvmIdentifyNamespace(buf: Uint8Array, count = MAX_LBA_FORMATS): NvmIdentifyNamespace {
  checkBuffer('NVM Identify Namespace', buf, IDENTIFY_DATA_SIZE)
  const dv = viewOf(buf)
  const elbaf: ExtendedLbaFormat[] = []
  for (let i = 0; i < Math.min(count, MAX_LBA_FORMATS); i++) elbaf.push(decodeExtendedLbaFormat(dv.getUint32(12 + 4 * i, true)))
  return { lbstm: dv.getBigUint64(0, true), pic: dv.getUint8(8), elbaf }
}

// ---------------------------------------------------------------------------------------------
// NVM command set specific Identify Controller (CNS 06h, CSI 00h; NVM Command Set 1.0 §4.1.5.3)
//
//   off  size  field
//     0     1  VSL     Verify Size Limit (2^n MPSMIN units, 0 = none)
//     1     1  WZSL    Write Zeroes Size Limit
//     2     1  WUSL    Write Uncorrectable Size Limit
//     3     1  DMRL    Dataset Management Ranges Limit
//     4     4  DMRSL   Dataset Management Range Size Limit (blocks)
//     8     8  DMSL    Dataset Management Size Limit (blocks)

export interface NvmIdentifyController {
  vsl: number
  wzsl: number
  wusl: number
  dmrl: number
  dmrsl: number
  /** Dataset Management Size Limit, logical blocks (exact below 2^53). */
  dmsl: number
}

export const NVM_IDENTIFY_CONTROLLER_FIELDS: ReadonlyArray<FieldSpec<keyof NvmIdentifyController>> = [
  field('vsl', 0, 'u8'),
  field('wzsl', 1, 'u8'),
  field('wusl', 2, 'u8'),
  field('dmrl', 3, 'u8'),
  field('dmrsl', 4, 'u32'),
  field('dmsl', 8, 'u64'),
]

export function encodeNvmIdentifyController(c: Partial<NvmIdentifyController>, out: Uint8Array): void {
  checkBuffer('NVM Identify Controller', out, IDENTIFY_DATA_SIZE)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  encodeStruct(NVM_IDENTIFY_CONTROLLER_FIELDS, c, out)
}

export function decodeNvmIdentifyController(buf: Uint8Array): NvmIdentifyController {
  checkBuffer('NVM Identify Controller', buf, IDENTIFY_DATA_SIZE)
  return decodeStruct(NVM_IDENTIFY_CONTROLLER_FIELDS, buf) as unknown as NvmIdentifyController
}

// ---------------------------------------------------------------------------------------------
// Namespace lists (CNS 02h, 07h, 10h, 1Ah): up to 1024 NSIDs, u32, in increasing order, the
// unused entries zero (NVMe Base 2.0, "Namespace List").

export const MAX_NAMESPACE_LIST_ENTRIES = 1024

/** Encode a namespace list (ascending NSIDs, 1..FFFFFFFEh) into `out` (4096 bytes, zeroed first). */
export function encodeNamespaceList(nsids: ReadonlyArray<number>, out: Uint8Array): void {
  checkBuffer('namespace list', out, IDENTIFY_DATA_SIZE)
  if (nsids.length > MAX_NAMESPACE_LIST_ENTRIES) throw new RangeError(`${nsids.length} NSIDs, more than ${MAX_NAMESPACE_LIST_ENTRIES}`)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  const dv = viewOf(out)
  let prev = 0
  nsids.forEach((id, i) => {
    checkUint('NSID', id, 0xfffffffe)
    if (id <= prev) throw new RangeError(`NSID ${id} is not above the previous ${prev} (0 is not an NSID; the list is in increasing order)`)
    prev = id
    dv.setUint32(4 * i, id, true)
  })
}

/** The NSIDs of a namespace list, up to the first zero entry. */
export function decodeNamespaceList(buf: Uint8Array): number[] {
  checkBuffer('namespace list', buf, IDENTIFY_DATA_SIZE)
  const dv = viewOf(buf)
  const ids: number[] = []
  for (let i = 0; i < MAX_NAMESPACE_LIST_ENTRIES; i++) {
    const id = dv.getUint32(4 * i, true)
    if (id === 0) break
    ids.push(id)
  }
  return ids
}

// ---------------------------------------------------------------------------------------------
// Namespace Identification Descriptor list (CNS 03h; NVMe Base 2.0 §5.17.2.3): descriptors back
// to back, ended by one whose NIDT is 0 (or by the end of the 4096 bytes):
//
//   off   size  field
//     0      1  NIDT  type: 1 EUI64 (8 bytes), 2 NGUID (16), 3 UUID (16), 4 CSI (1)
//     1      1  NIDL  length of NID
//     2      2  reserved
//     4   NIDL  NID

/** Namespace Identifier Types. */
export const NidType = {
  Eui64: 1,
  Nguid: 2,
  Uuid: 3,
  Csi: 4,
} as const

/** The NIDL each defined NIDT requires. */
export const NID_LENGTH: Readonly<Record<number, number>> = { 1: 8, 2: 16, 3: 16, 4: 1 }

export interface NamespaceIdDescriptor {
  nidt: number
  nid: Uint8Array
}

/** Encode descriptors into `out` (4096 bytes, zeroed first, so the list ends with NIDT 0). */
export function encodeNamespaceIdDescriptors(list: ReadonlyArray<NamespaceIdDescriptor>, out: Uint8Array): void {
  checkBuffer('Namespace Identification Descriptor list', out, IDENTIFY_DATA_SIZE)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  let off = 0
  for (const d of list) {
    checkUint('NIDT', d.nidt, 0xff)
    if (d.nidt === 0) throw new RangeError('NIDT 0 ends the list; it is not a descriptor')
    if (!(d.nid instanceof Uint8Array) || d.nid.length > 0xff) throw new RangeError(`NID of type ${d.nidt} is not a Uint8Array of at most 255 bytes`)
    const want = NID_LENGTH[d.nidt]
    if (want !== undefined && d.nid.length !== want) throw new RangeError(`NID of type ${d.nidt} is ${d.nid.length} bytes, not ${want}`)
    if (off + 4 + d.nid.length > IDENTIFY_DATA_SIZE) throw new RangeError('the descriptors do not fit in 4096 bytes')
    out[off] = d.nidt
    out[off + 1] = d.nid.length
    out.set(d.nid, off + 4)
    off += 4 + d.nid.length
  }
}

/** The descriptors of a Namespace Identification Descriptor list. Throws RangeError on one that runs past the end. */
export function decodeNamespaceIdDescriptors(buf: Uint8Array): NamespaceIdDescriptor[] {
  checkBuffer('Namespace Identification Descriptor list', buf, IDENTIFY_DATA_SIZE)
  const list: NamespaceIdDescriptor[] = []
  let off = 0
  while (off + 4 <= IDENTIFY_DATA_SIZE) {
    const nidt = buf[off]!
    if (nidt === 0) break
    const nidl = buf[off + 1]!
    if (off + 4 + nidl > IDENTIFY_DATA_SIZE) throw new RangeError(`descriptor at ${off} runs past the end`)
    list.push({ nidt, nid: buf.slice(off + 4, off + 4 + nidl) })
    off += 4 + nidl
  }
  return list
}

// ---------------------------------------------------------------------------------------------
// Identify I/O Command Set data structure (CNS 1Ch; NVMe Base 2.0 §5.17.2.21): 512 I/O Command
// Set Combination vectors, u64 each. Bit n of a vector is command set (CSI) n; the index of a
// vector is what Set Features I/O Command Set Profile (FID 19h) selects.

export const IO_COMMAND_SET_VECTORS = 512

/** Command set bits of an I/O Command Set Combination vector. */
export const IoCommandSetVector = {
  Nvm: 1n << 0n,
  KeyValue: 1n << 1n,
  Zoned: 1n << 2n,
} as const

/** Encode the vectors into `out` (4096 bytes, zeroed first). */
export function encodeIoCommandSets(vectors: ReadonlyArray<bigint | number>, out: Uint8Array): void {
  checkBuffer('I/O Command Set data structure', out, IDENTIFY_DATA_SIZE)
  if (vectors.length > IO_COMMAND_SET_VECTORS) throw new RangeError(`${vectors.length} vectors, more than ${IO_COMMAND_SET_VECTORS}`)
  out.fill(0, 0, IDENTIFY_DATA_SIZE)
  const dv = viewOf(out)
  vectors.forEach((v, i) => {
    const b = typeof v === 'bigint' ? v : Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : -1n
    if (b < 0n || b > 0xffffffffffffffffn) throw new RangeError(`vector ${i} ${String(v)} is not a 64-bit value`)
    dv.setBigUint64(8 * i, b, true)
  })
}

/** The vectors up to the last non-zero one. */
export function decodeIoCommandSets(buf: Uint8Array): bigint[] {
  checkBuffer('I/O Command Set data structure', buf, IDENTIFY_DATA_SIZE)
  const dv = viewOf(buf)
  const vs: bigint[] = []
  for (let i = 0; i < IO_COMMAND_SET_VECTORS; i++) vs.push(dv.getBigUint64(8 * i, true))
  let n = vs.length
  while (n > 0 && vs[n - 1] === 0n) n--
  return vs.slice(0, n)
}
