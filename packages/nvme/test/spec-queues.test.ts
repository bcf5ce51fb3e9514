// SQE, CQE and SGL layouts, accessors and NVM command dword codecs.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CQE_SIZE, CqeView, decodeCqe, encodeCqe, type CqeFields } from '../src/spec/cqe.js'
import {
  decodeSgl,
  encodeSgl,
  SGL_DESCRIPTOR_SIZE,
  sglIdentifier,
  SglIdentifier,
  SglSubtype,
  SglType,
  SglView,
  writeBitBucket,
  writeDataBlock,
  writeInCapsuleData,
  writeKeyedDataBlock,
  writeSegment,
  writeTransportDataBlock,
} from '../src/spec/sgl.js'
import {
  decodeDsm,
  decodeDsmRange,
  decodeNvmRw,
  decodeSqe,
  DSM_RANGE_SIZE,
  encodeDsm,
  encodeDsmRange,
  encodeNvmRw,
  encodeSqe,
  Prinfo,
  Psdt,
  SQE_SIZE,
  SqeView,
  type NvmRwFields,
  type SqeFields,
} from '../src/spec/sqe.js'

const u32 = fc.integer({ min: 0, max: 0xffffffff })
const u16 = fc.integer({ min: 0, max: 0xffff })
const u8 = fc.integer({ min: 0, max: 0xff })
const addr = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })

function view(size: number): DataView {
  return new DataView(new ArrayBuffer(size))
}

describe('SQE', () => {
  it('is 64 bytes, with each field at its offset', () => {
    expect(SQE_SIZE).toBe(64)
    const v = view(128)
    const f: SqeFields = {
      opcode: 0x02,
      fuse: 1,
      psdt: 2,
      cid: 0xbeef,
      nsid: 0xdeadbeef,
      cdw2: 0x22222222,
      cdw3: 0x33333333,
      mptr: 0x0000_1234_5678_9abc,
      prp1: 0x0000_aaaa_bbbb_c000,
      prp2: 0x0000_0001_0000_2000,
      cdw10: 0x10101010,
      cdw11: 0x11111111,
      cdw12: 0x12121212,
      cdw13: 0x13131313,
      cdw14: 0x14141414,
      cdw15: 0x15151515,
    }
    encodeSqe(v, 64, f)
    expect(v.getUint8(64)).toBe(0x02)
    expect(v.getUint8(65)).toBe(0x81) // FUSE 01b in bits 1:0, PSDT 10b in bits 7:6
    expect(v.getUint16(66, true)).toBe(0xbeef)
    expect(v.getUint32(68, true)).toBe(0xdeadbeef)
    expect(v.getUint32(72, true)).toBe(0x22222222)
    expect(v.getUint32(76, true)).toBe(0x33333333)
    expect(v.getBigUint64(80, true)).toBe(0x0000_1234_5678_9abcn)
    expect(v.getBigUint64(88, true)).toBe(0x0000_aaaa_bbbb_c000n)
    expect(v.getBigUint64(96, true)).toBe(0x0000_0001_0000_2000n)
    for (let i = 0; i < 6; i++) expect(v.getUint32(104 + 4 * i, true)).toBe(0x10101010 + 0x01010101 * i)
    // CDW0 as one dword: opcode 7:0, FUSE 9:8, PSDT 15:14, CID 31:16
    const cdw0 = v.getUint32(64, true)
    expect(cdw0 & 0xff).toBe(0x02)
    expect((cdw0 >>> 8) & 3).toBe(1)
    expect((cdw0 >>> 14) & 3).toBe(2)
    expect(cdw0 >>> 16).toBe(0xbeef)
    expect(new Uint8Array(v.buffer, 0, 64).every((b) => b === 0)).toBe(true)
    expect(decodeSqe(v, 64)).toEqual(f)
  })

  it('puts PSDT where Linux puts NVME_CMD_SGL_METABUF / METASEG', () => {
    const v = view(64)
    encodeSqe(v, 0, { psdt: Psdt.SglMptrContiguous })
    expect(v.getUint8(1)).toBe(1 << 6)
    encodeSqe(v, 0, { psdt: Psdt.SglMptrSgl })
    expect(v.getUint8(1)).toBe(1 << 7)
  })

  it('reads and writes in place through SqeView, in a WebAssembly.Memory', () => {
    const mem = new WebAssembly.Memory({ initial: 1 })
    const dv = new DataView(mem.buffer)
    const s = new SqeView(dv, 0)
    for (let i = 0; i < 4; i++) {
      s.reset(4096 + SQE_SIZE * i)
      s.clear()
      s.opcode = 0x01
      s.cid = i
      s.fuse = 2
      s.psdt = 1
      s.nsid = 1
      s.prp1 = 0xffff_ffff_f000
      s.slba = 2 ** 40 + i
      s.nlb = 7
    }
    s.reset(4096 + SQE_SIZE * 2)
    expect(s.opcode).toBe(0x01)
    expect(s.cid).toBe(2)
    expect(s.fuse).toBe(2)
    expect(s.psdt).toBe(1)
    expect(s.prp1).toBe(0xffff_ffff_f000)
    expect(s.prp1Low).toBe(0xffff_f000)
    expect(s.prp1High).toBe(0xffff)
    expect(s.slba).toBe(2 ** 40 + 2)
    expect(s.cdw10).toBe(2)
    expect(s.cdw11).toBe(0x100)
    expect(s.nlb).toBe(7)
    expect(s.cdw12).toBe(7)
    expect(s.cdw0 >>> 16).toBe(2)
    s.mptrHigh = 0x12
    s.mptrLow = 0x34
    expect(s.mptr).toBe(0x12 * 2 ** 32 + 0x34)
    s.fuse = 0
    expect(s.psdt).toBe(1)
    s.psdt = 0
    expect(dv.getUint8(4096 + SQE_SIZE * 2 + 1)).toBe(0)
    s.fctype = 0x04
    expect(dv.getUint8(4096 + SQE_SIZE * 2 + 4)).toBe(0x04)
    expect(s.dptrOffset).toBe(4096 + SQE_SIZE * 2 + 24)
  })

  it('round-trips', () => {
    const fields = fc.record({
      opcode: u8,
      fuse: fc.integer({ min: 0, max: 3 }),
      psdt: fc.integer({ min: 0, max: 3 }),
      cid: u16,
      nsid: u32,
      cdw2: u32,
      cdw3: u32,
      mptr: addr,
      prp1: addr,
      prp2: addr,
      cdw10: u32,
      cdw11: u32,
      cdw12: u32,
      cdw13: u32,
      cdw14: u32,
      cdw15: u32,
    })
    const v = view(64)
    fc.assert(
      fc.property(fields, (f) => {
        encodeSqe(v, 0, f)
        expect(decodeSqe(v)).toEqual(f)
      }),
      { numRuns: 200 },
    )
  })

  it('rejects values that do not fit', () => {
    const v = view(64)
    expect(() => encodeSqe(v, 0, { opcode: 0x100 })).toThrow(RangeError)
    expect(() => encodeSqe(v, 0, { fuse: 4 })).toThrow(RangeError)
    expect(() => encodeSqe(v, 0, { cid: 0x10000 })).toThrow(RangeError)
    expect(() => encodeSqe(v, 0, { cdw10: 2 ** 32 })).toThrow(RangeError)
    expect(() => encodeSqe(v, 0, { mptr: -1 })).toThrow(RangeError)
    expect(() => encodeSqe(v, 0, { prp1: 2 ** 53 })).toThrow(RangeError)
  })
})

describe('NVM command dwords', () => {
  it('places the CDW12-15 bits as Linux struct nvme_rw_command does', () => {
    const prinfo = Prinfo.PRACT | Prinfo.PRCHK_GUARD | Prinfo.PRCHK_REF
    const c = encodeNvmRw({ slba: 0x1_0000_0002, nlb: 0xff, fua: true, lr: true, prinfo, dtype: 1, dspec: 0xabcd, dsm: 0x47, ilbrt: 0xcafe, lbat: 0x1234 })
    expect(c.cdw15).toBe(0x1234)
    c.cdw15 = encodeNvmRw({ lbat: 0x1234, lbatm: 0xffff }).cdw15
    expect(c.cdw10).toBe(2)
    expect(c.cdw11).toBe(1)
    // Linux: length = cdw12 15:0; control = cdw12 31:16 with LR 1<<15, FUA 1<<14, PRACT 1<<13, PRCHK_GUARD 1<<12,
    // PRCHK_APP 1<<11, PRCHK_REF 1<<10, DTYPE_STREAMS 1<<4
    const length = c.cdw12 & 0xffff
    const control = c.cdw12 >>> 16
    expect(length).toBe(0xff)
    expect(control).toBe((1 << 15) | (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10) | (1 << 4))
    // dsmgmt = cdw13: DSM 7:0, DSPEC 31:16; reftag = cdw14; apptag/appmask = cdw15
    expect(c.cdw13).toBe(0xabcd0047)
    expect(c.cdw14).toBe(0xcafe)
    expect(c.cdw15).toBe(0xffff1234)
    // Write Zeroes DEAC: Linux NVME_WZ_DEAC = 1 << 9 of control
    expect(encodeNvmRw({ deac: true }).cdw12 >>> 16).toBe(1 << 9)
    expect(encodeNvmRw({ stc: true }).cdw12).toBe(1 << 24)
  })

  it('round-trips', () => {
    const fields: fc.Arbitrary<NvmRwFields> = fc.record({
      slba: addr,
      nlb: u16,
      prinfo: fc.integer({ min: 0, max: 15 }),
      fua: fc.boolean(),
      lr: fc.boolean(),
      stc: fc.boolean(),
      deac: fc.boolean(),
      dtype: fc.integer({ min: 0, max: 15 }),
      dspec: u16,
      dsm: u8,
      ilbrt: u32,
      lbat: u16,
      lbatm: u16,
    })
    fc.assert(
      fc.property(fields, (f) => {
        const c = encodeNvmRw(f)
        for (const d of Object.values(c)) expect(d >>> 0).toBe(d)
        expect(decodeNvmRw(c)).toEqual(f)
      }),
      { numRuns: 200 },
    )
  })

  it('carries an SLBA through an SQE', () => {
    const v = view(64)
    encodeSqe(v, 0, { opcode: 0x02, nsid: 1, ...encodeNvmRw({ slba: 2 ** 52 + 5, nlb: 31 }) })
    const s = new SqeView(v)
    expect(s.slba).toBe(2 ** 52 + 5)
    expect(s.nlb).toBe(31)
    expect(v.getBigUint64(40, true)).toBe(2n ** 52n + 5n)
  })

  it('rejects fields that do not fit', () => {
    expect(() => encodeNvmRw({ nlb: 0x10000 })).toThrow(RangeError)
    expect(() => encodeNvmRw({ prinfo: 16 })).toThrow(RangeError)
    expect(() => encodeNvmRw({ slba: -1 })).toThrow(RangeError)
  })

  it('encodes Dataset Management and its ranges', () => {
    expect(encodeDsm({ nr: 255, ad: true })).toEqual({ cdw10: 255, cdw11: 4 })
    expect(encodeDsm({ idr: true, idw: true })).toEqual({ cdw10: 0, cdw11: 3 })
    expect(decodeDsm({ cdw10: 7, cdw11: 5 })).toEqual({ nr: 7, idr: true, idw: false, ad: true })
    expect(() => encodeDsm({ nr: 256 })).toThrow(RangeError)
    expect(DSM_RANGE_SIZE).toBe(16)
    const v = view(48)
    encodeDsmRange(v, 16, { cattr: 0x01020304, nlb: 0x800, slba: 0x12_3456_7890 })
    expect(v.getUint32(16, true)).toBe(0x01020304)
    expect(v.getUint32(20, true)).toBe(0x800)
    expect(v.getBigUint64(24, true)).toBe(0x12_3456_7890n)
    fc.assert(
      fc.property(fc.record({ cattr: u32, nlb: u32, slba: addr }), (r) => {
        encodeDsmRange(v, 32, r)
        expect(decodeDsmRange(v, 32)).toEqual(r)
      }),
      { numRuns: 100 },
    )
  })
})

describe('CQE', () => {
  it('is 16 bytes, with each field at its offset', () => {
    expect(CQE_SIZE).toBe(16)
    const v = view(32)
    const f: CqeFields = { dw0: 0x11223344, dw1: 0x55667788, sqhd: 0x1234, sqid: 7, cid: 0xbeef, status: 0x8505 }
    encodeCqe(v, 16, f)
    expect(v.getUint32(16, true)).toBe(0x11223344)
    expect(v.getUint32(20, true)).toBe(0x55667788)
    expect(v.getUint16(24, true)).toBe(0x1234)
    expect(v.getUint16(26, true)).toBe(7)
    expect(v.getUint16(28, true)).toBe(0xbeef)
    expect(v.getUint16(30, true)).toBe(0x8505)
    expect(v.getUint8(30) & 1).toBe(1) // the Phase Tag is bit 0 of byte 14
    expect(decodeCqe(v, 16)).toEqual(f)
  })

  it('posts through CqeView with the Phase Tag in the last dword', () => {
    const v = view(64)
    const c = new CqeView(v, 32)
    c.post(1, 2, 3, 4, 5, 0x0001)
    expect(c.dw3).toBe(5 | (1 << 16))
    expect(c.phase).toBe(1)
    c.phase = 0
    expect(c.status).toBe(0)
    c.status = 0x8505
    c.phase = 0
    expect(c.status).toBe(0x8504)
    c.result64 = 0x0040_0820_0f01_07ffn
    expect(c.dw0).toBe(0x0f01_07ff)
    expect(c.dw1).toBe(0x0040_0820)
    expect(c.result64).toBe(0x0040_0820_0f01_07ffn)
    c.reset(0).sqhd = 9
    expect(v.getUint16(8, true)).toBe(9)
  })

  it('round-trips and rejects values that do not fit', () => {
    const v = view(16)
    fc.assert(
      fc.property(fc.record({ dw0: u32, dw1: u32, sqhd: u16, sqid: u16, cid: u16, status: u16 }), (f) => {
        encodeCqe(v, 0, f)
        expect(decodeCqe(v)).toEqual(f)
      }),
      { numRuns: 100 },
    )
    expect(() => encodeCqe(v, 0, { sqhd: 0x10000 })).toThrow(RangeError)
    expect(() => encodeCqe(v, 0, { dw0: -1 })).toThrow(RangeError)
  })
})

describe('SGL descriptors', () => {
  it('lays out a Data Block descriptor', () => {
    expect(SGL_DESCRIPTOR_SIZE).toBe(16)
    const v = view(32)
    new Uint8Array(v.buffer).fill(0xee)
    writeDataBlock(v, 16, 0x0000_1234_5678_9000, 0x3000)
    expect(v.getBigUint64(16, true)).toBe(0x0000_1234_5678_9000n)
    expect(v.getUint32(24, true)).toBe(0x3000)
    expect([v.getUint8(28), v.getUint8(29), v.getUint8(30)]).toEqual([0, 0, 0])
    expect(v.getUint8(31)).toBe(0x00)
    expect(decodeSgl(v, 16)).toEqual({ type: SglType.DataBlock, subtype: SglSubtype.Address, address: 0x0000_1234_5678_9000, length: 0x3000 })
  })

  it('has the identifiers of Linux and SPDK', () => {
    const v = view(16)
    // Linux nvme-tcp: (NVME_TRANSPORT_SGL_DATA_DESC << 4) | NVME_SGL_FMT_TRANSPORT_A
    writeTransportDataBlock(v, 0, 8192)
    expect(v.getUint8(15)).toBe((0x05 << 4) | 0x0a)
    expect(v.getBigUint64(0, true)).toBe(0n)
    expect(v.getUint32(8, true)).toBe(8192)
    // in-capsule data: (NVME_SGL_FMT_DATA_DESC << 4) | NVME_SGL_FMT_OFFSET, Address = ICDOFF
    writeInCapsuleData(v, 0, 0, 4096)
    expect(v.getUint8(15)).toBe(0x01)
    writeSegment(v, 0, 0x2000, 64, false)
    expect(v.getUint8(15)).toBe(0x20)
    writeSegment(v, 0, 0x2000, 64, true)
    expect(v.getUint8(15)).toBe(0x30)
    writeBitBucket(v, 0, 512)
    expect(v.getUint8(15)).toBe(0x10)
    expect(v.getUint32(8, true)).toBe(512)
    expect(SglIdentifier.TransportDataBlock).toBe(sglIdentifier(SglType.TransportDataBlock, SglSubtype.Transport))
    expect(SglIdentifier.KeyedDataBlockInvalidate).toBe(sglIdentifier(SglType.KeyedDataBlock, SglSubtype.Invalidate))
  })

  it('lays out a Keyed Data Block: 24-bit length, then the key', () => {
    const v = view(16)
    writeKeyedDataBlock(v, 0, 0x7fff_0000_1000, 0xabcdef, 0x11223344, true)
    expect(v.getBigUint64(0, true)).toBe(0x7fff_0000_1000n)
    expect([v.getUint8(8), v.getUint8(9), v.getUint8(10)]).toEqual([0xef, 0xcd, 0xab])
    expect(v.getUint32(11, true)).toBe(0x11223344)
    expect(v.getUint8(15)).toBe(0x4f)
    // SPDK's keyed bitfield: length 23:0, key 55:24, subtype 59:56, type 63:60 of the u64 at byte 8
    const hi = v.getBigUint64(8, true)
    expect(hi & 0xffffffn).toBe(0xabcdefn)
    expect((hi >> 24n) & 0xffffffffn).toBe(0x11223344n)
    expect((hi >> 56n) & 0xfn).toBe(0xfn)
    expect(hi >> 60n).toBe(4n)
    expect(decodeSgl(v)).toEqual({ type: 4, subtype: 0xf, address: 0x7fff_0000_1000, length: 0xabcdef, key: 0x11223344 })
  })

  it('edits type and subtype independently', () => {
    const s = new SglView(view(16))
    s.type = SglType.LastSegment
    s.subtype = SglSubtype.Offset
    expect(s.identifier).toBe(0x31)
    s.type = SglType.Segment
    expect(s.subtype).toBe(1)
    s.keyedLength = 0x123456
    s.key = 0xffffffff
    expect(s.keyedLength).toBe(0x123456)
    expect(s.key).toBe(0xffffffff)
    expect(s.type).toBe(2)
  })

  it('overlays SGL1 on the SQE DPTR', () => {
    const v = view(64)
    encodeSqe(v, 0, { opcode: 0x01, psdt: Psdt.SglMptrContiguous })
    const s = new SqeView(v)
    writeDataBlock(v, s.dptrOffset, 0x4000, 0x1000)
    const g = s.sgl1()
    expect([g.offset, g.type, g.address, g.length]).toEqual([24, SglType.DataBlock, 0x4000, 0x1000])
    expect(s.sgl1(g)).toBe(g)
    expect(s.prp1).toBe(0x4000)
    expect(s.prp2Low).toBe(0x1000)
    expect(s.prp2High >>> 24).toBe(0x00)
  })

  it('round-trips and rejects what does not fit', () => {
    const v = view(16)
    const unkeyed = fc.record({ type: fc.constantFrom(0, 1, 2, 3, 5, 0xf), subtype: fc.integer({ min: 0, max: 15 }), address: addr, length: u32 })
    const length24 = fc.integer({ min: 0, max: 0xffffff })
    const keyed = fc.record({ type: fc.constant(4), subtype: fc.integer({ min: 0, max: 15 }), address: addr, length: length24, key: u32 })
    fc.assert(
      fc.property(fc.oneof(unkeyed, keyed), (d) => {
        encodeSgl(v, 0, d)
        expect(decodeSgl(v)).toEqual(d)
      }),
      { numRuns: 200 },
    )
    expect(() => writeKeyedDataBlock(v, 0, 0, 0x1000000, 1)).toThrow(RangeError)
    expect(() => encodeSgl(v, 0, { type: 0, subtype: 0, address: 0, length: 1, key: 1 })).toThrow(RangeError)
    expect(() => encodeSgl(v, 0, { type: 16, subtype: 0, address: 0, length: 1 })).toThrow(RangeError)
    expect(() => writeDataBlock(v, 0, -4096, 1)).toThrow(RangeError)
  })
})
