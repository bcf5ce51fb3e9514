// The Submission Queue Entry: 64 bytes, little-endian (NVMe Base 2.0 §3.3.3.1, Figure "Common
// Command Format"), and the command dwords of the NVM command set's data commands.
//
//   off   size  field
//     0      1  OPC     opcode                                   (CDW0 bits 7:0)
//     1      1  FUSE    bits 1:0, reserved 5:2, PSDT bits 7:6     (CDW0 bits 15:8)
//     2      2  CID     command identifier                       (CDW0 bits 31:16)
//     4      4  NSID    namespace; a Fabrics command has FCTYPE in byte 4 instead
//     8      4  CDW2    command specific (upper reference/storage tag bits of NVM I/O)
//    12      4  CDW3    command specific
//    16      8  MPTR    metadata pointer; with PSDT 10b the address of an SGL segment
//    24     16  DPTR    PRP1 (24) + PRP2 (32), or SGL1, one SGL descriptor (PSDT 01b/10b)
//    40      4  CDW10   command specific
//    44      4  CDW11
//    48      4  CDW12
//    52      4  CDW13
//    56      4  CDW14
//    60      4  CDW15
//    64         end
//
// The controller reads SQEs in place, out of the host's queue memory (a shared
// WebAssembly.Memory), so SqeView is an accessor over a DataView and an offset that is moved
// from entry to entry with reset(): no object per command. 64-bit fields are numbers: queue
// and data addresses here are IOVAs below 2^48, well inside the 2^53 a double holds exactly;
// the halves are there for callers that need all 64 bits.
//
// NVM command set Read, Write, Compare, Verify and Write Zeroes (NVM Command Set 1.0 §3.2.4,
// §3.2.6, §3.2.1, §3.2.5, §3.2.8) share the command dwords:
//
//   CDW10-11  SLBA     starting LBA (64 bits)
//   CDW12     bit 31 LR, bit 30 FUA, 29:26 PRINFO (29 PRACT, 28 guard, 27 app tag, 26 ref tag),
//             bit 25 DEAC (Write Zeroes), bit 24 STC, 23:20 DTYPE (Write), 15:0 NLB (0's based)
//   CDW13     31:16 DSPEC (Write), 7:0 DSM
//   CDW14     EILBRT / ILBRT (initial logical block reference tag, low 32 bits)
//   CDW15     31:16 LBATM (application tag mask), 15:0 LBAT (application tag)
//
// With a 32b or 64b guard protection format the reference and storage tags are wider than
// CDW14: their upper bits are in CDW2 and CDW3 (NVM Command Set 1.0, the "Command Dword 2 and
// Command Dword 3" figures of Read and Write), read through cdw2/cdw3 here.

import { SglView } from './sgl.js'

export const SQE_SIZE = 64

/** Byte offsets of the SQE fields. */
export const SqeOffset = {
  opcode: 0,
  flags: 1,
  cid: 2,
  nsid: 4,
  fctype: 4,
  cdw2: 8,
  cdw3: 12,
  mptr: 16,
  dptr: 24,
  prp1: 24,
  prp2: 32,
  cdw10: 40,
  cdw11: 44,
  cdw12: 48,
  cdw13: 52,
  cdw14: 56,
  cdw15: 60,
} as const

/** FUSE, CDW0 bits 9:8 (NVMe Base 2.0, "Fused Operations"). */
export const Fuse = {
  Normal: 0,
  FirstCommand: 1,
  SecondCommand: 2,
} as const

/** PSDT, CDW0 bits 15:14: how DPTR (and MPTR) describe the data. */
export const Psdt = {
  /** PRPs for the data; MPTR is a contiguous metadata buffer. */
  Prp: 0,
  /** An SGL for the data; MPTR is the address of a contiguous metadata buffer. */
  SglMptrContiguous: 1,
  /** An SGL for the data; MPTR is the address of an SGL segment with one descriptor. */
  SglMptrSgl: 2,
} as const

const TWO_32 = 0x100000000

function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO_32
}

function setU64(v: DataView, off: number, x: number): void {
  const lo = x >>> 0
  v.setUint32(off, lo, true)
  v.setUint32(off + 4, (x - lo) / TWO_32, true)
}

/**
 * Zero-allocation access to one SQE in place. Setters truncate to the field's width (this is
 * the hot path); encodeSqe() is the checked builder.
 */
export class SqeView {
  view: DataView
  offset: number

  constructor(view: DataView, offset = 0) {
    this.view = view
    this.offset = offset
  }

  /** Re-point at another entry (and optionally another view). */
  reset(offset: number, view?: DataView): this {
    this.offset = offset
    if (view !== undefined) this.view = view
    return this
  }

  /** Zero the 64 bytes. */
  clear(): this {
    for (let i = 0; i < SQE_SIZE; i += 4) this.view.setUint32(this.offset + i, 0, true)
    return this
  }

  get cdw0(): number {
    return this.view.getUint32(this.offset, true)
  }
  set cdw0(v: number) {
    this.view.setUint32(this.offset, v, true)
  }

  get opcode(): number {
    return this.view.getUint8(this.offset)
  }
  set opcode(v: number) {
    this.view.setUint8(this.offset, v)
  }

  /** FUSE, CDW0 bits 9:8 (byte 1 bits 1:0). */
  get fuse(): number {
    return this.view.getUint8(this.offset + 1) & 3
  }
  set fuse(v: number) {
    const o = this.offset + 1
    this.view.setUint8(o, (this.view.getUint8(o) & 0xfc) | (v & 3))
  }

  /** PSDT, CDW0 bits 15:14 (byte 1 bits 7:6). */
  get psdt(): number {
    return this.view.getUint8(this.offset + 1) >> 6
  }
  set psdt(v: number) {
    const o = this.offset + 1
    this.view.setUint8(o, (this.view.getUint8(o) & 0x3f) | ((v & 3) << 6))
  }

  /** CID, CDW0 bits 31:16. */
  get cid(): number {
    return this.view.getUint16(this.offset + 2, true)
  }
  set cid(v: number) {
    this.view.setUint16(this.offset + 2, v, true)
  }

  get nsid(): number {
    return this.view.getUint32(this.offset + 4, true)
  }
  set nsid(v: number) {
    this.view.setUint32(this.offset + 4, v, true)
  }

  /** FCTYPE of a Fabrics command (opcode 7Fh): byte 4, where other commands have NSID. */
  get fctype(): number {
    return this.view.getUint8(this.offset + 4)
  }
  set fctype(v: number) {
    this.view.setUint8(this.offset + 4, v)
  }

  get cdw2(): number {
    return this.view.getUint32(this.offset + 8, true)
  }
  set cdw2(v: number) {
    this.view.setUint32(this.offset + 8, v, true)
  }

  get cdw3(): number {
    return this.view.getUint32(this.offset + 12, true)
  }
  set cdw3(v: number) {
    this.view.setUint32(this.offset + 12, v, true)
  }

  /** MPTR as a number (exact below 2^53). */
  get mptr(): number {
    return getU64(this.view, this.offset + 16)
  }
  set mptr(v: number) {
    setU64(this.view, this.offset + 16, v)
  }
  /** MPTR bits 31:0. */
  get mptrLow(): number {
    return this.view.getUint32(this.offset + 16, true)
  }
  set mptrLow(v: number) {
    this.view.setUint32(this.offset + 16, v, true)
  }
  /** MPTR bits 63:32. */
  get mptrHigh(): number {
    return this.view.getUint32(this.offset + 20, true)
  }
  set mptrHigh(v: number) {
    this.view.setUint32(this.offset + 20, v, true)
  }

  /** PRP Entry 1 (DPTR bytes 0-7) as a number. */
  get prp1(): number {
    return getU64(this.view, this.offset + 24)
  }
  set prp1(v: number) {
    setU64(this.view, this.offset + 24, v)
  }
  get prp1Low(): number {
    return this.view.getUint32(this.offset + 24, true)
  }
  get prp1High(): number {
    return this.view.getUint32(this.offset + 28, true)
  }

  /** PRP Entry 2 (DPTR bytes 8-15) as a number. */
  get prp2(): number {
    return getU64(this.view, this.offset + 32)
  }
  set prp2(v: number) {
    setU64(this.view, this.offset + 32, v)
  }
  get prp2Low(): number {
    return this.view.getUint32(this.offset + 32, true)
  }
  get prp2High(): number {
    return this.view.getUint32(this.offset + 36, true)
  }

  /** Byte offset of DPTR in the view: SGL1 is an SGL descriptor there (SglView). */
  get dptrOffset(): number {
    return this.offset + 24
  }

  /** SGL1, the descriptor in DPTR: `into` is re-pointed at it (no allocation), else a new SglView. */
  sgl1(into?: SglView): SglView {
    return into === undefined ? new SglView(this.view, this.offset + 24) : into.reset(this.offset + 24, this.view)
  }

  get cdw10(): number {
    return this.view.getUint32(this.offset + 40, true)
  }
  set cdw10(v: number) {
    this.view.setUint32(this.offset + 40, v, true)
  }
  get cdw11(): number {
    return this.view.getUint32(this.offset + 44, true)
  }
  set cdw11(v: number) {
    this.view.setUint32(this.offset + 44, v, true)
  }
  get cdw12(): number {
    return this.view.getUint32(this.offset + 48, true)
  }
  set cdw12(v: number) {
    this.view.setUint32(this.offset + 48, v, true)
  }
  get cdw13(): number {
    return this.view.getUint32(this.offset + 52, true)
  }
  set cdw13(v: number) {
    this.view.setUint32(this.offset + 52, v, true)
  }
  get cdw14(): number {
    return this.view.getUint32(this.offset + 56, true)
  }
  set cdw14(v: number) {
    this.view.setUint32(this.offset + 56, v, true)
  }
  get cdw15(): number {
    return this.view.getUint32(this.offset + 60, true)
  }
  set cdw15(v: number) {
    this.view.setUint32(this.offset + 60, v, true)
  }

  /** CDW10-11 as one u64: the SLBA of NVM I/O commands (exact below 2^53). */
  get slba(): number {
    return getU64(this.view, this.offset + 40)
  }
  set slba(v: number) {
    setU64(this.view, this.offset + 40, v)
  }

  /** NLB of NVM I/O commands, CDW12 bits 15:0 (0's based: blocks - 1). */
  get nlb(): number {
    return this.view.getUint16(this.offset + 48, true)
  }
  set nlb(v: number) {
    this.view.setUint16(this.offset + 48, v, true)
  }
}

/** Every SQE field, as encodeSqe() takes them and decodeSqe() returns them. */
export interface SqeFields {
  opcode: number
  fuse: number
  psdt: number
  cid: number
  nsid: number
  cdw2: number
  cdw3: number
  mptr: number
  prp1: number
  prp2: number
  cdw10: number
  cdw11: number
  cdw12: number
  cdw13: number
  cdw14: number
  cdw15: number
}

function checkUint(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${v} is not an integer in 0..${max}`)
  return v
}

function checkU64(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} ${v} is not a safe non-negative integer`)
  return v
}

const SQE_DWORDS = ['cdw2', 'cdw3', 'cdw10', 'cdw11', 'cdw12', 'cdw13', 'cdw14', 'cdw15'] as const

/** Write an SQE: the 64 bytes are zeroed, then the given fields written. Throws RangeError on a value that does not fit. */
export function encodeSqe(out: DataView, offset: number, fields: Partial<SqeFields>): void {
  const s = new SqeView(out, offset).clear()
  if (fields.opcode !== undefined) s.opcode = checkUint('opcode', fields.opcode, 0xff)
  if (fields.fuse !== undefined) s.fuse = checkUint('fuse', fields.fuse, 3)
  if (fields.psdt !== undefined) s.psdt = checkUint('psdt', fields.psdt, 3)
  if (fields.cid !== undefined) s.cid = checkUint('cid', fields.cid, 0xffff)
  if (fields.nsid !== undefined) s.nsid = checkUint('nsid', fields.nsid, 0xffffffff)
  for (const k of SQE_DWORDS) {
    const v = fields[k]
    if (v !== undefined) s[k] = checkUint(k, v, 0xffffffff)
  }
  if (fields.mptr !== undefined) s.mptr = checkU64('mptr', fields.mptr)
  if (fields.prp1 !== undefined) s.prp1 = checkU64('prp1', fields.prp1)
  if (fields.prp2 !== undefined) s.prp2 = checkU64('prp2', fields.prp2)
}

/** Read every field of an SQE. */
export function decodeSqe(view: DataView, offset = 0): SqeFields {
  const s = new SqeView(view, offset)
  return {
    opcode: s.opcode,
    fuse: s.fuse,
    psdt: s.psdt,
    cid: s.cid,
    nsid: s.nsid,
    cdw2: s.cdw2,
    cdw3: s.cdw3,
    mptr: s.mptr,
    prp1: s.prp1,
    prp2: s.prp2,
    cdw10: s.cdw10,
    cdw11: s.cdw11,
    cdw12: s.cdw12,
    cdw13: s.cdw13,
    cdw14: s.cdw14,
    cdw15: s.cdw15,
  }
}

// ---------------------------------------------------------------------------------------------
// NVM command set: Read, Write, Compare, Verify, Write Zeroes (NVM Command Set 1.0 §3.2)

/** CDW12 of the NVM data commands. */
export const NvmCdw12 = {
  NLB_MASK: 0xffff,
  DTYPE_SHIFT: 20,
  DTYPE_MASK: 0xf,
  /** Storage Tag Check. */
  STC: 0x0100_0000,
  /** Deallocate (Write Zeroes only). */
  DEAC: 0x0200_0000,
  PRINFO_SHIFT: 26,
  PRINFO_MASK: 0xf,
  /** Force Unit Access. */
  FUA: 0x4000_0000,
  /** Limited Retry. */
  LR: 0x8000_0000,
} as const

/** PRINFO bits (CDW12 29:26, as a 4-bit value). */
export const Prinfo = {
  /** Check the reference tag (CDW12 bit 26). */
  PRCHK_REF: 0b0001,
  /** Check the application tag (CDW12 bit 27). */
  PRCHK_APP: 0b0010,
  /** Check the guard (CDW12 bit 28). */
  PRCHK_GUARD: 0b0100,
  /** Protection Information Action: the controller inserts (write) or strips (read) PI (CDW12 bit 29). */
  PRACT: 0b1000,
} as const

/** Directive types carried in DTYPE (NVMe Base 2.0, "Directives"). */
export const DirectiveType = {
  None: 0,
  Streams: 1,
  /** Data Placement (Flexible Data Placement, NVMe 2.1). */
  DataPlacement: 2,
} as const

export interface NvmRwFields {
  /** Starting LBA (exact below 2^53). */
  slba: number
  /** Number of Logical Blocks, 0's based (0 = one block). */
  nlb: number
  /** PRINFO, 4 bits: Prinfo flags. */
  prinfo: number
  fua: boolean
  lr: boolean
  /** Storage Tag Check. */
  stc: boolean
  /** Deallocate (Write Zeroes). */
  deac: boolean
  /** Directive Type (Write). */
  dtype: number
  /** Directive Specific (Write), CDW13 bits 31:16. */
  dspec: number
  /** Dataset Management hints, CDW13 bits 7:0. */
  dsm: number
  /** (Expected) Initial Logical Block Reference Tag, CDW14. */
  ilbrt: number
  /** (Expected) Logical Block Application Tag, CDW15 bits 15:0. */
  lbat: number
  /** (Expected) Logical Block Application Tag Mask, CDW15 bits 31:16. */
  lbatm: number
}

/** Command dwords 10-15. */
export interface Cdw10To15 {
  cdw10: number
  cdw11: number
  cdw12: number
  cdw13: number
  cdw14: number
  cdw15: number
}

/** CDW10-15 of a Read, Write, Compare, Verify or Write Zeroes. Throws RangeError on a value that does not fit. */
export function encodeNvmRw(f: Partial<NvmRwFields>): Cdw10To15 {
  const slba = checkU64('slba', f.slba ?? 0)
  const lo = slba >>> 0
  let cdw12 = checkUint('nlb', f.nlb ?? 0, 0xffff)
  cdw12 |= checkUint('dtype', f.dtype ?? 0, 0xf) << NvmCdw12.DTYPE_SHIFT
  cdw12 |= checkUint('prinfo', f.prinfo ?? 0, 0xf) << NvmCdw12.PRINFO_SHIFT
  if (f.stc === true) cdw12 |= NvmCdw12.STC
  if (f.deac === true) cdw12 |= NvmCdw12.DEAC
  if (f.fua === true) cdw12 |= NvmCdw12.FUA
  if (f.lr === true) cdw12 |= NvmCdw12.LR
  return {
    cdw10: lo,
    cdw11: (slba - lo) / TWO_32,
    cdw12: cdw12 >>> 0,
    cdw13: ((checkUint('dspec', f.dspec ?? 0, 0xffff) << 16) | checkUint('dsm', f.dsm ?? 0, 0xff)) >>> 0,
    cdw14: checkUint('ilbrt', f.ilbrt ?? 0, 0xffffffff),
    cdw15: ((checkUint('lbatm', f.lbatm ?? 0, 0xffff) << 16) | checkUint('lbat', f.lbat ?? 0, 0xffff)) >>> 0,
  }
}

/** The fields of a Read, Write, Compare, Verify or Write Zeroes from its CDW10-15. */
export function decodeNvmRw(c: Cdw10To15): NvmRwFields {
  const cdw12 = c.cdw12
  return {
    slba: (c.cdw10 >>> 0) + (c.cdw11 >>> 0) * TWO_32,
    nlb: cdw12 & NvmCdw12.NLB_MASK,
    prinfo: (cdw12 >>> NvmCdw12.PRINFO_SHIFT) & NvmCdw12.PRINFO_MASK,
    fua: (cdw12 & NvmCdw12.FUA) !== 0,
    lr: (cdw12 & NvmCdw12.LR) !== 0,
    stc: (cdw12 & NvmCdw12.STC) !== 0,
    deac: (cdw12 & NvmCdw12.DEAC) !== 0,
    dtype: (cdw12 >>> NvmCdw12.DTYPE_SHIFT) & NvmCdw12.DTYPE_MASK,
    dspec: c.cdw13 >>> 16,
    dsm: c.cdw13 & 0xff,
    ilbrt: c.cdw14 >>> 0,
    lbat: c.cdw15 & 0xffff,
    lbatm: c.cdw15 >>> 16,
  }
}

// ---------------------------------------------------------------------------------------------
// Dataset Management (NVM Command Set 1.0 §3.2.3)
//
//   CDW10  7:0  NR   number of ranges, 0's based (up to 256)
//   CDW11  bit 2 AD (deallocate), bit 1 IDW (integral dataset for write), bit 0 IDR (... read)
//
// The data is NR + 1 range descriptors of 16 bytes:
//
//   off   size  field
//     0      4  Context Attributes   (AF 3:0, AL 5:4, SR 8, SW 9, WP 10, access size 31:24)
//     4      4  Length               in logical blocks (not 0's based)
//     8      8  Starting LBA
//    16         end

/** CDW11 attribute bits of Dataset Management. */
export const DsmAttribute = {
  IDR: 1 << 0,
  IDW: 1 << 1,
  AD: 1 << 2,
} as const

export interface DsmFields {
  /** Number of Ranges, 0's based. */
  nr: number
  /** Integral Dataset for Read. */
  idr: boolean
  /** Integral Dataset for Write. */
  idw: boolean
  /** Deallocate. */
  ad: boolean
}

export const DSM_RANGE_SIZE = 16
export const DSM_MAX_RANGES = 256

/** CDW10-11 of a Dataset Management command. */
export function encodeDsm(f: Partial<DsmFields>): { cdw10: number; cdw11: number } {
  let cdw11 = 0
  if (f.idr === true) cdw11 |= DsmAttribute.IDR
  if (f.idw === true) cdw11 |= DsmAttribute.IDW
  if (f.ad === true) cdw11 |= DsmAttribute.AD
  return { cdw10: checkUint('nr', f.nr ?? 0, 0xff), cdw11 }
}

export function decodeDsm(c: { cdw10: number; cdw11: number }): DsmFields {
  return {
    nr: c.cdw10 & 0xff,
    idr: (c.cdw11 & DsmAttribute.IDR) !== 0,
    idw: (c.cdw11 & DsmAttribute.IDW) !== 0,
    ad: (c.cdw11 & DsmAttribute.AD) !== 0,
  }
}

export interface DsmRange {
  /** Context Attributes. */
  cattr: number
  /** Length in logical blocks (a count, not 0's based). */
  nlb: number
  /** Starting LBA (exact below 2^53). */
  slba: number
}

/** Write one 16-byte DSM range descriptor. */
export function encodeDsmRange(out: DataView, offset: number, r: Partial<DsmRange>): void {
  out.setUint32(offset, checkUint('cattr', r.cattr ?? 0, 0xffffffff), true)
  out.setUint32(offset + 4, checkUint('nlb', r.nlb ?? 0, 0xffffffff), true)
  setU64(out, offset + 8, checkU64('slba', r.slba ?? 0))
}

export function decodeDsmRange(view: DataView, offset: number): DsmRange {
  return { cattr: view.getUint32(offset, true), nlb: view.getUint32(offset + 4, true), slba: getU64(view, offset + 8) }
}
