// Identify: every structure's size, each field at its spec offset (an offset table typed here
// from libnvme's struct nvme_id_ctrl / nvme_id_ns, independent of the codec's own table),
// string padding, round trips and range errors.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  activeLbaFormat,
  Cns,
  decodeExtendedLbaFormat,
  decodeIdentify,
  decodeIdentifyController,
  decodeIdentifyNamespace,
  decodeIndependentIdentifyNamespace,
  decodeIoCommandSets,
  decodeNamespaceIdDescriptors,
  decodeNamespaceList,
  decodeNvmIdentifyController,
  decodeNvmIdentifyNamespace,
  dpsPiFirst,
  dpsPiType,
  encodeDps,
  encodeExtendedLbaFormat,
  encodeFlbas,
  encodeIdentify,
  encodeIdentifyController,
  encodeIdentifyNamespace,
  encodeIndependentIdentifyNamespace,
  encodeIoCommandSets,
  encodeLbaFormat,
  encodeNamespaceIdDescriptors,
  encodeNamespaceList,
  encodeNvmIdentifyController,
  encodeNvmIdentifyNamespace,
  flbasExtended,
  flbasFormatIndex,
  IDENTIFY_CONTROLLER_FIELDS,
  IDENTIFY_DATA_SIZE,
  IDENTIFY_NAMESPACE_FIELDS,
  IoCommandSetVector,
  NidType,
  ProtectionInfoFormat,
  type FieldSpec,
  type IdentifyControllerInput,
  type IdentifyNamespaceInput,
  type PowerStateDescriptor,
} from '../src/spec/identify.js'
import { encodeSqe } from '../src/spec/sqe.js'

type Kind = 'u8' | 'u16' | 'u24' | 'u32' | 'u64' | 'u128' | 'bytes'

// Identify Controller integer and byte fields: [name, offset, kind, size] (libnvme struct nvme_id_ctrl)
const CTRL_OFFSETS: Array<[string, number, Kind, number?]> = [
  ['vid', 0, 'u16'],
  ['ssvid', 2, 'u16'],
  ['rab', 72, 'u8'],
  ['ieee', 73, 'u24'],
  ['cmic', 76, 'u8'],
  ['mdts', 77, 'u8'],
  ['cntlid', 78, 'u16'],
  ['ver', 80, 'u32'],
  ['rtd3r', 84, 'u32'],
  ['rtd3e', 88, 'u32'],
  ['oaes', 92, 'u32'],
  ['ctratt', 96, 'u32'],
  ['rrls', 100, 'u16'],
  ['cntrltype', 111, 'u8'],
  ['fguid', 112, 'bytes', 16],
  ['crdt1', 128, 'u16'],
  ['crdt2', 130, 'u16'],
  ['crdt3', 132, 'u16'],
  ['nvmsr', 253, 'u8'],
  ['vwci', 254, 'u8'],
  ['mec', 255, 'u8'],
  ['oacs', 256, 'u16'],
  ['acl', 258, 'u8'],
  ['aerl', 259, 'u8'],
  ['frmw', 260, 'u8'],
  ['lpa', 261, 'u8'],
  ['elpe', 262, 'u8'],
  ['avscc', 264, 'u8'],
  ['apsta', 265, 'u8'],
  ['wctemp', 266, 'u16'],
  ['cctemp', 268, 'u16'],
  ['mtfa', 270, 'u16'],
  ['hmpre', 272, 'u32'],
  ['hmmin', 276, 'u32'],
  ['tnvmcap', 280, 'u128'],
  ['unvmcap', 296, 'u128'],
  ['rpmbs', 312, 'u32'],
  ['edstt', 316, 'u16'],
  ['dsto', 318, 'u8'],
  ['fwug', 319, 'u8'],
  ['kas', 320, 'u16'],
  ['hctma', 322, 'u16'],
  ['mntmt', 324, 'u16'],
  ['mxtmt', 326, 'u16'],
  ['sanicap', 328, 'u32'],
  ['hmminds', 332, 'u32'],
  ['hmmaxd', 336, 'u16'],
  ['nsetidmax', 338, 'u16'],
  ['endgidmax', 340, 'u16'],
  ['anatt', 342, 'u8'],
  ['anacap', 343, 'u8'],
  ['anagrpmax', 344, 'u32'],
  ['nanagrpid', 348, 'u32'],
  ['pels', 352, 'u32'],
  ['domainid', 356, 'u16'],
  ['megcap', 368, 'u128'],
  ['sqes', 512, 'u8'],
  ['cqes', 513, 'u8'],
  ['maxcmd', 514, 'u16'],
  ['nn', 516, 'u32'],
  ['oncs', 520, 'u16'],
  ['fuses', 522, 'u16'],
  ['fna', 524, 'u8'],
  ['vwc', 525, 'u8'],
  ['awun', 526, 'u16'],
  ['awupf', 528, 'u16'],
  ['icsvscc', 530, 'u8'],
  ['nwpc', 531, 'u8'],
  ['acwu', 532, 'u16'],
  ['ocfs', 534, 'u16'],
  ['sgls', 536, 'u32'],
  ['mnan', 540, 'u32'],
  ['maxdna', 544, 'u128'],
  ['maxcna', 560, 'u32'],
  ['ioccsz', 1792, 'u32'],
  ['iorcsz', 1796, 'u32'],
  ['icdoff', 1800, 'u16'],
  ['fcatt', 1802, 'u8'],
  ['msdbd', 1803, 'u8'],
  ['ofcs', 1804, 'u16'],
  ['dctype', 1806, 'u8'],
]

// Identify Namespace (libnvme struct nvme_id_ns; NULBAF from NVM Command Set 1.0)
const NS_OFFSETS: Array<[string, number, Kind, number?]> = [
  ['nsze', 0, 'u64'],
  ['ncap', 8, 'u64'],
  ['nuse', 16, 'u64'],
  ['nsfeat', 24, 'u8'],
  ['flbas', 26, 'u8'],
  ['mc', 27, 'u8'],
  ['dpc', 28, 'u8'],
  ['dps', 29, 'u8'],
  ['nmic', 30, 'u8'],
  ['rescap', 31, 'u8'],
  ['fpi', 32, 'u8'],
  ['dlfeat', 33, 'u8'],
  ['nawun', 34, 'u16'],
  ['nawupf', 36, 'u16'],
  ['nacwu', 38, 'u16'],
  ['nabsn', 40, 'u16'],
  ['nabo', 42, 'u16'],
  ['nabspf', 44, 'u16'],
  ['noiob', 46, 'u16'],
  ['nvmcap', 48, 'u128'],
  ['npwg', 64, 'u16'],
  ['npwa', 66, 'u16'],
  ['npdg', 68, 'u16'],
  ['npda', 70, 'u16'],
  ['nows', 72, 'u16'],
  ['mssrl', 74, 'u16'],
  ['mcl', 76, 'u32'],
  ['msrc', 80, 'u8'],
  ['anagrpid', 92, 'u32'],
  ['nsattr', 99, 'u8'],
  ['nvmsetid', 100, 'u16'],
  ['endgid', 102, 'u16'],
  ['nguid', 104, 'bytes', 16],
  ['eui64', 120, 'bytes', 8],
]

const SAMPLE: Record<Kind, number | bigint | Uint8Array> = {
  u8: 0xa5,
  u16: 0xbeef,
  u24: 0xabcdef,
  u32: 0xdeadbeef,
  u64: 0x000f_edcb_a987_6543,
  u128: 0x0102030405060708_1112131415161718n,
  bytes: new Uint8Array(0),
}

function sampleFor(kind: Kind, size?: number): number | bigint | Uint8Array {
  if (kind === 'bytes') return Uint8Array.from({ length: size ?? 0 }, (_, i) => 0x40 + i)
  return SAMPLE[kind]
}

function readBack(buf: Uint8Array, off: number, kind: Kind, size?: number): number | bigint | Uint8Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  switch (kind) {
    case 'u8':
      return dv.getUint8(off)
    case 'u16':
      return dv.getUint16(off, true)
    case 'u24':
      return buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)
    case 'u32':
      return dv.getUint32(off, true)
    case 'u64':
      return Number(dv.getBigUint64(off, true))
    case 'u128':
      return dv.getBigUint64(off, true) | (dv.getBigUint64(off + 8, true) << 64n)
    case 'bytes':
      return buf.slice(off, off + (size ?? 0))
  }
}

/** Every byte outside [from, to) is zero. */
function expectOnly(buf: Uint8Array, from: number, to: number): void {
  const stray = buf.findIndex((b, i) => b !== 0 && (i < from || i >= to))
  expect(stray, `stray byte at ${stray}`).toBe(-1)
}

function sizeOf(kind: Kind, size?: number): number {
  return { u8: 1, u16: 2, u24: 3, u32: 4, u64: 8, u128: 16, bytes: size ?? 0 }[kind]
}

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c))
const ascii = (max: number): fc.Arbitrary<string> => fc.string({ unit: printable, maxLength: max }).map((s) => s.trimEnd())
const utf8 = fc
  .string({ unit: 'grapheme', maxLength: 60 })
  .filter((s) => !s.includes('\0') && new TextEncoder().encode(s).length <= 255)

/** An arbitrary for a struct table's fields (value ranges from the kind). */
function arbitraryFor(fields: ReadonlyArray<FieldSpec>): fc.Arbitrary<Record<string, unknown>> {
  const rec: Record<string, fc.Arbitrary<unknown>> = {}
  for (const f of fields) {
    switch (f.kind) {
      case 'u8':
        rec[f.name] = fc.integer({ min: 0, max: 0xff })
        break
      case 'u16':
        rec[f.name] = fc.integer({ min: 0, max: 0xffff })
        break
      case 'u24':
        rec[f.name] = fc.integer({ min: 0, max: 0xffffff })
        break
      case 'u32':
        rec[f.name] = fc.integer({ min: 0, max: 0xffffffff })
        break
      case 'u64':
        rec[f.name] = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })
        break
      case 'u64n':
        rec[f.name] = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
        break
      case 'u128':
        rec[f.name] = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
        break
      case 'bytes':
        rec[f.name] = fc.uint8Array({ minLength: f.size, maxLength: f.size })
        break
      case 'ascii':
        rec[f.name] = ascii(f.size)
        break
      case 'utf8':
        rec[f.name] = utf8
        break
    }
  }
  return fc.record(rec)
}

const powerState: fc.Arbitrary<PowerStateDescriptor> = fc.record({
  mp: fc.integer({ min: 0, max: 0xffff }),
  mxps: fc.boolean(),
  nops: fc.boolean(),
  enlat: fc.integer({ min: 0, max: 0xffffffff }),
  exlat: fc.integer({ min: 0, max: 0xffffffff }),
  rrt: fc.integer({ min: 0, max: 31 }),
  rrl: fc.integer({ min: 0, max: 31 }),
  rwt: fc.integer({ min: 0, max: 31 }),
  rwl: fc.integer({ min: 0, max: 31 }),
  idlp: fc.integer({ min: 0, max: 0xffff }),
  ips: fc.integer({ min: 0, max: 3 }),
  actp: fc.integer({ min: 0, max: 0xffff }),
  apw: fc.integer({ min: 0, max: 7 }),
  aps: fc.integer({ min: 0, max: 3 }),
})

describe('Identify command dwords', () => {
  it('places CNS, CNTID, CNSSID, CSI where Linux struct nvme_identify has them', () => {
    const v = new DataView(new ArrayBuffer(64))
    encodeSqe(v, 0, { opcode: 0x06, ...encodeIdentify({ cns: Cns.IoCommandSetNamespace, cntid: 0x1234, cnssid: 0x5678, csi: 2, uuidIndex: 0x7f }) })
    expect(v.getUint8(40)).toBe(0x05) // cns
    expect(v.getUint16(42, true)).toBe(0x1234) // ctrlid
    expect(v.getUint16(44, true)).toBe(0x5678) // cnssid
    expect(v.getUint8(47)).toBe(2) // csi
    expect(v.getUint32(56, true)).toBe(0x7f) // cdw14 UUID index
    const c = encodeIdentify({ cns: 1, cntid: 0xffff, cnssid: 0xffff, csi: 0xff, uuidIndex: 3 })
    expect(decodeIdentify(c)).toEqual({ cns: 1, cntid: 0xffff, cnssid: 0xffff, csi: 0xff, uuidIndex: 3 })
    expect(() => encodeIdentify({ uuidIndex: 0x80 })).toThrow(RangeError)
  })

  it('has the CNS values', () => {
    expect(Cns).toMatchObject({
      Namespace: 0x00,
      Controller: 0x01,
      ActiveNamespaceList: 0x02,
      NamespaceIdDescriptorList: 0x03,
      IoCommandSetNamespace: 0x05,
      IoCommandSetController: 0x06,
      IoCommandSetActiveNamespaceList: 0x07,
      IoCommandSetIndependentNamespace: 0x08,
      IoCommandSet: 0x1c,
    })
  })
})

describe('Identify Controller', () => {
  it('puts each field at its offset', () => {
    expect(IDENTIFY_DATA_SIZE).toBe(4096)
    expect(CTRL_OFFSETS.length + 4).toBe(IDENTIFY_CONTROLLER_FIELDS.length) // + sn, mn, fr, subnqn
    const buf = new Uint8Array(4096)
    for (const [name, off, kind, size] of CTRL_OFFSETS) {
      const value = sampleFor(kind, size)
      encodeIdentifyController({ [name]: value } as IdentifyControllerInput, buf)
      expect(readBack(buf, off, kind, size), name).toEqual(value)
      // nothing else is written but NPSS (0) and PS0 (zero)
      expectOnly(buf, off, off + sizeOf(kind, size))
      expect((decodeIdentifyController(buf) as unknown as Record<string, unknown>)[name]).toEqual(value)
    }
  })

  it('stores the IEEE OUI little endian, as QEMU does for 52-54-00', () => {
    const buf = new Uint8Array(4096)
    encodeIdentifyController({ ieee: 0x525400 }, buf)
    expect([buf[73], buf[74], buf[75]]).toEqual([0x00, 0x54, 0x52])
  })

  it('pads SN, MN and FR with spaces and SUBNQN with NULs', () => {
    const buf = new Uint8Array(4096).fill(0xff)
    encodeIdentifyController({ sn: 'deadbeef', mn: 'QEMU NVMe Ctrl', fr: '8.2.0', subnqn: 'nqn.2019-08.org.qemu:foo' }, buf)
    const text = (off: number, n: number): string => String.fromCharCode(...buf.subarray(off, off + n))
    expect(text(4, 20)).toBe('deadbeef            ')
    expect(text(24, 40)).toBe('QEMU NVMe Ctrl'.padEnd(40, ' '))
    expect(text(64, 8)).toBe('8.2.0   ')
    expect(text(768, 24)).toBe('nqn.2019-08.org.qemu:foo')
    expect(buf.subarray(792, 1024).every((b) => b === 0)).toBe(true)
    // the encoder zeroes the structure first
    expect(buf[3072]).toBe(0)
    expect(buf[4095]).toBe(0)
    const c = decodeIdentifyController(buf)
    expect([c.sn, c.mn, c.fr, c.subnqn]).toEqual(['deadbeef', 'QEMU NVMe Ctrl', '8.2.0', 'nqn.2019-08.org.qemu:foo'])
  })

  it('trims NUL padding too when decoding, and decodes UTF-8 NQNs', () => {
    const buf = new Uint8Array(4096)
    buf.set(new TextEncoder().encode('SN123'), 4) // a device that NUL-pads its serial
    buf.set(new TextEncoder().encode('nqn.2014-08.org.example:café'), 768)
    const c = decodeIdentifyController(buf)
    expect(c.sn).toBe('SN123')
    expect(c.subnqn).toBe('nqn.2014-08.org.example:café')
  })

  it('rejects strings that do not fit', () => {
    const buf = new Uint8Array(4096)
    expect(() => encodeIdentifyController({ sn: 'x'.repeat(21) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ mn: 'x'.repeat(41) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ fr: '123456789' }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ sn: 'café' }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ sn: 'a\tb' }, buf)).toThrow(RangeError)
    encodeIdentifyController({ sn: 'x'.repeat(20), subnqn: 'n'.repeat(255) }, buf)
    expect(decodeIdentifyController(buf).subnqn.length).toBe(255)
    expect(() => encodeIdentifyController({ subnqn: 'n'.repeat(256) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ subnqn: 'é'.repeat(128) }, buf)).toThrow(RangeError) // 256 bytes of UTF-8
  })

  it('rejects values out of range', () => {
    const buf = new Uint8Array(4096)
    expect(() => encodeIdentifyController({ vid: 0x10000 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ mdts: -1 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ nn: 1.5 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ ieee: 0x1000000 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ tnvmcap: -1n }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ tnvmcap: 1n << 128n }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ fguid: new Uint8Array(15) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ powerStates: [{ rrt: 32 }] }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ powerStates: [{ aps: 4 }] }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({ powerStates: Array.from({ length: 33 }, () => ({})) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyController({}, new Uint8Array(4095))).toThrow(RangeError)
    expect(() => decodeIdentifyController(new Uint8Array(100))).toThrow(RangeError)
  })

  it('lays out the power state descriptors', () => {
    const buf = new Uint8Array(4096)
    const ps1: PowerStateDescriptor = {
      mp: 0x9c4,
      mxps: true,
      nops: true,
      enlat: 16,
      exlat: 4,
      rrt: 1,
      rrl: 2,
      rwt: 3,
      rwl: 4,
      idlp: 0x1234,
      ips: 2,
      actp: 0x5678,
      apw: 5,
      aps: 1,
    }
    encodeIdentifyController({ powerStates: [{ mp: 0x9c4, enlat: 16, exlat: 4 }, ps1] }, buf)
    expect(buf[263]).toBe(1) // NPSS, 0's based
    const dv = new DataView(buf.buffer)
    expect(dv.getUint16(2048, true)).toBe(0x9c4)
    expect(dv.getUint32(2052, true)).toBe(16)
    expect(dv.getUint32(2056, true)).toBe(4)
    const b = 2048 + 32
    expect(dv.getUint16(b, true)).toBe(0x9c4)
    expect(buf[b + 2]).toBe(0)
    expect(buf[b + 3]).toBe(0b11) // MXPS bit 0, NOPS bit 1
    expect(dv.getUint32(b + 4, true)).toBe(16)
    expect(dv.getUint32(b + 8, true)).toBe(4)
    expect([buf[b + 12], buf[b + 13], buf[b + 14], buf[b + 15]]).toEqual([1, 2, 3, 4])
    expect(dv.getUint16(b + 16, true)).toBe(0x1234)
    expect(buf[b + 18]).toBe(2 << 6) // IPS bits 7:6
    expect(dv.getUint16(b + 20, true)).toBe(0x5678)
    expect(buf[b + 22]).toBe(5 | (1 << 6)) // APW 2:0, APS 7:6
    expect(buf.subarray(b + 23, b + 32).every((x) => x === 0)).toBe(true)
    const c = decodeIdentifyController(buf)
    expect(c.npss).toBe(1)
    expect(c.powerStates).toHaveLength(2)
    expect(c.powerStates[1]).toEqual(ps1)
  })

  it('writes one zero PS0 when no power state is given', () => {
    const buf = new Uint8Array(4096)
    encodeIdentifyController({ sqes: 0x66, cqes: 0x44 }, buf)
    expect(buf[263]).toBe(0)
    expect([buf[512], buf[513]]).toEqual([0x66, 0x44])
    expect(decodeIdentifyController(buf).powerStates).toHaveLength(1)
  })

  it('round-trips', () => {
    const input = fc.tuple(arbitraryFor(IDENTIFY_CONTROLLER_FIELDS), fc.array(powerState, { minLength: 1, maxLength: 32 }))
    const buf = new Uint8Array(4096)
    fc.assert(
      fc.property(input, ([scalars, powerStates]) => {
        const c = { ...scalars, powerStates } as IdentifyControllerInput
        encodeIdentifyController(c, buf)
        expect(decodeIdentifyController(buf)).toEqual({ ...c, npss: powerStates.length - 1 })
      }),
      { numRuns: 60 },
    )
  })
})

describe('Identify Namespace', () => {
  it('puts each field at its offset', () => {
    expect(NS_OFFSETS.length + 1).toBe(IDENTIFY_NAMESPACE_FIELDS.length) // + nulbaf
    const buf = new Uint8Array(4096)
    for (const [name, off, kind, size] of NS_OFFSETS) {
      const value = sampleFor(kind, size)
      encodeIdentifyNamespace({ [name]: value } as IdentifyNamespaceInput, buf)
      expect(readBack(buf, off, kind, size), name).toEqual(value)
      expectOnly(buf, off, off + sizeOf(kind, size))
      expect((decodeIdentifyNamespace(buf) as unknown as Record<string, unknown>)[name]).toEqual(value)
    }
  })

  it('lays out the LBA formats and NLBAF', () => {
    const buf = new Uint8Array(4096)
    const lbaf = [
      { ms: 0, lbads: 9, rp: 0 },
      { ms: 8, lbads: 9, rp: 1 },
      { ms: 0, lbads: 12, rp: 0 },
      { ms: 64, lbads: 12, rp: 3 },
    ]
    encodeIdentifyNamespace({ nsze: 2 ** 52, ncap: 2 ** 52, nuse: 1, flbas: encodeFlbas(3, true), dps: encodeDps(1, true), lbaf, nulbaf: 1 }, buf)
    const dv = new DataView(buf.buffer)
    expect(buf[25]).toBe(2) // NLBAF: 4 formats - 1 unique-capability format - 1
    expect(buf[82]).toBe(1) // NULBAF
    expect(dv.getUint32(128, true)).toBe(9 << 16)
    expect(dv.getUint32(132, true)).toBe(0x0109_0008)
    expect(dv.getUint32(140, true)).toBe(0x030c_0040) // MS 15:0, LBADS 23:16, RP 25:24
    expect(dv.getUint32(144, true)).toBe(0)
    expect(dv.getBigUint64(0, true)).toBe(2n ** 52n)
    expect(buf[26]).toBe(0x13)
    expect(buf[29]).toBe(0x09)
    const ns = decodeIdentifyNamespace(buf)
    expect(ns.nlbaf).toBe(2)
    expect(ns.lbaf).toEqual(lbaf)
    expect(activeLbaFormat(ns)).toEqual({ ms: 64, lbads: 12, rp: 3 })
    expect(encodeLbaFormat({ ms: 8, lbads: 12, rp: 2 })).toBe(0x020c0008)
  })

  it('splits the FLBAS format index as Linux nvme_lbaf_index() reads it', () => {
    const linux = (flbas: number): number => (flbas & 0xf) | ((flbas & 0x60) >> 1)
    for (let i = 0; i < 64; i++) {
      for (const ext of [false, true]) {
        const f = encodeFlbas(i, ext)
        expect(linux(f)).toBe(i)
        expect(flbasFormatIndex(f)).toBe(i)
        expect(flbasExtended(f)).toBe(ext)
        expect(f & 0x80).toBe(0)
      }
    }
    expect(encodeFlbas(17, true)).toBe(0x31)
    expect(() => encodeFlbas(64)).toThrow(RangeError)
    expect(dpsPiType(0x0b)).toBe(3)
    expect(dpsPiFirst(0x0b)).toBe(true)
  })

  it('round-trips', () => {
    const lbaf = fc.record({ ms: fc.integer({ min: 0, max: 0xffff }), lbads: fc.integer({ min: 0, max: 0xff }), rp: fc.integer({ min: 0, max: 3 }) })
    const input = fc
      .tuple(arbitraryFor(IDENTIFY_NAMESPACE_FIELDS.filter((f) => f.name !== 'nulbaf')), fc.array(lbaf, { minLength: 1, maxLength: 64 }), fc.nat(63))
      .map(([s, l, n]) => ({ ...s, lbaf: l, nulbaf: Math.min(n, l.length - 1) }))
    const buf = new Uint8Array(4096)
    fc.assert(
      fc.property(input, (ns) => {
        encodeIdentifyNamespace(ns as IdentifyNamespaceInput, buf)
        expect(decodeIdentifyNamespace(buf)).toEqual({ ...ns, nlbaf: ns.lbaf.length - 1 - ns.nulbaf })
      }),
      { numRuns: 60 },
    )
  })

  it('rejects values out of range', () => {
    const buf = new Uint8Array(4096)
    expect(() => encodeIdentifyNamespace({ nsze: 2 ** 53 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ nsze: -1 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ lbaf: [{ rp: 4 }] }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ lbaf: [{ ms: 0x10000 }] }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ lbaf: Array.from({ length: 65 }, () => ({})) }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ lbaf: [{}], nulbaf: 1 }, buf)).toThrow(RangeError)
    expect(() => encodeIdentifyNamespace({ eui64: new Uint8Array(16) }, buf)).toThrow(RangeError)
  })
})

describe('I/O Command Set specific and independent structures', () => {
  it('lays out the NVM Identify Namespace (CNS 05h): LBSTM, PIC, ELBAF at 12', () => {
    const buf = new Uint8Array(4096)
    encodeNvmIdentifyNamespace({ lbstm: 0xffff_0000_0000_0000n, pic: 0b011, elbaf: [{}, { sts: 48, pif: ProtectionInfoFormat.Guard64 }] }, buf)
    const dv = new DataView(buf.buffer)
    expect(dv.getBigUint64(0, true)).toBe(0xffff_0000_0000_0000n)
    expect(buf[8]).toBe(0b011)
    expect(dv.getUint32(12, true)).toBe(0)
    const e = dv.getUint32(16, true)
    expect(e).toBe(0x130)
    // Linux nvme_elbaf_sts() / nvme_elbaf_guard_type()
    expect(e & 0x7f).toBe(48)
    expect((e >> 7) & 3).toBe(2)
    expect(decodeNvmIdentifyNamespace(buf, 2)).toEqual({ lbstm: 0xffff_0000_0000_0000n, pic: 3, elbaf: [{ sts: 0, pif: 0 }, { sts: 48, pif: 2 }] })
    expect(decodeNvmIdentifyNamespace(buf).elbaf).toHaveLength(64)
    expect(encodeExtendedLbaFormat({ sts: 0x7f, pif: 3 })).toBe(0x1ff)
    expect(decodeExtendedLbaFormat(0xfffffe00)).toEqual({ sts: 0, pif: 0 })
    expect(() => encodeNvmIdentifyNamespace({ elbaf: [{ sts: 128 }] }, buf)).toThrow(RangeError)
    expect(() => encodeNvmIdentifyNamespace({ lbstm: 1n << 64n }, buf)).toThrow(RangeError)
  })

  it('lays out the NVM Identify Controller (CNS 06h)', () => {
    const buf = new Uint8Array(4096)
    const c = { vsl: 7, wzsl: 8, wusl: 9, dmrl: 255, dmrsl: 0xffffffff, dmsl: 2 ** 40 + 3 }
    encodeNvmIdentifyController(c, buf)
    const dv = new DataView(buf.buffer)
    expect([buf[0], buf[1], buf[2], buf[3]]).toEqual([7, 8, 9, 255])
    expect(dv.getUint32(4, true)).toBe(0xffffffff)
    expect(dv.getBigUint64(8, true)).toBe(2n ** 40n + 3n)
    expect(buf.subarray(16).every((x) => x === 0)).toBe(true)
    expect(decodeNvmIdentifyController(buf)).toEqual(c)
  })

  it('lays out the I/O Command Set Independent Identify Namespace (CNS 08h)', () => {
    const buf = new Uint8Array(4096)
    const ns = { nsfeat: 1, nmic: 2, rescap: 3, fpi: 4, anagrpid: 0x01020304, nsattr: 5, nvmsetid: 0x0607, endgid: 0x0809, nstat: 1 }
    encodeIndependentIdentifyNamespace(ns, buf)
    expect(Array.from(buf.subarray(0, 15))).toEqual([1, 2, 3, 4, 4, 3, 2, 1, 5, 0, 7, 6, 9, 8, 1])
    expect(decodeIndependentIdentifyNamespace(buf)).toEqual(ns)
  })
})

describe('lists', () => {
  it('encodes namespace lists ascending and zero terminated', () => {
    const buf = new Uint8Array(4096).fill(0xff)
    encodeNamespaceList([1, 2, 7, 0xfffffffe], buf)
    const dv = new DataView(buf.buffer)
    expect([0, 1, 2, 3, 4].map((i) => dv.getUint32(4 * i, true))).toEqual([1, 2, 7, 0xfffffffe, 0])
    expect(decodeNamespaceList(buf)).toEqual([1, 2, 7, 0xfffffffe])
    const full = Array.from({ length: 1024 }, (_, i) => i + 1)
    encodeNamespaceList(full, buf)
    expect(decodeNamespaceList(buf)).toEqual(full)
    expect(() => encodeNamespaceList([2, 1], buf)).toThrow(RangeError)
    expect(() => encodeNamespaceList([1, 1], buf)).toThrow(RangeError)
    expect(() => encodeNamespaceList([0], buf)).toThrow(RangeError)
    expect(() => encodeNamespaceList([0xffffffff], buf)).toThrow(RangeError)
    expect(() => encodeNamespaceList([...full, 1025], buf)).toThrow(RangeError)
  })

  it('encodes Namespace Identification Descriptors back to back', () => {
    const eui64 = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])
    const nguid = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i)
    const uuid = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i)
    const list = [
      { nidt: NidType.Eui64, nid: eui64 },
      { nidt: NidType.Nguid, nid: nguid },
      { nidt: NidType.Uuid, nid: uuid },
      { nidt: NidType.Csi, nid: Uint8Array.of(0) },
    ]
    const buf = new Uint8Array(4096).fill(0xff)
    encodeNamespaceIdDescriptors(list, buf)
    expect(Array.from(buf.subarray(0, 4))).toEqual([1, 8, 0, 0])
    expect(buf.subarray(4, 12)).toEqual(eui64)
    expect(Array.from(buf.subarray(12, 16))).toEqual([2, 16, 0, 0])
    expect(buf.subarray(16, 32)).toEqual(nguid)
    expect(Array.from(buf.subarray(32, 36))).toEqual([3, 16, 0, 0])
    expect(buf.subarray(36, 52)).toEqual(uuid)
    expect(Array.from(buf.subarray(52, 57))).toEqual([4, 1, 0, 0, 0])
    expect(buf.subarray(57).every((x) => x === 0)).toBe(true)
    expect(decodeNamespaceIdDescriptors(buf)).toEqual(list)
    expect(() => encodeNamespaceIdDescriptors([{ nidt: NidType.Uuid, nid: eui64 }], buf)).toThrow(RangeError)
    expect(() => encodeNamespaceIdDescriptors([{ nidt: 0, nid: eui64 }], buf)).toThrow(RangeError)
    const big = Array.from({ length: 205 }, () => ({ nidt: NidType.Nguid, nid: nguid })) // 205 × 20 bytes > 4096
    expect(() => encodeNamespaceIdDescriptors(big, buf)).toThrow(RangeError)
  })

  it('encodes the I/O Command Set vectors', () => {
    const buf = new Uint8Array(4096)
    encodeIoCommandSets([IoCommandSetVector.Nvm, IoCommandSetVector.Nvm | IoCommandSetVector.Zoned, 0, 1n << 63n], buf)
    const dv = new DataView(buf.buffer)
    expect(buf[0]).toBe(1)
    expect(dv.getBigUint64(8, true)).toBe(5n)
    expect(dv.getBigUint64(24, true)).toBe(1n << 63n)
    expect(decodeIoCommandSets(buf)).toEqual([1n, 5n, 0n, 1n << 63n])
    encodeIoCommandSets([], buf)
    expect(decodeIoCommandSets(buf)).toEqual([])
    expect(() => encodeIoCommandSets([-1], buf)).toThrow(RangeError)
    expect(() => encodeIoCommandSets(new Array<number>(513).fill(0), buf)).toThrow(RangeError)
  })
})
