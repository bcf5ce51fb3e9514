// The Completion Queue Entry: 16 bytes, little-endian (NVMe Base 2.0 §3.3.3.2, Figure "Common
// Completion Queue Entry Layout"):
//
//   off   size  field
//     0      4  DW0     command specific (Set Features' value, AER event, ...)
//     4      4  DW1     command specific (Fabrics: DW0-1 is one 64-bit result, Property Get)
//     8      2  SQHD    SQ Head Pointer: the host may reuse the SQ slots up to here
//    10      2  SQID    the SQ the command came from
//    12      2  CID     the command's identifier
//    14      2  STATUS  Phase Tag (bit 0) and Status field (bits 15:1), see status.ts
//    16         end
//
// The host finds new entries by the Phase Tag, so an entry must not look posted before it is
// whole: post() writes DW0-2 first and CID + Status as one 32-bit store last. (Across agents
// sharing a memory, the writer still has to publish with an Atomics operation: a plain store
// orders nothing for another thread.)

export const CQE_SIZE = 16

/** Byte offsets of the CQE fields. */
export const CqeOffset = {
  dw0: 0,
  dw1: 4,
  sqhd: 8,
  sqid: 10,
  cid: 12,
  status: 14,
} as const

/** Every CQE field; `status` is the whole 16-bit Status field, Phase Tag in bit 0. */
export interface CqeFields {
  dw0: number
  dw1: number
  sqhd: number
  sqid: number
  cid: number
  status: number
}

/** Zero-allocation access to one CQE in place; setters truncate to the field's width. */
export class CqeView {
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

  get dw0(): number {
    return this.view.getUint32(this.offset, true)
  }
  set dw0(v: number) {
    this.view.setUint32(this.offset, v, true)
  }

  get dw1(): number {
    return this.view.getUint32(this.offset + 4, true)
  }
  set dw1(v: number) {
    this.view.setUint32(this.offset + 4, v, true)
  }

  /** DW0-1 as one 64-bit result (Fabrics Property Get returns 8-byte properties here). */
  get result64(): bigint {
    return (BigInt(this.dw1) << 32n) | BigInt(this.dw0)
  }
  set result64(v: bigint) {
    this.dw0 = Number(v & 0xffffffffn)
    this.dw1 = Number((v >> 32n) & 0xffffffffn)
  }

  /** SQ Head Pointer. */
  get sqhd(): number {
    return this.view.getUint16(this.offset + 8, true)
  }
  set sqhd(v: number) {
    this.view.setUint16(this.offset + 8, v, true)
  }

  /** SQ Identifier. */
  get sqid(): number {
    return this.view.getUint16(this.offset + 10, true)
  }
  set sqid(v: number) {
    this.view.setUint16(this.offset + 10, v, true)
  }

  get cid(): number {
    return this.view.getUint16(this.offset + 12, true)
  }
  set cid(v: number) {
    this.view.setUint16(this.offset + 12, v, true)
  }

  /** The 16-bit Status field with the Phase Tag in bit 0. */
  get status(): number {
    return this.view.getUint16(this.offset + 14, true)
  }
  set status(v: number) {
    this.view.setUint16(this.offset + 14, v, true)
  }

  /** Phase Tag, bit 0 of the Status field. */
  get phase(): number {
    return this.view.getUint8(this.offset + 14) & 1
  }
  set phase(v: number) {
    const o = this.offset + 14
    this.view.setUint8(o, (this.view.getUint8(o) & 0xfe) | (v & 1))
  }

  /** Dword 3: CID in bits 15:0, Status field in bits 31:16. */
  get dw3(): number {
    return this.view.getUint32(this.offset + 12, true)
  }
  set dw3(v: number) {
    this.view.setUint32(this.offset + 12, v, true)
  }

  /** Write a whole entry, CID + Status (with the Phase Tag) last in one 32-bit store. */
  post(dw0: number, dw1: number, sqhd: number, sqid: number, cid: number, status: number): void {
    const v = this.view
    const o = this.offset
    v.setUint32(o, dw0, true)
    v.setUint32(o + 4, dw1, true)
    v.setUint32(o + 8, (sqhd & 0xffff) | ((sqid & 0xffff) << 16), true)
    v.setUint32(o + 12, (cid & 0xffff) | ((status & 0xffff) << 16), true)
  }
}

function checkUint(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${v} is not an integer in 0..${max}`)
  return v
}

/** Write a CQE (all 16 bytes; absent fields are 0). Throws RangeError on a value that does not fit. */
export function encodeCqe(out: DataView, offset: number, f: Partial<CqeFields>): void {
  new CqeView(out, offset).post(
    checkUint('dw0', f.dw0 ?? 0, 0xffffffff),
    checkUint('dw1', f.dw1 ?? 0, 0xffffffff),
    checkUint('sqhd', f.sqhd ?? 0, 0xffff),
    checkUint('sqid', f.sqid ?? 0, 0xffff),
    checkUint('cid', f.cid ?? 0, 0xffff),
    checkUint('status', f.status ?? 0, 0xffff),
  )
}

/** Read every field of a CQE. */
export function decodeCqe(view: DataView, offset = 0): CqeFields {
  const c = new CqeView(view, offset)
  return { dw0: c.dw0, dw1: c.dw1, sqhd: c.sqhd, sqid: c.sqid, cid: c.cid, status: c.status }
}
