// The host side of the simulation: an NVMe driver in the manner of Linux's nvme-pci. It owns
// a part of host DRAM (queues, PRP lists and SGL segments, the buffers it is given), maps
// what the controller may touch in the function's IOMMU context, and drives the controller
// through BAR0 only, as a real host does:
//
//   init      disable (CC.EN 0, wait CSTS.RDY 0), the admin queue (AQA, ASQ, ACQ), enable
//             (CC: NVM, 4 KiB pages, round robin, IOSQES 6, IOCQES 4, EN 1), wait CSTS.RDY
//             within CAP.TO, Identify Controller, Number of Queues, the I/O queue pairs
//             (each CQ with its own MSI-X vector), the active namespaces and their formats
//   I/O       an SQE at the SQ tail, PRPs (PRP1, PRP2, or a list page) or SGLs (one data
//             block, or a last segment of data blocks) built from host buffers; the doorbell
//             rung once per turn for all the commands queued in it
//   complete  by MSI-X interrupt, or by polling: CQEs whose phase tag flipped are consumed
//             and the CQ head doorbell written once per batch
//   trouble   a command older than the timeout gets an Abort; if it is not aborted, or the
//             controller reports CSTS.CFS, the controller is reset and the queues rebuilt,
//             and the commands in flight fail (Linux's timeout and reset handlers)
import { Access, type PhysicalMemory, RegionAllocator } from '@ipukit/memory'
import { NvmeError } from './errors.js'

// What the driver uses of the fabric, the function and the IOMMU: a PciFabric, its
// PciFunction and an Iommu have all of it; so does the proxy of a driver on its own thread
// (host-thread.ts), whose accesses cross to the thread that owns the fabric.

/** A BAR mapping as the driver uses it (PciFabric.ioremap's window). */
export interface HostMmio {
  /** the BAR's bus address now (-1 while it does not decode) */
  readonly base: number
  readonly size: number
  read(offset: number, size: 1 | 2 | 4): number
  write(offset: number, size: 1 | 2 | 4, value: number): void
  read64(offset: number): bigint
  write64(offset: number, value: bigint): void
}

/** A BAR of the function, as the driver finds the CMB's (PciFunction.bars). */
export interface HostBar {
  readonly index: number
  readonly kind: 'registers' | 'memory'
  readonly size: number
  /** bus address while the function decodes memory, else -1 */
  readonly address: number
  /** the region of the physical memory behind a memory BAR */
  readonly region: { readonly base: number } | undefined
}

/** What the driver uses of its PCI function. */
export interface HostFunction {
  readonly name: string
  /** requester ID, the IOMMU context the driver maps into */
  readonly rid: number
  readonly msix: { readonly vectors: number } | undefined
  readonly bars: readonly HostBar[]
  readonly config: {
    findCapability(id: number): number
    read(offset: number, size: 1 | 2 | 4): number
    write(offset: number, size: 1 | 2 | 4, value: number): void
  }
}

/** What the driver uses of the fabric: its physical memory, BAR mappings and the interrupt controller. */
export interface HostFabric {
  readonly physical: PhysicalMemory | undefined
  readonly interrupts: {
    allocate(count?: number): number
    onInterrupt(data: number, handler: ((data: number) => void) | undefined): void
  }
  ioremap(fn: HostFunction, index: number): HostMmio
}

/** What the driver uses of the IOMMU: mapping host buffers for its function. */
export interface HostIommu {
  map(rid: number, iova: number, hpa: number, length: number, access: number): void
  unmap(rid: number, iova: number, length: number): void
}

/** A buffer in host memory: host physical address, IOVA the device uses, bytes. */
export interface HostBuffer {
  readonly hpa: number
  readonly iova: number
  readonly length: number
  /** the bytes, a view of host DRAM */
  readonly bytes: Uint8Array
}

export interface Completion {
  /** NVMe status (SCT << 8 | SC); 0 success */
  status: number
  cdw0: number
  cdw1: number
  dnr: boolean
}

export type HostCompletion<T> = (arg: T, c: Completion) => void

export interface HostDriverOptions {
  /** a PciFabric (or a host thread's proxy of one, see connectHostThread) */
  fabric: HostFabric
  fn: HostFunction
  iommu: HostIommu
  /** 'interrupt' (MSI-X, the default) or 'poll' (the caller polls, or a poller runs each turn) */
  mode?: 'interrupt' | 'poll'
  /** I/O queue pairs to ask for; default 1 */
  ioQueues?: number
  /** entries per I/O queue; default 128 */
  queueDepth?: number
  /** admin queue entries; default 32 (Linux's NVME_AQ_DEPTH) */
  adminDepth?: number
  /** a command older than this is aborted; default 30 000 ms (Linux's io_timeout) */
  timeoutMs?: number
  /** build SGLs rather than PRPs when the controller supports them; default false (as Linux below 32 KiB) */
  sgl?: boolean
  /** the IOVA the driver's allocations get: IOVA = HPA + iovaOffset; default 1 << 32 */
  iovaOffset?: number
  /**
   * put the I/O submission queues in the controller memory buffer when it offers one for
   * them (CAP.CMBS, CMBSZ.SQS), as Linux's use_cmb_sqes: the host writes SQEs across the
   * link and the controller fetches them from its own memory; default false
   */
  cmbSq?: boolean
  /** where in host DRAM the driver allocates; default one allocator over the host region shared by every driver on that physical memory */
  allocator?: RegionAllocator
}

/** One host DRAM allocator per physical memory: drivers of several functions share the host's memory as a kernel does. */
const hostAllocators = new WeakMap<PhysicalMemory, RegionAllocator>()
/** @internal the host DRAM allocator of this thread's drivers on `pm` */
export function hostAllocator(pm: PhysicalMemory): RegionAllocator {
  let a = hostAllocators.get(pm)
  if (a === undefined) hostAllocators.set(pm, (a = new RegionAllocator(pm.region('host'))))
  return a
}

export interface HostNamespace {
  nsid: number
  blocks: number
  /** data bytes per block, metadata bytes per block (extended LBA) */
  blockSize: number
  mdSize: number
  /** PI type (0 none) and whether it sits in the first bytes of the metadata */
  piType: number
  piFirst: boolean
}

interface Slot {
  cid: number
  busy: boolean
  cb: HostCompletion<unknown> | null
  arg: unknown
  started: number
  aborting: boolean
  /** a page for this slot's PRP list or SGL segment */
  list: HostBuffer
}

class HostQueue {
  /** the SQ lives in the controller memory buffer (not host DRAM: not the driver's to free) */
  sqInCmb = false
  sqTail = 0
  cqHead = 0
  phase = 1
  /** commands placed in the SQ since the last doorbell */
  unrung = 0
  readonly slots: Slot[] = []
  readonly free: number[] = []
  constructor(
    readonly qid: number,
    readonly depth: number,
    readonly sq: HostBuffer,
    readonly cq: HostBuffer,
    readonly vector: number,
  ) {}
}

const CAP = 0x00
const CC = 0x14
const CSTS = 0x1c
const AQA = 0x24
const ASQ = 0x28
const ACQ = 0x30
const PAGE = 4096

export class NvmeHostDriver {
  readonly fabric: HostFabric
  readonly fn: HostFunction
  readonly iommu: HostIommu
  readonly mode: 'interrupt' | 'poll'
  readonly timeoutMs: number
  /** build SGLs (when the controller supports them) rather than PRPs; may change between commands */
  useSgl: boolean
  readonly bar: HostMmio
  readonly namespaces = new Map<number, HostNamespace>()
  /** the Identify Controller data the driver read */
  identify: Uint8Array = new Uint8Array(4096)
  /** the largest transfer, bytes (MDTS) */
  maxTransfer = 0
  /** what happened: commands, interrupts, aborts, resets */
  readonly counters = { commands: 0, completions: 0, interrupts: 0, aborts: 0, resets: 0, timeouts: 0 }
  readonly #pm: PhysicalMemory
  readonly #alloc: RegionAllocator
  readonly #iovaOffset: number
  readonly #hostBase: number
  readonly #ioQueuesWanted: number
  readonly #depth: number
  readonly #adminDepth: number
  #admin: HostQueue | null = null
  readonly #io: HostQueue[] = []
  #dstrd = 0
  #mqes = 0
  #timeoutCap = 0
  #sglSupported = false
  #dv: DataView
  #ringScheduled = false
  readonly #toRing = new Set<HostQueue>()
  #watchdog: ReturnType<typeof setInterval> | null = null
  #resetting: Promise<void> | null = null
  #vectors: number[] = []
  readonly #rid: number
  readonly #cmbSqWanted: boolean
  /** the CMB, once mapped: its bytes in the device region, bus address, size, next free offset */
  #cmb: { at: number; bus: number; size: number; used: number } | null = null

  /** I/O submission queues in the CMB (after init) */
  get cmbSqs(): boolean {
    return this.#io.some((q) => q.sqInCmb)
  }

  constructor(o: HostDriverOptions) {
    this.fabric = o.fabric
    this.fn = o.fn
    this.iommu = o.iommu
    const mode: unknown = o.mode ?? 'interrupt'
    if (mode !== 'interrupt' && mode !== 'poll') throw new NvmeError('NVME_BAD_ARGUMENT', `mode must be 'interrupt' or 'poll', got '${String(mode)}'`)
    this.mode = mode
    const int = (name: string, v: number | undefined, lo: number, hi: number) => {
      if (v !== undefined && (!Number.isInteger(v) || v < lo || v > hi)) throw new NvmeError('NVME_BAD_ARGUMENT', `${name} must be an integer in [${lo}, ${hi}], got ${v}`)
    }
    int('ioQueues', o.ioQueues, 1, 65535)
    int('queueDepth', o.queueDepth, 2, 65536)
    int('adminDepth', o.adminDepth, 2, 4096)
    if (o.timeoutMs !== undefined && !(o.timeoutMs > 0)) throw new NvmeError('NVME_BAD_ARGUMENT', `timeoutMs must be positive, got ${o.timeoutMs}`)
    this.timeoutMs = o.timeoutMs ?? 30_000
    this.useSgl = o.sgl ?? false
    this.#ioQueuesWanted = o.ioQueues ?? 1
    this.#depth = o.queueDepth ?? 128
    this.#adminDepth = o.adminDepth ?? 32
    this.#iovaOffset = o.iovaOffset ?? 2 ** 32
    this.#pm = o.fabric.physical!
    this.#dv = new DataView(this.#pm.memory.buffer)
    const host = this.#pm.region('host')
    this.#hostBase = host.base
    this.#alloc = o.allocator ?? hostAllocator(this.#pm)
    this.#rid = o.fn.rid
    this.#cmbSqWanted = o.cmbSq ?? false
    this.bar = o.fabric.ioremap(o.fn, 0)
  }

  // ---- host memory ----

  /** Host DRAM for the device: allocated, zeroed and mapped read-write at IOVA = HPA + offset. */
  allocBuffer(length: number, access: 1 | 2 | 3 = 3): HostBuffer {
    const bytes = Math.ceil(length / PAGE) * PAGE
    const at = this.#alloc.alloc(bytes)
    if (at < 0) throw new NvmeError('NVME_NO_SPACE', `host DRAM has no ${bytes} free bytes for the driver`)
    const hpa = at - this.#hostBase
    const iova = hpa + this.#iovaOffset
    this.iommu.map(this.#rid, iova, hpa, bytes, access)
    const view = this.#pm.bytes.subarray(at, at + length)
    view.fill(0)
    return { hpa, iova, length, bytes: view }
  }

  freeBuffer(b: HostBuffer): void {
    const bytes = Math.ceil(b.length / PAGE) * PAGE
    this.iommu.unmap(this.#rid, b.iova, bytes)
    this.#alloc.free(b.hpa + this.#hostBase)
  }

  // ---- registers ----

  #r32(off: number): number {
    return this.bar.read(off, 4) >>> 0
  }

  #w32(off: number, v: number): void {
    this.bar.write(off, 4, v >>> 0)
  }

  /** lo_hi_writeq, as Linux writes ASQ and ACQ */
  #w64(off: number, v: number): void {
    this.#w32(off, v % 0x100000000)
    this.#w32(off + 4, Math.floor(v / 0x100000000))
  }

  /** Polls CSTS until `pred` holds, yielding to the event loop; rejects after CAP.TO. */
  async #waitCsts(pred: (csts: number) => boolean, what: string): Promise<number> {
    const limit = performance.now() + (this.#timeoutCap + 1) * 500
    for (;;) {
      const s = this.#r32(CSTS)
      if (pred(s)) return s
      if (s === 0xffffffff) throw new NvmeError('NVME_UNSUPPORTED', 'the controller is gone (CSTS reads all ones)')
      if (performance.now() > limit) throw new NvmeError('NVME_TIMEOUT', `${what}: no ${what.includes('ready') ? 'CSTS.RDY' : 'change'} within CAP.TO (${this.#timeoutCap * 500} ms); CSTS ${s.toString(16)}`)
      await new Promise((r) => setTimeout(r, 1))
    }
  }

  // ---- initialization ----

  /** Brings the controller up as Linux does (see the module comment). */
  async init(): Promise<void> {
    const capLo = this.#r32(CAP)
    const capHi = this.#r32(CAP + 4)
    this.#mqes = (capLo & 0xffff) + 1
    this.#timeoutCap = (capLo >>> 24) & 0xff
    this.#dstrd = capHi & 0xf
    const mpsmin = (capHi >>> 16) & 0xf
    if (mpsmin > 0) throw new NvmeError('NVME_UNSUPPORTED', `Minimum device page size ${4096 << mpsmin} too large for host (${PAGE})`)
    if (((capHi >>> 5) & 1) === 0) throw new NvmeError('NVME_UNSUPPORTED', 'the controller does not support the NVM command set (CAP.CSS)')
    await this.#disable()
    // the admin queue
    const depth = Math.min(this.#adminDepth, this.#mqes)
    this.#admin = this.#queue(0, depth, 0)
    this.#w32(AQA, ((depth - 1) << 16) | (depth - 1))
    this.#w64(ASQ, this.#admin.sq.iova)
    this.#w64(ACQ, this.#admin.cq.iova)
    if (this.mode === 'interrupt') this.#setupMsix()
    // CC without EN, then with it (newer kernels): NVM, MPS 0, RR, IOSQES 6, IOCQES 4
    const cc = (0 << 4) | (0 << 7) | (0 << 11) | (6 << 16) | (4 << 20)
    this.#w32(CC, cc)
    this.#w32(CC, cc | 1)
    const s = await this.#waitCsts((x) => (x & 1) === 1 || (x & 2) === 2, 'enable: waiting for ready')
    if ((s & 2) !== 0) throw new NvmeError('NVME_TIMEOUT', 'Device not ready; aborting initialisation: CSTS.CFS is set')
    this.#startWatchdog()
    // Identify Controller
    const id = this.allocBuffer(4096)
    let c = await this.admin((w) => this.#sqe(w, 0x06, 0, id, 4096, { 10: 1 }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Identify Controller failed: status ${c.status.toString(16)}`)
    this.identify = new Uint8Array(id.bytes)
    const mdts = this.identify[77]!
    this.maxTransfer = mdts === 0 ? 2 ** 31 : PAGE << mdts
    this.#sglSupported = (new DataView(this.identify.buffer).getUint32(536, true) & 3) !== 0
    // Number of Queues
    const want = this.#ioQueuesWanted - 1
    c = await this.admin((w) => this.#sqe(w, 0x09, 0, null, 0, { 10: 0x07, 11: (want << 16) | want }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Set Features Number of Queues failed: status ${c.status.toString(16)}`)
    const granted = Math.min((c.cdw0 & 0xffff) + 1, (c.cdw0 >>> 16) + 1, this.#ioQueuesWanted)
    this.#cmb = this.#cmbSqWanted && ((capHi >>> 25) & 1) === 1 ? this.#mapCmb() : null
    for (let q = 1; q <= granted; q++) await this.#createIoQueue(q)
    // the namespaces
    c = await this.admin((w) => this.#sqe(w, 0x06, 0, id, 4096, { 10: 2 }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Identify active namespace list failed: status ${c.status.toString(16)}`)
    const list = new DataView(id.bytes.buffer, id.bytes.byteOffset, 4096)
    const nsids: number[] = []
    for (let i = 0; i < 1024; i++) {
      const n = list.getUint32(4 * i, true)
      if (n === 0) break
      nsids.push(n)
    }
    for (const nsid of nsids) await this.#identifyNamespace(nsid, id)
    this.freeBuffer(id)
  }

  async #identifyNamespace(nsid: number, buf: HostBuffer): Promise<void> {
    const c = await this.admin((w) => this.#sqe(w, 0x06, nsid, buf, 4096, { 10: 0 }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Identify Namespace ${nsid} failed: status ${c.status.toString(16)}`)
    const d = new DataView(buf.bytes.buffer, buf.bytes.byteOffset, 4096)
    const nsze = d.getUint32(4, true) * 0x100000000 + d.getUint32(0, true)
    const flbas = d.getUint8(26)
    const index = (flbas & 0xf) | (((flbas >>> 5) & 3) << 4)
    const lbaf = d.getUint32(128 + 4 * index, true)
    const dps = d.getUint8(29)
    this.namespaces.set(nsid, { nsid, blocks: nsze, blockSize: 2 ** ((lbaf >>> 16) & 0xff), mdSize: lbaf & 0xffff, piType: dps & 7, piFirst: (dps & 8) !== 0 })
  }

  /**
   * Linux's nvme_map_cmb: CMBMSC.CRE makes CMBLOC and CMBSZ read (NVMe 1.4 and later), they
   * say which BAR and where in it, and CMBMSC.CBA with CMSE enables the controller memory
   * space at the BAR's bus address. Null when the CMB cannot hold submission queues.
   */
  #mapCmb(): { at: number; bus: number; size: number; used: number } | null {
    const CMBLOC = 0x38
    const CMBSZ = 0x3c
    const CMBMSC = 0x50
    this.#w32(CMBMSC, 1)
    const loc = this.#r32(CMBLOC)
    const sz = this.#r32(CMBSZ)
    if ((sz & 1) === 0) return null // CMBSZ.SQS
    const unit = 4096 << (4 * ((sz >>> 8) & 0xf))
    const size = (sz >>> 12) * unit
    const offset = (loc >>> 12) * unit
    const bir = loc & 7
    const bar = this.fn.bars.find((b) => b.index === bir)
    if (bar === undefined || bar.kind !== 'memory' || bar.region === undefined || bar.address < 0 || offset + size > bar.size) return null
    const bus = bar.address + offset
    this.#w32(CMBMSC + 4, Math.floor(bus / 0x100000000))
    this.#w32(CMBMSC, ((bus % 0x100000000) & ~0xfff) | 0b11) // CBA, CMSE, CRE
    return { at: bar.region.base + offset, bus, size, used: 0 }
  }

  /** An SQ's memory in the CMB, as a HostBuffer whose bytes are the device's (the host writes them across the link). */
  #cmbBuffer(length: number): HostBuffer | null {
    const cmb = this.#cmb
    const bytes = Math.ceil(length / PAGE) * PAGE
    if (cmb === null || cmb.used + bytes > cmb.size) return null
    const off = cmb.used
    cmb.used += bytes
    const view = this.#pm.bytes.subarray(cmb.at + off, cmb.at + off + length)
    view.fill(0)
    return { hpa: cmb.at + off - this.#hostBase, iova: cmb.bus + off, length, bytes: view }
  }

  async #disable(): Promise<void> {
    const cc = this.#r32(CC)
    if ((cc & 1) !== 0) this.#w32(CC, cc & ~1)
    await this.#waitCsts((x) => (x & 1) === 0, 'disable: waiting for not ready')
  }

  #queue(qid: number, depth: number, vector: number): HostQueue {
    const inCmb = qid === 0 ? null : this.#cmbBuffer(depth * 64)
    const q = new HostQueue(qid, depth, inCmb ?? this.allocBuffer(depth * 64), this.allocBuffer(depth * 16), vector)
    q.sqInCmb = inCmb !== null
    for (let i = 0; i < depth - 1; i++) {
      // one entry short of full: a full SQ cannot be told from an empty one
      q.slots.push({ cid: i, busy: false, cb: null, arg: null, started: 0, aborting: false, list: this.allocBuffer(PAGE) })
      q.free.push(depth - 2 - i)
    }
    return q
  }

  async #createIoQueue(qid: number): Promise<void> {
    const depth = Math.min(this.#depth, this.#mqes)
    const vector = this.mode === 'interrupt' ? Math.min(qid, this.fn.msix!.vectors - 1) : 0
    const q = this.#queue(qid, depth, vector)
    const ien = this.mode === 'interrupt' ? 2 : 0
    let c = await this.admin((w) => this.#sqeQueue(w, 0x05, q.cq.iova, { 10: ((depth - 1) << 16) | qid, 11: (vector << 16) | ien | 1 }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Create I/O CQ ${qid} failed: status ${c.status.toString(16)}`)
    c = await this.admin((w) => this.#sqeQueue(w, 0x01, q.sq.iova, { 10: ((depth - 1) << 16) | qid, 11: (qid << 16) | 1 }))
    if (c.status !== 0) throw new NvmeError('NVME_INIT', `Create I/O SQ ${qid} failed: status ${c.status.toString(16)}`)
    this.#io.push(q)
    if (this.mode === 'interrupt') this.#onVector(vector, q)
  }

  // ---- MSI-X ----

  #setupMsix(): void {
    const msix = this.fn.msix!
    const ic = this.fabric.interrupts
    const n = Math.min(msix.vectors, this.#ioQueuesWanted + 1)
    // the message data values stay the driver's: a reset programs the same ones again (else
    // every reset would take n more of the interrupt controller's, until it has none)
    const first = this.#vectors.length === n ? this.#vectors[0]! : ic.allocate(n)
    this.#vectors = []
    for (let v = 0; v < n; v++) {
      const data = first + v
      this.#vectors.push(data)
      // table entry v: address 0xFEE00000, upper 0, data, vector control 0 (unmasked)
      this.bar.write(0x2000 + 16 * v, 4, 0xfee0_0000)
      this.bar.write(0x2000 + 16 * v + 4, 4, 0)
      this.bar.write(0x2000 + 16 * v + 8, 4, data)
      this.bar.write(0x2000 + 16 * v + 12, 4, 0)
    }
    // Message Control: MSI-X Enable
    const cap = this.fn.config.findCapability(0x11)
    const mc = this.fn.config.read(cap + 2, 2)
    this.fn.config.write(cap + 2, 2, (mc | 0x8000) & ~0x4000)
    this.#onVector(0, null)
  }

  #onVector(v: number, q: HostQueue | null): void {
    const data = this.#vectors[v]
    if (data === undefined) return
    this.fabric.interrupts.onInterrupt(data, () => {
      this.counters.interrupts++
      if (v === 0) this.#reap(this.#admin!)
      if (q !== null) this.#reap(q)
    })
  }

  // ---- commands ----

  /** Writes an SQE with a data pointer for `buf` (null: none) into `w` (the slot's 64 bytes). */
  #sqe(w: SqeWriter, opcode: number, nsid: number, buf: HostBuffer | null, length: number, cdws: Record<number, number>): void {
    w.opcode(opcode)
    w.u32(4, nsid)
    for (const [k, v] of Object.entries(cdws)) w.u32(4 * Number(k), v >>> 0)
    if (buf !== null) w.data([[buf.iova, length]], false)
  }

  #sqeQueue(w: SqeWriter, opcode: number, base: number, cdws: Record<number, number>): void {
    w.opcode(opcode)
    w.u64(24, base)
    for (const [k, v] of Object.entries(cdws)) w.u32(4 * Number(k), v >>> 0)
  }

  /** An admin command; resolves with its completion. */
  admin(build: (w: SqeWriter) => void): Promise<Completion> {
    return new Promise((resolve) => {
      const rc = this.submit(this.#admin!, build, (_: null, c) => resolve(c), null)
      if (rc !== 0) resolve({ status: 0x006, cdw0: 0, cdw1: 0, dnr: false })
    })
  }

  /** I/O queue i (0-based) */
  ioQueue(i: number): HostQueue {
    const q = this.#io[i]
    if (q === undefined) throw new NvmeError('NVME_BAD_ARGUMENT', `no I/O queue ${i} (have ${this.#io.length})`)
    return q
  }

  get ioQueues(): number {
    return this.#io.length
  }

  /** entries per I/O queue (what was asked, bounded by CAP.MQES); a queue holds one fewer command */
  get queueDepth(): number {
    return this.#io[0]?.depth ?? this.#depth
  }

  /**
   * Places a command in `q`'s SQ: `build` fills the SQE (the CID is set here) and the doorbell
   * rings at the end of the turn. cb(arg, completion) later. Returns -12 when the queue is full.
   */
  submit<T>(q: HostQueue, build: (w: SqeWriter) => void, cb: HostCompletion<T>, arg: T): number {
    const i = q.free.pop()
    if (i === undefined) return -12
    const slot = q.slots[i]!
    slot.busy = true
    slot.cb = cb as HostCompletion<unknown>
    slot.arg = arg
    slot.started = performance.now()
    slot.aborting = false
    const w = writer.at(this, q.sq, q.sqTail * 64, slot.list)
    build(w)
    w.u16(2, slot.cid)
    q.sqTail = (q.sqTail + 1) % q.depth
    q.unrung++
    this.counters.commands++
    this.#outstanding++
    if (this.mode === 'poll' && this.autoPoll && !this.#polling) {
      this.#polling = true
      setImmediate(this.#pollLoop)
    }
    this.#toRing.add(q)
    if (!this.#ringScheduled) {
      this.#ringScheduled = true
      queueMicrotask(this.#ring)
    }
    return 0
  }

  /** commands submitted and not yet completed, on every queue */
  get outstanding(): number {
    return this.#outstanding
  }

  /** in polling mode, poll on every turn of the event loop while commands are outstanding (set false to poll yourself) */
  autoPoll = true
  #outstanding = 0
  #polling = false
  readonly #pollLoop = (): void => {
    this.poll()
    if (this.#outstanding > 0 && this.autoPoll) setImmediate(this.#pollLoop)
    else this.#polling = false
  }

  readonly #ring = (): void => {
    this.#ringScheduled = false
    for (const q of this.#toRing) {
      this.#toRing.delete(q)
      if (q.unrung === 0) continue
      q.unrung = 0
      this.#w32(0x1000 + 2 * q.qid * (4 << this.#dstrd), q.sqTail)
    }
  }

  /** Reads a read or write's data pointer into the SQE: PRPs, or SGLs when chosen and supported. */
  #io_(w: SqeWriter, opcode: number, nsid: number, lba: number, blocks: number, segs: readonly [number, number][], extra: Record<number, number>): void {
    w.opcode(opcode)
    w.u32(4, nsid)
    w.u64(40, lba)
    w.u32(48, ((blocks - 1) & 0xffff) | (extra[12] ?? 0))
    if (extra[13] !== undefined) w.u32(52, extra[13])
    if (extra[14] !== undefined) w.u32(56, extra[14])
    if (extra[15] !== undefined) w.u32(60, extra[15])
    w.data(segs, this.useSgl && this.#sglSupported)
  }

  /**
   * Reads or writes `blocks` blocks at `lba` of namespace `nsid` to or from `segs` (IOVA,
   * length pairs in host memory, mapped by the caller): queue i. Returns -12 when full.
   * `cdw12` carries the high bits (FUA, PRINFO); cdw14/15 the PI tags.
   */
  rw<T>(i: number, write: boolean, nsid: number, lba: number, blocks: number, segs: readonly [number, number][], cb: HostCompletion<T>, arg: T, extra: Record<number, number> = {}): number {
    return this.submit(this.ioQueue(i), (w) => this.#io_(w, write ? 0x01 : 0x02, nsid, lba, blocks, segs, extra), cb, arg)
  }

  /** Promise forms of rw. */
  read(nsid: number, lba: number, blocks: number, buf: HostBuffer, queue = 0, extra: Record<number, number> = {}): Promise<Completion> {
    return this.#promise(queue, false, nsid, lba, blocks, [[buf.iova, buf.length]], extra)
  }

  write(nsid: number, lba: number, blocks: number, buf: HostBuffer, queue = 0, extra: Record<number, number> = {}): Promise<Completion> {
    return this.#promise(queue, true, nsid, lba, blocks, [[buf.iova, buf.length]], extra)
  }

  #promise(queue: number, write: boolean, nsid: number, lba: number, blocks: number, segs: [number, number][], extra: Record<number, number>): Promise<Completion> {
    return new Promise((resolve, reject) => {
      const rc = this.rw(queue, write, nsid, lba, blocks, segs, (_: null, c) => resolve(c), null, extra)
      if (rc !== 0) reject(new NvmeError('NVME_QUEUE_FULL', `I/O queue ${queue} is full`))
    })
  }

  /** A raw I/O command on queue i (any opcode; build fills the SQE). */
  io<T>(i: number, build: (w: SqeWriter) => void, cb: HostCompletion<T>, arg: T): number {
    return this.submit(this.ioQueue(i), build, cb, arg)
  }

  // ---- completions ----

  /** Consumes the completions queue q has posted; returns how many. Polling mode calls it (poll()). */
  #reap(q: HostQueue): number {
    const base = this.#hostBase + q.cq.hpa
    const dv = this.#dv.buffer === this.#pm.memory.buffer ? this.#dv : (this.#dv = new DataView(this.#pm.memory.buffer))
    let n = 0
    for (;;) {
      const at = base + q.cqHead * 16
      const dw3 = dv.getUint32(at + 12, true)
      if (((dw3 >>> 16) & 1) !== q.phase) break
      const cid = dw3 & 0xffff
      const field = dw3 >>> 16
      const slot = q.slots[cid]
      q.cqHead = (q.cqHead + 1) % q.depth
      if (q.cqHead === 0) q.phase ^= 1
      n++
      if (slot === undefined || !slot.busy) continue // a stray completion: ignored, as Linux warns and drops it
      const c: Completion = { status: (((field >>> 9) & 7) << 8) | ((field >>> 1) & 0xff), cdw0: dv.getUint32(at, true), cdw1: dv.getUint32(at + 4, true), dnr: ((field >>> 15) & 1) === 1 }
      const cb = slot.cb!
      const arg = slot.arg
      slot.busy = false
      slot.cb = null
      slot.arg = null
      q.free.push(cid)
      this.counters.completions++
      this.#outstanding--
      cb(arg, c)
    }
    if (n > 0) this.#w32(0x1000 + (2 * q.qid + 1) * (4 << this.#dstrd), q.cqHead)
    return n
  }

  /** Polls every queue once (polling mode, or to reap early); returns the completions consumed. */
  poll(): number {
    let n = this.#admin === null ? 0 : this.#reap(this.#admin)
    for (const q of this.#io) n += this.#reap(q)
    return n
  }

  // ---- timeouts, abort, reset ----

  #startWatchdog(): void {
    if (this.#watchdog !== null) return
    const period = Math.max(5, Math.min(1000, this.timeoutMs / 4))
    this.#watchdog = setInterval(() => this.#check(), period)
    this.#watchdog.unref?.()
  }

  #check(): void {
    if (this.#resetting !== null) return
    if ((this.#r32(CSTS) & 2) !== 0) {
      void this.reset('CSTS.CFS is set')
      return
    }
    const now = performance.now()
    for (const q of [this.#admin!, ...this.#io]) {
      for (const s of q.slots) {
        if (!s.busy || now - s.started < this.timeoutMs) continue
        this.counters.timeouts++
        if (s.aborting || q.qid === 0) {
          // an abort did not help, or an admin command hung: reset (Linux's nvme_timeout)
          void this.reset(`command ${s.cid} on queue ${q.qid} timed out`)
          return
        }
        s.aborting = true
        s.started = now
        this.counters.aborts++
        const sqid = q.qid
        const cid = s.cid
        void this.admin((w) => {
          w.opcode(0x08)
          w.u32(40, (cid << 16) | sqid)
        }).then((c) => {
          // dword 0 bit 0 set: not aborted; the next check resets if it still has not completed
          void c
        })
      }
    }
  }

  /**
   * Resets the controller (CC.EN 0, then init again): the commands in flight complete with
   * Command Abort Requested (as Linux fails them to the block layer), and the queues are
   * rebuilt.
   */
  reset(why = 'reset'): Promise<void> {
    if (this.#resetting !== null) return this.#resetting
    this.counters.resets++
    this.#resetting = (async () => {
      const pending: Slot[] = []
      for (const q of [this.#admin, ...this.#io]) if (q !== null) for (const s of q.slots) if (s.busy) pending.push(s)
      await this.#disable()
      for (const s of pending) {
        // completed while the controller was being disabled (polled or by interrupt): already reaped
        if (!s.busy) continue
        const cb = s.cb
        s.busy = false
        s.cb = null
        this.#outstanding--
        cb?.(s.arg, { status: 0x007, cdw0: 0, cdw1: 0, dnr: false })
      }
      for (const q of [this.#admin, ...this.#io]) if (q !== null) this.#freeQueue(q)
      this.#io.length = 0
      this.#admin = null
      this.namespaces.clear()
      void why
      await this.init()
    })().finally(() => {
      this.#resetting = null
    })
    return this.#resetting
  }

  #freeQueue(q: HostQueue): void {
    if (!q.sqInCmb) this.freeBuffer(q.sq)
    this.freeBuffer(q.cq)
    for (const s of q.slots) this.freeBuffer(s.list)
  }

  /** Normal shutdown (CC.SHN 01b, wait CSTS.SHST 10b), then disable; the driver stops. */
  async shutdown(): Promise<void> {
    if (this.#watchdog !== null) clearInterval(this.#watchdog)
    this.#watchdog = null
    const cc = this.#r32(CC)
    this.#w32(CC, (cc & ~(3 << 14)) | (1 << 14))
    await this.#waitCsts((x) => ((x >>> 2) & 3) === 2, 'shutdown: waiting for shutdown complete')
    await this.#disable()
  }

  /** Stops the watchdog (for tests that leave the controller as it is). */
  stop(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog)
    this.#watchdog = null
  }

  /** @internal */
  hostView(): DataView {
    return this.#dv.buffer === this.#pm.memory.buffer ? this.#dv : (this.#dv = new DataView(this.#pm.memory.buffer))
  }

  /** @internal */
  get hostBase(): number {
    return this.#hostBase
  }
}

/**
 * Writes an SQE in place in the SQ (host memory), and its data pointer: PRP1/PRP2 or a PRP
 * list in the slot's list page (Linux nvme_pci_setup_prps), or an SGL: one data block in
 * SGL1, or a Last Segment descriptor pointing at data blocks in the list page
 * (nvme_pci_setup_sgls). One writer, re-pointed per command: nothing is allocated.
 */
export class SqeWriter {
  #dv!: DataView
  #at = 0
  #list!: HostBuffer
  #listAt = 0

  /** @internal */
  at(d: NvmeHostDriver, sq: HostBuffer, offset: number, list: HostBuffer): this {
    this.#dv = d.hostView()
    this.#at = d.hostBase + sq.hpa + offset
    this.#listAt = d.hostBase + list.hpa
    this.#list = list
    for (let i = 0; i < 64; i += 4) this.#dv.setUint32(this.#at + i, 0, true)
    return this
  }

  opcode(op: number): void {
    this.#dv.setUint8(this.#at, op)
  }

  /** CDW0 byte 1: FUSE (bits 1:0) and PSDT (7:6) */
  flags(v: number): void {
    this.#dv.setUint8(this.#at + 1, v)
  }

  u16(off: number, v: number): void {
    this.#dv.setUint16(this.#at + off, v, true)
  }

  u32(off: number, v: number): void {
    this.#dv.setUint32(this.#at + off, v >>> 0, true)
  }

  u64(off: number, v: number): void {
    this.#dv.setUint32(this.#at + off, v % 0x100000000, true)
    this.#dv.setUint32(this.#at + off + 4, Math.floor(v / 0x100000000), true)
  }

  /** The data pointer for `segs` (IOVA, length); SGLs if `sgl`. */
  data(segs: readonly [number, number][], sgl: boolean): void {
    if (segs.length === 0) return
    if (sgl) return this.#sgl(segs)
    // PRPs: PRP1 may start mid-page; every later entry is a whole page
    const pages: number[] = prpScratch
    pages.length = 0
    for (const [iova, len] of segs) {
      let a = iova
      const end = iova + len
      while (a < end) {
        pages.push(a)
        a = Math.floor(a / PAGE) * PAGE + PAGE
      }
    }
    this.u64(24, pages[0]!)
    if (pages.length === 2) this.u64(32, pages[1]!)
    else if (pages.length > 2) {
      // a list page of 512 entries (the last chains to another list page: not needed below 2 MiB)
      if (pages.length - 1 > 511) throw new NvmeError('NVME_BAD_ARGUMENT', 'transfer too large for one PRP list page (2 MiB)')
      for (let i = 1; i < pages.length; i++) {
        const e = this.#listAt + 8 * (i - 1)
        this.#dv.setUint32(e, pages[i]! % 0x100000000, true)
        this.#dv.setUint32(e + 4, Math.floor(pages[i]! / 0x100000000), true)
      }
      this.u64(32, this.#list.iova)
    }
  }

  #sgl(segs: readonly [number, number][]): void {
    this.flags(1 << 6) // PSDT 01b: SGL, MPTR a pointer
    const desc = (at: number, addr: number, len: number, type: number) => {
      this.#dv.setUint32(at, addr % 0x100000000, true)
      this.#dv.setUint32(at + 4, Math.floor(addr / 0x100000000), true)
      this.#dv.setUint32(at + 8, len, true)
      this.#dv.setUint32(at + 12, type << 24, true)
    }
    if (segs.length === 1) return desc(this.#at + 24, segs[0]![0], segs[0]![1], 0x00)
    if (segs.length > 256) throw new NvmeError('NVME_BAD_ARGUMENT', 'too many segments for one SGL segment page (256)')
    segs.forEach(([a, n], i) => desc(this.#listAt + 16 * i, a, n, 0x00))
    // a Last Segment descriptor (type 3h): the list page holds the data blocks
    desc(this.#at + 24, this.#list.iova, 16 * segs.length, 0x30)
  }
}

const prpScratch: number[] = []
const writer = new SqeWriter()

export { Access }
