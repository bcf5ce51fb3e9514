// The controller core's admin and NVM commands, each a named test, driven through the host
// driver over PCIe (the SQE built by hand, the data decoded with the package's own codecs):
//
//   Identify            NVMe Base 2.0 §5.17 (controller, namespace, active namespace list,
//                       namespace identification descriptors, CNS 05h/06h/1Ch of the NVM
//                       command set: NVM Command Set 1.0 §4.1.5), invalid CNS and NSIDs
//   queues              NVMe Base 2.0 §5.4-§5.7 (Create/Delete I/O CQ/SQ) and their
//                       command specific statuses
//   features            NVMe Base 2.0 §5.15 (Get Features, SEL), §5.27 (Set Features) and
//                       §5.27.1 (the features)
//   log pages           NVMe Base 2.0 §5.16 (error information, SMART / health, firmware slot,
//                       changed namespace list, commands supported and effects; offsets, RAE)
//   async events        NVMe Base 2.0 §5.2 (AERL, masking, clearing by reading the log page)
//   Abort, Keep Alive   NVMe Base 2.0 §5.1, §5.18
//   Format NVM          NVMe Base 2.0 §5.14, NVM Command Set 1.0 §4.1.5 / §5.2 (LBA formats,
//                       PI types 1-3, PI location, 16b and 64b guards)
//   NVM I/O             NVM Command Set 1.0 §3 (Read, Write, Flush, Write Zeroes, Dataset
//                       Management, Compare, Verify), PRPs and SGLs (NVMe Base 2.0 ch. 4)
//   PI                  NVM Command Set 1.0 §5.2 (PRACT, PRCHK, ILBRT/EILBRT, LBAT/LBATM)
//
// Every describe has its own fixture and host driver (drivers allocate host DRAM from the same
// region, so only one lives at a time).
import { createMallocBdev } from '@ipukit/bdev'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AdminCommandStatus,
  AdminOpcode,
  AsyncEventError,
  AsyncEventNotice,
  AsyncEventType,
  Cns,
  type Completion,
  decodeAsyncEvent,
  decodeChangedNamespaceList,
  decodeCommandEffectsLog,
  decodeCqeStatusField,
  decodeErrorLogEntry,
  decodeFirmwareSlotLog,
  decodeIdentifyController,
  decodeIdentifyNamespace,
  decodeIoCommandSets,
  decodeNamespaceIdDescriptors,
  decodeNamespaceList,
  decodeNumberOfQueues,
  decodeNvmIdentifyController,
  decodeNvmIdentifyNamespace,
  decodeParameterErrorLocation,
  decodeSmartLog,
  dpsPiFirst,
  dpsPiType,
  DSM_RANGE_SIZE,
  encodeDsmRange,
  FeatureCapability,
  FeatureId,
  FeatureSelect,
  flbasExtended,
  flbasFormatIndex,
  type FormatRequest,
  type HostBuffer,
  IoCommandSetVector,
  LogPageId,
  NidType,
  NvmCdw12,
  NvmCommandStatus,
  type NvmeHostDriver,
  NvmeStatus,
  nvmeStatus,
  NvmOpcode,
  Prinfo,
  ProtectionInfoFormat,
  type SqeWriter,
  StatusCodeType,
} from '../src/index.js'
import { fixture, type Fixture, host, random, same, tick } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// commands

interface Cmd {
  opcode: number
  nsid?: number
  /** CDW n -> value (2..15) */
  cdw?: Record<number, number>
  /** the data: (IOVA, length) segments */
  segs?: [number, number][]
  sgl?: boolean
  /** CDW0 byte 1 (FUSE, PSDT) */
  flags?: number
}

function build(c: Cmd): (w: SqeWriter) => void {
  return (w) => {
    w.opcode(c.opcode)
    if (c.flags !== undefined) w.flags(c.flags)
    w.u32(4, c.nsid ?? 0)
    for (const [k, v] of Object.entries(c.cdw ?? {})) w.u32(4 * Number(k), v >>> 0)
    if (c.segs !== undefined) w.data(c.segs, c.sgl ?? false)
  }
}

const admin = (d: NvmeHostDriver, c: Cmd): Promise<Completion> => d.admin(build(c))

function io(d: NvmeHostDriver, c: Cmd, queue = 0): Promise<Completion> {
  return new Promise((resolve, reject) => {
    const rc = d.io(queue, build(c), (_: null, x) => resolve(x), null)
    if (rc !== 0) reject(new Error('the I/O queue is full'))
  })
}

const lo = (v: number) => v % 0x100000000
const hi = (v: number) => Math.floor(v / 0x100000000)

interface RwOpts {
  /** CDW12 bits above NLB (FUA, PRINFO, DEAC) */
  cdw12?: number
  cdw13?: number
  cdw14?: number
  cdw15?: number
  queue?: number
  sgl?: boolean
  segs?: [number, number][]
}

/** Read, Write, Compare (or any NVM command with SLBA and NLB) of `nlb` blocks from/to `len` bytes of `buf`. */
function nvm(d: NvmeHostDriver, opcode: number, nsid: number, slba: number, nlb: number, buf: HostBuffer | null, len: number, o: RwOpts = {}): Promise<Completion> {
  const cdw: Record<number, number> = { 10: lo(slba), 11: hi(slba), 12: ((nlb - 1) & 0xffff) | (o.cdw12 ?? 0) }
  if (o.cdw13 !== undefined) cdw[13] = o.cdw13
  if (o.cdw14 !== undefined) cdw[14] = o.cdw14
  if (o.cdw15 !== undefined) cdw[15] = o.cdw15
  const segs = o.segs ?? (buf !== null && len > 0 ? ([[buf.iova, len]] as [number, number][]) : undefined)
  return io(d, { opcode, nsid, cdw, ...(segs !== undefined && { segs }), ...(o.sgl !== undefined && { sgl: o.sgl }) }, o.queue ?? 0)
}

const write = (d: NvmeHostDriver, nsid: number, slba: number, nlb: number, buf: HostBuffer, len: number, o?: RwOpts) => nvm(d, NvmOpcode.Write, nsid, slba, nlb, buf, len, o)
const read = (d: NvmeHostDriver, nsid: number, slba: number, nlb: number, buf: HostBuffer, len: number, o?: RwOpts) => nvm(d, NvmOpcode.Read, nsid, slba, nlb, buf, len, o)

/** PRINFO in CDW12 (bits 29:26) */
const prinfo = (p: number) => p << NvmCdw12.PRINFO_SHIFT
const PRCHK_ALL = Prinfo.PRCHK_GUARD | Prinfo.PRCHK_APP | Prinfo.PRCHK_REF

/** Identify into `buf` (4096 bytes); the data is copied out. */
async function identify(d: NvmeHostDriver, buf: HostBuffer, cns: number, nsid = 0, cdw11 = 0): Promise<{ c: Completion; data: Uint8Array }> {
  buf.bytes.fill(0xa5, 0, 4096)
  const c = await admin(d, { opcode: AdminOpcode.Identify, nsid, cdw: { 10: cns, 11: cdw11 }, segs: [[buf.iova, 4096]] })
  return { c, data: buf.bytes.slice(0, 4096) }
}

interface LogOpts {
  offset?: number
  rae?: boolean
  nsid?: number
}

/** Get Log Page of `bytes` bytes (NUMDL/NUMDU) into `buf`; the data is copied out. */
async function getLog(d: NvmeHostDriver, buf: HostBuffer, lid: number, bytes: number, o: LogOpts = {}): Promise<{ c: Completion; data: Uint8Array }> {
  buf.bytes.fill(0xa5, 0, bytes)
  const numd = bytes / 4 - 1
  const off = o.offset ?? 0
  const c = await admin(d, {
    opcode: AdminOpcode.GetLogPage,
    nsid: o.nsid ?? 0xffffffff,
    cdw: { 10: lid | (o.rae === true ? 1 << 15 : 0) | ((numd & 0xffff) << 16), 11: numd >>> 16, 12: lo(off), 13: hi(off) },
    segs: [[buf.iova, bytes]],
  })
  return { c, data: buf.bytes.slice(0, bytes) }
}

function getFeature(d: NvmeHostDriver, fid: number, sel = 0, cdw11 = 0, segs?: [number, number][]): Promise<Completion> {
  return admin(d, { opcode: AdminOpcode.GetFeatures, cdw: { 10: fid | (sel << 8), 11: cdw11 }, ...(segs !== undefined && { segs }) })
}

function setFeature(d: NvmeHostDriver, fid: number, value: number, o: { save?: boolean; nsid?: number; segs?: [number, number][] } = {}): Promise<Completion> {
  return admin(d, { opcode: AdminOpcode.SetFeatures, nsid: o.nsid ?? 0, cdw: { 10: (fid | (o.save === true ? 0x8000_0000 : 0)) >>> 0, 11: value }, ...(o.segs !== undefined && { segs: o.segs }) })
}

/** Format NVM CDW10: LBAF (bits 3:0, LBAFU 13:12), MSET, PI, PIL, SES. */
function formatCdw10(lbaf: number, o: { mset?: number; pi?: number; pil?: number; ses?: number } = {}): number {
  return (lbaf & 0xf) | ((o.mset ?? 1) << 4) | ((o.pi ?? 0) << 5) | ((o.pil ?? 0) << 8) | ((o.ses ?? 0) << 9) | (((lbaf >> 4) & 3) << 12)
}

const formatNvm = (d: NvmeHostDriver, nsid: number, cdw10: number) => admin(d, { opcode: AdminOpcode.FormatNvm, nsid, cdw: { 10: cdw10 } })

/** Error log entries (64 bytes each) until the first empty one. */
async function errorLog(d: NvmeHostDriver, buf: HostBuffer, entries = 64, rae = false) {
  const { c, data } = await getLog(d, buf, LogPageId.ErrorInformation, entries * 64, { rae })
  expect(c.status).toBe(0)
  const out = []
  for (let i = 0; i < entries; i++) {
    const e = decodeErrorLogEntry(data, 64 * i)
    if (e.errorCount === 0) break
    out.push(e)
  }
  return out
}

/** The CID the next command on I/O queue `i` gets (the driver pops its free list). */
function nextCid(d: NvmeHostDriver, i: number): number {
  const q = d.ioQueue(i)
  return q.slots[q.free[q.free.length - 1]!]!.cid
}

// ---------------------------------------------------------------------------------------------
// protection information references (NVM Command Set 1.0 §5.2, End-to-end Data Protection)

/** CRC-16/T10-DIF: polynomial 8BB7h, init 0, not reflected, no final xor. */
function crc16(data: Uint8Array): number {
  let crc = 0
  for (const b of data) {
    crc ^= b << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x8bb7) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** CRC-64/NVME (the 64b guard, NVM Command Set 1.0 §5.2): polynomial AD93D23594C93659h, reflected, init and final xor all ones. */
const CRC64_TABLE = (() => {
  const poly = 0x9a6c9329ac4bc9b5n // the polynomial reflected
  const t: bigint[] = []
  for (let i = 0n; i < 256n; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = (c & 1n) !== 0n ? (c >> 1n) ^ poly : c >> 1n
    t.push(c)
  }
  return t
})()
function crc64(data: Uint8Array): bigint {
  let crc = 0xffff_ffff_ffff_ffffn
  for (const b of data) crc = CRC64_TABLE[Number((crc ^ BigInt(b)) & 0xffn)]! ^ (crc >> 8n)
  return crc ^ 0xffff_ffff_ffff_ffffn
}

/** The 8-byte PI tuple of a 16b guard (big endian): guard, application tag, reference tag. */
function pi16(block: Uint8Array, at: number): { guard: number; app: number; ref: number } {
  const v = new DataView(block.buffer, block.byteOffset + at, 8)
  return { guard: v.getUint16(0), app: v.getUint16(2), ref: v.getUint32(4) }
}

function setPi16(block: Uint8Array, at: number, p: { guard: number; app: number; ref: number }): void {
  const v = new DataView(block.buffer, block.byteOffset + at, 8)
  v.setUint16(0, p.guard)
  v.setUint16(2, p.app)
  v.setUint32(4, p.ref >>> 0)
}

/** Extended-LBA blocks of `data` data bytes and `md` metadata bytes, with a 16b-guard PI in the last 8 bytes of each block's metadata. */
function piBlocks(data: Uint8Array, dataSize: number, md: number, lba: number, app: number): Uint8Array {
  const n = data.length / dataSize
  const out = new Uint8Array(n * (dataSize + md))
  for (let i = 0; i < n; i++) {
    const b = out.subarray(i * (dataSize + md), (i + 1) * (dataSize + md))
    b.set(data.subarray(i * dataSize, (i + 1) * dataSize))
    setPi16(b, dataSize + md - 8, { guard: crc16(b.subarray(0, dataSize + md - 8)), app, ref: lba + i })
  }
  return out
}


// ---------------------------------------------------------------------------------------------

describe('controller core: Identify, queues, features, logs, I/O and PI', () => {
  let f: Fixture
  let d: NvmeHostDriver
  let idBuf: HostBuffer
  let a: HostBuffer
  let b: HostBuffer
  beforeAll(async () => {
    f = await fixture({
      namespaces: [
        { blocks: 2048, blockSize: 512 },
        { blocks: 1024, blockSize: 4096 },
        { blocks: 512, blockSize: 512, mdSize: 8, pi: { type: 1 } },
      ],
    })
    d = await host(f, { ioQueues: 3 })
    idBuf = d.allocBuffer(4096)
    a = d.allocBuffer(256 * 1024)
    b = d.allocBuffer(256 * 1024)
  })
  afterAll(async () => {
    d.stop()
    await f.close()
  })

  // ---- Identify (NVMe Base 2.0 §5.17) ----

  describe('Identify', () => {
    it('Controller (CNS 01h): VID/SSVID, SN/MN/FR, MDTS, CNTLID, VER, SQES/CQES, NN, SGLS, OACS/ONCS, AERL, ACL, VWC, KAS, LPA, FRMW', async () => {
      const { c, data } = await identify(d, idBuf, Cns.Controller)
      expect(c.status).toBe(0)
      const id = decodeIdentifyController(data)
      expect(id.vid).toBe(f.fn.config.read(0, 2))
      expect(id.vid).toBe(0x1b36)
      expect(id.ssvid).toBe(0x1af4)
      expect(id.sn).toBe('IPUKIT0001')
      expect(id.mn).toBe('ipukit NVMe controller')
      expect(id.fr).toBe('0.1')
      // MDTS 5: 2^5 pages of CAP.MPSMIN (4 KiB) = 128 KiB
      expect(id.mdts).toBe(5)
      expect(id.cntlid).toBe(1)
      expect(id.ver).toBe(0x0002_0000)
      expect(id.cntrltype).toBe(1) // I/O controller
      // SQES/CQES: required and maximum 64 and 16 bytes
      expect(id.sqes).toBe(0x66)
      expect(id.cqes).toBe(0x44)
      expect(id.nn).toBe(1024)
      // SGLS bits 1:0 01b (no alignment), bit 16 (Bit Bucket), bit 18 (SGL longer than the data); no keyed SGLs over PCIe
      expect(id.sgls & 3).toBe(1)
      expect((id.sgls >>> 16) & 1).toBe(1)
      expect((id.sgls >>> 18) & 1).toBe(1)
      expect((id.sgls >>> 2) & 1).toBe(0)
      expect((id.sgls >>> 20) & 1).toBe(0)
      // OACS: Format NVM (bit 1) only; no security, firmware, namespace management, ...
      expect(id.oacs).toBe(1 << 1)
      // ONCS: Compare (0), DSM (2), Write Zeroes (3), Save/Select (4), Timestamp (6), Verify (7); no Write Uncorrectable (1), Reservations (5), Copy (8)
      expect(id.oncs).toBe((1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7))
      expect(id.aerl).toBe(3)
      expect(id.acl).toBe(3)
      // VWC present (bit 0); Flush with the broadcast NSID supported (bits 2:1 11b)
      expect(id.vwc).toBe(0b111)
      expect(id.kas).toBe(0)
      expect(id.oaes).toBe(1 << 8) // Namespace Attribute Notices
      expect(id.lpa).toBe(0b110) // commands supported and effects, extended data
      expect(id.elpe).toBe(63)
      expect(id.frmw).toBe(0b0011) // slot 1 read-only, one slot
      expect(id.npss).toBe(0)
      expect(id.powerStates[0]).toMatchObject({ mp: 2500 })
      expect(id.subnqn).toBe('nqn.2026-12.io.ipukit:ctrl')
      expect(id.maxcmd).toBe(0) // fabrics only
      expect(id.ctratt & (1 << 15)).toBe(0) // no 32b/64b guard namespace
      // the driver read the same
      expect(same(d.identify, data)).toBe(true)
    })

    it('Namespace (CNS 00h): NSZE/NCAP/NUSE, FLBAS, the LBA format list, NVMCAP, DLFEAT; no PI, no metadata', async () => {
      const { c, data } = await identify(d, idBuf, Cns.Namespace, 1)
      expect(c.status).toBe(0)
      const ns = decodeIdentifyNamespace(data)
      expect([ns.nsze, ns.ncap, ns.nuse]).toEqual([2048, 2048, 2048])
      expect(ns.nlbaf).toBe(0)
      expect(flbasFormatIndex(ns.flbas)).toBe(0)
      expect(flbasExtended(ns.flbas)).toBe(false)
      expect(ns.lbaf).toEqual([{ ms: 0, lbads: 9, rp: 0 }])
      expect([ns.mc, ns.dpc, ns.dps]).toEqual([0, 0, 0])
      expect(ns.nvmcap).toBe(2048n * 512n)
      // DLFEAT: deallocated blocks read as zeros (001b), Write Zeroes may deallocate (bit 3)
      expect(ns.dlfeat).toBe(0b01001)
      const ns2 = decodeIdentifyNamespace((await identify(d, idBuf, Cns.Namespace, 2)).data)
      expect([ns2.nsze, ns2.lbaf]).toEqual([1024, [{ ms: 0, lbads: 12, rp: 0 }]])
      expect(ns2.nvmcap).toBe(4n << 20n)
    })

    it('Namespace (CNS 00h) with PI type 1: extended LBA (FLBAS bit 4), LBAF 512+8, MC, DPC (type 1, PI last), DPS', async () => {
      const ns = decodeIdentifyNamespace((await identify(d, idBuf, Cns.Namespace, 3)).data)
      expect(ns.nsze).toBe(512)
      expect(flbasFormatIndex(ns.flbas)).toBe(0)
      expect(flbasExtended(ns.flbas)).toBe(true)
      expect(ns.lbaf).toEqual([{ ms: 8, lbads: 9, rp: 0 }])
      expect(ns.mc).toBe(1) // metadata as part of an extended LBA; no separate buffer (bit 1)
      // DPC: type 1 (bit 0), PI in the last 8 bytes of the metadata (bit 4) only: the namespace cannot be reformatted
      expect(ns.dpc).toBe(0b10001)
      expect(dpsPiType(ns.dps)).toBe(1)
      expect(dpsPiFirst(ns.dps)).toBe(false)
      expect(d.namespaces.get(3)).toMatchObject({ blocks: 512, blockSize: 512, mdSize: 8, piType: 1, piFirst: false })
    })

    it('Namespace (CNS 00h): an inactive NSID reads as zeros; NSID 0 and NSIDs above NN are Invalid Namespace or Format', async () => {
      const inactive = await identify(d, idBuf, Cns.Namespace, 7)
      expect(inactive.c.status).toBe(0)
      expect(inactive.data.every((x) => x === 0)).toBe(true)
      for (const nsid of [0, 1025, 0xfffffffe]) {
        const r = await identify(d, idBuf, Cns.Namespace, nsid)
        expect(r.c.status, `nsid ${nsid}`).toBe(NvmeStatus.InvalidNamespaceOrFormat)
        expect(r.c.dnr).toBe(true)
      }
      // the broadcast NSID: the capabilities the namespaces share (sizes 0)
      const all = decodeIdentifyNamespace((await identify(d, idBuf, Cns.Namespace, 0xffffffff)).data)
      expect([all.nsze, all.ncap, all.nuse]).toEqual([0, 0, 0])
      expect(all.lbaf.length).toBeGreaterThan(0)
    })

    it('Active Namespace List (CNS 02h): NSIDs above the start NSID, increasing; FFFFFFFEh and FFFFFFFFh are invalid', async () => {
      const list = async (nsid: number) => {
        const r = await identify(d, idBuf, Cns.ActiveNamespaceList, nsid)
        expect(r.c.status).toBe(0)
        return decodeNamespaceList(r.data)
      }
      expect(await list(0)).toEqual([1, 2, 3])
      expect(await list(1)).toEqual([2, 3])
      expect(await list(2)).toEqual([3])
      expect(await list(3)).toEqual([])
      expect(await list(1000)).toEqual([])
      for (const nsid of [0xfffffffe, 0xffffffff]) expect((await identify(d, idBuf, Cns.ActiveNamespaceList, nsid)).c.status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
      // CNS 07h with CSI 00h (NVM) lists the same
      const nvm = await identify(d, idBuf, Cns.IoCommandSetActiveNamespaceList, 1, 0 << 24)
      expect(decodeNamespaceList(nvm.data)).toEqual([2, 3])
    })

    it('Namespace Identification Descriptors (CNS 03h): EUI-64, NGUID, UUID and CSI, as Identify Namespace and the bdev say', async () => {
      const { c, data } = await identify(d, idBuf, Cns.NamespaceIdDescriptorList, 1)
      expect(c.status).toBe(0)
      const descs = decodeNamespaceIdDescriptors(data)
      expect(descs.map((x) => [x.nidt, x.nid.length])).toEqual([
        [NidType.Eui64, 8],
        [NidType.Nguid, 16],
        [NidType.Uuid, 16],
        [NidType.Csi, 1],
      ])
      const ns = decodeIdentifyNamespace((await identify(d, idBuf, Cns.Namespace, 1)).data)
      expect(same(descs[0]!.nid, ns.eui64)).toBe(true)
      expect(same(descs[1]!.nid, ns.nguid)).toBe(true)
      expect(ns.eui64.some((x) => x !== 0)).toBe(true)
      const uuid = [...descs[2]!.nid].map((x) => x.toString(16).padStart(2, '0')).join('')
      expect(uuid).toBe(f.bdevs.get('ns1')!.uuid.replace(/-/g, ''))
      expect(descs[3]!.nid[0]).toBe(0) // CSI: NVM
      // each namespace has its own identifiers
      const d2 = decodeNamespaceIdDescriptors((await identify(d, idBuf, Cns.NamespaceIdDescriptorList, 2)).data)
      expect(same(d2[1]!.nid, descs[1]!.nid)).toBe(false)
      // an inactive NSID
      expect((await identify(d, idBuf, Cns.NamespaceIdDescriptorList, 7)).c.status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
    })

    it('the NVM command set structures: CNS 05h (PIC, ELBAF), 06h (VSL, DMRL), 1Ch (the NVM command set vector)', async () => {
      const ns = await identify(d, idBuf, Cns.IoCommandSetNamespace, 3, 0 << 24)
      expect(ns.c.status).toBe(0)
      const nvmNs = decodeNvmIdentifyNamespace(ns.data, 1)
      expect(nvmNs.pic).toBe(1)
      expect(nvmNs.elbaf).toEqual([{ sts: 0, pif: ProtectionInfoFormat.Guard16 }])
      // an inactive NSID reads as zeros, as CNS 00h (NVMe Base 2.0 §5.17.2.1, Figure "CNS Values")
      const inactive = await identify(d, idBuf, Cns.IoCommandSetNamespace, 7, 0)
      expect(inactive.c.status).toBe(0)
      expect(inactive.data.every((x) => x === 0)).toBe(true)
      expect((await identify(d, idBuf, Cns.IoCommandSetNamespace, 0, 0)).c.status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
      // a command set the controller does not implement (Key Value)
      expect((await identify(d, idBuf, Cns.IoCommandSetNamespace, 1, 1 << 24)).c.status).toBe(NvmeStatus.InvalidField)
      const ctrl = await identify(d, idBuf, Cns.IoCommandSetController, 0, 0 << 24)
      expect(ctrl.c.status).toBe(0)
      const nvmCtrl = decodeNvmIdentifyController(ctrl.data)
      expect(nvmCtrl.vsl).toBe(5)
      // DMRL is a byte: 0 is "no limit below NR's 256 ranges" (NVM Command Set 1.0 §4.1.5.3)
      expect(nvmCtrl.dmrl).toBe(0)
      expect([nvmCtrl.wzsl, nvmCtrl.wusl, nvmCtrl.dmrsl, nvmCtrl.dmsl]).toEqual([0, 0, 0, 0])
      expect((await identify(d, idBuf, Cns.IoCommandSetController, 0, 2 << 24)).c.status).toBe(NvmeStatus.InvalidField)
      const sets = await identify(d, idBuf, Cns.IoCommandSet)
      expect(sets.c.status).toBe(0)
      expect(decodeIoCommandSets(sets.data)).toEqual([IoCommandSetVector.Nvm])
    })

    it('an unsupported CNS is Invalid Field in Command (byte 40); SGLs are not for admin commands over PCIe', async () => {
      for (const cns of [Cns.NvmSetList, Cns.IoCommandSetIndependentNamespace, Cns.AllocatedNamespaceList, Cns.ControllerList, 0x1d, 0xff]) {
        const r = await identify(d, idBuf, cns)
        expect(r.c.status, `CNS ${cns}`).toBe(NvmeStatus.InvalidField)
        expect(r.c.dnr).toBe(true)
      }
      // NVMe Base 2.0, Figure "Command Dword 0" (PSDT): PRPs for all admin commands over PCIe
      const c = await admin(d, { opcode: AdminOpcode.Identify, cdw: { 10: Cns.Controller }, segs: [[idBuf.iova, 4096]], sgl: true })
      expect(c.status).toBe(NvmeStatus.InvalidField)
    })
  })

  // ---- Create/Delete I/O queues (NVMe Base 2.0 §5.4-§5.7) ----

  describe('I/O queue creation and deletion', () => {
    const createCq = (qid: number, size: number, base: number, iv: number, o: { pc?: number; ien?: number } = {}) =>
      admin(d, { opcode: AdminOpcode.CreateIoCq, cdw: { 6: lo(base), 7: hi(base), 10: (((size - 1) & 0xffff) << 16) | qid, 11: (iv << 16) | ((o.ien ?? 1) << 1) | (o.pc ?? 1) } })
    const createSq = (qid: number, size: number, base: number, cqid: number, o: { pc?: number } = {}) =>
      admin(d, { opcode: AdminOpcode.CreateIoSq, cdw: { 6: lo(base), 7: hi(base), 10: (((size - 1) & 0xffff) << 16) | qid, 11: (cqid << 16) | (o.pc ?? 1) } })
    const deleteSq = (qid: number) => admin(d, { opcode: AdminOpcode.DeleteIoSq, cdw: { 10: qid } })
    const deleteCq = (qid: number) => admin(d, { opcode: AdminOpcode.DeleteIoCq, cdw: { 10: qid } })

    it('Delete I/O CQ while an SQ uses it: Invalid Queue Deletion; SQ then CQ: success; twice: Invalid Queue Identifier', async () => {
      expect(f.ctrl.queues().sq.map((q) => q.qid)).toEqual([0, 1, 2, 3])
      const cq3 = await deleteCq(3)
      expect(cq3.status).toBe(AdminCommandStatus.InvalidQueueDeletion)
      expect(cq3.dnr).toBe(true)
      expect((await deleteSq(3)).status).toBe(0)
      expect((await deleteCq(3)).status).toBe(0)
      expect(f.ctrl.queues().sq.map((q) => q.qid)).toEqual([0, 1, 2])
      expect(f.ctrl.queues().cq.map((q) => q.qid)).toEqual([0, 1, 2])
      expect((await deleteSq(3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      expect((await deleteCq(3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      // the admin queues cannot be deleted (NVMe Base 2.0 §5.6, §5.7)
      expect((await deleteSq(0)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      expect((await deleteCq(0)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
    })

    it('Create I/O CQ: QID 0, in use or above the granted count; size 1 or above MQES; invalid vector; not contiguous; base not page aligned', async () => {
      const q = d.ioQueue(2)
      const base = q.cq.iova
      expect((await createCq(0, 128, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      expect((await createCq(1, 128, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier) // in use
      expect((await createCq(4, 128, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier) // 3 granted
      // CAP.MQES 4095: 4096 entries at most; a queue has 2 at least
      expect((await createCq(3, 4097, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueSize)
      expect((await createCq(3, 1, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueSize)
      // 17 MSI-X vectors: 17 is not one
      const iv = await createCq(3, 128, base, 17)
      expect(iv.status).toBe(AdminCommandStatus.InvalidInterruptVector)
      expect(iv.dnr).toBe(true)
      // CAP.CQR 1: PC 0 is Invalid Field (NVMe Base 2.0 §5.4, Figure "Create I/O Completion Queue - Command Dword 11")
      expect((await createCq(3, 128, base, 3, { pc: 0 })).status).toBe(NvmeStatus.InvalidField)
      expect((await createCq(3, 128, base + 512, 3)).status).toBe(NvmeStatus.PrpOffsetInvalid)
      expect(f.ctrl.queues().cq.map((x) => x.qid)).toEqual([0, 1, 2])
    })

    it('Create I/O SQ: on a CQ that does not exist (or the admin CQ): Completion Queue Invalid; QID and size as for CQs', async () => {
      const q = d.ioQueue(2)
      expect((await createCq(3, q.depth, q.cq.iova, q.vector)).status).toBe(0)
      const base = q.sq.iova
      expect((await createSq(3, q.depth, base, 5)).status).toBe(AdminCommandStatus.CompletionQueueInvalid)
      expect((await createSq(3, q.depth, base, 0)).status).toBe(AdminCommandStatus.CompletionQueueInvalid)
      expect((await createSq(1, q.depth, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      expect((await createSq(4, q.depth, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueIdentifier)
      expect((await createSq(3, 4097, base, 3)).status).toBe(AdminCommandStatus.InvalidQueueSize)
      expect((await createSq(3, q.depth, base, 3, { pc: 0 })).status).toBe(NvmeStatus.InvalidField)
      // the queue rebuilt where the driver keeps it: it works again
      expect((await createSq(3, q.depth, base, 3)).status).toBe(0)
      expect(f.ctrl.queues().sq.find((x) => x.qid === 3)).toMatchObject({ cqid: 3, size: q.depth })
      a.bytes.set(random(4096, 77), 0)
      expect((await write(d, 1, 1000, 8, a, 4096, { queue: 2 })).status).toBe(0)
      expect((await read(d, 1, 1000, 8, b, 4096, { queue: 2 })).status).toBe(0)
      expect(same(b.bytes.subarray(0, 4096), a.bytes.subarray(0, 4096))).toBe(true)
    })
  })

  // ---- Get/Set Features (NVMe Base 2.0 §5.15, §5.27) ----

  describe('Get and Set Features', () => {
    it('Number of Queues: what the driver was granted; a second Set after I/O queues exist is Command Sequence Error', async () => {
      const g = await getFeature(d, FeatureId.NumberOfQueues)
      expect(g.status).toBe(0)
      expect(decodeNumberOfQueues(g.cdw0)).toEqual({ nsq: 2, ncq: 2 })
      const s = await setFeature(d, FeatureId.NumberOfQueues, (1 << 16) | 1)
      expect(s.status).toBe(NvmeStatus.CommandSequenceError)
      // 65535 is reserved (NVMe Base 2.0 §5.27.1, Number of Queues): Invalid Field, whenever
      expect((await setFeature(d, FeatureId.NumberOfQueues, 0xffff)).status).toBe(NvmeStatus.InvalidField)
      // the default: what the controller offers (16 pairs here)
      expect(decodeNumberOfQueues((await getFeature(d, FeatureId.NumberOfQueues, FeatureSelect.Default)).cdw0)).toEqual({ nsq: 15, ncq: 15 })
    })

    it('Arbitration: set, current, default; SEL saved of a feature that is not saveable reads the default (§5.15)', async () => {
      const v = (3 << 24) | (2 << 16) | (1 << 8) | 7 // HPW 3, MPW 2, LPW 1, AB 7 (no limit)
      expect((await setFeature(d, FeatureId.Arbitration, v)).status).toBe(0)
      expect((await getFeature(d, FeatureId.Arbitration, FeatureSelect.Current)).cdw0).toBe(v)
      expect((await getFeature(d, FeatureId.Arbitration, FeatureSelect.Default)).cdw0).toBe(0)
      expect((await getFeature(d, FeatureId.Arbitration, FeatureSelect.Saved)).cdw0).toBe(0)
      const cap = await getFeature(d, FeatureId.Arbitration, FeatureSelect.SupportedCapabilities)
      expect(cap.status).toBe(0)
      // changeable; neither saveable nor namespace specific
      expect(cap.cdw0).toBe(FeatureCapability.Changeable)
      // SEL 100b-111b are reserved
      expect((await getFeature(d, FeatureId.Arbitration, 4)).status).toBe(NvmeStatus.InvalidField)
      expect((await setFeature(d, FeatureId.Arbitration, 0)).status).toBe(0)
    })

    it('Save: Feature Identifier Not Saveable; an NSID on a controller-wide feature: Feature Not Namespace Specific', async () => {
      const s = await setFeature(d, FeatureId.Arbitration, 0, { save: true })
      expect(s.status).toBe(AdminCommandStatus.FeatureIdentifierNotSaveable)
      expect(s.dnr).toBe(true)
      expect((await setFeature(d, FeatureId.VolatileWriteCache, 1, { nsid: 1 })).status).toBe(AdminCommandStatus.FeatureNotNamespaceSpecific)
      expect((await setFeature(d, FeatureId.VolatileWriteCache, 1, { nsid: 0xffffffff })).status).toBe(0)
    })

    it('Power Management: PS 0 only (NPSS 0), the workload hint kept; PS 1 is Invalid Field', async () => {
      expect((await setFeature(d, FeatureId.PowerManagement, 2 << 5)).status).toBe(0)
      expect((await getFeature(d, FeatureId.PowerManagement)).cdw0).toBe(2 << 5)
      expect((await setFeature(d, FeatureId.PowerManagement, 1)).status).toBe(NvmeStatus.InvalidField)
      expect((await getFeature(d, FeatureId.PowerManagement)).cdw0).toBe(2 << 5)
      expect((await setFeature(d, FeatureId.PowerManagement, 0)).status).toBe(0)
    })

    it('Interrupt Coalescing and Interrupt Vector Configuration (CD per vector; a vector that does not exist is Invalid Field)', async () => {
      expect((await setFeature(d, FeatureId.InterruptCoalescing, (10 << 8) | 4)).status).toBe(0)
      expect((await getFeature(d, FeatureId.InterruptCoalescing)).cdw0).toBe((10 << 8) | 4)
      expect((await getFeature(d, FeatureId.InterruptCoalescing, FeatureSelect.Default)).cdw0).toBe(0)
      expect((await setFeature(d, FeatureId.InterruptCoalescing, 0)).status).toBe(0)
      expect((await setFeature(d, FeatureId.InterruptVectorConfiguration, (1 << 16) | 2)).status).toBe(0)
      expect((await getFeature(d, FeatureId.InterruptVectorConfiguration, 0, 2)).cdw0).toBe((1 << 16) | 2)
      expect((await getFeature(d, FeatureId.InterruptVectorConfiguration, 0, 1)).cdw0).toBe(1)
      expect((await setFeature(d, FeatureId.InterruptVectorConfiguration, 2)).status).toBe(0)
      expect((await getFeature(d, FeatureId.InterruptVectorConfiguration, 0, 2)).cdw0).toBe(2)
      expect((await setFeature(d, FeatureId.InterruptVectorConfiguration, 17)).status).toBe(NvmeStatus.InvalidField)
      expect((await getFeature(d, FeatureId.InterruptVectorConfiguration, 0, 17)).status).toBe(NvmeStatus.InvalidField)
    })

    it('Asynchronous Event Configuration, Volatile Write Cache, Write Atomicity Normal, Temperature Threshold, Error Recovery', async () => {
      for (const [fid, v, def] of [
        [FeatureId.AsyncEventConfiguration, (1 << 8) | 0x1f, 0],
        [FeatureId.VolatileWriteCache, 0, 1],
        [FeatureId.WriteAtomicityNormal, 1, 0],
        [FeatureId.TemperatureThreshold, 350, 343],
        [FeatureId.ErrorRecovery, 0x10, 0],
      ] as const) {
        expect((await setFeature(d, fid, v)).status, `FID ${fid}`).toBe(0)
        expect((await getFeature(d, fid)).cdw0, `FID ${fid}`).toBe(v)
        expect((await getFeature(d, fid, FeatureSelect.Default)).cdw0, `FID ${fid}`).toBe(def)
        expect((await setFeature(d, fid, def)).status).toBe(0)
      }
      // Temperature Threshold: THSEL 01b is the under-temperature threshold, kept apart from
      // the over one; TMPSEL a sensor the SMART log does not have is Invalid Field
      expect((await setFeature(d, FeatureId.TemperatureThreshold, (1 << 20) | 260)).status).toBe(0)
      expect((await getFeature(d, FeatureId.TemperatureThreshold, 0, 1 << 20)).cdw0 & 0xffff).toBe(260)
      expect((await getFeature(d, FeatureId.TemperatureThreshold)).cdw0).toBe(343)
      expect((await getFeature(d, FeatureId.TemperatureThreshold, FeatureSelect.Default, 1 << 20)).cdw0 & 0xffff).toBe(0)
      expect((await setFeature(d, FeatureId.TemperatureThreshold, (3 << 16) | 300)).status).toBe(NvmeStatus.InvalidField)
      expect((await setFeature(d, FeatureId.TemperatureThreshold, (2 << 20) | 300)).status).toBe(NvmeStatus.InvalidField)
      expect((await setFeature(d, FeatureId.TemperatureThreshold, 1 << 20)).status).toBe(0)
      // the cache off and on again: writes still go through
      expect((await setFeature(d, FeatureId.VolatileWriteCache, 1)).status).toBe(0)
      expect((await getFeature(d, FeatureId.VolatileWriteCache)).cdw0).toBe(1)
    })

    it('Timestamp: set (8 bytes of data) and read back, with the origin "set by Set Features"', async () => {
      const t = 1_800_000_000_000
      const dv = new DataView(a.bytes.buffer, a.bytes.byteOffset, 8)
      a.bytes.fill(0, 0, 8)
      dv.setUint32(0, t % 2 ** 32, true)
      dv.setUint16(4, Math.floor(t / 2 ** 32), true)
      expect((await setFeature(d, FeatureId.Timestamp, 0, { segs: [[a.iova, 8]] })).status).toBe(0)
      b.bytes.fill(0xff, 0, 8)
      expect((await getFeature(d, FeatureId.Timestamp, 0, 0, [[b.iova, 8]])).status).toBe(0)
      const rv = new DataView(b.bytes.buffer, b.bytes.byteOffset, 8)
      const got = rv.getUint16(4, true) * 2 ** 32 + rv.getUint32(0, true)
      expect(got).toBeGreaterThanOrEqual(t)
      expect(got - t).toBeLessThan(5000)
      expect((b.bytes[6]! >> 1) & 7).toBe(1) // Timestamp Origin 001b
    })

    it('Keep Alive Timer with KAS 0 (no keep alive): Invalid Field; the Keep Alive command itself completes (a no-op)', async () => {
      expect((await setFeature(d, FeatureId.KeepAliveTimer, 1000)).status).toBe(NvmeStatus.InvalidField)
      expect((await getFeature(d, FeatureId.KeepAliveTimer)).status).toBe(NvmeStatus.InvalidField)
      // NVMe Base 2.0 §5.18 and the admin command support table: Keep Alive is optional for
      // memory-based controllers; this one implements it (the Commands Supported and Effects log
      // lists it) and with no Keep Alive Timer running (KATO 0: disabled) it restarts nothing
      const k = await admin(d, { opcode: AdminOpcode.KeepAlive })
      expect(k.status).toBe(0)
      const log = await getLog(d, a, LogPageId.CommandsSupportedAndEffects, 4096)
      expect(decodeCommandEffectsLog(log.data).admin[AdminOpcode.KeepAlive]! & 1).toBe(1)
    })

    it('an unknown or unsupported FID is Invalid Field, for Set, Get and SEL supported capabilities', async () => {
      for (const fid of [0x00, FeatureId.LbaRangeType, FeatureId.AutonomousPowerStateTransition, FeatureId.HostMemoryBuffer, FeatureId.HostIdentifier, 0x7c, 0xff]) {
        expect((await setFeature(d, fid, 0)).status, `set FID ${fid}`).toBe(NvmeStatus.InvalidField)
        expect((await getFeature(d, fid)).status, `get FID ${fid}`).toBe(NvmeStatus.InvalidField)
        expect((await getFeature(d, fid, FeatureSelect.SupportedCapabilities)).status, `caps FID ${fid}`).toBe(NvmeStatus.InvalidField)
      }
    })
  })

  // ---- Get Log Page (NVMe Base 2.0 §5.16) ----

  describe('Get Log Page', () => {
    it('Error Information: the newest error first, with its SQID, CID, status (DNR), parameter error location, LBA and NSID', async () => {
      const cid = nextCid(d, 0)
      const c = await read(d, 1, 2047, 2, a, 1024)
      expect(c.status).toBe(NvmeStatus.LbaOutOfRange)
      const cid2 = nextCid(d, 0)
      const c2 = await io(d, { opcode: NvmOpcode.WriteUncorrectable, nsid: 1 })
      expect(c2.status).toBe(NvmeStatus.InvalidOpcode)
      const log = await errorLog(d, a)
      expect(log.length).toBeGreaterThanOrEqual(2)
      const [e2, e1] = log
      expect(e2!.errorCount).toBe(e1!.errorCount + 1)
      expect(e1).toMatchObject({ sqid: 1, cid, lba: 2047, nsid: 1 })
      expect(decodeCqeStatusField(e1!.statusField)).toMatchObject({ status: NvmeStatus.LbaOutOfRange, dnr: true })
      expect(decodeParameterErrorLocation(e1!.parameterErrorLocation)).toEqual({ byte: 40, bit: 0 }) // SLBA
      expect(e2).toMatchObject({ sqid: 1, cid: cid2, nsid: 1 })
      expect(decodeCqeStatusField(e2!.statusField).status).toBe(NvmeStatus.InvalidOpcode)
      expect(decodeParameterErrorLocation(e2!.parameterErrorLocation).byte).toBe(0) // the opcode
      // the error counts run down the log without gaps
      for (let i = 1; i < log.length; i++) expect(log[i]!.errorCount).toBe(log[i - 1]!.errorCount - 1)
    })

    it('Error Information: an admin command error (SQID 0)', async () => {
      expect((await identify(d, idBuf, 0xfe)).c.status).toBe(NvmeStatus.InvalidField)
      const [e] = await errorLog(d, a)
      expect(e).toMatchObject({ sqid: 0 })
      expect(decodeCqeStatusField(e!.statusField).status).toBe(NvmeStatus.InvalidField)
      expect(decodeParameterErrorLocation(e!.parameterErrorLocation).byte).toBe(40) // CNS in CDW10
    })

    it('Firmware Slot Information: slot 1 active, with the firmware revision', async () => {
      const { c, data } = await getLog(d, a, LogPageId.FirmwareSlot, 512)
      expect(c.status).toBe(0)
      const fw = decodeFirmwareSlotLog(data)
      expect(fw.afi & 7).toBe(1)
      expect(fw.frs[0]).toBe('0.1')
      expect(fw.frs.slice(1).every((s) => s === '')).toBe(true)
    })

    it('Commands Supported and Effects: the admin and NVM commands implemented, and which change logical blocks', async () => {
      const { c, data } = await getLog(d, a, LogPageId.CommandsSupportedAndEffects, 4096)
      expect(c.status).toBe(0)
      const l = decodeCommandEffectsLog(data)
      const supported = (t: number[]) => t.flatMap((e, op) => ((e & 1) === 1 ? [op] : []))
      expect(supported(l.admin)).toEqual([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c, 0x18, 0x80])
      expect(supported(l.io)).toEqual([0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x0c])
      for (const op of [NvmOpcode.Write, NvmOpcode.WriteZeroes, NvmOpcode.DatasetManagement]) expect(l.io[op]! & 2, `LBCC of ${op}`).toBe(2)
      for (const op of [NvmOpcode.Read, NvmOpcode.Flush, NvmOpcode.Compare, NvmOpcode.Verify]) expect(l.io[op]! & 2, `LBCC of ${op}`).toBe(0)
      expect(l.admin[AdminOpcode.FormatNvm]! & 2).toBe(2)
    })

    it('offsets: dword aligned, within the page (LPA bit 2); the bytes past the page are zero', async () => {
      const whole = (await getLog(d, a, LogPageId.SmartHealth, 512)).data
      const part = await getLog(d, a, LogPageId.SmartHealth, 64, { offset: 32 })
      expect(part.c.status).toBe(0)
      expect(same(part.data.subarray(0, 32), whole.subarray(32, 64))).toBe(true) // data units read, written
      const tail = await getLog(d, a, LogPageId.FirmwareSlot, 16, { offset: 504 })
      expect(tail.c.status).toBe(0)
      expect(tail.data.every((x) => x === 0)).toBe(true)
      expect((await getLog(d, a, LogPageId.SmartHealth, 64, { offset: 6 })).c.status).toBe(NvmeStatus.InvalidField)
      expect((await getLog(d, a, LogPageId.SmartHealth, 64, { offset: 1024 })).c.status).toBe(NvmeStatus.InvalidField)
      // more than MDTS (128 KiB) is Invalid Field before any data moves
      expect((await getLog(d, a, LogPageId.ErrorInformation, 132 * 1024)).c.status).toBe(NvmeStatus.InvalidField)
    })

    it('an unsupported log page is Invalid Log Page (01h/09h)', async () => {
      for (const lid of [0x00, LogPageId.TelemetryHostInitiated, LogPageId.DeviceSelfTest, LogPageId.ReservationNotification, 0x7f, 0xc0]) {
        const r = await getLog(d, a, lid, 512)
        expect(r.c.status, `LID ${lid}`).toBe(AdminCommandStatus.InvalidLogPage)
        expect(r.c.status).toBe(nvmeStatus(StatusCodeType.CommandSpecific, 0x09))
        expect(r.c.dnr).toBe(true)
      }
    })
  })

  // ---- Abort (§5.1), invalid commands ----

  describe('Abort and invalid commands', () => {
    it('Abort of a command that is not outstanding: success, dword 0 bit 0 set (not aborted)', async () => {
      const c = await admin(d, { opcode: AdminOpcode.Abort, cdw: { 10: (0x1234 << 16) | 1 } })
      expect(c.status).toBe(0)
      expect(c.cdw0 & 1).toBe(1)
      const c0 = await admin(d, { opcode: AdminOpcode.Abort, cdw: { 10: (0x0777 << 16) | 0 } })
      expect([c0.status, c0.cdw0 & 1]).toEqual([0, 1])
    })

    it('admin: an unknown opcode is Invalid Command Opcode; a fused command is Invalid Field (FUSES 0)', async () => {
      for (const op of [0x03, AdminOpcode.FirmwareCommit, AdminOpcode.NamespaceManagement, 0x7e, 0xc0]) {
        const c = await admin(d, { opcode: op })
        expect(c.status, `opcode ${op}`).toBe(NvmeStatus.InvalidOpcode)
        expect(c.dnr).toBe(true)
      }
      expect((await admin(d, { opcode: AdminOpcode.KeepAlive, flags: 1 })).status).toBe(NvmeStatus.InvalidField)
    })
  })

  // ---- NVM I/O (NVM Command Set 1.0 §3) ----

  describe('NVM I/O commands', () => {
    it('Read and Write round trip through PRPs: one page, two, a PRP list, and a first page that starts mid-page', async () => {
      for (const [lba, n] of [
        [0, 8],
        [8, 16],
        [100, 200],
        [2040, 8],
      ] as const) {
        const data = random(n * 512, lba + 1)
        a.bytes.set(data)
        expect((await write(d, 1, lba, n, a, n * 512)).status).toBe(0)
        b.bytes.fill(0, 0, n * 512)
        expect((await read(d, 1, lba, n, b, n * 512)).status).toBe(0)
        expect(same(b.bytes.subarray(0, n * 512), data), `lba ${lba}`).toBe(true)
      }
      // PRP1 at an offset inside its page: the rest through PRP2 and a list
      const data = random(20 * 512, 99)
      a.bytes.set(data, 512)
      expect((await write(d, 1, 500, 20, a, 0, { segs: [[a.iova + 512, 20 * 512]] })).status).toBe(0)
      expect((await read(d, 1, 500, 20, b, 0, { segs: [[b.iova + 1536, 20 * 512]] })).status).toBe(0)
      expect(same(b.bytes.subarray(1536, 1536 + 20 * 512), data)).toBe(true)
      // 4 KiB blocks
      const big = random(32 * 4096, 5)
      a.bytes.set(big)
      expect((await write(d, 2, 900, 32, a, big.length)).status).toBe(0)
      expect((await read(d, 2, 900, 32, b, big.length)).status).toBe(0)
      expect(same(b.bytes.subarray(0, big.length), big)).toBe(true)
    })

    it('Read and Write through SGLs: one data block, a last segment of several, a data block longer than the transfer (SGLS bit 18)', async () => {
      const data = random(16 * 512, 1234)
      a.bytes.set(data)
      expect((await write(d, 1, 300, 16, a, 0, { sgl: true, segs: [[a.iova, data.length]] })).status).toBe(0)
      b.bytes.fill(0, 0, data.length)
      expect((await read(d, 1, 300, 16, b, 0, { sgl: true, segs: [[b.iova, data.length]] })).status).toBe(0)
      expect(same(b.bytes.subarray(0, data.length), data)).toBe(true)
      // three pieces, in a different order in the host buffer
      b.bytes.fill(0, 0, 3 * 8192)
      const pieces: [number, number][] = [
        [b.iova + 16384, 1024],
        [b.iova + 100, 4096],
        [b.iova + 8192, 3072],
      ]
      expect((await read(d, 1, 300, 16, b, 0, { sgl: true, segs: pieces })).status).toBe(0)
      expect(same(b.bytes.subarray(16384, 16384 + 1024), data.subarray(0, 1024))).toBe(true)
      expect(same(b.bytes.subarray(100, 100 + 4096), data.subarray(1024, 5120))).toBe(true)
      expect(same(b.bytes.subarray(8192, 8192 + 3072), data.subarray(5120, 8192))).toBe(true)
      // the descriptor says 16 KiB, the command moves 8 KiB
      b.bytes.fill(0xee, 0, 16384)
      expect((await read(d, 1, 300, 16, b, 0, { sgl: true, segs: [[b.iova, 16384]] })).status).toBe(0)
      expect(same(b.bytes.subarray(0, data.length), data)).toBe(true)
      expect(b.bytes.subarray(data.length, 16384).every((x) => x === 0xee)).toBe(true)
    })

    it('FUA writes; Flush of a namespace and of all (broadcast NSID); Flush of an inactive NSID or NSID 0 is Invalid Namespace or Format', async () => {
      const data = random(4096, 31)
      a.bytes.set(data)
      expect((await write(d, 1, 64, 8, a, 4096, { cdw12: NvmCdw12.FUA })).status).toBe(0)
      expect((await read(d, 1, 64, 8, b, 4096, { cdw12: NvmCdw12.FUA })).status).toBe(0)
      expect(same(b.bytes.subarray(0, 4096), data)).toBe(true)
      expect((await io(d, { opcode: NvmOpcode.Flush, nsid: 1 })).status).toBe(0)
      expect((await io(d, { opcode: NvmOpcode.Flush, nsid: 0xffffffff })).status).toBe(0)
      expect((await io(d, { opcode: NvmOpcode.Flush, nsid: 9 })).status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
      expect((await io(d, { opcode: NvmOpcode.Flush, nsid: 0 })).status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
    })

    it('Write Zeroes: the blocks read back as zeros, the neighbours untouched; with DEAC too', async () => {
      const data = random(12 * 512, 8)
      a.bytes.set(data)
      expect((await write(d, 1, 200, 12, a, data.length)).status).toBe(0)
      expect((await nvm(d, NvmOpcode.WriteZeroes, 1, 201, 4, null, 0)).status).toBe(0)
      expect((await nvm(d, NvmOpcode.WriteZeroes, 1, 206, 4, null, 0, { cdw12: NvmCdw12.DEAC })).status).toBe(0)
      expect((await read(d, 1, 200, 12, b, data.length)).status).toBe(0)
      const got = b.bytes.subarray(0, data.length)
      const want = new Uint8Array(data)
      want.fill(0, 512, 5 * 512)
      want.fill(0, 6 * 512, 10 * 512)
      expect(same(got, want)).toBe(true)
      expect((await nvm(d, NvmOpcode.WriteZeroes, 1, 2047, 2, null, 0)).status).toBe(NvmeStatus.LbaOutOfRange)
    })

    it('Dataset Management: Deallocate of several ranges (reads as zeros, DLFEAT 001b); the hints alone change nothing; a range past the end deallocates nothing', async () => {
      const data = random(40 * 512, 9)
      a.bytes.set(data)
      expect((await write(d, 1, 400, 40, a, data.length)).status).toBe(0)
      const ranges = [
        { slba: 400, nlb: 4 },
        { slba: 410, nlb: 2 },
        { slba: 420, nlb: 0 }, // an empty range
        { slba: 430, nlb: 8 },
      ]
      const dv = new DataView(b.bytes.buffer, b.bytes.byteOffset, 4096)
      const dsm = (rs: { slba: number; nlb: number }[], attr: number) => {
        rs.forEach((r, i) => encodeDsmRange(dv, DSM_RANGE_SIZE * i, { cattr: 0, ...r }))
        return io(d, { opcode: NvmOpcode.DatasetManagement, nsid: 1, cdw: { 10: rs.length - 1, 11: attr }, segs: [[b.iova, rs.length * 16]] })
      }
      // Integral Dataset for Read and Write (bits 0, 1) only: hints
      expect((await dsm(ranges, 0b011)).status).toBe(0)
      expect((await read(d, 1, 400, 40, b, data.length)).status).toBe(0)
      expect(same(b.bytes.subarray(0, data.length), data)).toBe(true)
      // one range past the end: checked before any is deallocated
      const bad = await dsm([{ slba: 400, nlb: 4 }, { slba: 2040, nlb: 16 }], 0b100)
      expect(bad.status).toBe(NvmeStatus.LbaOutOfRange)
      expect((await read(d, 1, 400, 40, b, data.length)).status).toBe(0)
      expect(same(b.bytes.subarray(0, data.length), data)).toBe(true)
      // Deallocate (bit 2)
      expect((await dsm(ranges, 0b100)).status).toBe(0)
      expect((await read(d, 1, 400, 40, b, data.length)).status).toBe(0)
      const want = new Uint8Array(data)
      for (const r of ranges) want.fill(0, (r.slba - 400) * 512, (r.slba - 400 + r.nlb) * 512)
      expect(same(b.bytes.subarray(0, data.length), want)).toBe(true)
    })

    it('Compare: equal data is success; one byte different is Compare Failure (02h/85h)', async () => {
      const data = random(8 * 512, 10)
      a.bytes.set(data)
      expect((await write(d, 1, 600, 8, a, data.length)).status).toBe(0)
      expect((await nvm(d, NvmOpcode.Compare, 1, 600, 8, a, data.length)).status).toBe(0)
      a.bytes[7 * 512 + 3]! ^= 1
      const c = await nvm(d, NvmOpcode.Compare, 1, 600, 8, a, data.length)
      expect(c.status).toBe(NvmeStatus.CompareFailure)
      expect(c.status).toBe(nvmeStatus(StatusCodeType.Media, 0x85))
      expect((await nvm(d, NvmOpcode.Compare, 1, 2047, 2, a, 1024)).status).toBe(NvmeStatus.LbaOutOfRange)
    })

    it('Verify: success without moving data; past the end: LBA Out of Range', async () => {
      expect((await nvm(d, NvmOpcode.Verify, 1, 0, 256, null, 0)).status).toBe(0)
      expect((await nvm(d, NvmOpcode.Verify, 2, 900, 32, null, 0)).status).toBe(0)
      expect((await nvm(d, NvmOpcode.Verify, 1, 2000, 49, null, 0)).status).toBe(NvmeStatus.LbaOutOfRange)
    })

    it('LBA out of range, an inactive NSID, an unknown opcode, a transfer above MDTS', async () => {
      const oor = await read(d, 1, 2047, 2, a, 1024)
      expect(oor.status).toBe(NvmeStatus.LbaOutOfRange)
      expect(oor.dnr).toBe(true)
      expect((await write(d, 1, 2 ** 40, 1, a, 512)).status).toBe(NvmeStatus.LbaOutOfRange)
      // an SLBA near 2^64 (beyond a double's integers): out of range, and the error log still reads
      const huge = await io(d, { opcode: NvmOpcode.Read, nsid: 1, cdw: { 10: 0xfffff000, 11: 0xffffffff, 12: 0 }, segs: [[a.iova, 512]] })
      expect(huge.status).toBe(NvmeStatus.LbaOutOfRange)
      const log = await getLog(d, b, LogPageId.ErrorInformation, 64)
      expect(log.c.status).toBe(0)
      expect(new DataView(log.data.buffer).getBigUint64(16, true)).toBe(0xffff_ffff_ffff_f000n)
      expect((await read(d, 2, 1024, 1, a, 4096)).status).toBe(NvmeStatus.LbaOutOfRange)
      for (const nsid of [0, 4, 9, 0xffffffff]) expect((await read(d, nsid, 0, 1, a, 512)).status, `nsid ${nsid}`).toBe(NvmeStatus.InvalidNamespaceOrFormat)
      for (const op of [NvmOpcode.WriteUncorrectable, NvmOpcode.ReservationRegister, NvmOpcode.Copy, 0x7f, 0x81]) {
        const c = await io(d, { opcode: op, nsid: 1 })
        expect(c.status, `opcode ${op}`).toBe(NvmeStatus.InvalidOpcode)
      }
      // 257 blocks of 512 bytes: above 128 KiB
      expect((await read(d, 1, 0, 257, a, 257 * 512)).status).toBe(NvmeStatus.InvalidField)
      expect((await read(d, 1, 0, 256, a, 256 * 512)).status).toBe(0)
    })
  })

  // ---- end-to-end protection (NVM Command Set 1.0 §5.2) ----

  describe('protection information (type 1, 8 bytes of metadata, extended LBA)', () => {
    const BL = 520

    it('the reference CRC: CRC-16/T10-DIF of "123456789" is D0DBh', () => {
      expect(crc16(new TextEncoder().encode('123456789'))).toBe(0xd0db)
    })

    it('Write with PRACT 1: the controller inserts PI (guard CRC16 of the data, LBAT, ref tag = LBA); read back with PRACT 0', async () => {
      const data = random(4 * 512, 41)
      a.bytes.set(data)
      const w = await write(d, 3, 10, 4, a, data.length, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 10, cdw15: 0x1234 })
      expect(w.status).toBe(0)
      b.bytes.fill(0, 0, 4 * BL)
      expect((await read(d, 3, 10, 4, b, 4 * BL)).status).toBe(0)
      for (let i = 0; i < 4; i++) {
        const blk = b.bytes.subarray(i * BL, (i + 1) * BL)
        expect(same(blk.subarray(0, 512), data.subarray(i * 512, (i + 1) * 512))).toBe(true)
        expect(pi16(blk, 512)).toEqual({ guard: crc16(blk.subarray(0, 512)), app: 0x1234, ref: 10 + i })
      }
      // read with every check: the PI matches
      expect((await read(d, 3, 10, 4, b, 4 * BL, { cdw12: prinfo(PRCHK_ALL), cdw14: 10, cdw15: (0xffff << 16) | 0x1234 })).status).toBe(0)
    })

    it('Read with PRACT 1 and PI-only metadata: the controller checks and strips the PI; the host gets data only', async () => {
      const data = random(4 * 512, 41)
      b.bytes.fill(0xee, 0, 4 * BL)
      expect((await read(d, 3, 10, 4, b, 4 * 512, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 10, cdw15: (0xffff << 16) | 0x1234 })).status).toBe(0)
      expect(same(b.bytes.subarray(0, 4 * 512), data)).toBe(true)
      expect(b.bytes.subarray(4 * 512, 4 * BL).every((x) => x === 0xee)).toBe(true)
    })

    it('Write with PRACT 0: the host PI is checked before the data is written: guard (02h/82h), ref tag (02h/84h), app tag under LBATM (02h/83h)', async () => {
      const before = random(2 * 512, 50)
      a.bytes.set(piBlocks(before, 512, 8, 20, 0x55aa))
      expect((await write(d, 3, 20, 2, a, 2 * BL, { cdw12: prinfo(PRCHK_ALL), cdw14: 20, cdw15: (0xffff << 16) | 0x55aa })).status).toBe(0)
      const good = piBlocks(random(2 * 512, 51), 512, 8, 20, 0x55aa)
      const attempt = async (mutate: (x: Uint8Array) => void, p: number, cdw15: number) => {
        const x = new Uint8Array(good)
        mutate(x)
        a.bytes.set(x)
        return (await write(d, 3, 20, 2, a, 2 * BL, { cdw12: prinfo(p), cdw14: 20, cdw15 })).status
      }
      // a bad guard in the second block
      expect(await attempt((x) => (x[BL + 512]! ^= 0x40), PRCHK_ALL, (0xffff << 16) | 0x55aa)).toBe(NvmeStatus.GuardCheckError)
      expect(await attempt((x) => (x[BL + 512]! ^= 0x40), Prinfo.PRCHK_GUARD, 0)).toBe(nvmeStatus(StatusCodeType.Media, 0x82))
      // a ref tag off by one
      expect(await attempt((x) => setPi16(x, BL + 512, { ...pi16(x, BL + 512), ref: 22 }), Prinfo.PRCHK_REF, 0)).toBe(NvmeStatus.RefTagCheckError)
      // the app tag: 55AAh stored, 66AAh expected; all bits compared, then the low byte only
      expect(await attempt(() => {}, Prinfo.PRCHK_APP, (0xffff << 16) | 0x66aa)).toBe(NvmeStatus.AppTagCheckError)
      expect(await attempt(() => {}, Prinfo.PRCHK_APP, (0x00ff << 16) | 0x66aa)).toBe(0)
      // the failed writes wrote nothing; the last one did
      expect((await read(d, 3, 20, 2, b, 2 * BL)).status).toBe(0)
      expect(same(b.bytes.subarray(0, 2 * BL), good)).toBe(true)
    })

    it('Type 1 with the ref tag checked: ILBRT must be the LBA (Invalid Protection Information, 01h/81h)', async () => {
      a.bytes.set(random(512, 60))
      const c = await write(d, 3, 30, 1, a, 512, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 31 })
      expect(c.status).toBe(NvmCommandStatus.InvalidProtectionInformation)
      expect((await read(d, 3, 30, 1, b, BL, { cdw12: prinfo(Prinfo.PRCHK_REF), cdw14: 0 })).status).toBe(NvmCommandStatus.InvalidProtectionInformation)
      // the ref tag unchecked: ILBRT is not looked at
      expect((await write(d, 3, 30, 1, a, 512, { cdw12: prinfo(Prinfo.PRACT | Prinfo.PRCHK_GUARD), cdw14: 31 })).status).toBe(0)
    })

    it('a corrupted guard: Verify and Read with PRCHK guard fail (02h/82h); without PRCHK they succeed', async () => {
      const blocks = piBlocks(random(2 * 512, 70), 512, 8, 40, 0)
      blocks[100]! ^= 0xff // the data no longer matches its guard
      a.bytes.set(blocks)
      expect((await write(d, 3, 40, 2, a, 2 * BL)).status).toBe(0) // PRCHK 0: stored as sent
      expect((await nvm(d, NvmOpcode.Verify, 3, 40, 2, null, 0, { cdw12: prinfo(Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
      expect((await nvm(d, NvmOpcode.Verify, 3, 41, 1, null, 0, { cdw12: prinfo(PRCHK_ALL), cdw14: 41 })).status).toBe(0)
      // type 1: Verify's expected initial ref tag must be the SLBA's low 32 bits, as Read's
      expect((await nvm(d, NvmOpcode.Verify, 3, 41, 1, null, 0, { cdw12: prinfo(Prinfo.PRCHK_REF), cdw14: 40 })).status).toBe(NvmCommandStatus.InvalidProtectionInformation)
      expect((await nvm(d, NvmOpcode.Verify, 3, 40, 2, null, 0)).status).toBe(0)
      expect((await read(d, 3, 40, 2, b, 2 * BL, { cdw12: prinfo(Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
      expect((await read(d, 3, 40, 1, b, 512, { cdw12: prinfo(Prinfo.PRACT | Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
      expect((await read(d, 3, 40, 2, b, 2 * BL)).status).toBe(0)
      expect(same(b.bytes.subarray(0, 2 * BL), blocks)).toBe(true)
    })

    it('Compare: PRACT 0 compares data and PI; PRACT 1 (PI-only metadata) compares the data the host sends, the stored PI checked per PRCHK', async () => {
      // blocks 10-13 hold random(2048, 41) with the PI the controller generated (app tag 1234h)
      const data = random(4 * 512, 41)
      expect((await read(d, 3, 10, 4, b, 4 * BL)).status).toBe(0)
      const ext = b.bytes.slice(0, 4 * BL)
      a.bytes.set(ext)
      expect((await nvm(d, NvmOpcode.Compare, 3, 10, 4, a, 4 * BL)).status).toBe(0)
      a.bytes[3 * BL + 515]! ^= 1 // a ref tag byte
      expect((await nvm(d, NvmOpcode.Compare, 3, 10, 4, a, 4 * BL)).status).toBe(NvmeStatus.CompareFailure)
      a.bytes.set(data)
      expect((await nvm(d, NvmOpcode.Compare, 3, 10, 4, a, 4 * 512, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 10, cdw15: 0xffff1234 })).status).toBe(0)
      a.bytes[2 * 512 + 7]! ^= 1
      expect((await nvm(d, NvmOpcode.Compare, 3, 10, 4, a, 4 * 512, { cdw12: prinfo(Prinfo.PRACT) })).status).toBe(NvmeStatus.CompareFailure)
      // blocks 40-41: the first block's data does not match its guard
      expect((await read(d, 3, 40, 2, b, 2 * BL)).status).toBe(0)
      for (let i = 0; i < 2; i++) a.bytes.set(b.bytes.subarray(i * BL, i * BL + 512), i * 512)
      expect((await nvm(d, NvmOpcode.Compare, 3, 40, 2, a, 1024, { cdw12: prinfo(Prinfo.PRACT) })).status).toBe(0)
      expect((await nvm(d, NvmOpcode.Compare, 3, 40, 2, a, 1024, { cdw12: prinfo(Prinfo.PRACT | Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
    })

    it('blocks never written carry app tag FFFFh: every check is off for them (NVM Command Set 1.0 §5.2, End-to-end Data Protection)', async () => {
      expect((await read(d, 3, 500, 4, b, 4 * BL, { cdw12: prinfo(PRCHK_ALL), cdw14: 500, cdw15: 0xffff0000 })).status).toBe(0)
      expect(b.bytes.subarray(0, 512).every((x) => x === 0)).toBe(true)
      expect(pi16(b.bytes, 512)).toEqual({ guard: 0xffff, app: 0xffff, ref: 0xffffffff })
    })
  })
})

// ---------------------------------------------------------------------------------------------

describe('controller core: Asynchronous Event Requests and the changed namespace list', () => {
  let f: Fixture
  let d: NvmeHostDriver
  let buf: HostBuffer
  const done: (Completion | null)[] = []
  const aer = () => {
    const i = done.length
    done.push(null)
    void admin(d, { opcode: AdminOpcode.AsyncEventRequest }).then((c) => (done[i] = c))
    return i
  }
  const completed = () => done.flatMap((c, i) => (c === null ? [] : [i]))
  const settle = async () => {
    for (let i = 0; i < 5; i++) await tick()
  }
  const changed = async (rae: boolean) => {
    const r = await getLog(d, buf, LogPageId.ChangedNamespaceList, 4096, { rae })
    expect(r.c.status).toBe(0)
    return decodeChangedNamespaceList(r.data)
  }
  let n = 0
  const attach = (nsid: number) => {
    const name = `aer-ns${nsid}-${n++}`
    createMallocBdev(f.bdevs, { name, blockCount: 64 })
    f.ctrl.core.addNamespace({ nsid, bdev: name })
  }

  beforeAll(async () => {
    f = await fixture({ namespaces: [{ blocks: 256 }] })
    d = await host(f)
    buf = d.allocBuffer(4096)
  })
  afterAll(async () => {
    d.stop()
    await f.close()
  })

  it('AERL + 1 (4) requests may be outstanding; the next is Asynchronous Event Request Limit Exceeded', async () => {
    for (let i = 0; i < 4; i++) aer()
    await settle()
    expect(completed()).toEqual([])
    const fifth = await admin(d, { opcode: AdminOpcode.AsyncEventRequest })
    expect(fifth.status).toBe(AdminCommandStatus.AsyncEventRequestLimitExceeded)
    expect(fifth.dnr).toBe(true)
    await settle()
    expect(completed()).toEqual([])
  })

  it('with Namespace Attribute Notices off (AEC bit 8 clear), a new namespace is logged but not reported', async () => {
    attach(2)
    await settle()
    expect(completed()).toEqual([])
    expect((await changed(false)).nsids).toEqual([2])
    expect((await changed(false)).nsids).toEqual([])
  })

  it('Namespace Attribute Changed completes an AER (notice, info 00h, log 04h); the namespace is in the Changed Namespace List', async () => {
    expect((await setFeature(d, FeatureId.AsyncEventConfiguration, 1 << 8)).status).toBe(0)
    attach(3)
    await settle()
    expect(completed()).toEqual([0])
    expect(done[0]!.status).toBe(0)
    expect(decodeAsyncEvent(done[0]!.cdw0)).toEqual({ type: AsyncEventType.Notice, info: AsyncEventNotice.NamespaceAttributeChanged, lid: LogPageId.ChangedNamespaceList })
    const list = decodeNamespaceList((await identify(d, buf, Cns.ActiveNamespaceList)).data)
    expect(list).toEqual([1, 2, 3])
  })

  it('further notices are masked until log 04h is read without RAE; what changed meanwhile is in the log, not in a second notice', async () => {
    attach(4)
    await settle()
    expect(completed()).toEqual([0]) // masked
    // RAE 1: the list and the event are retained
    expect((await changed(true)).nsids).toEqual([3, 4])
    await settle()
    expect(completed()).toEqual([0])
    // RAE 0: read and cleared; the change to 4 happened while masked and is in this read
    expect((await changed(false)).nsids).toEqual([3, 4])
    await settle()
    expect(completed()).toEqual([0])
    expect((await changed(false)).nsids).toEqual([])
    // the next change is reported again
    f.ctrl.core.removeNamespace(2)
    await settle()
    expect(completed()).toEqual([0, 1])
    expect(decodeAsyncEvent(done[1]!.cdw0).lid).toBe(LogPageId.ChangedNamespaceList)
    expect((await changed(false)).nsids).toEqual([2])
    expect(decodeNamespaceList((await identify(d, buf, Cns.ActiveNamespaceList)).data)).toEqual([1, 3, 4])
  })

  it('a doorbell write to a queue that does not exist: an error event (type 0, info 00h, log 01h); masked until the error log is read', async () => {
    d.bar.write(0x1000 + 8 * 9, 4, 1) // SQ 9 tail: no such queue
    await settle()
    expect(completed()).toEqual([0, 1, 2])
    expect(decodeAsyncEvent(done[2]!.cdw0)).toEqual({ type: AsyncEventType.Error, info: AsyncEventError.WriteToInvalidDoorbellRegister, lid: LogPageId.ErrorInformation })
    // an invalid value (SQ 1 tail past its 128 entries) waits: error events are masked
    d.bar.write(0x1000 + 8 * 1, 4, 200)
    await settle()
    expect(completed()).toEqual([0, 1, 2])
    // reading the error log with RAE set keeps the mask; without, clears it: the pending event is reported
    await errorLog(d, buf, 64, true)
    await settle()
    expect(completed()).toEqual([0, 1, 2])
    await errorLog(d, buf, 64, false)
    await settle()
    expect(completed()).toEqual([0, 1, 2, 3])
    expect(decodeAsyncEvent(done[3]!.cdw0)).toEqual({ type: AsyncEventType.Error, info: AsyncEventError.InvalidDoorbellWriteValue, lid: LogPageId.ErrorInformation })
    // the queue is as it was: I/O still works
    const io1 = d.allocBuffer(4096)
    expect((await d.read(1, 0, 8, io1)).status).toBe(0)
  })

  it('Abort of an outstanding AER: it completes with Command Abort Requested, the Abort with dword 0 bit 0 clear', async () => {
    const i = aer()
    await settle()
    expect(done[i]).toBe(null)
    const outstanding = done.flatMap((c, k) => (c === null ? [k] : []))
    expect(outstanding).toEqual([i]) // the four of the first test completed above
    let aborted = 0
    for (let cid = 0; cid < 32; cid++) {
      const c = await admin(d, { opcode: AdminOpcode.Abort, cdw: { 10: (cid << 16) | 0 } })
      expect(c.status).toBe(0)
      if ((c.cdw0 & 1) === 0) aborted++
    }
    await settle()
    expect(aborted).toBe(outstanding.length)
    for (const k of outstanding) expect(done[k]!.status).toBe(NvmeStatus.AbortRequested)
  })
})

// ---------------------------------------------------------------------------------------------

describe('controller core: SMART / Health counters', () => {
  let f: Fixture
  let d: NvmeHostDriver
  let a: HostBuffer
  let logBuf: HostBuffer
  beforeAll(async () => {
    f = await fixture({ namespaces: [{ blocks: 4096 }] })
    d = await host(f)
    a = d.allocBuffer(128 * 1024)
    logBuf = d.allocBuffer(4096)
  })
  afterAll(async () => {
    d.stop()
    await f.close()
  })
  const smart = async () => {
    const r = await getLog(d, logBuf, LogPageId.SmartHealth, 512)
    expect(r.c.status).toBe(0)
    return decodeSmartLog(r.data)
  }

  it('a fresh controller: nothing read or written; temperatures, spare, one power cycle', async () => {
    const s = await smart()
    expect([s.dataUnitsRead, s.dataUnitsWritten, s.hostReadCommands, s.hostWriteCommands]).toEqual([0n, 0n, 0n, 0n])
    expect(s).toMatchObject({ criticalWarning: 0, compositeTemperature: 323, availableSpare: 100, availableSpareThreshold: 10, percentageUsed: 0, powerCycles: 1n, mediaErrors: 0n })
    expect(s.temperatureSensors[0]).toBe(323)
  })

  it('data units (thousands of 512 bytes, rounded up) and host commands after writes and reads (§5.16.1.3)', async () => {
    for (let i = 0; i < 4; i++) expect((await d.write(1, 250 * i, 250, { ...a, length: 250 * 512 })).status).toBe(0)
    let s = await smart()
    expect([s.dataUnitsWritten, s.hostWriteCommands]).toEqual([1n, 4n]) // 1000 x 512 bytes
    expect((await d.write(1, 1000, 1, { ...a, length: 512 })).status).toBe(0)
    s = await smart()
    expect([s.dataUnitsWritten, s.hostWriteCommands]).toEqual([2n, 5n]) // 1001: rounded up
    for (let i = 0; i < 4; i++) expect((await d.read(1, 250 * i, 250, { ...a, length: 250 * 512 })).status).toBe(0)
    s = await smart()
    expect([s.dataUnitsRead, s.hostReadCommands]).toEqual([1n, 4n])
    // a command that fails its checks moves nothing and is not counted
    expect((await d.read(1, 4095, 2, { ...a, length: 1024 })).status).toBe(NvmeStatus.LbaOutOfRange)
    s = await smart()
    expect([s.dataUnitsRead, s.hostReadCommands]).toEqual([1n, 4n])
  })

  it('Compare and Verify are SMART host read commands, their blocks data units read (NVM Command Set 1.0, SMART / Health Information)', async () => {
    expect((await nvm(d, NvmOpcode.Compare, 1, 0, 1, a, 512)).status).toBe(0)
    let s = await smart()
    expect([s.dataUnitsRead, s.hostReadCommands]).toEqual([2n, 5n])
    expect((await nvm(d, NvmOpcode.Verify, 1, 0, 8, null, 0)).status).toBe(0)
    s = await smart()
    expect(s.hostReadCommands).toBe(6n)
    // Write Zeroes and Dataset Management are not host write commands
    expect((await nvm(d, NvmOpcode.WriteZeroes, 1, 0, 8, null, 0)).status).toBe(0)
    s = await smart()
    expect([s.dataUnitsWritten, s.hostWriteCommands]).toEqual([2n, 5n])
  })

  it('errors: Number of Error Information Log Entries, and media errors (SCT 2) counted', async () => {
    const before = await smart()
    a.bytes[0]! ^= 0xff
    expect((await nvm(d, NvmOpcode.Compare, 1, 0, 1, a, 512)).status).toBe(NvmeStatus.CompareFailure)
    expect((await d.read(1, 5000, 1, { ...a, length: 512 })).status).toBe(NvmeStatus.LbaOutOfRange)
    const s = await smart()
    expect(s.errorLogEntries - before.errorLogEntries).toBe(2n)
    expect(s.mediaErrors - before.mediaErrors).toBe(1n)
  })
})

// ---------------------------------------------------------------------------------------------

describe('controller core: options (CNTLID, strings, queues granted, keep alive, error log size)', () => {
  let f: Fixture
  let d: NvmeHostDriver
  let buf: HostBuffer
  beforeAll(async () => {
    f = await fixture({ controller: { cntlid: 7, serial: 'SN-42', model: 'a model', firmware: 'fw2', kas: 1, errorLogEntries: 4, aerl: 0, mdts: 3 } })
    // 32 queue pairs asked, 16 offered
    d = await host(f, { ioQueues: 32 })
    buf = d.allocBuffer(16384)
  })
  afterAll(async () => {
    d.stop()
    await f.close()
  })

  it('Identify Controller reports the options: CNTLID, SN, MN, FR, KAS, ELPE, AERL, MDTS', async () => {
    const id = decodeIdentifyController((await identify(d, buf, Cns.Controller)).data)
    expect(id).toMatchObject({ cntlid: 7, sn: 'SN-42', mn: 'a model', fr: 'fw2', kas: 1, elpe: 3, aerl: 0, mdts: 3 })
    expect(d.maxTransfer).toBe(32768)
  })

  it('Number of Queues: the controller grants what it has (16 pairs of the 32 asked); the driver built 16', async () => {
    expect(d.ioQueues).toBe(16)
    expect(decodeNumberOfQueues((await getFeature(d, FeatureId.NumberOfQueues)).cdw0)).toEqual({ nsq: 15, ncq: 15 })
    expect(f.ctrl.queues().sq.length).toBe(17)
    const q16 = d.allocBuffer(4096)
    expect((await d.write(1, 0, 8, q16, 15)).status).toBe(0)
  })

  it('Keep Alive Timer with KAS 1 (100 ms): rounded up to the granularity; 0 disables it', async () => {
    expect((await setFeature(d, FeatureId.KeepAliveTimer, 150)).status).toBe(0)
    expect((await getFeature(d, FeatureId.KeepAliveTimer)).cdw0).toBe(200)
    expect((await admin(d, { opcode: AdminOpcode.KeepAlive })).status).toBe(0)
    expect((await setFeature(d, FeatureId.KeepAliveTimer, 0)).status).toBe(0)
    expect((await getFeature(d, FeatureId.KeepAliveTimer)).cdw0).toBe(0)
    expect((await getFeature(d, FeatureId.KeepAliveTimer, FeatureSelect.Default)).cdw0).toBe(0)
  })

  it('the Error Information log keeps ELPE + 1 (4) entries, newest first; MDTS bounds the log page too', async () => {
    for (let i = 0; i < 6; i++) expect((await identify(d, buf, 0xf0 + i)).c.status).toBe(NvmeStatus.InvalidField)
    const log = await errorLog(d, buf, 4)
    expect(log.length).toBe(4)
    for (let i = 1; i < 4; i++) expect(log[i]!.errorCount).toBe(log[0]!.errorCount - i)
    // 64 entries asked (4096 bytes): the 4 kept, then zeros
    const whole = await getLog(d, buf, LogPageId.ErrorInformation, 4096)
    expect(whole.c.status).toBe(0)
    expect(decodeErrorLogEntry(whole.data, 3 * 64).errorCount).toBe(log[3]!.errorCount)
    expect(whole.data.subarray(4 * 64).every((x) => x === 0)).toBe(true)
    expect((await getLog(d, buf, LogPageId.ErrorInformation, 36 * 1024)).c.status).toBe(NvmeStatus.InvalidField)
  })

  it('AERL 0: one request outstanding, the second is AER Limit Exceeded', async () => {
    void admin(d, { opcode: AdminOpcode.AsyncEventRequest })
    await tick()
    expect((await admin(d, { opcode: AdminOpcode.AsyncEventRequest })).status).toBe(AdminCommandStatus.AsyncEventRequestLimitExceeded)
  })
})

// ---------------------------------------------------------------------------------------------

describe('controller core: Format NVM', () => {
  let f: Fixture
  let d: NvmeHostDriver
  let idBuf: HostBuffer
  let a: HostBuffer
  let b: HostBuffer
  const CAPACITY = 512 * 1024
  /** formats offered by namespace 2 */
  const FORMATS = [
    { dataSize: 512, mdSize: 0 },
    { dataSize: 512, mdSize: 8 },
    { dataSize: 512, mdSize: 16 },
    { dataSize: 512, mdSize: 64 },
    { dataSize: 4096, mdSize: 0 },
    { dataSize: 4096, mdSize: 8, rp: 1 as const },
  ]
  const requests: FormatRequest[] = []
  let gate: Promise<void> | null = null
  /** a format callback: the old RAM disk goes, a new one of the same capacity in the new format comes */
  function formatter(prefix: string, first: string) {
    let current = first
    let gen = 0
    return async (r: FormatRequest) => {
      requests.push(r)
      if (gate !== null) await gate
      await f.bdevs.unregister(current)
      current = `${prefix}-${++gen}`
      createMallocBdev(f.bdevs, { name: current, blockCount: CAPACITY / r.format.dataSize, blockSize: r.format.dataSize, mdSize: r.format.mdSize, ...(r.pi.type !== 0 && { pi: r.pi }) })
      return current
    }
  }

  beforeAll(async () => {
    f = await fixture({ namespaces: [{ blocks: 256 }] })
    createMallocBdev(f.bdevs, { name: 'fmt2-0', blockCount: CAPACITY / 512, blockSize: 512 })
    f.ctrl.core.addNamespace({ nsid: 2, bdev: 'fmt2-0', formats: FORMATS, format: formatter('fmt2', 'fmt2-0') })
    // a 64b guard namespace (4 KiB data blocks, 16-byte PI)
    createMallocBdev(f.bdevs, { name: 'fmt3-0', blockCount: 64, blockSize: 4096, mdSize: 16, pi: { type: 1, format: 64 } })
    f.ctrl.core.addNamespace({
      nsid: 3,
      bdev: 'fmt3-0',
      formats: [
        { dataSize: 4096, mdSize: 16 },
        { dataSize: 4096, mdSize: 8 },
        { dataSize: 4096, mdSize: 64 },
      ],
      format: formatter('fmt3', 'fmt3-0'),
    })
    d = await host(f)
    idBuf = d.allocBuffer(4096)
    a = d.allocBuffer(64 * 1024)
    b = d.allocBuffer(64 * 1024)
  })
  afterAll(async () => {
    d.stop()
    await f.close()
  })

  const idns = async (nsid: number) => {
    const r = await identify(d, idBuf, Cns.Namespace, nsid)
    expect(r.c.status).toBe(0)
    return decodeIdentifyNamespace(r.data)
  }

  it('Identify Namespace lists the formats (NLBAF, LBADS, MS, RP); DPC: types 1-3, PI first or last; MC extended LBA', async () => {
    const ns = await idns(2)
    expect(ns.nlbaf).toBe(5)
    expect(ns.lbaf).toEqual([
      { ms: 0, lbads: 9, rp: 0 },
      { ms: 8, lbads: 9, rp: 0 },
      { ms: 16, lbads: 9, rp: 0 },
      { ms: 64, lbads: 9, rp: 0 },
      { ms: 0, lbads: 12, rp: 0 },
      { ms: 8, lbads: 12, rp: 1 },
    ])
    expect(flbasFormatIndex(ns.flbas)).toBe(0)
    expect(ns.dpc).toBe(0b11111)
    expect(ns.mc).toBe(1)
    expect(ns.dps).toBe(0)
    expect(ns.nsze).toBe(1024)
  })

  it('LBAF 1 (512 + 8) with PI type 1: Identify changes (FLBAS, DPS), the data is gone, PRACT inserts PI', async () => {
    a.bytes.set(random(8 * 512, 3))
    expect((await write(d, 2, 0, 8, a, 8 * 512)).status).toBe(0)
    const ids = decodeNamespaceIdDescriptors((await identify(d, idBuf, Cns.NamespaceIdDescriptorList, 2)).data)
    const c = await formatNvm(d, 2, formatCdw10(1, { pi: 1, ses: 1 }))
    expect(c.status).toBe(0)
    expect(requests.at(-1)).toMatchObject({ index: 1, format: { dataSize: 512, mdSize: 8 }, pi: { type: 1, location: 'last' }, secureErase: 1 })
    const ns = await idns(2)
    expect(flbasFormatIndex(ns.flbas)).toBe(1)
    expect(flbasExtended(ns.flbas)).toBe(true)
    expect([dpsPiType(ns.dps), dpsPiFirst(ns.dps)]).toEqual([1, false])
    expect(ns.nsze).toBe(1024)
    // the identifiers stay (NVMe Base 2.0, Identify Namespace NGUID and EUI64: fixed for the life of the namespace, preserved across a format)
    const after = decodeNamespaceIdDescriptors((await identify(d, idBuf, Cns.NamespaceIdDescriptorList, 2)).data)
    expect(after).toEqual(ids)
    // the data is gone: zeros, and the PI of a block never written
    b.bytes.fill(0xee, 0, 8 * 520)
    expect((await read(d, 2, 0, 8, b, 8 * 520)).status).toBe(0)
    for (let i = 0; i < 8; i++) {
      expect(b.bytes.subarray(i * 520, i * 520 + 512).every((x) => x === 0)).toBe(true)
      expect(pi16(b.bytes, i * 520 + 512)).toEqual({ guard: 0xffff, app: 0xffff, ref: 0xffffffff })
    }
    const data = random(2 * 512, 4)
    a.bytes.set(data)
    expect((await write(d, 2, 5, 2, a, 1024, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 5 })).status).toBe(0)
    expect((await read(d, 2, 5, 2, b, 2 * 520, { cdw12: prinfo(PRCHK_ALL), cdw14: 5 })).status).toBe(0)
    expect(pi16(b.bytes, 520 + 512)).toEqual({ guard: crc16(data.subarray(512)), app: 0, ref: 6 })
  })

  it('LBAF 2 (512 + 16) with PI type 2 first in the metadata: the guard covers the data only, ref tags from EILBRT', async () => {
    expect((await formatNvm(d, 2, formatCdw10(2, { pi: 2, pil: 1 }))).status).toBe(0)
    const ns = await idns(2)
    expect(flbasFormatIndex(ns.flbas)).toBe(2)
    expect([dpsPiType(ns.dps), dpsPiFirst(ns.dps)]).toEqual([2, true])
    // PRACT with metadata beyond the PI: the host sends the metadata, the controller fills the PI into it
    const blocks = random(3 * 528, 5)
    a.bytes.set(blocks)
    expect((await write(d, 2, 7, 3, a, 3 * 528, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 0x1000, cdw15: 0xbeef })).status).toBe(0)
    expect((await read(d, 2, 7, 3, b, 3 * 528)).status).toBe(0)
    for (let i = 0; i < 3; i++) {
      const got = b.bytes.subarray(i * 528, (i + 1) * 528)
      const sent = blocks.subarray(i * 528, (i + 1) * 528)
      expect(same(got.subarray(0, 512), sent.subarray(0, 512))).toBe(true)
      expect(pi16(got, 512)).toEqual({ guard: crc16(sent.subarray(0, 512)), app: 0xbeef, ref: 0x1000 + i })
      expect(same(got.subarray(520), sent.subarray(520))).toBe(true) // the rest of the metadata as sent
    }
    expect((await read(d, 2, 7, 3, b, 3 * 528, { cdw12: prinfo(PRCHK_ALL), cdw14: 0x1000, cdw15: 0xffffbeef })).status).toBe(0)
    // PRACT on a read with more metadata than the PI: checked, not stripped (the host gets all 528 bytes)
    const plain = b.bytes.slice(0, 3 * 528)
    b.bytes.fill(0, 0, 3 * 528)
    expect((await read(d, 2, 7, 3, b, 3 * 528, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 0x1000, cdw15: 0xffffbeef })).status).toBe(0)
    expect(same(b.bytes.subarray(0, 3 * 528), plain)).toBe(true)
    // type 2: the ref tag checked against EILBRT, not the LBA
    expect((await read(d, 2, 7, 3, b, 3 * 528, { cdw12: prinfo(Prinfo.PRCHK_REF), cdw14: 7 })).status).toBe(NvmeStatus.RefTagCheckError)
  })

  it('LBAF 3 (512 + 64) with PI type 3 last: the guard covers the data and the 56 metadata bytes before the PI', async () => {
    expect((await formatNvm(d, 2, formatCdw10(3, { pi: 3 }))).status).toBe(0)
    const ns = await idns(2)
    expect(flbasFormatIndex(ns.flbas)).toBe(3)
    expect([dpsPiType(ns.dps), dpsPiFirst(ns.dps)]).toEqual([3, false])
    const blocks = random(2 * 576, 6)
    a.bytes.set(blocks)
    expect((await write(d, 2, 0, 2, a, 2 * 576, { cdw12: prinfo(Prinfo.PRACT | Prinfo.PRCHK_GUARD | Prinfo.PRCHK_APP), cdw14: 0xabc, cdw15: 0x0042 })).status).toBe(0)
    expect((await read(d, 2, 0, 2, b, 2 * 576)).status).toBe(0)
    for (let i = 0; i < 2; i++) {
      const got = b.bytes.subarray(i * 576, (i + 1) * 576)
      expect(same(got.subarray(0, 568), blocks.subarray(i * 576, i * 576 + 568))).toBe(true)
      const p = pi16(got, 568)
      expect(p.guard).toBe(crc16(got.subarray(0, 568)))
      expect(p.app).toBe(0x42)
    }
    expect((await read(d, 2, 0, 2, b, 2 * 576, { cdw12: prinfo(Prinfo.PRCHK_GUARD | Prinfo.PRCHK_APP), cdw15: 0xffff0042 })).status).toBe(0)
    b.bytes[10]! ^= 1
    expect((await write(d, 2, 0, 2, b, 2 * 576, { cdw12: prinfo(Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
  })

  it('LBAF 2 without PI: the 16 metadata bytes are the host\'s, carried as they are', async () => {
    expect((await formatNvm(d, 2, formatCdw10(2, { pi: 0 }))).status).toBe(0)
    const ns = await idns(2)
    expect([flbasFormatIndex(ns.flbas), ns.dps]).toEqual([2, 0])
    const blocks = random(4 * 528, 7)
    a.bytes.set(blocks)
    expect((await write(d, 2, 100, 4, a, 4 * 528)).status).toBe(0)
    expect((await read(d, 2, 100, 4, b, 4 * 528)).status).toBe(0)
    expect(same(b.bytes.subarray(0, 4 * 528), blocks)).toBe(true)
  })

  it('LBAF 4 (4 KiB, no metadata) and LBAF 5 (4 KiB + 8, RP 1): NSZE follows the block size', async () => {
    expect((await formatNvm(d, 2, formatCdw10(4, { mset: 0 }))).status).toBe(0)
    let ns = await idns(2)
    expect([flbasFormatIndex(ns.flbas), flbasExtended(ns.flbas), ns.nsze]).toEqual([4, false, 128])
    const data = random(2 * 4096, 8)
    a.bytes.set(data)
    expect((await write(d, 2, 127, 1, a, 4096)).status).toBe(0)
    expect((await read(d, 2, 127, 1, b, 4096)).status).toBe(0)
    expect(same(b.bytes.subarray(0, 4096), data.subarray(0, 4096))).toBe(true)
    expect((await read(d, 2, 128, 1, b, 4096)).status).toBe(NvmeStatus.LbaOutOfRange)
    expect((await formatNvm(d, 2, formatCdw10(5, { pi: 1 }))).status).toBe(0)
    ns = await idns(2)
    expect([flbasFormatIndex(ns.flbas), ns.nsze, dpsPiType(ns.dps)]).toEqual([5, 128, 1])
    expect((await write(d, 2, 1, 1, a, 4096, { cdw12: prinfo(Prinfo.PRACT) })).status).toBe(0)
    expect((await read(d, 2, 1, 1, b, 4096 + 8)).status).toBe(0)
    expect(pi16(b.bytes, 4096)).toEqual({ guard: crc16(data.subarray(0, 4096)), app: 0, ref: 1 })
  })

  it('an LBAF index the namespace does not have is Invalid Format (01h/0Ah); so is PI without room for it in the metadata', async () => {
    for (const lbaf of [6, 15, 16, 63]) {
      const c = await formatNvm(d, 2, formatCdw10(lbaf))
      expect(c.status, `LBAF ${lbaf}`).toBe(AdminCommandStatus.InvalidFormat)
      expect(c.dnr).toBe(true)
    }
    expect((await formatNvm(d, 2, formatCdw10(0, { pi: 1 }))).status).toBe(AdminCommandStatus.InvalidFormat)
    expect((await formatNvm(d, 2, formatCdw10(4, { pi: 3 }))).status).toBe(AdminCommandStatus.InvalidFormat)
    // a separate metadata buffer (MSET 0) is not supported (MC bit 1 clear)
    expect((await formatNvm(d, 2, formatCdw10(1, { mset: 0 }))).status).toBe(AdminCommandStatus.InvalidFormat)
    // reserved PI and SES values
    expect((await formatNvm(d, 2, formatCdw10(1, { pi: 4 }))).status).toBe(NvmeStatus.InvalidField)
    expect((await formatNvm(d, 2, formatCdw10(1, { ses: 3 }))).status).toBe(NvmeStatus.InvalidField)
    expect((await formatNvm(d, 9, formatCdw10(0))).status).toBe(NvmeStatus.InvalidNamespaceOrFormat)
    // nothing changed
    expect(flbasFormatIndex((await idns(2)).flbas)).toBe(5)
  })

  it('I/O while a format runs is Format In Progress; after, the Changed Namespace List names the namespace', async () => {
    expect((await getLog(d, a, LogPageId.ChangedNamespaceList, 4096)).c.status).toBe(0)
    let open!: () => void
    gate = new Promise((r) => (open = r))
    const fmt = formatNvm(d, 2, formatCdw10(0))
    for (let i = 0; i < 5; i++) await tick()
    const c = await read(d, 2, 0, 1, b, 512)
    expect(c.status).toBe(NvmeStatus.FormatInProgress)
    expect((await read(d, 1, 0, 1, b, 512)).status).toBe(0) // another namespace is not affected
    open()
    gate = null
    expect((await fmt).status).toBe(0)
    expect((await read(d, 2, 0, 1, b, 512)).status).toBe(0)
    const log = await getLog(d, a, LogPageId.ChangedNamespaceList, 4096)
    expect(decodeChangedNamespaceList(log.data).nsids).toEqual([2])
  })

  it('a namespace without a format callback: its own format erases the data; another format or PI is Invalid Format', async () => {
    a.bytes.set(random(4096, 9))
    expect((await write(d, 1, 0, 8, a, 4096)).status).toBe(0)
    expect((await formatNvm(d, 1, formatCdw10(0, { ses: 1 }))).status).toBe(0)
    expect((await read(d, 1, 0, 8, b, 4096)).status).toBe(0)
    expect(b.bytes.subarray(0, 4096).every((x) => x === 0)).toBe(true)
    expect((await formatNvm(d, 1, formatCdw10(1))).status).toBe(AdminCommandStatus.InvalidFormat)
    expect((await formatNvm(d, 1, formatCdw10(0, { pi: 1 }))).status).toBe(AdminCommandStatus.InvalidFormat)
  })

  it('a 64b guard namespace: CTRATT ELBAS, ELBAF PIF 10b; the CRC-64/NVME guard and 48-bit ref tag; 8 bytes of metadata cannot hold its PI', async () => {
    expect(crc64(new TextEncoder().encode('123456789'))).toBe(0xae8b14860a799888n)
    const id = decodeIdentifyController((await identify(d, idBuf, Cns.Controller)).data)
    expect((id.ctratt >>> 15) & 1).toBe(1)
    const ns = await idns(3)
    expect([ns.lbaf[0], dpsPiType(ns.dps)]).toEqual([{ ms: 16, lbads: 12, rp: 0 }, 1])
    const nvmNs = decodeNvmIdentifyNamespace((await identify(d, idBuf, Cns.IoCommandSetNamespace, 3)).data, 3)
    expect(nvmNs.elbaf.map((e) => e.pif)).toEqual([ProtectionInfoFormat.Guard64, ProtectionInfoFormat.Guard64, ProtectionInfoFormat.Guard64])
    const data = random(2 * 4096, 10)
    a.bytes.set(data)
    expect((await write(d, 3, 2, 2, a, 2 * 4096, { cdw12: prinfo(Prinfo.PRACT | PRCHK_ALL), cdw14: 2, cdw15: 0x77 })).status).toBe(0)
    expect((await read(d, 3, 2, 2, b, 2 * 4112, { cdw12: prinfo(PRCHK_ALL), cdw14: 2, cdw15: 0xffff0077 })).status).toBe(0)
    for (let i = 0; i < 2; i++) {
      const blk = b.bytes.subarray(i * 4112, (i + 1) * 4112)
      const v = new DataView(blk.buffer, blk.byteOffset + 4096, 16)
      // 64b guard PI (16 bytes, big endian): guard 8, app tag 2, ref tag 6
      expect(v.getBigUint64(0)).toBe(crc64(data.subarray(i * 4096, (i + 1) * 4096)))
      expect(v.getUint16(8)).toBe(0x77)
      expect(v.getUint16(10) * 2 ** 32 + v.getUint32(12)).toBe(2 + i)
    }
    b.bytes[5]! ^= 1
    expect((await write(d, 3, 2, 2, b, 2 * 4112, { cdw12: prinfo(Prinfo.PRCHK_GUARD) })).status).toBe(NvmeStatus.GuardCheckError)
    // LBAF 1 has 8 bytes of metadata: a 16-byte PI does not fit
    expect((await formatNvm(d, 3, formatCdw10(1, { pi: 1 }))).status).toBe(AdminCommandStatus.InvalidFormat)
    expect((await formatNvm(d, 3, formatCdw10(1, { pi: 0 }))).status).toBe(0)
    expect(dpsPiType((await idns(3)).dps)).toBe(0)
  })
})

