// The PCIe front end (the memory-based transport): BAR0 registers and doorbells of an NVMe
// function on the @ipukit/pcie fabric, the admin and I/O queues in host memory (or in the
// function's CMB), PRP and SGL walking through the IOMMU, completion posting with phase
// tags, and MSI-X per completion queue with coalescing. Commands reach the controller core
// with their data as iovecs in the function's bus-master domain: host IOVAs, not copies.
//
//   BAR0 (16 KiB)
//   0x0000  controller registers: CAP VS INTMS INTMC CC CSTS NSSR AQA ASQ ACQ CMB* PMR* (NVMe Base §3.1)
//   0x1000  doorbells: SQ y tail at 0x1000 + 2y (4 << DSTRD), CQ y head at 0x1000 + (2y + 1) (4 << DSTRD)
//   0x2000  MSI-X table (16 bytes a vector)
//   0x3000  MSI-X PBA
//
// Registers are kept as bytes, so accesses of any size the fabric allows read and write
// what the spec lays out; the semantics are applied per 32-bit register touched.
//
// Timing (NVMe Base §3.5): CC.EN 0 -> 1 sets CSTS.RDY after `readyDelay` ms (within CAP.TO);
// CC.EN 1 -> 0 resets the controller (queues deleted, outstanding commands' completions
// dropped, features back to defaults) and clears RDY when the commands in flight are done.
// A bad admin queue setup at enable sets CSTS.CFS instead of RDY; so does a queue the IOMMU
// refuses to let the controller read or write. CC.SHN flushes every namespace, with
// CSTS.SHST in progress (01b) then complete (10b).
import { NvmeStatus } from '@ipukit/bdev'
import { Access, IoVecList, type PhysicalMemory, Status } from '@ipukit/memory'
import type { BarSpec, BusMasterDomain, FunctionSpec, PciFabric, PciFunction, RegisterHandler } from '@ipukit/pcie'
import { AsyncEvent, type ControllerOptions, type ControllerTransport, NvmeController } from './controller.js'
import { AdminCommandStatus } from './spec/status.js'
import { walkPrp } from './internal/prp.js'
import { walkSgl } from './internal/sgl.js'
import { NvmeRequest } from './request.js'
import { NvmeError } from './errors.js'
import { Reg } from './spec/registers.js'


export const BAR0_SIZE = 0x4000
export const MSIX_TABLE = 0x2000
export const MSIX_PBA = 0x3000

export interface NvmeFunctionSpecOptions {
  vendorId?: number
  deviceId?: number
  /** MSI-X vectors: one per completion queue at most (admin included); default 65 */
  vectors?: number
  /** a CMB: the device region backing BAR 2, and its size */
  cmb?: { region: string; size: number }
  /** a PMR: the device region backing BAR 4 */
  pmr?: { region: string; size: number }
}

/** The PCI function of an NVMe controller: class 010802h, BAR0 registers and MSI-X, optional CMB and PMR BARs. */
export function nvmeFunctionSpec(o: NvmeFunctionSpecOptions = {}): FunctionSpec {
  const vectors = o.vectors ?? 65
  if (!Number.isInteger(vectors) || vectors < 1 || vectors > 256) throw new NvmeError('NVME_BAD_ARGUMENT', `vectors must be 1 to 256, got ${vectors}`)
  const bars: BarSpec[] = [{ index: 0, size: BAR0_SIZE, kind: 'registers' }]
  if (o.cmb !== undefined) bars.push({ index: 2, size: o.cmb.size, kind: 'memory', region: o.cmb.region, prefetchable: true })
  if (o.pmr !== undefined) bars.push({ index: 4, size: o.pmr.size, kind: 'memory', region: o.pmr.region, prefetchable: true })
  return { vendorId: o.vendorId ?? 0x1b36, deviceId: o.deviceId ?? 0x0010, classCode: 0x010802, bars, msix: { vectors, bar: 0, tableOffset: MSIX_TABLE, pbaOffset: MSIX_PBA } }
}

export interface PcieControllerOptions extends Omit<ControllerOptions, 'transport' | 'vid'> {
  fabric: PciFabric
  fn: PciFunction
  /** entries per queue at most (CAP.MQES + 1); default 4096 */
  maxQueueEntries?: number
  /** CAP.TO in 500 ms units; default 15 (7.5 s) */
  readyTimeout?: number
  /** ms from CC.EN = 1 to CSTS.RDY = 1 (and from EN = 0 to RDY = 0); default 0 (the next turn) */
  readyDelay?: number
  /** CAP.DSTRD; default 0 (4-byte doorbells) */
  doorbellStride?: number
  /** data pointers may be SGLs (Identify SGLS); default true */
  sgl?: boolean
}

class Sq {
  head = 0
  tail = 0
  /** commands fetched and not completed */
  inflight = 0
  /** Delete I/O SQ waits for the commands in flight */
  deleting: (() => void) | null = null
  /** requests, made as the queue first needs them (up to one per entry) and reused */
  readonly free: NvmeRequest[] = []
  made = 0
  constructor(
    readonly qid: number,
    readonly base: number,
    readonly size: number,
    readonly cq: Cq,
  ) {}

  request(): NvmeRequest | undefined {
    const r = this.free.pop()
    if (r !== undefined || this.made >= this.size) return r
    this.made++
    return new NvmeRequest()
  }
}

class Cq {
  head = 0
  tail = 0
  phase = 1
  /** completions waiting for room (a full CQ) */
  readonly overflow: NvmeRequest[] = []
  readonly sqs = new Set<Sq>()
  /** entries posted since the last interrupt, and its timer */
  pendingIrq = 0
  timer: ReturnType<typeof setTimeout> | null = null
  constructor(
    readonly qid: number,
    readonly base: number,
    readonly size: number,
    readonly iv: number,
    readonly ien: boolean,
  ) {}
}

/** The NVMe controller as its PCI function presents it. */
export class NvmePcieController implements ControllerTransport, RegisterHandler {
  readonly type = 'pcie' as const
  readonly core: NvmeController
  readonly fabric: PciFabric
  readonly fn: PciFunction
  readonly host: BusMasterDomain
  readonly maxQueueEntries: number
  readonly readyTimeout: number
  readonly readyDelay: number
  readonly doorbellStride: number
  readonly sgl: boolean
  /** counters for tests and monitoring */
  readonly counters = { commands: 0, interrupts: 0, doorbellErrors: 0, fatal: 0 }
  readonly #regs = new Uint8Array(0x1000)
  readonly #view = new DataView(this.#regs.buffer)
  readonly #pm: PhysicalMemory
  readonly #sqs: (Sq | undefined)[] = []
  readonly #cqs: (Cq | undefined)[] = []
  #enabled = false
  #ready = false
  #fatal = false
  #shst = 0
  #scheduled = false
  readonly #dirty = new Set<Sq>()
  readonly #irqDirty = new Set<Cq>()
  readonly #one = new IoVecList(1)
  readonly #phys = new IoVecList(64)
  #mem: DataView
  #mem32: Int32Array
  readonly #process = (): void => this.#processAll()
  /** bumped at each reset: completions of commands from before a reset are dropped */
  #epoch = 0
  readonly #reqEpoch = new WeakMap<NvmeRequest, number>()
  #lastError = ''

  constructor(o: PcieControllerOptions) {
    this.fabric = o.fabric
    this.fn = o.fn
    this.host = o.fabric.busMaster(o.fn)
    this.#pm = o.fabric.physical!
    this.#mem = new DataView(this.#pm.memory.buffer)
    this.#mem32 = new Int32Array(this.#pm.memory.buffer)
    this.maxQueueEntries = o.maxQueueEntries ?? 4096
    this.readyTimeout = o.readyTimeout ?? 15
    this.readyDelay = o.readyDelay ?? 0
    this.doorbellStride = o.doorbellStride ?? 0
    this.sgl = o.sgl ?? true
    if (!Number.isInteger(this.maxQueueEntries) || this.maxQueueEntries < 2 || this.maxQueueEntries > 65536) throw new NvmeError('NVME_BAD_ARGUMENT', `maxQueueEntries must be 2 to 65536, got ${this.maxQueueEntries}`)
    if (!Number.isInteger(this.readyTimeout) || this.readyTimeout < 1 || this.readyTimeout > 255) throw new NvmeError('NVME_BAD_ARGUMENT', `readyTimeout must be 1 to 255 (500 ms units), got ${this.readyTimeout}`)
    if (!(this.readyDelay >= 0 && this.readyDelay < this.readyTimeout * 500)) throw new NvmeError('NVME_BAD_ARGUMENT', `readyDelay must be under CAP.TO (${this.readyTimeout * 500} ms), got ${this.readyDelay}`)
    const vectors = o.fn.msix?.vectors ?? 0
    if (vectors === 0) throw new NvmeError('NVME_BAD_ARGUMENT', `${o.fn.name} has no MSI-X capability: build it with nvmeFunctionSpec()`)
    const queues = Math.min(o.maxIoQueues ?? 64, (0x1000 / (8 << this.doorbellStride)) - 1)
    this.core = new NvmeController({ ...o, transport: this, vid: o.fn.config.read(0, 2), maxIoQueues: queues })
    o.fn.setRegisterHandler(0, this)
    this.#resetRegisters()
  }

  // ---- registers ----

  /** CAP (NVMe Base §3.1.1): MQES, CQR, TO, DSTRD, CSS (NVM), MPSMIN/MAX, CMBS, PMRS. */
  #cap(): [number, number] {
    const low = ((this.maxQueueEntries - 1) & 0xffff) | (1 << 16) | (this.readyTimeout << 24)
    const cmbs = this.#cmbBar() !== undefined ? 1 : 0
    const pmrs = this.#pmrBar() !== undefined ? 1 : 0
    // bits 63:32: DSTRD 35:32, NSSRS 36 (no), CSS 44:37 (bit 37: NVM), MPSMIN 51:48 (0: 4 KiB), MPSMAX 55:52 (4: 64 KiB), PMRS 56, CMBS 57
    const high = (this.doorbellStride & 0xf) | (1 << 5) | (0 << 16) | (4 << 20) | (pmrs << 24) | (cmbs << 25)
    return [low >>> 0, high >>> 0]
  }

  #cmbBar() {
    return this.fn.bars.find((b) => b.index === 2 && b.kind === 'memory')
  }

  /** Whether [addr, addr + bytes) touches the CMB's BAR (by its bus address). */
  #inCmb(addr: number, bytes: number): boolean {
    const bar = this.#cmbBar()
    return bar !== undefined && bar.address >= 0 && addr < bar.address + bar.size && addr + bytes > bar.address
  }

  #pmrBar() {
    return this.fn.bars.find((b) => b.index === 4 && b.kind === 'memory')
  }

  #resetRegisters(): void {
    const v = this.#view
    this.#regs.fill(0)
    const [lo, hi] = this.#cap()
    v.setUint32(Reg.CAP, lo, true)
    v.setUint32(Reg.CAP + 4, hi, true)
    v.setUint32(Reg.VS, 0x0002_0000, true) // NVMe 2.0
    const pmr = this.#pmrBar()
    if (pmr !== undefined) {
      // PMRCAP: RDS, WDS, BIR 4, PMRTU 500 ms, PMRTO 1 (PMRSTS.NRDY clears at once)
      v.setUint32(Reg.PMRCAP, (1 << 3) | (1 << 4) | (4 << 5) | (1 << 16), true)
      v.setUint32(Reg.PMRSTS, 1 << 8, true)
      // PMREBS: size in bytes (PMRSZU 0), write barrier size 0
      v.setUint32(Reg.PMREBS, 0, true)
    }
  }

  /** The CMB registers (CMBLOC, CMBSZ) read as zero until the host sets CMBMSC.CRE (NVMe 1.4 and later). */
  #cmbRegs(): void {
    const v = this.#view
    const bar = this.#cmbBar()
    const cre = (v.getUint32(Reg.CMBMSC, true) & 1) === 1
    if (bar === undefined || !cre) {
      v.setUint32(Reg.CMBLOC, 0, true)
      v.setUint32(Reg.CMBSZ, 0, true)
      return
    }
    // CMBLOC: BIR 2, offset 0; CMBSZ: SQS, LISTS, RDS, WDS (queues of submissions, PRP lists and data), SZU 4 KiB
    v.setUint32(Reg.CMBLOC, 2, true)
    const units = Math.floor(bar.size / 4096)
    v.setUint32(Reg.CMBSZ, 0b11101 | (0 << 8) | ((units & 0xfffff) << 12), true)
  }

  #csts(): number {
    return (this.#ready ? 1 : 0) | (this.#fatal ? 2 : 0) | (this.#shst << 2)
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (offset >= 0x1000) return 0 // doorbells are write-only
    this.#view.setUint32(Reg.CSTS, this.#csts(), true)
    this.#cmbRegs()
    const v = this.#view
    return size === 1 ? v.getUint8(offset) : size === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true)
  }

  read64(offset: number): bigint {
    return BigInt(this.read(offset, 4)) | (BigInt(this.read(offset + 4, 4)) << 32n)
  }

  write64(offset: number, value: bigint): void {
    // an 8-byte write is both dwords at once (ASQ, ACQ, CMBMSC, BPMBL): the high first, so a
    // register acted on at its low dword (none here) would see the whole value
    const lo = Number(value & 0xffffffffn)
    const hi = Number((value >> 32n) & 0xffffffffn)
    if (offset >= 0x1000) {
      this.write(offset, 4, lo)
      this.write(offset + 4, 4, hi)
      return
    }
    // each dword's old value, as write() passes it: CC's EN and SHN transitions, INTMS/INTMC's set and clear
    const oldLo = this.#view.getUint32(offset & ~3, true)
    const oldHi = this.#view.getUint32((offset + 4) & ~3, true)
    this.#writeBytes(offset + 4, 4, hi)
    this.#writeBytes(offset, 4, lo)
    this.#apply(offset & ~3, oldLo)
    this.#apply((offset + 4) & ~3, oldHi)
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset >= 0x1000) return this.#doorbell(offset, size, value)
    const old = this.#view.getUint32(offset & ~3, true)
    this.#writeBytes(offset, size, value)
    this.#apply(offset & ~3, old)
  }

  /** Bytes of a write land in the register file, except in read-only registers (put back by #apply). */
  #writeBytes(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.#regs[offset + i] = (value >>> (8 * i)) & 0xff
  }

  #apply(reg: number, old?: number): void {
    const v = this.#view
    const now = v.getUint32(reg, true)
    const prev = old ?? now
    switch (reg) {
      case Reg.CAP:
      case Reg.CAP + 4: {
        const [lo, hi] = this.#cap()
        v.setUint32(Reg.CAP, lo, true)
        v.setUint32(Reg.CAP + 4, hi, true)
        return
      }
      case Reg.VS:
        v.setUint32(Reg.VS, 0x0002_0000, true)
        return
      case Reg.INTMS:
      case Reg.INTMC: {
        // a write of 1 to a bit of INTMS masks that vector, to INTMC unmasks it; both read the mask
        const mask = reg === Reg.INTMS ? prev | now : prev & ~now
        v.setUint32(Reg.INTMS, mask >>> 0, true)
        v.setUint32(Reg.INTMC, mask >>> 0, true)
        return
      }
      case Reg.CC:
        return this.#ccWritten(prev, now)
      case Reg.CSTS:
        // read-only but NSSRO (write 1 to clear; never set here: no subsystem reset)
        return
      case Reg.NSSR:
        // NSSRS is 0: a subsystem reset is not supported and the write is ignored
        v.setUint32(Reg.NSSR, 0, true)
        return
      case Reg.AQA:
      case Reg.ASQ:
      case Reg.ASQ + 4:
      case Reg.ACQ:
      case Reg.ACQ + 4:
        // the admin queue attributes are read-write; they take effect at CC.EN 0 -> 1
        if (reg === Reg.AQA) v.setUint32(Reg.AQA, now & 0x0fff_0fff, true)
        if (reg === Reg.ASQ || reg === Reg.ACQ) v.setUint32(reg, now & ~0xfff, true)
        return
      case Reg.CMBLOC:
      case Reg.CMBSZ:
        return this.#cmbRegs()
      case Reg.CMBMSC:
      case Reg.CMBMSC + 4:
        if (this.#cmbBar() === undefined) {
          v.setUint32(Reg.CMBMSC, 0, true)
          v.setUint32(Reg.CMBMSC + 4, 0, true)
        } else if (reg === Reg.CMBMSC) v.setUint32(Reg.CMBMSC, now & ~0xffc, true)
        return
      case Reg.CMBSTS:
        v.setUint32(Reg.CMBSTS, 0, true)
        return
      case Reg.PMRCTL:
        if (this.#pmrBar() === undefined) return v.setUint32(Reg.PMRCTL, 0, true)
        v.setUint32(Reg.PMRCTL, now & 1, true)
        // PMRSTS.NRDY follows PMRCTL.EN at once (PMRTO is the host's bound)
        v.setUint32(Reg.PMRSTS, (now & 1) === 1 ? 0 : 1 << 8, true)
        return
      case Reg.PMRCAP:
      case Reg.PMRSTS:
      case Reg.PMREBS:
      case Reg.PMRSWTP: {
        // read-only: put back what reset or PMRCTL set
        const keep = prev
        v.setUint32(reg, keep, true)
        return
      }
      default:
        // reserved and unimplemented registers read as zero
        if (reg < 0x1000 && !WRITABLE.has(reg)) v.setUint32(reg, 0, true)
    }
  }

  #ccWritten(prev: number, now: number): void {
    const v = this.#view
    // reserved bits (3:1, 31:25) read as 0; CSS, MPS and AMS change only while disabled
    let cc = now & 0x01ff_fff1
    const en = (cc & 1) === 1
    const wasEn = (prev & 1) === 1
    if (wasEn && en) cc = (cc & ~0x3ff0) | (prev & 0x3ff0)
    v.setUint32(Reg.CC, cc >>> 0, true)
    if (!wasEn && en) return this.#enable(cc)
    if (wasEn && !en) return this.#disable()
    const shn = (cc >>> 14) & 3
    const wasShn = (prev >>> 14) & 3
    if (en && shn !== 0 && wasShn === 0) this.#shutdown()
    if (shn === 0 && wasShn !== 0) this.#shst = 0
  }

  #enable(cc: number): void {
    const v = this.#view
    if (this.#fatal) return
    const mps = (cc >>> 7) & 0xf
    const css = (cc >>> 4) & 7
    const aqa = v.getUint32(Reg.AQA, true)
    const asqs = (aqa & 0xfff) + 1
    const acqs = ((aqa >>> 16) & 0xfff) + 1
    const asq = v.getUint32(Reg.ASQ + 4, true) * 0x100000000 + v.getUint32(Reg.ASQ, true)
    const acq = v.getUint32(Reg.ACQ + 4, true) * 0x100000000 + v.getUint32(Reg.ACQ, true)
    const page = 4096 << mps
    // QEMU's nvme_start_ctrl checks, and the spec's (NVMe Base §3.5.1): a bad setup is a controller fatal status
    let why = ''
    if (mps > 4) why = `CC.MPS ${mps} is above CAP.MPSMAX 4`
    else if (css !== 0 && css !== 7) why = `CC.CSS ${css} is not a command set of CAP.CSS`
    else if (asqs < 2 || acqs < 2) why = 'AQA: the admin queues need 2 entries at least'
    else if (asq % page !== 0 || acq % page !== 0) why = `ASQ and ACQ must be aligned to the ${page}-byte page`
    if (why !== '') return this.#fail(why)
    const delay = this.readyDelay
    const epoch = ++this.#epoch
    const go = () => {
      if (epoch !== this.#epoch || !this.#enabledCc()) return
      const cq = new Cq(0, acq, acqs, 0, true)
      this.#cqs[0] = cq
      const sq = new Sq(0, asq, asqs, cq)
      cq.sqs.add(sq)
      this.#sqs[0] = sq
      this.#enabled = true
      this.#ready = true
    }
    if (delay > 0) setTimeout(go, delay).unref?.()
    else setImmediate(go)
  }

  #enabledCc(): boolean {
    return (this.#view.getUint32(Reg.CC, true) & 1) === 1
  }

  #disable(): void {
    // controller reset: stop, forget the queues, drop the completions of what is in flight
    this.#enabled = false
    const epoch = ++this.#epoch
    for (const cq of this.#cqs) if (cq?.timer != null) clearTimeout(cq.timer)
    const inflight = this.#sqs.reduce((n, sq) => n + (sq?.inflight ?? 0), 0)
    this.#sqs.length = 0
    this.#cqs.length = 0
    this.#dirty.clear()
    this.#irqDirty.clear()
    this.core.reset()
    this.#shst = 0
    const done = () => {
      if (epoch !== this.#epoch) return
      this.#ready = false
      this.#fatal = false
    }
    if (this.readyDelay > 0 || inflight > 0) setTimeout(done, this.readyDelay).unref?.()
    else setImmediate(done)
    // RDY reads 0 as soon as the host looks again only if nothing was in flight: else after the delay
    if (inflight === 0 && this.readyDelay === 0) {
      this.#ready = false
      this.#fatal = false
    }
  }

  #shutdown(): void {
    this.#shst = 1
    const nss = [...this.core.namespaces.values()]
    let left = nss.length
    const epoch = this.#epoch
    const one = () => {
      if (--left <= 0 && epoch === this.#epoch) this.#shst = 2
    }
    if (left === 0) {
      setImmediate(() => epoch === this.#epoch && (this.#shst = 2))
      return
    }
    for (const ns of nss) {
      const rc = ns.desc.flush(this.core.ch, 0, ns.bdev.blockCount, one, null)
      if (rc !== 0) one()
    }
  }

  /** Controller Fatal Status: the controller stops until the host resets it. */
  #fail(why: string): void {
    // a pending reset's completion must not clear this
    this.#epoch++
    this.#fatal = true
    this.#lastError = why
    this.counters.fatal++
  }

  /** Why CSTS.CFS was last set (for the logs). */
  get fatalReason(): string {
    return this.#lastError
  }

  // ---- doorbells ----

  #doorbell(offset: number, size: number, value: number): void {
    const rel = offset - 0x1000
    const stride = 4 << this.doorbellStride
    if (size !== 4 || rel % stride !== 0) return this.#badDoorbell(AsyncEvent.InvalidDoorbellRegister)
    const idx = rel / stride
    const qid = idx >> 1
    if (!this.#enabled || this.#fatal) return
    if ((idx & 1) === 0) {
      const sq = this.#sqs[qid]
      if (sq === undefined) return this.#badDoorbell(AsyncEvent.InvalidDoorbellRegister)
      if (value >= sq.size) return this.#badDoorbell(AsyncEvent.InvalidDoorbellValue)
      sq.tail = value
      this.#dirty.add(sq)
      this.#schedule()
    } else {
      const cq = this.#cqs[qid]
      if (cq === undefined) return this.#badDoorbell(AsyncEvent.InvalidDoorbellRegister)
      // the new head must lie in the entries posted and not yet consumed
      const used = (cq.tail - cq.head + cq.size) % cq.size
      const adv = (value - cq.head + cq.size) % cq.size
      if (value >= cq.size || adv > used) return this.#badDoorbell(AsyncEvent.InvalidDoorbellValue)
      cq.head = value
      if (cq.overflow.length > 0) {
        for (const sq of cq.sqs) this.#dirty.add(sq)
        this.#drainOverflow(cq)
      }
    }
  }

  #badDoorbell(event: number): void {
    this.counters.doorbellErrors++
    // an error event (type 0); its log page is the Error Information log (01h), whose read
    // clears it (NVMe Base §5.2, Figure "Asynchronous Event Request - Completion Queue Entry Dword 0")
    this.core.raiseEvent((event & 0xff00) | (0x01 << 16))
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(this.#process)
  }

  // ---- submission: fetch, map, execute ----

  #processAll(): void {
    this.#scheduled = false
    for (const sq of this.#dirty) {
      this.#dirty.delete(sq)
      this.#processSq(sq)
    }
    this.#interrupts()
  }

  #processSq(sq: Sq): void {
    while (sq.head !== sq.tail && this.#enabled && !this.#fatal && sq.deleting === null) {
      const req = sq.request()
      if (req === undefined) return // every slot in flight: resumes as they complete
      req.reset(sq.qid)
      // fetch the command (a 64-byte DMA read of host memory, or of the CMB)
      if (!this.#fetch(sq, req.cmd)) {
        sq.free.push(req)
        return this.#fail(`the controller cannot read submission queue ${sq.qid} at ${sq.base + sq.head * 64}`)
      }
      sq.head = (sq.head + 1) % sq.size
      sq.inflight++
      this.counters.commands++
      req.done = completed
      req.transport = sq
      this.#reqEpoch.set(req, this.#epoch)
      const st = this.#map(req)
      if (st !== NvmeStatus.Success) {
        // through the core, so the error is logged and the completion deferred
        this.core.reject(req, st, 24)
        continue
      }
      this.core.execute(req)
    }
  }

  /** Reads the SQE at the queue's head into `out`; false if the IOMMU refuses. */
  #fetch(sq: Sq, out: Uint8Array): boolean {
    const one = this.#one.clear().push(sq.base + sq.head * 64, 64)
    const phys = this.#phys.clear()
    if (this.host.translateForDma(one, phys, Access.Read) !== Status.Ok) return false
    const m = this.#pm.bytes
    let o = 0
    for (let i = 0; i < phys.count; i++) {
      out.set(m.subarray(phys.addr[i]!, phys.addr[i]! + phys.len[i]!), o)
      o += phys.len[i]!
    }
    return true
  }

  readonly #hostRead = (iova: number, out: Uint8Array): number => {
    const one = this.#one.clear().push(iova, out.length)
    const phys = this.#phys.clear()
    if (this.host.translateForDma(one, phys, Access.Read) !== Status.Ok) return 1
    const m = this.#pm.bytes
    let o = 0
    for (let i = 0; i < phys.count; i++) {
      out.set(m.subarray(phys.addr[i]!, phys.addr[i]! + phys.len[i]!), o)
      o += phys.len[i]!
    }
    return 0
  }

  /** Walks the command's data pointer into req.iovs (host IOVAs); an NVMe status. */
  #map(req: NvmeRequest): number {
    const t = this.core.transferLength(req)
    if (typeof t === 'number') return -t
    req.length = t.bytes
    req.domain = this.host
    // PSDT: "PRPs shall be used for all Admin commands for NVMe over PCIe" (NVMe Base 2.0,
    // Figure "Command Dword 0"): refused whether the command moves data or not, as QEMU's
    // nvme_admin_cmd does
    if (req.qid === 0 && req.psdt !== 0) return NvmeStatus.InvalidField
    if (t.bytes === 0) return NvmeStatus.Success
    const psdt = req.psdt
    const page = 4096 << ((this.#view.getUint32(Reg.CC, true) >>> 7) & 0xf)
    if (psdt === 0) {
      const st = walkPrp(req.u64(24), req.u64(32), t.bytes, this.#hostRead, req.iovs, { pageSize: page })
      return st !== NvmeStatus.Success ? st : this.#cmbMixed(req)
    }
    // SGLs: not for admin commands over PCIe (NVMe Base §4.3), and only where supported
    if (req.qid === 0 || !this.sgl || psdt === 3) return NvmeStatus.InvalidField
    // Identify SGLS bit 16 is set (internal/pages.ts): Bit Buckets have no effect in a
    // write, and in a read discard their bytes (see #bucketed)
    const st = walkSgl(req.sgl1, t.bytes, this.#hostRead, req.iovs, req.buckets, { write: !t.toHost, allowBitBucket: true })
    if (st !== NvmeStatus.Success) return st
    const cmb = this.#cmbMixed(req)
    if (cmb !== NvmeStatus.Success || req.buckets.count === 0) return cmb
    return this.#bucketed(req, t.bytes)
  }

  /**
   * A read with SGL Bit Bucket descriptors (NVMe Base §4.3.2: the controller discards those
   * bytes): the bdev reads the whole transfer into a bounce buffer in IPU memory, and on
   * completion only the bytes the host asked for are written to it. Bit buckets are rare
   * (a host skipping what it does not want of a large read); this copy is their price.
   */
  #bucketed(req: NvmeRequest, bytes: number): number {
    const iobuf = this.core.ch.accel.iobuf
    const at = bytes <= iobuf.largeSize ? iobuf.get(bytes) : 0
    if (at === 0) return NvmeStatus.InternalError
    const host = (req.hostIovs ??= new IoVecList(256))
    host.clear()
    for (let i = 0; i < req.iovs.count; i++) host.push(req.iovs.addr[i]!, req.iovs.len[i]!)
    req.iovs.clear().push(at, bytes)
    req.domain = null
    req.bounce = at
    return NvmeStatus.Success
  }

  /** Writes a bucketed read's kept bytes from its bounce to the host; the status. */
  #unbounce(req: NvmeRequest): number {
    let st = req.status
    if (st === NvmeStatus.Success) {
      // up to 256 host ranges, each page of which may land elsewhere: more than #phys holds
      const need = this.host.translationBound(req.hostIovs!)
      const phys = need <= this.#phys.capacity ? this.#phys.clear() : new IoVecList(need)
      if (this.host.translateForDma(req.hostIovs!, phys, Access.Write) !== Status.Ok) st = NvmeStatus.DataTransferError
      else {
        // walk the transfer: bucket ranges are skipped, the rest fills phys in order
        const m = this.#pm.bytes
        const b = req.buckets
        const total = req.length
        let src = 0
        let bi = 0
        let pi = 0
        let po = 0
        while (src < total && pi < phys.count) {
          if (bi < b.count && src === b.addr[bi]!) {
            src += b.len[bi]!
            bi++
            continue
          }
          const stop = bi < b.count ? b.addr[bi]! : total
          const n = Math.min(stop - src, phys.len[pi]! - po)
          m.copyWithin(phys.addr[pi]! + po, req.bounce + src, req.bounce + src + n)
          src += n
          po += n
          if (po === phys.len[pi]!) {
            pi++
            po = 0
          }
        }
      }
    }
    this.core.ch.accel.iobuf.put(req.bounce)
    req.bounce = 0
    return st
  }

  /**
   * CMBLOC.CDPMLS is 0 (no CMB Data Pointer Mixed Locations Support): a command's data is all
   * in the CMB (BAR 2) or all in host memory, else Invalid Use of Controller Memory Buffer.
   * A range counts where it starts, as QEMU's nvme_map_addr takes it (one that runs off the
   * CMB's end fails as a DMA: Data Transfer Error).
   */
  #cmbMixed(req: NvmeRequest): number {
    const bar = this.#cmbBar()
    if (bar === undefined || bar.address < 0) return NvmeStatus.Success
    const l = req.iovs
    let inCmb = 0
    for (let i = 0; i < l.count; i++) if (l.addr[i]! >= bar.address && l.addr[i]! < bar.address + bar.size) inCmb++
    if (inCmb === 0) return NvmeStatus.Success
    // data in the CMB needs the controller memory space enabled (CMBMSC.CMSE)
    if (inCmb !== l.count || (this.#view.getUint32(Reg.CMBMSC, true) & 2) === 0) return NvmeStatus.InvalidControllerMemoryBufferUse
    return NvmeStatus.Success
  }

  // ---- completion ----

  /** @internal a command completed in the core */
  completed(req: NvmeRequest): void {
    const sq = req.transport as Sq
    sq.inflight--
    if (req.bounce !== 0) {
      const st = this.#unbounce(req)
      if (st !== req.status) {
        req.status = st
        req.dnr = false
      }
    }
    if (this.#reqEpoch.get(req) !== this.#epoch || this.#sqs[sq.qid] !== sq) {
      // from before a reset or a deleted queue: nothing is posted
      sq.free.push(req)
      if (sq.deleting !== null && sq.inflight === 0) sq.deleting()
      return
    }
    const cq = sq.cq
    if (cq.overflow.length > 0 || this.#full(cq)) cq.overflow.push(req)
    else this.#post(cq, sq, req)
    if (sq.deleting !== null && sq.inflight === 0) sq.deleting()
    if (sq.head !== sq.tail) this.#dirty.add(sq)
    this.#schedule()
  }

  #full(cq: Cq): boolean {
    return (cq.tail + 1) % cq.size === cq.head
  }

  #drainOverflow(cq: Cq): void {
    while (cq.overflow.length > 0 && !this.#full(cq)) {
      const req = cq.overflow.shift()!
      this.#post(cq, req.transport as Sq, req)
    }
    this.#irqDirty.add(cq)
    this.#schedule()
  }

  /** Writes the CQE (NVMe Base §4.6): dword 3 (CID, status and phase) last, so a poller never sees half an entry. */
  #post(cq: Cq, sq: Sq, req: NvmeRequest): void {
    const one = this.#one.clear().push(cq.base + cq.tail * 16, 16)
    const phys = this.#phys.clear()
    const ok = this.host.translateForDma(one, phys, Access.Write) === Status.Ok && phys.count === 1 && phys.addr[0]! % 4 === 0
    if (ok) {
      const at = phys.addr[0]!
      const m = this.#mem.buffer === this.#pm.memory.buffer ? this.#mem : (this.#mem = new DataView(this.#pm.memory.buffer))
      m.setUint32(at, req.cdw0 >>> 0, true)
      m.setUint32(at + 4, req.cdw1 >>> 0, true)
      m.setUint32(at + 8, (sq.head & 0xffff) | (sq.qid << 16), true)
      const status = ((req.status & 0xff) << 1) | (((req.status >> 8) & 7) << 9) | (req.dnr && req.status !== 0 ? 1 << 15 : 0)
      const dw3 = (req.cid & 0xffff) | (((status | cq.phase) & 0xffff) << 16)
      Atomics.store(this.#mem32, (at + 12) >>> 2, dw3 | 0)
      cq.tail = (cq.tail + 1) % cq.size
      if (cq.tail === 0) cq.phase ^= 1
      cq.pendingIrq++
      this.#irqDirty.add(cq)
    } else this.#fail(`the controller cannot write completion queue ${cq.qid} at ${cq.base + cq.tail * 16}`)
    sq.free.push(req)
  }

  /** Interrupts for the completion queues that got entries (coalescing: NVMe Base §5.27.1.9). */
  #interrupts(): void {
    const f = this.core.features
    for (const cq of this.#irqDirty) {
      this.#irqDirty.delete(cq)
      if (!cq.ien || cq.pendingIrq === 0) continue
      const coalesce = cq.qid !== 0 && (f.coalescingThreshold > 0 || f.coalescingTime > 0) && !f.coalescingDisabled.has(cq.iv)
      // TIME 0 "corresponds to no delay" (NVMe Base, Interrupt Coalescing): the threshold alone never withholds an interrupt
      if (!coalesce || f.coalescingTime === 0 || cq.pendingIrq >= f.coalescingThreshold + 1) this.#signal(cq)
      else if (cq.timer === null && f.coalescingTime > 0) {
        // aggregation time in 100 µs units; the event loop's timers go by the millisecond
        cq.timer = setTimeout(() => {
          cq.timer = null
          if (this.#cqs[cq.qid] === cq && cq.pendingIrq > 0) this.#signal(cq)
        }, Math.max(1, Math.ceil(f.coalescingTime / 10)))
        cq.timer.unref?.()
      }
    }
  }

  #signal(cq: Cq): void {
    if (cq.timer !== null) {
      clearTimeout(cq.timer)
      cq.timer = null
    }
    cq.pendingIrq = 0
    this.counters.interrupts++
    this.fn.msix!.signal(cq.iv)
  }

  interruptsChanged(): void {
    for (const cq of this.#cqs) if (cq !== undefined && cq.pendingIrq > 0) this.#irqDirty.add(cq)
    this.#schedule()
  }

  // ---- queue management (ControllerTransport) ----

  createIoCq(req: NvmeRequest): number {
    const qid = req.cdw(10) & 0xffff
    const qsize = (req.cdw(10) >>> 16) + 1
    const pc = req.cdw(11) & 1
    const ien = ((req.cdw(11) >>> 1) & 1) === 1
    const iv = req.cdw(11) >>> 16
    const base = req.u64(24)
    const cc = this.#view.getUint32(Reg.CC, true)
    if (((cc >>> 20) & 0xf) !== 4) return NvmeStatus.InvalidField // CC.IOCQES must be 4 (16 bytes)
    if (qid === 0 || qid > this.core.features.ioCqs + 1 || this.#cqs[qid] !== undefined) return AdminCommandStatus.InvalidQueueIdentifier
    if (qsize < 2 || qsize > this.maxQueueEntries) return AdminCommandStatus.InvalidQueueSize
    if (pc === 0) return NvmeStatus.InvalidField // CAP.CQR: queues are physically contiguous
    if (iv >= this.fn.msix!.vectors) return AdminCommandStatus.InvalidInterruptVector
    if (base % (4096 << ((cc >>> 7) & 0xf)) !== 0) return NvmeStatus.PrpOffsetInvalid
    // CMBSZ.CQS is 0: completion queues may not live in the CMB (NVMe Base §8.2.1)
    if (this.#inCmb(base, qsize * 16)) return NvmeStatus.InvalidControllerMemoryBufferUse
    this.#cqs[qid] = new Cq(qid, base, qsize, iv, ien)
    return NvmeStatus.Success
  }

  createIoSq(req: NvmeRequest): number {
    const qid = req.cdw(10) & 0xffff
    const qsize = (req.cdw(10) >>> 16) + 1
    const pc = req.cdw(11) & 1
    const cqid = req.cdw(11) >>> 16
    const base = req.u64(24)
    const cc = this.#view.getUint32(Reg.CC, true)
    if (((cc >>> 16) & 0xf) !== 6) return NvmeStatus.InvalidField // CC.IOSQES must be 6 (64 bytes)
    if (qid === 0 || qid > this.core.features.ioSqs + 1 || this.#sqs[qid] !== undefined) return AdminCommandStatus.InvalidQueueIdentifier
    if (qsize < 2 || qsize > this.maxQueueEntries) return AdminCommandStatus.InvalidQueueSize
    if (pc === 0) return NvmeStatus.InvalidField
    const cq = cqid === 0 ? undefined : this.#cqs[cqid]
    if (cq === undefined) return AdminCommandStatus.CompletionQueueInvalid
    if (base % (4096 << ((cc >>> 7) & 0xf)) !== 0) return NvmeStatus.PrpOffsetInvalid
    // a queue in the CMB needs the controller memory space enabled (CMBMSC.CMSE, NVMe Base §3.1.3.13)
    if (this.#inCmb(base, qsize * 64) && (this.#view.getUint32(Reg.CMBMSC, true) & 2) === 0) return NvmeStatus.InvalidControllerMemoryBufferUse
    const sq = new Sq(qid, base, qsize, cq)
    cq.sqs.add(sq)
    this.#sqs[qid] = sq
    return NvmeStatus.Success
  }

  deleteIoSq(req: NvmeRequest): number | Promise<number> {
    const qid = req.cdw(10) & 0xffff
    const sq = qid === 0 ? undefined : this.#sqs[qid]
    if (sq === undefined) return AdminCommandStatus.InvalidQueueIdentifier
    const gone = () => {
      if (this.#sqs[qid] === sq) this.#sqs[qid] = undefined
      sq.cq.sqs.delete(sq)
      this.#dirty.delete(sq)
    }
    if (sq.inflight === 0) {
      gone()
      return NvmeStatus.Success
    }
    // the commands in flight complete (and post) first; nothing new is fetched meanwhile
    return new Promise<number>((resolve) => {
      sq.deleting = () => {
        gone()
        resolve(NvmeStatus.Success)
      }
    })
  }

  deleteIoCq(req: NvmeRequest): number {
    const qid = req.cdw(10) & 0xffff
    const cq = qid === 0 ? undefined : this.#cqs[qid]
    if (cq === undefined) return AdminCommandStatus.InvalidQueueIdentifier
    if (cq.sqs.size > 0) return AdminCommandStatus.InvalidQueueDeletion
    if (cq.timer !== null) clearTimeout(cq.timer)
    this.#cqs[qid] = undefined
    return NvmeStatus.Success
  }

  abort(): boolean {
    // commands are fetched only to be executed at once: none waits here to be aborted
    return false
  }

  /** Queues in existence (for tests and monitoring): qid, entries, head, tail. */
  queues(): { sq: { qid: number; size: number; head: number; tail: number; cqid: number }[]; cq: { qid: number; size: number; head: number; tail: number; iv: number }[] } {
    return {
      sq: this.#sqs.filter((q): q is Sq => q !== undefined).map((q) => ({ qid: q.qid, size: q.size, head: q.head, tail: q.tail, cqid: q.cq.qid })),
      cq: this.#cqs.filter((q): q is Cq => q !== undefined).map((q) => ({ qid: q.qid, size: q.size, head: q.head, tail: q.tail, iv: q.iv })),
    }
  }
}

const WRITABLE = new Set<number>([Reg.INTMS, Reg.INTMC, Reg.CC, Reg.AQA, Reg.ASQ, Reg.ASQ + 4, Reg.ACQ, Reg.ACQ + 4, Reg.CMBMSC, Reg.CMBMSC + 4, Reg.PMRCTL])

function completed(req: NvmeRequest): void {
  ;((req.owner as NvmeController).transport as NvmePcieController).completed(req)
}
