// The controller's data structures as the host reads them: Identify (controller,
// namespaces, lists, descriptors, the NVM command set's own), the log pages (error
// information, SMART / health, firmware slot, changed namespace list, commands supported
// and effects), the timestamp; and moving such data to and from the command's buffers
// (staged in an iobuf buffer, then pushed to or pulled from the request's domain).
import { NvmeStatus } from '@ipukit/bdev'
import { piSizeOf } from '@ipukit/dif'
import { IoVecList, Status } from '@ipukit/memory'
import type { NvmeController } from '../controller.js'
import type { NvmeNamespace } from '../namespace.js'
import type { NvmeRequest } from '../request.js'
import {
  Cns,
  encodeDps,
  encodeFlbas,
  encodeIdentifyController,
  encodeIdentifyNamespace,
  encodeNamespaceIdDescriptors,
  encodeNamespaceList,
  encodeNvmIdentifyController,
  encodeNvmIdentifyNamespace,
  NidType,
} from '../spec/identify.js'
import { encodeChangedNamespaceList, encodeCommandEffectsLog, encodeErrorLogEntry, encodeFirmwareSlotLog, encodeSmartLog, LogPageId } from '../spec/log-pages.js'

const BROADCAST = 0xffffffff
/** Identify's NN: the largest namespace ID */
export const MAX_NSID = 1024
const PAGE = 4096

type Done = (req: NvmeRequest, ok: boolean, at: number) => void

export class ControllerPages {
  readonly #c: NvmeController
  /** a 4 KiB page to build a structure in (JS memory), copied into the staging buffer */
  readonly #page = new Uint8Array(PAGE)
  readonly #big = new Uint8Array(4096 * 4)
  readonly #one = new IoVecList(1)
  /** a view of the physical memory, for reading pulled data */
  #view: DataView

  constructor(c: NvmeController) {
    this.#c = c
    this.#view = new DataView(c.bdevs.accel.physical.memory.buffer)
  }

  /** A view of the physical memory (pulled data is at the address pullData gives). */
  get memoryView(): DataView {
    const b = this.#c.bdevs.accel.physical.memory.buffer
    if (this.#view.buffer !== b) this.#view = new DataView(b)
    return this.#view
  }

  // ---- moving data ----

  /** A staging buffer of `bytes` (an iobuf buffer in req.bufs[1]); 0 when the pool is dry. */
  #stage(req: NvmeRequest, bytes: number): number {
    if (req.bufs[1] !== 0) return req.bufs[1]!
    const iobuf = this.#c.ch.accel.iobuf
    if (bytes > iobuf.largeSize) return 0
    const a = iobuf.get(Math.max(1, bytes))
    req.bufs[1] = a
    return a
  }

  #unstage(req: NvmeRequest): void {
    if (req.bufs[1] !== 0) {
      this.#c.ch.accel.iobuf.put(req.bufs[1]!)
      req.bufs[1] = 0
    }
  }

  /** Sends `data` (zero-padded to the command's length) to the command's buffers, then completes it. */
  #toHost(req: NvmeRequest, data: Uint8Array): void {
    const n = req.length
    if (n === 0) return this.#c.complete(req, NvmeStatus.Success)
    const at = this.#stage(req, n)
    if (at === 0) return this.#retry(req, () => this.#toHost(req, data))
    const m = this.#c.bdevs.accel.physical.bytes
    const k = Math.min(n, data.length)
    m.set(data.subarray(0, k), at)
    if (k < n) m.fill(0, at + k, at + n)
    const local = this.#one.clear().push(at, n)
    if (req.domain === null || req.domain.type === 'system') {
      copyOut(m, req.iovs, at, n)
      this.#unstage(req)
      return this.#c.complete(req, NvmeStatus.Success)
    }
    const rc = req.domain.push(req.iovs, local, pushed, this.#ctx(req))
    if (rc !== Status.Ok) {
      this.#unstage(req)
      this.#c.complete(req, rc === Status.Fault || rc === Status.RemoteIo ? NvmeStatus.DataTransferError : NvmeStatus.InternalError)
    }
  }

  /** Brings the command's data (req.length bytes) into a staging buffer; done(req, ok, address). */
  pullData(req: NvmeRequest, done: Done): void {
    const n = req.length
    const at = this.#stage(req, n)
    if (at === 0) return this.#retry(req, () => this.pullData(req, done))
    if (req.domain === null || req.domain.type === 'system') {
      copyIn(this.#c.bdevs.accel.physical.bytes, req.iovs, at, n)
      return queueMicrotask(() => this.#pulledNow(req, done, true, at))
    }
    const ctx = this.#ctx(req)
    ctx.done = done
    const rc = req.domain.pull(req.iovs, this.#one.clear().push(at, n), pulled, ctx)
    if (rc !== Status.Ok) queueMicrotask(() => this.#pulledNow(req, done, false, at))
  }

  #pulledNow(req: NvmeRequest, done: Done, ok: boolean, at: number): void {
    try {
      done(req, ok, at)
    } finally {
      this.#unstage(req)
    }
  }

  readonly #ctxs = new WeakMap<NvmeRequest, Ctx>()
  #ctx(req: NvmeRequest): Ctx {
    let c = this.#ctxs.get(req)
    if (c === undefined) this.#ctxs.set(req, (c = { pages: this, req, done: null }))
    return c
  }

  /** @internal */
  pushDone(ctx: Ctx, status: number): void {
    this.#unstage(ctx.req)
    this.#c.complete(ctx.req, status === Status.Ok ? NvmeStatus.Success : NvmeStatus.DataTransferError)
  }

  /** @internal */
  pullDone(ctx: Ctx, status: number): void {
    const req = ctx.req
    this.#pulledNow(req, ctx.done!, status === Status.Ok, req.bufs[1]!)
  }

  /** Local buffers of `bytes` in req.lists[1] (iobuf buffers, system memory); done(req, list) or (req, null) when dry. */
  localBuffers(req: NvmeRequest, bytes: number, done: (req: NvmeRequest, local: IoVecList | null) => void): void {
    const iobuf = this.#c.ch.accel.iobuf
    const l = req.lists[1].clear()
    while (l.total < bytes) {
      const want = Math.min(iobuf.largeSize, bytes - l.total)
      const a = iobuf.get(want)
      if (a === 0) {
        this.releaseLocal(req)
        return done(req, null)
      }
      l.push(a, want)
    }
    done(req, l)
  }

  releaseLocal(req: NvmeRequest): void {
    const l = req.lists[1]
    const iobuf = this.#c.ch.accel.iobuf
    for (let i = 0; i < l.count; i++) iobuf.put(l.addr[i]!)
    l.clear()
  }

  #retry(req: NvmeRequest, again: () => void): void {
    setImmediate(again)
  }

  // ---- Identify (NVMe Base §5.17) ----

  identify(req: NvmeRequest): void {
    const c = this.#c
    const cns = req.cdw(10) & 0xff
    const csi = req.cdw(11) >>> 24
    const nsid = req.cmdNsid
    const out = this.#page
    out.fill(0)
    switch (cns) {
      case Cns.Controller:
        this.#controller(out)
        break
      case Cns.Namespace: {
        if (nsid === 0 || (nsid > MAX_NSID && nsid !== BROADCAST)) return c.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
        const ns = c.namespaces.get(nsid)
        // an inactive NSID reads as zeros; the broadcast NSID as what all namespaces share
        if (ns !== undefined) this.#namespace(ns, out)
        else if (nsid === BROADCAST) {
          const first = c.namespaces.values().next().value
          if (first !== undefined) this.#namespace(first, out, true)
        }
        break
      }
      case Cns.ActiveNamespaceList:
      case Cns.IoCommandSetActiveNamespaceList: {
        if (cns === Cns.IoCommandSetActiveNamespaceList && csi !== 0) break
        if (nsid >= 0xfffffffe) return c.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
        const ids = [...c.namespaces.keys()].filter((n) => n > nsid).sort((a, b) => a - b).slice(0, 1024)
        encodeNamespaceList(ids, out)
        break
      }
      case Cns.NamespaceIdDescriptorList: {
        const ns = c.namespaces.get(nsid)
        if (ns === undefined) return c.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
        encodeNamespaceIdDescriptors(
          [
            { nidt: NidType.Eui64, nid: ns.eui64 },
            { nidt: NidType.Nguid, nid: ns.nguid },
            { nidt: NidType.Uuid, nid: uuidBytes(ns.uuid) },
            { nidt: NidType.Csi, nid: new Uint8Array([0]) },
          ],
          out,
        )
        break
      }
      case Cns.IoCommandSetNamespace: {
        // the NVM command set's part of a namespace: its PI formats (ELBAF)
        if (csi !== 0) return c.fail(req, NvmeStatus.InvalidField, 47)
        if (nsid === 0 || (nsid > MAX_NSID && nsid !== BROADCAST)) return c.fail(req, NvmeStatus.InvalidNamespaceOrFormat, 4)
        const ns = c.namespaces.get(nsid)
        // an inactive NSID reads as zeros, as for CNS 00h (NVMe Base §5.17.2, Figure "CNS Values")
        if (ns === undefined) break
        const pif = ns.bdev.pi.format === 16 ? 0 : ns.bdev.pi.format === 32 ? 1 : 2
        // PIC: 16b guard PI supported (bit 0), STCRS 0; each format's PIF as the bdev's
        encodeNvmIdentifyNamespace({ pic: 1, elbaf: ns.formats.map(() => ({ sts: 0, pif })) }, out)
        break
      }
      case Cns.IoCommandSetController:
        if (csi !== 0) return c.fail(req, NvmeStatus.InvalidField, 47)
        // VSL and WZSL in MPSMIN units as a power of two (0: no limit below MDTS); DMRL 0: no
        // limit below NR's 256 ranges (the byte cannot say 256)
        encodeNvmIdentifyController({ vsl: c.mdts, wzsl: 0, wusl: 0, dmrl: 0, dmrsl: 0, dmsl: 0 }, out)
        break
      case Cns.IoCommandSet:
        // one command set combination: the NVM command set (bit 0 of vector 0)
        out[0] = 1
        break
      default:
        return c.fail(req, NvmeStatus.InvalidField, 40)
    }
    this.#toHost(req, out)
  }

  #controller(out: Uint8Array): void {
    const c = this.#c
    const fab = c.fabrics
    const elbas = [...c.namespaces.values()].some((n) => n.bdev.pi.type !== 0 && n.bdev.pi.format !== 16)
    encodeIdentifyController(
      {
        vid: c.vid,
        ssvid: c.ssvid,
        sn: c.serial,
        mn: c.model,
        fr: c.firmware,
        rab: 6,
        mdts: c.mdts,
        cntlid: c.cntlid,
        ver: 0x0002_0000,
        // OAES bit 8: Namespace Attribute Notices
        oaes: 1 << 8,
        // CTRATT bit 15: extended LBA formats (32b and 64b guards); bit 0: 128-bit host IDs (fabrics)
        ctratt: (elbas ? 1 << 15 : 0) | (fab !== undefined ? 1 : 0),
        cntrltype: c.cntrltype,
        // OACS bit 1: Format NVM
        oacs: 1 << 1,
        acl: c.acl,
        aerl: c.aerl,
        // FRMW: slot 1 read-only, one slot
        frmw: 0b0011,
        // LPA: commands supported and effects (bit 1), extended data for Get Log Page (bit 2)
        lpa: 0b110,
        elpe: c.errorLogSize - 1,
        wctemp: 343,
        cctemp: 373,
        kas: c.kas,
        sqes: 0x66,
        cqes: 0x44,
        maxcmd: fab !== undefined ? 128 : 0,
        nn: MAX_NSID,
        // ONCS: Compare, Dataset Management, Write Zeroes, Save/Select in Features, Timestamp, Verify
        oncs: 0b1101_1101,
        // VWC present, flush with the broadcast NSID supported (bits 2:1 11b)
        vwc: 0b111,
        // SGLS: supported without alignment (bit 0); Bit Bucket descriptors (bit 16, PCIe: see
        // pcie.ts #bucketed); an SGL may describe more than the data (bit 18);
        // for fabrics (NVMe/TCP: no keyed SGLs, those are RDMA's), the offset addressing of
        // in-capsule data (bit 20), as Linux's nvmet and SPDK report
        // (none when the PCIe transport was built without them: it refuses PSDT 01b/10b)
        sgls: fab !== undefined ? (1 | (1 << 20)) >>> 0 : (c.transport as { sgl?: boolean }).sgl === false ? 0 : (1 | (1 << 16) | (1 << 18)) >>> 0,
        subnqn: c.subnqn,
        ...(fab !== undefined && { ioccsz: fab.ioccsz, iorcsz: fab.iorcsz, icdoff: fab.icdoff, msdbd: fab.msdbd }),
        // one power state: 25 W, 16 µs entry and 4 µs exit latencies
        powerStates: [{ mp: 2500, enlat: 16, exlat: 4 }],
      },
      out,
    )
  }

  #namespace(ns: NvmeNamespace, out: Uint8Array, common = false): void {
    const b = ns.bdev
    const index = ns.formatIndex()
    const extended = b.mdSize > 0
    const formattable = ns.formatFn !== undefined
    const piTypes = formattable ? 0b111 : b.pi.type === 0 ? 0 : 1 << (b.pi.type - 1)
    const withMd = ns.formats.some((f) => f.mdSize >= 8)
    encodeIdentifyNamespace(
      {
        nsze: common ? 0 : b.blockCount,
        ncap: common ? 0 : b.blockCount,
        nuse: common ? 0 : b.blockCount,
        flbas: encodeFlbas(Math.max(0, index), extended),
        // MC: extended LBAs (bit 0) where a format has metadata; no separate metadata buffer
        mc: ns.formats.some((f) => f.mdSize > 0) ? 1 : 0,
        // DPC: the PI types (bits 2:0) and both locations (bits 4:3) where a format can carry PI
        dpc: withMd ? piTypes | (formattable ? 0b11000 : b.pi.location === 'first' ? 0b1000 : 0b10000) : 0,
        dps: b.pi.type === 0 ? 0 : encodeDps(b.pi.type, b.pi.location === 'first'),
        // DLFEAT: deallocated blocks read as zeros (001b), Write Zeroes may deallocate (bit 3); the
        // guard of a deallocated block reads FFFFh (bit 4 clear)
        dlfeat: 0b01001,
        noiob: 0,
        nvmcap: BigInt(common ? 0 : b.blockCount * b.blockSize),
        nguid: ns.nguid,
        eui64: ns.eui64,
        lbaf: ns.formats.map((f) => ({ ms: f.mdSize, lbads: Math.log2(f.dataSize), rp: f.rp ?? 0 })),
      } as never,
      out,
    )
    void piSizeOf
  }

  // ---- log pages (NVMe Base §5.16) ----

  logPage(req: NvmeRequest): void {
    const c = this.#c
    const lid = req.cdw(10) & 0xff
    const rae = ((req.cdw(10) >>> 15) & 1) === 1
    const offset = req.cdw(13) * 0x100000000 + req.cdw(12)
    if (offset % 4 !== 0) return c.fail(req, NvmeStatus.InvalidField, 48)
    let page: Uint8Array
    const custom = c.customLogPage?.(lid, req) ?? null
    if (custom !== null) {
      if (offset > custom.length) return c.fail(req, NvmeStatus.InvalidField, 48)
      return this.#toHost(req, custom.subarray(offset))
    }
    switch (lid) {
      case LogPageId.ErrorInformation: {
        const entries = c.errorLogSize
        page = this.#sized(entries * 64)
        const log = c.errorLog
        for (let i = 0; i < log.length && i < entries; i++) {
          const e = log[i]!
          // a host's SLBA beyond 2^53 is not a safe integer (the codec refuses it): written as the u64 it is
          const safe = Number.isSafeInteger(e.lba)
          encodeErrorLogEntry(
            { errorCount: e.errorCount, sqid: e.sqid, cid: e.cid, statusField: ((e.status & 0x7ff) << 1) | (e.dnr ? 0x8000 : 0), parameterErrorLocation: e.location, lba: safe ? e.lba : 0, nsid: e.nsid },
            page,
            64 * i,
          )
          if (!safe) new DataView(page.buffer, page.byteOffset + 64 * i).setBigUint64(16, e.lba >= 2 ** 64 ? 0xffff_ffff_ffff_ffffn : BigInt(e.lba), true)
        }
        if (!rae) c.unmask(0)
        break
      }
      case LogPageId.SmartHealth: {
        page = this.#sized(512)
        const s = c.smart
        const units = c.dataUnits()
        encodeSmartLog(
          {
            criticalWarning: 0,
            compositeTemperature: 323,
            availableSpare: 100,
            availableSpareThreshold: 10,
            percentageUsed: 0,
            dataUnitsRead: BigInt(units.read),
            dataUnitsWritten: BigInt(units.written),
            hostReadCommands: BigInt(s.hostReadCommands),
            hostWriteCommands: BigInt(s.hostWriteCommands),
            controllerBusyTime: BigInt(Math.floor(s.busyMs / 60000)),
            powerCycles: BigInt(s.powerCycles),
            powerOnHours: BigInt(Math.floor(performance.now() / 3_600_000)),
            unsafeShutdowns: BigInt(s.unsafeShutdowns),
            mediaErrors: BigInt(s.mediaErrors),
            errorLogEntries: BigInt(s.errorLogEntries),
            temperatureSensors: [323],
          },
          page,
        )
        if (!rae) c.unmask(1)
        break
      }
      case LogPageId.FirmwareSlot:
        page = this.#sized(512)
        encodeFirmwareSlotLog({ afi: 1, frs: [c.firmware] }, page)
        break
      case LogPageId.ChangedNamespaceList:
        page = this.#sized(4096)
        encodeChangedNamespaceList(c.changedNamespaces(!rae), page)
        if (!rae) c.unmask(2)
        break
      case LogPageId.CommandsSupportedAndEffects: {
        page = this.#sized(4096)
        const CSUPP = 1
        const LBCC = 2
        const NCC = 4
        const NIC = 8
        const CCC = 16
        const admin: number[] = []
        for (const op of [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c, 0x18]) admin[op] = CSUPP | (op <= 0x05 && op !== 0x02 ? CCC : 0)
        admin[0x80] = CSUPP | LBCC | NCC | NIC
        const io: number[] = []
        for (const op of [0x00, 0x02, 0x05, 0x0c]) io[op] = CSUPP
        for (const op of [0x01, 0x08, 0x09]) io[op] = CSUPP | LBCC
        encodeCommandEffectsLog({ admin, io }, page)
        break
      }
      default:
        return c.fail(req, nvmeStatusOf(0x09), 40)
    }
    if (offset > page.length) return c.fail(req, NvmeStatus.InvalidField, 48)
    this.#toHost(req, page.subarray(offset))
  }

  #sized(n: number): Uint8Array {
    const p = n <= PAGE ? this.#page.subarray(0, n) : this.#big.subarray(0, n)
    p.fill(0)
    return p
  }

  // ---- Timestamp (NVMe Base §5.27.1.11) ----

  setTimestamp(req: NvmeRequest): void {
    this.pullData(req, (r, ok, at) => {
      if (!ok) return this.#c.complete(r, NvmeStatus.DataTransferError)
      const v = this.memoryView
      const ms = v.getUint16(at + 4, true) * 0x100000000 + v.getUint32(at, true)
      this.#c.features.timestamp = ms
      this.#c.features.timestampSetAt = performance.now()
      this.#c.complete(r, NvmeStatus.Success)
    })
  }

  getTimestamp(req: NvmeRequest): void {
    const f = this.#c.features
    const set = f.timestampSetAt !== 0
    const ms = set ? f.timestamp + Math.floor(performance.now() - f.timestampSetAt) : Math.floor(performance.now())
    const out = this.#page.subarray(0, 8)
    const dv = new DataView(out.buffer, out.byteOffset, 8)
    dv.setUint32(0, ms % 0x100000000, true)
    dv.setUint16(4, Math.floor(ms / 0x100000000) & 0xffff, true)
    // attributes: Synch 0, Timestamp Origin 001b when the host set it (000b: since reset)
    dv.setUint8(6, set ? 0b010 : 0)
    dv.setUint8(7, 0)
    this.#toHost(req, out)
  }
}

interface Ctx {
  pages: ControllerPages
  req: NvmeRequest
  done: Done | null
}

function pushed(ctx: Ctx, status: number): void {
  ctx.pages.pushDone(ctx, status)
}

function pulled(ctx: Ctx, status: number): void {
  ctx.pages.pullDone(ctx, status)
}

function nvmeStatusOf(sc: number): number {
  return (1 << 8) | sc
}

/** Copies n bytes at `at` into a list of local addresses. */
function copyOut(m: Uint8Array, l: IoVecList, at: number, n: number): void {
  let o = 0
  for (let i = 0; i < l.count && o < n; i++) {
    const k = Math.min(l.len[i]!, n - o)
    m.copyWithin(l.addr[i]!, at + o, at + o + k)
    o += k
  }
}

function copyIn(m: Uint8Array, l: IoVecList, at: number, n: number): void {
  let o = 0
  for (let i = 0; i < l.count && o < n; i++) {
    const k = Math.min(l.len[i]!, n - o)
    m.copyWithin(at + o, l.addr[i]!, l.addr[i]! + k)
    o += k
  }
}

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '')
  const out = new Uint8Array(16)
  for (let i = 0; i < 16; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}
