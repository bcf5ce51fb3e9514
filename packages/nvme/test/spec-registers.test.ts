// Controller properties: offsets, sizes, each field's bits, known values and round trips.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  capCss,
  CapCss,
  capDstrd,
  capHigh,
  capLow,
  capMpsmax,
  capMpsmin,
  capMqes,
  capTo,
  cmbSizeBytes,
  cqHeadDoorbell,
  decodeAqa,
  decodeBpinfo,
  decodeBprsel,
  decodeCap,
  decodeCc,
  decodeCmbebs,
  decodeCmbloc,
  decodeCmbmsc,
  decodeCmbsts,
  decodeCmbswtp,
  decodeCmbsz,
  decodeCrto,
  decodeCsts,
  decodeDoorbell,
  decodePmrcap,
  decodePmrctl,
  decodePmrebs,
  decodePmrmsc,
  decodePmrsts,
  decodePmrswtp,
  decodePropertyAttrib,
  decodeVersion,
  doorbellStride,
  encodeAqa,
  encodeBpinfo,
  encodeBprsel,
  encodeCap,
  encodeCc,
  encodeCmbebs,
  encodeCmbloc,
  encodeCmbmsc,
  encodeCmbsts,
  encodeCmbswtp,
  encodeCmbsz,
  encodeCrto,
  encodeCsts,
  encodePmrcap,
  encodePmrctl,
  encodePmrebs,
  encodePmrmsc,
  encodePmrsts,
  encodePmrswtp,
  encodePropertyAttrib,
  encodeVersion,
  isProperty64,
  joinU64,
  NssdControl,
  NVME_SIGNATURE,
  NVME_VERSION_2_0,
  propertySize,
  Reg,
  Shn,
  Shst,
  splitU64,
  sqTailDoorbell,
  type Cap,
} from '../src/spec/registers.js'

const b = fc.boolean()
const bits = (n: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: 2 ** n - 1 })

describe('register map', () => {
  it('has the offsets of NVMe Base 2.0 (as SPDK asserts them and libnvme lists them)', () => {
    expect(Reg).toEqual({
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
      DOORBELLS: 0x1000,
    })
    expect(NVME_SIGNATURE).toBe(0x4e564d65)
    const text = (v: number): string => String.fromCharCode(...[24, 16, 8, 0].map((s) => (v >>> s) & 0xff))
    expect(text(NVME_SIGNATURE)).toBe('NVMe')
    expect(text(NssdControl.Normal)).toBe('Nrml')
    expect(text(NssdControl.Abrupt)).toBe('Abpt')
  })

  it('sizes the properties as libnvme nvme_is_64bit_reg() does', () => {
    for (const r of [Reg.CAP, Reg.ASQ, Reg.ACQ, Reg.BPMBL, Reg.CMBMSC]) {
      expect(propertySize(r)).toBe(8)
      expect(isProperty64(r)).toBe(true)
    }
    for (const r of [Reg.VS, Reg.INTMS, Reg.INTMC, Reg.CC, Reg.CSTS, Reg.NSSR, Reg.AQA, Reg.CMBLOC, Reg.CMBSZ, Reg.CRTO, Reg.PMRMSCL, Reg.PMRMSCU]) {
      expect(propertySize(r)).toBe(4)
      expect(isProperty64(r)).toBe(false)
    }
    expect(propertySize(0x04)).toBeUndefined()
    expect(propertySize(0x1000)).toBeUndefined()
  })

  it('places the doorbells at 0x1000 + n·(4 << DSTRD)', () => {
    expect(sqTailDoorbell(0)).toBe(0x1000)
    expect(cqHeadDoorbell(0)).toBe(0x1004)
    expect(sqTailDoorbell(1)).toBe(0x1008)
    expect(cqHeadDoorbell(1)).toBe(0x100c)
    expect(sqTailDoorbell(3, 2)).toBe(0x1000 + 6 * 16)
    expect(cqHeadDoorbell(3, 2)).toBe(0x1000 + 7 * 16)
    expect(doorbellStride(2)).toBe(16)
    expect(decodeDoorbell(0x100c)).toEqual({ qid: 1, cq: true })
    expect(decodeDoorbell(0x1000 + 7 * 16, 2)).toEqual({ qid: 3, cq: true })
    expect(decodeDoorbell(0x1000 + 6 * 16, 2)).toEqual({ qid: 3, cq: false })
    expect(decodeDoorbell(0x1002)).toBeUndefined()
    expect(decodeDoorbell(0xffc)).toBeUndefined()
  })

  it('encodes Property Get/Set ATTRIB sizes', () => {
    expect(encodePropertyAttrib(8)).toBe(1)
    expect(encodePropertyAttrib(4)).toBe(0)
    expect(decodePropertyAttrib(1)).toBe(8)
    expect(decodePropertyAttrib(0xf8)).toBe(4)
    expect(decodePropertyAttrib(2)).toBeUndefined()
  })

  it('splits and joins 64-bit properties', () => {
    expect(joinU64(0x0f0107ff, 0x00400820)).toBe(0x004008200f0107ffn)
    expect(splitU64(0x004008200f0107ffn)).toEqual({ low: 0x0f0107ff, high: 0x00400820 })
    expect(splitU64(0xffffffffffffffffn)).toEqual({ low: 0xffffffff, high: 0xffffffff })
    expect(() => splitU64(1n << 64n)).toThrow(RangeError)
  })
})

describe('CAP', () => {
  it('encodes the value QEMU reports: MQES 7FFh, CQR, TO 15, DSTRD 0, CSS NVM + I/O command sets, MPSMAX 4', () => {
    const qemu: Partial<Cap> = { mqes: 0x7ff, cqr: true, to: 15, dstrd: 0, css: CapCss.Nvm | CapCss.IoCommandSets, mpsmin: 0, mpsmax: 4 }
    const { low, high } = encodeCap(qemu)
    expect(low).toBe(0x0f0107ff)
    expect(high).toBe(0x00400820)
    expect(joinU64(low, high)).toBe(0x004008200f0107ffn) // as logged by guests of QEMU's -device nvme
    const d = decodeCap(low, high)
    expect(d).toMatchObject(qemu)
    expect(d).toMatchObject({ ams: 0, nssrs: false, bps: false, pmrs: false, cmbs: false, nsss: false, crms: 0, cps: 0 })
    expect([capMqes(low), capTo(low), capDstrd(high), capCss(high), capMpsmin(high), capMpsmax(high)]).toEqual([0x7ff, 15, 0, 0x41, 0, 4])
  })

  it('puts each field at its CAP bits (as Linux and libnvme shift them)', () => {
    const at: Array<[keyof Cap, number, number]> = [
      ['mqes', 0, 16],
      ['cqr', 16, 1],
      ['ams', 17, 2],
      ['to', 24, 8],
      ['dstrd', 32, 4],
      ['nssrs', 36, 1],
      ['css', 37, 8],
      ['bps', 45, 1],
      ['cps', 46, 2],
      ['mpsmin', 48, 4],
      ['mpsmax', 52, 4],
      ['pmrs', 56, 1],
      ['cmbs', 57, 1],
      ['nsss', 58, 1],
      ['crms', 59, 2],
    ]
    for (const [name, shift, width] of at) {
      const value = width === 1 ? true : 2 ** width - 1
      const cap = joinU64(capLow({ [name]: value }), capHigh({ [name]: value }))
      expect(cap, name).toBe(((1n << BigInt(width)) - 1n) << BigInt(shift))
    }
    // Linux NVME_CAP_CRMS_CRIMS 1ULL << 60, CRWMS 1ULL << 59
    expect(joinU64(capLow({ crms: 2 }), capHigh({ crms: 2 }))).toBe(1n << 60n)
  })

  it('round-trips and rejects out of range fields', () => {
    const cap = fc.record({
      mqes: bits(16),
      cqr: b,
      ams: bits(2),
      to: bits(8),
      dstrd: bits(4),
      nssrs: b,
      css: bits(8),
      bps: b,
      cps: bits(2),
      mpsmin: bits(4),
      mpsmax: bits(4),
      pmrs: b,
      cmbs: b,
      nsss: b,
      crms: bits(2),
    })
    fc.assert(
      fc.property(cap, (c) => {
        const { low, high } = encodeCap(c)
        expect(low >>> 0).toBe(low)
        expect(high >>> 0).toBe(high)
        expect(high >>> 29).toBe(0)
        expect(decodeCap(low, high)).toEqual(c)
      }),
      { numRuns: 200 },
    )
    expect(() => capLow({ to: 256 })).toThrow(RangeError)
    expect(() => capHigh({ mpsmax: 16 })).toThrow(RangeError)
    expect(() => capLow({ cqr: 1 as unknown as boolean })).toThrow(TypeError)
  })
})

describe('VS, CC, CSTS, AQA', () => {
  it('encodes known values', () => {
    expect(encodeVersion({ mjr: 2 })).toBe(NVME_VERSION_2_0)
    expect(encodeVersion({ mjr: 1, mnr: 4 })).toBe(0x10400) // QEMU's NVME_SPEC_VER
    expect(decodeVersion(0x00010201)).toEqual({ mjr: 1, mnr: 2, ter: 1 })
    // Linux nvme_enable_ctrl(): IOSQES 6, IOCQES 4, CSS NVM, MPS 0, AMS RR, EN
    expect(encodeCc({ en: true, iosqes: 6, iocqes: 4 })).toBe(0x460001)
    expect(encodeCc({ shn: Shn.Normal })).toBe(1 << 14)
    expect(encodeCc({ shn: Shn.Abrupt })).toBe(2 << 14)
    expect(encodeCc({ css: 6, mps: 4, ams: 7, crime: true })).toBe((6 << 4) | (4 << 7) | (7 << 11) | (1 << 24))
    expect(encodeCsts({ rdy: true, shst: Shst.Complete })).toBe(0x9)
    expect(encodeCsts({ cfs: true, nssro: true, pp: true, st: true })).toBe(0x72)
    expect(decodeCsts(0x4)).toMatchObject({ rdy: false, shst: Shst.Occurring })
    // Linux NVME_AQ_DEPTH 32: aqa = (32 - 1) | ((32 - 1) << 16)
    expect(encodeAqa({ asqs: 31, acqs: 31 })).toBe(0x001f001f)
    expect(() => encodeAqa({ asqs: 4096 })).toThrow(RangeError)
    expect(() => encodeCc({ mps: 16 })).toThrow(RangeError)
  })

  it('round-trips', () => {
    const check = <T>(arb: fc.Arbitrary<T>, enc: (x: T) => number, dec: (v: number) => T): void => {
      fc.assert(
        fc.property(arb, (x) => {
          const v = enc(x)
          expect(v >>> 0).toBe(v)
          expect(dec(v)).toEqual(x)
        }),
        { numRuns: 100 },
      )
    }
    check(fc.record({ mjr: bits(16), mnr: bits(8), ter: bits(8) }), encodeVersion, decodeVersion)
    check(fc.record({ en: b, css: bits(3), mps: bits(4), ams: bits(3), shn: bits(2), iosqes: bits(4), iocqes: bits(4), crime: b }), encodeCc, decodeCc)
    check(fc.record({ rdy: b, cfs: b, shst: bits(2), nssro: b, pp: b, st: b }), encodeCsts, decodeCsts)
    check(fc.record({ asqs: bits(12), acqs: bits(12) }), encodeAqa, decodeAqa)
    check(fc.record({ crwmt: bits(16), crimt: bits(16) }), encodeCrto, decodeCrto)
    check(fc.record({ bpsz: bits(15), brs: bits(2), abpid: bits(1) }), encodeBpinfo, decodeBpinfo)
    check(fc.record({ bprsz: bits(10), bprof: bits(20), bpid: bits(1) }), encodeBprsel, decodeBprsel)
  })
})

describe('CMB and PMR registers', () => {
  it('encodes the values QEMU exposes', () => {
    // QEMU nvme_init_cmb: CMBLOC BIR 2, CDPMLS, CDPCILS; CMBSZ SQS, LISTS, RDS, WDS, SZU 1 MiB, SZ = cmb_size_mb
    expect(encodeCmbloc({ bir: 2, cdpmls: true, cdpcils: true })).toBe(0x62)
    const cmbsz = encodeCmbsz({ sqs: true, lists: true, rds: true, wds: true, szu: 2, sz: 64 })
    expect(cmbsz).toBe(0x4021d)
    expect(cmbSizeBytes(decodeCmbsz(cmbsz))).toBe(64 * 2 ** 20)
    expect(cmbSizeBytes({ sz: 0xfffff, szu: 6 })).toBe(0xfffff * 2 ** 36)
    // QEMU nvme_init_pmr: RDS, WDS, BIR 4, PMRWBM 2, CMSS
    expect(encodePmrcap({ rds: true, wds: true, bir: 4, pmrwbm: 2, cmss: true })).toBe(0x01000898)
    expect(encodePmrctl({ en: true })).toBe(1)
    expect(encodePmrsts({ nrdy: true })).toBe(0x100)
    expect(encodeCmbsts({ cbai: true })).toBe(1)
  })

  it('splits CMBMSC and PMRMSC at bit 32', () => {
    expect(encodeCmbmsc({ cre: true, cmse: true, cba: 0x1_2345_6000 })).toEqual({ low: 0x23456003, high: 1 })
    expect(decodeCmbmsc(0x23456003, 1)).toEqual({ cre: true, cmse: true, cba: 0x1_2345_6000 })
    expect(encodePmrmsc({ cmse: true, cba: 0xffff_0000_0000 })).toEqual({ low: 2, high: 0xffff })
    expect(decodePmrmsc(0xfff01002, 0x7)).toEqual({ cmse: true, cba: 0x7_fff0_1000 })
    expect(() => encodeCmbmsc({ cba: 0x1001 })).toThrow(RangeError)
    fc.assert(
      fc.property(fc.record({ cre: b, cmse: b, cba: fc.integer({ min: 0, max: 2 ** 40 }).map((x) => x * 4096) }), (c) => {
        const { low, high } = encodeCmbmsc(c)
        expect(decodeCmbmsc(low, high)).toEqual(c)
        const p = encodePmrmsc(c)
        expect(decodePmrmsc(p.low, p.high)).toEqual({ cmse: c.cmse, cba: c.cba })
      }),
      { numRuns: 100 },
    )
  })

  it('puts each field at its bits', () => {
    expect(encodeCmbloc({ ofst: 0xfffff })).toBe(0xfffff000)
    expect(encodeCmbloc({ cqda: true })).toBe(1 << 8)
    expect(encodeCmbsz({ sz: 1 })).toBe(1 << 12)
    expect(encodeCmbsz({ szu: 0xf })).toBe(0xf00)
    expect(encodeCmbebs({ cmbwbz: 0xffffff, rbb: true, cmbszu: 3 })).toBe(0xffffff13)
    expect(encodeCmbswtp({ cmbswtv: 1, cmbswtu: 2 })).toBe(0x102)
    expect(encodePmrcap({ pmrto: 0xff })).toBe(0xff0000)
    expect(encodePmrcap({ pmrtu: 1 })).toBe(0x100)
    expect(encodePmrsts({ err: 0xff, hsts: 7, cbai: true })).toBe(0x1eff)
    expect(encodePmrebs({ pmrwbz: 2, pmrszu: 1 })).toBe(0x201)
    expect(encodePmrswtp({ pmrswtv: 0xffffff, pmrswtu: 0xf })).toBe(0xffffff0f)
    expect(encodeBpinfo({ abpid: 1 })).toBe(0x80000000)
    expect(encodeBprsel({ bprof: 0xfffff })).toBe(0x3ffffc00)
  })

  it('round-trips', () => {
    const check = <T>(arb: fc.Arbitrary<T>, enc: (x: T) => number, dec: (v: number) => T): void => {
      fc.assert(
        fc.property(arb, (x) => {
          const v = enc(x)
          expect(v >>> 0).toBe(v)
          expect(dec(v)).toEqual(x)
        }),
        { numRuns: 100 },
      )
    }
    check(fc.record({ bir: bits(3), cqmms: b, cqpds: b, cdpmls: b, cdpcils: b, cdmmms: b, cqda: b, ofst: bits(20) }), encodeCmbloc, decodeCmbloc)
    check(fc.record({ sqs: b, cqs: b, lists: b, rds: b, wds: b, szu: bits(4), sz: bits(20) }), encodeCmbsz, decodeCmbsz)
    check(fc.record({ cbai: b }), encodeCmbsts, decodeCmbsts)
    check(fc.record({ cmbszu: bits(4), rbb: b, cmbwbz: bits(24) }), encodeCmbebs, decodeCmbebs)
    check(fc.record({ cmbswtu: bits(4), cmbswtv: bits(24) }), encodeCmbswtp, decodeCmbswtp)
    check(fc.record({ rds: b, wds: b, bir: bits(3), pmrtu: bits(2), pmrwbm: bits(4), pmrto: bits(8), cmss: b }), encodePmrcap, decodePmrcap)
    check(fc.record({ en: b }), encodePmrctl, decodePmrctl)
    check(fc.record({ err: bits(8), nrdy: b, hsts: bits(3), cbai: b }), encodePmrsts, decodePmrsts)
    check(fc.record({ pmrszu: bits(4), rbb: b, pmrwbz: bits(24) }), encodePmrebs, decodePmrebs)
    check(fc.record({ pmrswtu: bits(4), pmrswtv: bits(24) }), encodePmrswtp, decodePmrswtp)
  })
})
