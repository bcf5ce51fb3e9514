// Controller properties: the registers of BAR0 on PCIe, the properties of Property Get/Set on
// NVMe over Fabrics (NVMe Base 2.0 §3.1, "Controller Properties"; §3.1.4 in 2.1, Figures 36-61
// "Offset 0h: CAP" .. "Offset E0Ch: PMREBS"). Layouts checked against
// libnvme's enum nvme_register_offsets and field enums, Linux's include/linux/nvme.h, SPDK's
// spdk_nvme_registers (with its offsetof asserts) and QEMU's NvmeBar.
//
//   off    size  name      off    size  name
//   0x00     8   CAP       0x50     8   CMBMSC
//   0x08     4   VS        0x58     4   CMBSTS
//   0x0C     4   INTMS     0x5C     4   CMBEBS
//   0x10     4   INTMC     0x60     4   CMBSWTP
//   0x14     4   CC        0x64     4   NSSD
//   0x1C     4   CSTS      0x68     4   CRTO
//   0x20     4   NSSR      0xE00    4   PMRCAP
//   0x24     4   AQA       0xE04    4   PMRCTL
//   0x28     8   ASQ       0xE08    4   PMRSTS
//   0x30     8   ACQ       0xE0C    4   PMREBS
//   0x38     4   CMBLOC    0xE10    4   PMRSWTP
//   0x3C     4   CMBSZ     0xE14    4   PMRMSCL
//   0x40     4   BPINFO    0xE18    4   PMRMSCU
//   0x44     4   BPRSEL    0x1000       doorbells: SQy tail at 0x1000 + (2y)·(4 << DSTRD),
//   0x48     8   BPMBL                  CQy head at 0x1000 + (2y + 1)·(4 << DSTRD)
//
// CAP is 64 bits and most of what a controller checks on every access (MQES, TO) is in its low
// word, so CAP is split into its two 32-bit words, as MMIO reads it: the hot path never builds a
// BigInt. The high word's fields are listed here with their CAP bit numbers:
//
//   CAP low   31:24 TO (500 ms units), 18:17 AMS, 16 CQR, 15:0 MQES (0's based)
//   CAP high  60:59 CRMS, 58 NSSS, 57 CMBS, 56 PMRS, 55:52 MPSMAX, 51:48 MPSMIN, 47:46 CPS,
//             45 BPS, 44:37 CSS, 36 NSSRS, 35:32 DSTRD
//
//   VS        31:16 MJR, 15:8 MNR, 7:0 TER
//   CC        24 CRIME, 23:20 IOCQES, 19:16 IOSQES, 15:14 SHN, 13:11 AMS, 10:7 MPS, 6:4 CSS, 0 EN
//   CSTS      6 ST, 5 PP, 4 NSSRO, 3:2 SHST, 1 CFS, 0 RDY
//   AQA       27:16 ACQS, 11:0 ASQS (both 0's based)
//   CMBLOC    31:12 OFST (SZU units), 8 CQDA, 7 CDMMMS, 6 CDPCILS, 5 CDPMLS, 4 CQPDS, 3 CQMMS, 2:0 BIR
//   CMBSZ     31:12 SZ, 11:8 SZU (4 KiB << 4·SZU), 4 WDS, 3 RDS, 2 LISTS, 1 CQS, 0 SQS
//   CMBMSC    63:12 CBA, 1 CMSE, 0 CRE
//   CMBSTS    0 CBAI
//   CMBEBS    31:8 CMBWBZ, 4 RBB, 3:0 CMBSZU
//   CMBSWTP   31:8 CMBSWTV, 3:0 CMBSWTU
//   CRTO      31:16 CRIMT, 15:0 CRWMT (500 ms units)
//   BPINFO    31 ABPID, 25:24 BRS, 14:0 BPSZ (128 KiB units)
//   BPRSEL    31 BPID, 29:10 BPROF (4 KiB units), 9:0 BPRSZ (4 KiB units)
//   PMRCAP    24 CMSS, 23:16 PMRTO, 13:10 PMRWBM, 9:8 PMRTU, 7:5 BIR, 4 WDS, 3 RDS
//   PMRCTL    0 EN
//   PMRSTS    12 CBAI, 11:9 HSTS, 8 NRDY, 7:0 ERR
//   PMREBS    31:8 PMRWBZ, 4 RBB, 3:0 PMRSZU
//   PMRSWTP   31:8 PMRSWTV, 3:0 PMRSWTU
//   PMRMSC    63:12 CBA (PMRMSCU holds 63:32), 1 CMSE

/** Property / BAR0 register offsets. */
export const Reg = {
  CAP: 0x00,
  VS: 0x08,
  INTMS: 0x0c,
  INTMC: 0x10,
  CC: 0x14,
  CSTS: 0x1c,
  NSSR: 0x20,
  AQA: 0x24,
  ASQ: 0x28,
  ACQ: 0x30,
  CMBLOC: 0x38,
  CMBSZ: 0x3c,
  BPINFO: 0x40,
  BPRSEL: 0x44,
  BPMBL: 0x48,
  CMBMSC: 0x50,
  CMBSTS: 0x58,
  CMBEBS: 0x5c,
  CMBSWTP: 0x60,
  NSSD: 0x64,
  CRTO: 0x68,
  PMRCAP: 0xe00,
  PMRCTL: 0xe04,
  PMRSTS: 0xe08,
  PMREBS: 0xe0c,
  PMRSWTP: 0xe10,
  PMRMSCL: 0xe14,
  PMRMSCU: 0xe18,
  /** SQ 0 Tail doorbell; the doorbells follow. */
  DOORBELLS: 0x1000,
} as const

/** "NVMe": written to NSSR, it resets the NVM subsystem. */
export const NVME_SIGNATURE = 0x4e564d65

/** NSSD.NSSC values: "Nrml" starts a normal NVM subsystem shutdown, "Abpt" an abrupt one (2.1). */
export const NssdControl = {
  Normal: 0x4e726d6c,
  Abrupt: 0x41627074,
} as const

/** The size in bytes of each defined property (Property Get/Set ATTRIB: 8-byte ones are CAP, ASQ, ACQ, BPMBL, CMBMSC). */
export const PROPERTY_SIZES: ReadonlyMap<number, 4 | 8> = new Map<number, 4 | 8>(
  Object.entries(Reg)
    .filter(([k]) => k !== 'DOORBELLS')
    .map(([k, off]) => [off, k === 'CAP' || k === 'ASQ' || k === 'ACQ' || k === 'BPMBL' || k === 'CMBMSC' ? 8 : 4]),
)

/** The size of the property at `offset` (4 or 8), or undefined if none is defined there. */
export function propertySize(offset: number): 4 | 8 | undefined {
  return PROPERTY_SIZES.get(offset)
}

/** Whether the property at `offset` is 64 bits wide. */
export function isProperty64(offset: number): boolean {
  return PROPERTY_SIZES.get(offset) === 8
}

/**
 * ATTRIB of Property Get / Property Set (NVMe Base 2.0 §6.5, §6.6): bits 2:0 the size,
 * 000b 4 bytes, 001b 8 bytes.
 */
export function encodePropertyAttrib(size: 4 | 8): number {
  return size === 8 ? 1 : 0
}

/** The property size an ATTRIB asks for, or undefined for a reserved size. */
export function decodePropertyAttrib(attrib: number): 4 | 8 | undefined {
  const s = attrib & 7
  return s === 0 ? 4 : s === 1 ? 8 : undefined
}

/** Join two 32-bit words into a u64 bigint (Property Get/Set values, CAP as a whole). */
export function joinU64(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0)
}

/** Split a u64 bigint into its 32-bit words. */
export function splitU64(v: bigint): { low: number; high: number } {
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${v} is not a u64`)
  return { low: Number(v & 0xffffffffn), high: Number(v >> 32n) }
}

// ---------------------------------------------------------------------------------------------
// Doorbells

/** Bytes between doorbells: 4 << CAP.DSTRD. */
export function doorbellStride(dstrd: number): number {
  return 4 << dstrd
}

/** Offset of SQ `qid`'s Tail doorbell. */
export function sqTailDoorbell(qid: number, dstrd = 0): number {
  return Reg.DOORBELLS + 2 * qid * (4 << dstrd)
}

/** Offset of CQ `qid`'s Head doorbell. */
export function cqHeadDoorbell(qid: number, dstrd = 0): number {
  return Reg.DOORBELLS + (2 * qid + 1) * (4 << dstrd)
}

/** The queue a doorbell offset belongs to, or undefined if `offset` is not on a doorbell. */
export function decodeDoorbell(offset: number, dstrd = 0): { qid: number; cq: boolean } | undefined {
  const rel = offset - Reg.DOORBELLS
  const stride = 4 << dstrd
  if (rel < 0 || rel % stride !== 0) return undefined
  const n = rel / stride
  return { qid: n >>> 1, cq: (n & 1) === 1 }
}

// ---------------------------------------------------------------------------------------------
// Bit field tables

interface BitField<K extends string> {
  readonly name: K
  readonly shift: number
  readonly width: number
  /** A one-bit flag, decoded as a boolean. */
  readonly flag: boolean
}

function num<K extends string>(name: K, hi: number, lo: number): BitField<K> {
  return { name, shift: lo, width: hi - lo + 1, flag: false }
}

function flag<K extends string>(name: K, b: number): BitField<K> {
  return { name, shift: b, width: 1, flag: true }
}

function pack(reg: string, fields: ReadonlyArray<BitField<string>>, value: object): number {
  const rec = value as Record<string, unknown>
  let v = 0
  for (const f of fields) {
    const x = rec[f.name]
    if (x === undefined) continue
    if (f.flag) {
      if (typeof x !== 'boolean') throw new TypeError(`${reg}.${f.name} is not a boolean`)
      if (x) v |= 1 << f.shift
    } else {
      const max = 2 ** f.width - 1
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) throw new RangeError(`${reg}.${f.name} ${String(x)} is not an integer in 0..${max}`)
      v |= x << f.shift
    }
  }
  return v >>> 0
}

function unpack<T>(fields: ReadonlyArray<BitField<string>>, v: number): T {
  const out: Record<string, number | boolean> = {}
  for (const f of fields) {
    const x = (v >>> f.shift) & (2 ** f.width - 1)
    out[f.name] = f.flag ? x === 1 : x
  }
  return out as T
}

// ---------------------------------------------------------------------------------------------
// CAP

/** CAP.CSS bits (CAP bits 44:37 as an 8-bit field). */
export const CapCss = {
  /** NVM command set. */
  Nvm: 1 << 0,
  /** One or more I/O command sets (selected by CC.CSS = 110b, chosen per namespace by CSI). */
  IoCommandSets: 1 << 6,
  /** No I/O command set: an Administrative controller (CC.CSS = 111b). */
  AdminOnly: 1 << 7,
} as const

/** CAP.AMS bits (the optional arbitration mechanisms; round robin is always supported). */
export const CapAms = {
  WeightedRoundRobinUrgent: 1 << 0,
  VendorSpecific: 1 << 1,
} as const

/** CAP.CRMS bits. */
export const CapCrms = {
  /** Controller Ready With Media Support. */
  Crwms: 1 << 0,
  /** Controller Ready Independent of Media Support. */
  Crims: 1 << 1,
} as const

export interface Cap {
  /** Maximum Queue Entries Supported, 0's based. */
  mqes: number
  /** Contiguous Queues Required. */
  cqr: boolean
  /** Arbitration Mechanism Supported: CapAms bits. */
  ams: number
  /** Timeout: worst time to CSTS.RDY, 500 ms units. */
  to: number
  /** Doorbell Stride: 4 << dstrd bytes. */
  dstrd: number
  /** NVM Subsystem Reset Supported. */
  nssrs: boolean
  /** Command Sets Supported: CapCss bits. */
  css: number
  /** Boot Partition Support. */
  bps: boolean
  /** Controller Power Scope. */
  cps: number
  /** Memory Page Size Minimum: 4 KiB << mpsmin. */
  mpsmin: number
  /** Memory Page Size Maximum: 4 KiB << mpsmax. */
  mpsmax: number
  /** Persistent Memory Region Supported. */
  pmrs: boolean
  /** Controller Memory Buffer Supported (CMBMSC). */
  cmbs: boolean
  /** NVM Subsystem Shutdown Supported. */
  nsss: boolean
  /** Controller Ready Modes Supported: CapCrms bits. */
  crms: number
}

const CAP_LOW: ReadonlyArray<BitField<keyof Cap>> = [num('mqes', 15, 0), flag('cqr', 16), num('ams', 18, 17), num('to', 31, 24)]

// CAP bits 63:32, numbered within the high word (CAP bit n is bit n - 32 here)
const CAP_HIGH: ReadonlyArray<BitField<keyof Cap>> = [
  num('dstrd', 35 - 32, 32 - 32),
  flag('nssrs', 36 - 32),
  num('css', 44 - 32, 37 - 32),
  flag('bps', 45 - 32),
  num('cps', 47 - 32, 46 - 32),
  num('mpsmin', 51 - 32, 48 - 32),
  num('mpsmax', 55 - 32, 52 - 32),
  flag('pmrs', 56 - 32),
  flag('cmbs', 57 - 32),
  flag('nsss', 58 - 32),
  num('crms', 60 - 32, 59 - 32),
]

/** CAP bits 31:0. */
export function capLow(c: Partial<Cap>): number {
  return pack('CAP', CAP_LOW, c)
}

/** CAP bits 63:32. */
export function capHigh(c: Partial<Cap>): number {
  return pack('CAP', CAP_HIGH, c)
}

export function encodeCap(c: Partial<Cap>): { low: number; high: number } {
  return { low: capLow(c), high: capHigh(c) }
}

export function decodeCap(low: number, high: number): Cap {
  return { ...unpack<Pick<Cap, 'mqes' | 'cqr' | 'ams' | 'to'>>(CAP_LOW, low), ...unpack<Omit<Cap, 'mqes' | 'cqr' | 'ams' | 'to'>>(CAP_HIGH, high) }
}

/** CAP.MQES from CAP's low word. */
export function capMqes(low: number): number {
  return low & 0xffff
}

/** CAP.TO from CAP's low word (500 ms units). */
export function capTo(low: number): number {
  return low >>> 24
}

/** CAP.DSTRD from CAP's high word. */
export function capDstrd(high: number): number {
  return high & 0xf
}

/** CAP.CSS from CAP's high word. */
export function capCss(high: number): number {
  return (high >>> 5) & 0xff
}

/** CAP.MPSMIN from CAP's high word. */
export function capMpsmin(high: number): number {
  return (high >>> 16) & 0xf
}

/** CAP.MPSMAX from CAP's high word. */
export function capMpsmax(high: number): number {
  return (high >>> 20) & 0xf
}

// ---------------------------------------------------------------------------------------------
// VS

export interface Version {
  /** Major Version Number. */
  mjr: number
  /** Minor Version Number. */
  mnr: number
  /** Tertiary Version Number. */
  ter: number
}

const VS_FIELDS: ReadonlyArray<BitField<keyof Version>> = [num('ter', 7, 0), num('mnr', 15, 8), num('mjr', 31, 16)]

export function encodeVersion(v: Partial<Version>): number {
  return pack('VS', VS_FIELDS, v)
}

export function decodeVersion(v: number): Version {
  return unpack(VS_FIELDS, v)
}

/** VS of NVMe 2.0.0. */
export const NVME_VERSION_2_0 = 0x0002_0000

// ---------------------------------------------------------------------------------------------
// CC

/** CC.CSS values. */
export const CcCss = {
  Nvm: 0,
  AllIoCommandSets: 6,
  AdminOnly: 7,
} as const

/** CC.AMS values. */
export const CcAms = {
  RoundRobin: 0,
  WeightedRoundRobinUrgent: 1,
  VendorSpecific: 7,
} as const

/** CC.SHN values. */
export const Shn = {
  None: 0,
  Normal: 1,
  Abrupt: 2,
} as const

export interface Cc {
  /** Enable. */
  en: boolean
  /** I/O Command Set Selected: CcCss. */
  css: number
  /** Memory Page Size: 4 KiB << mps. */
  mps: number
  /** Arbitration Mechanism Selected: CcAms. */
  ams: number
  /** Shutdown Notification: Shn. */
  shn: number
  /** I/O Submission Queue Entry Size, power of two (6 = 64 B). */
  iosqes: number
  /** I/O Completion Queue Entry Size, power of two (4 = 16 B). */
  iocqes: number
  /** Controller Ready Independent of Media Enable. */
  crime: boolean
}

const CC_FIELDS: ReadonlyArray<BitField<keyof Cc>> = [
  flag('en', 0),
  num('css', 6, 4),
  num('mps', 10, 7),
  num('ams', 13, 11),
  num('shn', 15, 14),
  num('iosqes', 19, 16),
  num('iocqes', 23, 20),
  flag('crime', 24),
]

export function encodeCc(c: Partial<Cc>): number {
  return pack('CC', CC_FIELDS, c)
}

export function decodeCc(v: number): Cc {
  return unpack(CC_FIELDS, v)
}

// ---------------------------------------------------------------------------------------------
// CSTS

/** CSTS.SHST values. */
export const Shst = {
  Normal: 0,
  Occurring: 1,
  Complete: 2,
} as const

export interface Csts {
  /** Ready. */
  rdy: boolean
  /** Controller Fatal Status. */
  cfs: boolean
  /** Shutdown Status: Shst. */
  shst: number
  /** NVM Subsystem Reset Occurred (write 1 to clear). */
  nssro: boolean
  /** Processing Paused. */
  pp: boolean
  /** Shutdown Type: the shutdown (SHST) is of the NVM subsystem, not this controller. */
  st: boolean
}

const CSTS_FIELDS: ReadonlyArray<BitField<keyof Csts>> = [flag('rdy', 0), flag('cfs', 1), num('shst', 3, 2), flag('nssro', 4), flag('pp', 5), flag('st', 6)]

export function encodeCsts(c: Partial<Csts>): number {
  return pack('CSTS', CSTS_FIELDS, c)
}

export function decodeCsts(v: number): Csts {
  return unpack(CSTS_FIELDS, v)
}

// ---------------------------------------------------------------------------------------------
// AQA

export interface Aqa {
  /** Admin Submission Queue Size, 0's based (1..4095). */
  asqs: number
  /** Admin Completion Queue Size, 0's based (1..4095). */
  acqs: number
}

const AQA_FIELDS: ReadonlyArray<BitField<keyof Aqa>> = [num('asqs', 11, 0), num('acqs', 27, 16)]

export function encodeAqa(a: Partial<Aqa>): number {
  return pack('AQA', AQA_FIELDS, a)
}

export function decodeAqa(v: number): Aqa {
  return unpack(AQA_FIELDS, v)
}

// ---------------------------------------------------------------------------------------------
// CMB registers

export interface Cmbloc {
  /** Base Indicator Register: the BAR holding the CMB. */
  bir: number
  /** CMB Queue Mixed Memory Support. */
  cqmms: boolean
  /** CMB Queue Physically Discontiguous Support. */
  cqpds: boolean
  /** CMB Data Pointer Mixed Locations Support. */
  cdpmls: boolean
  /** CMB Data Pointer and Command Independent Locations Support. */
  cdpcils: boolean
  /** CMB Data Metadata Mixed Memory Support. */
  cdmmms: boolean
  /** CMB Queue Dword Alignment. */
  cqda: boolean
  /** Offset in the BAR, CMBSZ.SZU units. */
  ofst: number
}

const CMBLOC_FIELDS: ReadonlyArray<BitField<keyof Cmbloc>> = [
  num('bir', 2, 0),
  flag('cqmms', 3),
  flag('cqpds', 4),
  flag('cdpmls', 5),
  flag('cdpcils', 6),
  flag('cdmmms', 7),
  flag('cqda', 8),
  num('ofst', 31, 12),
]

export function encodeCmbloc(c: Partial<Cmbloc>): number {
  return pack('CMBLOC', CMBLOC_FIELDS, c)
}

export function decodeCmbloc(v: number): Cmbloc {
  return unpack(CMBLOC_FIELDS, v)
}

/** CMBSZ.SZU values: the size unit is 4 KiB << (4·SZU). */
export const CmbSizeUnit = {
  Kib4: 0,
  Kib64: 1,
  Mib1: 2,
  Mib16: 3,
  Mib256: 4,
  Gib4: 5,
  Gib64: 6,
} as const

export interface Cmbsz {
  /** Submission Queue Support. */
  sqs: boolean
  /** Completion Queue Support. */
  cqs: boolean
  /** PRP SGL List Support. */
  lists: boolean
  /** Read Data Support. */
  rds: boolean
  /** Write Data Support. */
  wds: boolean
  /** Size Units: CmbSizeUnit. */
  szu: number
  /** Size, SZU units. */
  sz: number
}

const CMBSZ_FIELDS: ReadonlyArray<BitField<keyof Cmbsz>> = [
  flag('sqs', 0),
  flag('cqs', 1),
  flag('lists', 2),
  flag('rds', 3),
  flag('wds', 4),
  num('szu', 11, 8),
  num('sz', 31, 12),
]

export function encodeCmbsz(c: Partial<Cmbsz>): number {
  return pack('CMBSZ', CMBSZ_FIELDS, c)
}

export function decodeCmbsz(v: number): Cmbsz {
  return unpack(CMBSZ_FIELDS, v)
}

/** The bytes of one CMBSZ size unit (SZU). */
export function cmbSizeUnitBytes(szu: number): number {
  return 2 ** (12 + 4 * szu)
}

/** The CMB size in bytes (exact: a 20-bit count times a power of two). */
export function cmbSizeBytes(c: Pick<Cmbsz, 'sz' | 'szu'>): number {
  return c.sz * cmbSizeUnitBytes(c.szu)
}

export interface Cmbmsc {
  /** Capabilities Registers Enabled: CMBLOC and CMBSZ read as zero until set. */
  cre: boolean
  /** Controller Memory Space Enable. */
  cmse: boolean
  /** Controller Base Address: the CMB's address as the controller sees it (4 KiB aligned, exact below 2^53). */
  cba: number
}

const TWO_32 = 0x100000000

function checkBase(reg: string, cba: number): number {
  if (!Number.isSafeInteger(cba) || cba < 0 || cba % 4096 !== 0) throw new RangeError(`${reg}.CBA ${cba} is not a 4 KiB aligned safe integer`)
  return cba
}

/** CMBMSC's two words: CRE bit 0, CMSE bit 1, CBA bits 63:12. */
export function encodeCmbmsc(c: Partial<Cmbmsc>): { low: number; high: number } {
  const cba = checkBase('CMBMSC', c.cba ?? 0)
  const lo = cba >>> 0
  return { low: (lo | (c.cmse === true ? 2 : 0) | (c.cre === true ? 1 : 0)) >>> 0, high: (cba - lo) / TWO_32 }
}

export function decodeCmbmsc(low: number, high: number): Cmbmsc {
  return { cre: (low & 1) !== 0, cmse: (low & 2) !== 0, cba: ((low & 0xfffff000) >>> 0) + (high >>> 0) * TWO_32 }
}

export interface Cmbsts {
  /** Controller Base Address Invalid. */
  cbai: boolean
}

export function encodeCmbsts(c: Partial<Cmbsts>): number {
  return c.cbai === true ? 1 : 0
}

export function decodeCmbsts(v: number): Cmbsts {
  return { cbai: (v & 1) !== 0 }
}

export interface Cmbebs {
  /** Size Units: 0 bytes, 1 KiB, 2 MiB, 3 GiB. */
  cmbszu: number
  /** Read Bypass Behavior. */
  rbb: boolean
  /** Elasticity buffer size, CMBSZU units. */
  cmbwbz: number
}

const CMBEBS_FIELDS: ReadonlyArray<BitField<keyof Cmbebs>> = [num('cmbszu', 3, 0), flag('rbb', 4), num('cmbwbz', 31, 8)]

export function encodeCmbebs(c: Partial<Cmbebs>): number {
  return pack('CMBEBS', CMBEBS_FIELDS, c)
}

export function decodeCmbebs(v: number): Cmbebs {
  return unpack(CMBEBS_FIELDS, v)
}

export interface Cmbswtp {
  /** Throughput Units: 0 B/s, 1 KiB/s, 2 MiB/s, 3 GiB/s. */
  cmbswtu: number
  /** Sustained write throughput, CMBSWTU units. */
  cmbswtv: number
}

const CMBSWTP_FIELDS: ReadonlyArray<BitField<keyof Cmbswtp>> = [num('cmbswtu', 3, 0), num('cmbswtv', 31, 8)]

export function encodeCmbswtp(c: Partial<Cmbswtp>): number {
  return pack('CMBSWTP', CMBSWTP_FIELDS, c)
}

export function decodeCmbswtp(v: number): Cmbswtp {
  return unpack(CMBSWTP_FIELDS, v)
}

// ---------------------------------------------------------------------------------------------
// CRTO, boot partitions

export interface Crto {
  /** Controller Ready With Media Timeout, 500 ms units. */
  crwmt: number
  /** Controller Ready Independent of Media Timeout, 500 ms units. */
  crimt: number
}

const CRTO_FIELDS: ReadonlyArray<BitField<keyof Crto>> = [num('crwmt', 15, 0), num('crimt', 31, 16)]

export function encodeCrto(c: Partial<Crto>): number {
  return pack('CRTO', CRTO_FIELDS, c)
}

export function decodeCrto(v: number): Crto {
  return unpack(CRTO_FIELDS, v)
}

export interface Bpinfo {
  /** Boot Partition Size, 128 KiB units. */
  bpsz: number
  /** Boot Read Status: 0 none, 1 in progress, 2 completed, 3 error. */
  brs: number
  /** Active Boot Partition ID. */
  abpid: number
}

const BPINFO_FIELDS: ReadonlyArray<BitField<keyof Bpinfo>> = [num('bpsz', 14, 0), num('brs', 25, 24), num('abpid', 31, 31)]

export function encodeBpinfo(b: Partial<Bpinfo>): number {
  return pack('BPINFO', BPINFO_FIELDS, b)
}

export function decodeBpinfo(v: number): Bpinfo {
  return unpack(BPINFO_FIELDS, v)
}

export interface Bprsel {
  /** Boot Partition Read Size, 4 KiB units. */
  bprsz: number
  /** Boot Partition Read Offset, 4 KiB units. */
  bprof: number
  /** Boot Partition Identifier. */
  bpid: number
}

const BPRSEL_FIELDS: ReadonlyArray<BitField<keyof Bprsel>> = [num('bprsz', 9, 0), num('bprof', 29, 10), num('bpid', 31, 31)]

export function encodeBprsel(b: Partial<Bprsel>): number {
  return pack('BPRSEL', BPRSEL_FIELDS, b)
}

export function decodeBprsel(v: number): Bprsel {
  return unpack(BPRSEL_FIELDS, v)
}

// ---------------------------------------------------------------------------------------------
// PMR registers

export interface Pmrcap {
  /** Read Data Support. */
  rds: boolean
  /** Write Data Support. */
  wds: boolean
  /** Base Indicator Register: the BAR holding the PMR. */
  bir: number
  /** PMR Time Units: 0 500 ms, 1 minutes. */
  pmrtu: number
  /** PMR Write Barrier Mechanisms. */
  pmrwbm: number
  /** PMR Timeout, PMRTU units. */
  pmrto: number
  /** Controller Memory Space Supported. */
  cmss: boolean
}

const PMRCAP_FIELDS: ReadonlyArray<BitField<keyof Pmrcap>> = [
  flag('rds', 3),
  flag('wds', 4),
  num('bir', 7, 5),
  num('pmrtu', 9, 8),
  num('pmrwbm', 13, 10),
  num('pmrto', 23, 16),
  flag('cmss', 24),
]

export function encodePmrcap(p: Partial<Pmrcap>): number {
  return pack('PMRCAP', PMRCAP_FIELDS, p)
}

export function decodePmrcap(v: number): Pmrcap {
  return unpack(PMRCAP_FIELDS, v)
}

export interface Pmrctl {
  /** Enable. */
  en: boolean
}

export function encodePmrctl(p: Partial<Pmrctl>): number {
  return p.en === true ? 1 : 0
}

export function decodePmrctl(v: number): Pmrctl {
  return { en: (v & 1) !== 0 }
}

export interface Pmrsts {
  /** Error (implementation specific). */
  err: number
  /** Not Ready. */
  nrdy: boolean
  /** Health Status. */
  hsts: number
  /** Controller Base Address Invalid. */
  cbai: boolean
}

const PMRSTS_FIELDS: ReadonlyArray<BitField<keyof Pmrsts>> = [num('err', 7, 0), flag('nrdy', 8), num('hsts', 11, 9), flag('cbai', 12)]

export function encodePmrsts(p: Partial<Pmrsts>): number {
  return pack('PMRSTS', PMRSTS_FIELDS, p)
}

export function decodePmrsts(v: number): Pmrsts {
  return unpack(PMRSTS_FIELDS, v)
}

export interface Pmrebs {
  /** Size Units: 0 bytes, 1 KiB, 2 MiB, 3 GiB. */
  pmrszu: number
  /** Read Bypass Behavior. */
  rbb: boolean
  /** Elasticity buffer size, PMRSZU units. */
  pmrwbz: number
}

const PMREBS_FIELDS: ReadonlyArray<BitField<keyof Pmrebs>> = [num('pmrszu', 3, 0), flag('rbb', 4), num('pmrwbz', 31, 8)]

export function encodePmrebs(p: Partial<Pmrebs>): number {
  return pack('PMREBS', PMREBS_FIELDS, p)
}

export function decodePmrebs(v: number): Pmrebs {
  return unpack(PMREBS_FIELDS, v)
}

export interface Pmrswtp {
  /** Throughput Units: 0 B/s, 1 KiB/s, 2 MiB/s, 3 GiB/s. */
  pmrswtu: number
  /** Sustained write throughput, PMRSWTU units. */
  pmrswtv: number
}

const PMRSWTP_FIELDS: ReadonlyArray<BitField<keyof Pmrswtp>> = [num('pmrswtu', 3, 0), num('pmrswtv', 31, 8)]

export function encodePmrswtp(p: Partial<Pmrswtp>): number {
  return pack('PMRSWTP', PMRSWTP_FIELDS, p)
}

export function decodePmrswtp(v: number): Pmrswtp {
  return unpack(PMRSWTP_FIELDS, v)
}

export interface Pmrmsc {
  /** Controller Memory Space Enable. */
  cmse: boolean
  /** Controller Base Address (4 KiB aligned, exact below 2^53). */
  cba: number
}

/** PMRMSCL (low) and PMRMSCU (high): CMSE bit 1, CBA bits 63:12. */
export function encodePmrmsc(p: Partial<Pmrmsc>): { low: number; high: number } {
  const cba = checkBase('PMRMSC', p.cba ?? 0)
  const lo = cba >>> 0
  return { low: (lo | (p.cmse === true ? 2 : 0)) >>> 0, high: (cba - lo) / TWO_32 }
}

export function decodePmrmsc(low: number, high: number): Pmrmsc {
  return { cmse: (low & 2) !== 0, cba: ((low & 0xfffff000) >>> 0) + (high >>> 0) * TWO_32 }
}
