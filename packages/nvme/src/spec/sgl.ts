// SGL descriptors: 16 bytes, little-endian (NVMe Base 2.0, "Scatter Gather List (SGL)",
// Figures "Generic SGL Descriptor Format", "SGL Descriptor Type", "SGL Descriptor Sub Type").
// SGL1 in an SQE's DPTR (bytes 24-39) is one; SGL segments in host memory are arrays of them.
//
//   off   size  field
//     0      8  Address         a memory address; with subtype 1h an offset into the
//                               capsule's in-capsule data; reserved for Bit Bucket and 5h
//     8      4  Length          bytes (Segment, Last Segment: bytes of the next segment)
//    12      3  reserved
//    15      1  SGL Identifier  type bits 7:4, subtype bits 3:0
//    16         end
//
// The Keyed SGL Data Block (type 4h, the RDMA transport's remote buffer) has a 24-bit length
// and a 32-bit key where the generic form has a length and reserved bytes:
//
//     8      3  Length
//    11      4  Key             (unaligned)
//    15      1  SGL Identifier  40h; 4Fh asks the target to invalidate the key (RDMA)
//
// NVMe/TCP (and RDMA) use two more shapes. Data that travels in the command capsule is a Data
// Block with subtype 1h, "offset": Address is the offset of the data within the capsule's data
// area (ICDOFF-relative), identifier 01h. Data the controller pulls with R2T or pushes in
// C2HData PDUs is a Transport SGL Data Block (type 5h) with the transport specific subtype Ah:
// only Length matters, Address is reserved, identifier 5Ah.

export const SGL_DESCRIPTOR_SIZE = 16

/** SGL Descriptor Type, identifier bits 7:4. */
export const SglType = {
  DataBlock: 0x0,
  BitBucket: 0x1,
  Segment: 0x2,
  LastSegment: 0x3,
  KeyedDataBlock: 0x4,
  TransportDataBlock: 0x5,
  VendorSpecific: 0xf,
} as const

/** SGL Descriptor Sub Type, identifier bits 3:0. */
export const SglSubtype = {
  Address: 0x0,
  Offset: 0x1,
  /** Transport specific (NVMe/TCP's Transport Data Block). */
  Transport: 0xa,
  /** RDMA transport: remote invalidate the key of a Keyed Data Block. */
  Invalidate: 0xf,
} as const

/** The SGL Identifier byte (byte 15) of a type and a subtype. */
export function sglIdentifier(type: number, subtype: number): number {
  return ((type & 0xf) << 4) | (subtype & 0xf)
}

/** Common SGL Identifier bytes. */
export const SglIdentifier = {
  DataBlock: 0x00,
  /** In-capsule data: Address is an offset into the capsule. */
  DataBlockOffset: 0x01,
  BitBucket: 0x10,
  Segment: 0x20,
  LastSegment: 0x30,
  KeyedDataBlock: 0x40,
  KeyedDataBlockInvalidate: 0x4f,
  /** NVMe/TCP data transferred with R2T / H2CData / C2HData PDUs. */
  TransportDataBlock: 0x5a,
} as const

const TWO_32 = 0x100000000

/** Zero-allocation access to one SGL descriptor in place; setters truncate to the field's width. */
export class SglView {
  view: DataView
  offset: number

  constructor(view: DataView, offset = 0) {
    this.view = view
    this.offset = offset
  }

  /** Re-point at another descriptor (and optionally another view). */
  reset(offset: number, view?: DataView): this {
    this.offset = offset
    if (view !== undefined) this.view = view
    return this
  }

  /** Zero the 16 bytes. */
  clear(): this {
    const v = this.view
    const o = this.offset
    v.setUint32(o, 0, true)
    v.setUint32(o + 4, 0, true)
    v.setUint32(o + 8, 0, true)
    v.setUint32(o + 12, 0, true)
    return this
  }

  /** Address (or in-capsule offset) as a number (exact below 2^53). */
  get address(): number {
    return this.view.getUint32(this.offset, true) + this.view.getUint32(this.offset + 4, true) * TWO_32
  }
  set address(v: number) {
    const lo = v >>> 0
    this.view.setUint32(this.offset, lo, true)
    this.view.setUint32(this.offset + 4, (v - lo) / TWO_32, true)
  }
  get addressLow(): number {
    return this.view.getUint32(this.offset, true)
  }
  get addressHigh(): number {
    return this.view.getUint32(this.offset + 4, true)
  }

  /** Length of the unkeyed descriptors, bytes 8-11. */
  get length(): number {
    return this.view.getUint32(this.offset + 8, true)
  }
  set length(v: number) {
    this.view.setUint32(this.offset + 8, v, true)
  }

  /** Length of a Keyed Data Block, 24 bits at bytes 8-10. */
  get keyedLength(): number {
    const v = this.view
    const o = this.offset
    return v.getUint16(o + 8, true) | (v.getUint8(o + 10) << 16)
  }
  set keyedLength(x: number) {
    this.view.setUint16(this.offset + 8, x & 0xffff, true)
    this.view.setUint8(this.offset + 10, (x >>> 16) & 0xff)
  }

  /** Key of a Keyed Data Block, bytes 11-14 (unaligned). */
  get key(): number {
    return this.view.getUint32(this.offset + 11, true)
  }
  set key(v: number) {
    this.view.setUint32(this.offset + 11, v, true)
  }

  /** SGL Identifier, byte 15. */
  get identifier(): number {
    return this.view.getUint8(this.offset + 15)
  }
  set identifier(v: number) {
    this.view.setUint8(this.offset + 15, v)
  }

  /** Descriptor type, identifier bits 7:4. */
  get type(): number {
    return this.view.getUint8(this.offset + 15) >> 4
  }
  set type(v: number) {
    const o = this.offset + 15
    this.view.setUint8(o, (this.view.getUint8(o) & 0x0f) | ((v & 0xf) << 4))
  }

  /** Descriptor subtype, identifier bits 3:0. */
  get subtype(): number {
    return this.view.getUint8(this.offset + 15) & 0xf
  }
  set subtype(v: number) {
    const o = this.offset + 15
    this.view.setUint8(o, (this.view.getUint8(o) & 0xf0) | (v & 0xf))
  }
}

/** A decoded SGL descriptor. `key` is present for Keyed Data Blocks only, whose length is 24 bits. */
export interface SglDescriptor {
  type: number
  subtype: number
  address: number
  length: number
  key?: number
}

function checkUint(name: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${v} is not an integer in 0..${max}`)
  return v
}

/** Write an SGL descriptor (reserved bytes zeroed). Throws RangeError on a value that does not fit. */
export function encodeSgl(out: DataView, offset: number, d: SglDescriptor): void {
  const s = new SglView(out, offset).clear()
  const type = checkUint('type', d.type, 0xf)
  s.identifier = sglIdentifier(type, checkUint('subtype', d.subtype, 0xf))
  if (!Number.isSafeInteger(d.address) || d.address < 0) throw new RangeError(`address ${d.address} is not a safe non-negative integer`)
  s.address = d.address
  if (type === SglType.KeyedDataBlock) {
    s.keyedLength = checkUint('length', d.length, 0xffffff)
    s.key = checkUint('key', d.key ?? 0, 0xffffffff)
  } else {
    if (d.key !== undefined) throw new RangeError(`only a Keyed Data Block has a key (type ${type})`)
    s.length = checkUint('length', d.length, 0xffffffff)
  }
}

/** Read an SGL descriptor. */
export function decodeSgl(view: DataView, offset = 0): SglDescriptor {
  const s = new SglView(view, offset)
  const type = s.type
  if (type === SglType.KeyedDataBlock) return { type, subtype: s.subtype, address: s.address, length: s.keyedLength, key: s.key }
  return { type, subtype: s.subtype, address: s.address, length: s.length }
}

/** A Data Block descriptor (00h): `length` bytes at `address`. */
export function writeDataBlock(out: DataView, offset: number, address: number, length: number): void {
  encodeSgl(out, offset, { type: SglType.DataBlock, subtype: SglSubtype.Address, address, length })
}

/** In-capsule data (01h): `length` bytes at `capsuleOffset` in the capsule's data (NVMe/TCP, RDMA). */
export function writeInCapsuleData(out: DataView, offset: number, capsuleOffset: number, length: number): void {
  encodeSgl(out, offset, { type: SglType.DataBlock, subtype: SglSubtype.Offset, address: capsuleOffset, length })
}

/** A Transport SGL Data Block (5Ah): `length` bytes moved by the transport (NVMe/TCP R2T / C2HData). */
export function writeTransportDataBlock(out: DataView, offset: number, length: number): void {
  encodeSgl(out, offset, { type: SglType.TransportDataBlock, subtype: SglSubtype.Transport, address: 0, length })
}

/** A Keyed SGL Data Block (40h, or 4Fh with remote invalidation): an RDMA remote buffer. */
export function writeKeyedDataBlock(out: DataView, offset: number, address: number, length: number, key: number, invalidate = false): void {
  const subtype = invalidate ? SglSubtype.Invalidate : SglSubtype.Address
  encodeSgl(out, offset, { type: SglType.KeyedDataBlock, subtype, address, length, key })
}

/** A Segment (20h) or Last Segment (30h) descriptor: the next segment, `length` bytes at `address`. */
export function writeSegment(out: DataView, offset: number, address: number, length: number, last: boolean): void {
  encodeSgl(out, offset, { type: last ? SglType.LastSegment : SglType.Segment, subtype: SglSubtype.Address, address, length })
}

/** A Bit Bucket descriptor (10h): `length` bytes of read data to discard. */
export function writeBitBucket(out: DataView, offset: number, length: number): void {
  encodeSgl(out, offset, { type: SglType.BitBucket, subtype: SglSubtype.Address, address: 0, length })
}
