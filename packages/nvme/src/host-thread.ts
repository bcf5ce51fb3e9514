// The host driver on its own thread: NvmeHostDriver in a worker, the NvmePcieController,
// the fabric, the IOMMU and the bdevs on the thread that serves it. The host's memory is
// the shared physical memory, so queues, SQEs, CQEs, PRP lists and data never cross: only
// what a real host sends over the link does, through one SharedArrayBuffer (the channel):
//
//   posted      MMIO writes (doorbells, registers, the MSI-X table): one ring entry each,
//               no answer. The serving thread waits on the channel's wake word with
//               Atomics.waitAsync (its event loop stays free); the worker notifies it only
//               when it is armed, so one wake applies every write queued since the last
//   non-posted  MMIO reads, config reads and writes, IOMMU map and unmap, interrupt vector
//               allocation, a BAR's address: one request at a time in the mailbox; the worker
//               blocks in Atomics.wait until it is answered (a worker may block, the serving
//               thread never does). The ring is drained before a request is served, so a
//               read sees every write posted before it, as PCIe orders them
//   interrupts  the fabric's interrupt controller counts deliveries per message data value
//               in shared memory and notifies each count: the worker waits on its vectors'
//               counts with Atomics.waitAsync and runs the driver's handler
//
//   channel (bytes; every control word on a 64-byte line of its own)
//      0  magic, version, serving thread id
//     64  wake       bumped by the worker to wake the serving thread
//    128  armed      1 while the serving thread waits (or is about to)
//    192  tail       ring entries written by the worker
//    256  head       ring entries applied by the serving thread
//    320  mbox       mailbox state: idle, request, answered, failed, closed
//    384  closed     1 once the serving side closed the channel
//    448  slot       the worker's kernels scratch slot (-1: none, or released)
//    512  attached   1 while a driver is connected
//    576  roomWait   1 while the worker waits for room in a full ring
//    640  op, error length; 704 six float64 arguments; 768 two float64 results
//   1024  error text (UTF-16, 1024 units)
//   4096  ring       capacity x 16 bytes: (bar << 8 | size, offset, value low, value high)
//
// Protocol (no lost wake-up: both sides use sequentially consistent Atomics):
//   worker:  write the entry; store(tail); if load(armed) and cmpxchg(armed, 1, 0): add(wake),
//            notify(wake). A request: write op and arguments; cmpxchg(mbox, idle, request);
//            the same kick; wait(mbox, request) until it changes.
//   serving: seen = load(wake); store(armed, 1); if the ring or the mailbox has work, serve
//            on the next turn, else waitAsync(wake, seen). Serving: apply the ring, then
//            (ring again) answer the mailbox, store mbox answered or failed, notify(mbox).
// Steady state allocates nothing per I/O: an entry is four stores; a wake of either side
// costs the promise Atomics.waitAsync returns, once per batch of writes or per interrupt.
import { releaseScratchSlotOf } from '@ipukit/kernels'
import { attachPhysicalMemory, type Iommu, MemoryError, type MemoryErrorCode, type PhysicalMemory, type PhysicalMemoryDescription, RegionAllocator } from '@ipukit/memory'
import { type PciFabric, type PciFunction, PcieError, type PcieErrorCode } from '@ipukit/pcie'
import { threadId } from 'node:worker_threads'
import { NvmeError, type NvmeErrorCode } from './errors.js'
import { type HostBar, type HostDriverOptions, type HostFabric, type HostFunction, type HostIommu, type HostMmio, hostAllocator, NvmeHostDriver } from './host.js'

const KIND = 'ipukit.nvme.host-thread'
const VERSION = 1
const MAGIC = 0x4e564d48 // 'NVMH'
const PAGE = 4096

/** Int32 word indexes of the channel. */
const W = { magic: 0, version: 1, server: 2, wake: 16, armed: 32, tail: 48, head: 64, mbox: 80, closed: 96, slot: 112, attached: 128, roomWait: 144, op: 160, errLen: 161 } as const
/** Float64 indexes: arguments and results. */
const ARGS = 88
const RESULTS = 96
/** Uint16 index and length of the error text. */
const ERR_AT = 512
const ERR_UNITS = 1024
/** byte offset of the ring */
const RING_AT = 4096
const ENTRY_WORDS = 4

const Mbox = { idle: 0, request: 1, answered: 2, failed: 3, closed: 4 } as const

const Op = { attach: 1, detach: 2, mmioRead: 3, mmioRead64: 4, configRead: 5, configWrite: 6, findCapability: 7, map: 8, unmap: 9, allocateVectors: 10, barAddress: 11 } as const

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }
const waitAsync = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number) => WaitAsyncResult }).waitAsync

const closedError = (what: string) => new NvmeError('NVME_CLOSED', `the host thread's channel is closed: ${what}`)

// ---- the description ----

/** A BAR of the served function, as the worker sees it. */
export interface HostThreadBar {
  readonly index: number
  readonly kind: 'registers' | 'memory'
  readonly size: number
  /** first byte of the memory BAR's region in the physical memory (-1: a register BAR) */
  readonly regionBase: number
}

/** What serveHostThread hands to the worker (post it as it is: every buffer in it is shared). */
export interface HostThreadDescription {
  readonly kind: typeof KIND
  readonly version: typeof VERSION
  /** the physical memory (host DRAM, queues and data are in it) */
  readonly physical: PhysicalMemoryDescription
  /** control words, the posted-write ring and the mailbox */
  readonly channel: SharedArrayBuffer
  /** ring entries (a power of two) */
  readonly ringCapacity: number
  /** the fabric's interrupt delivery counts, one Int32 per message data value */
  readonly interrupts: SharedArrayBuffer
  /** the function: its name, requester ID, MSI-X vectors (0: none) and BARs */
  readonly fn: { readonly name: string; readonly rid: number; readonly vectors: number; readonly bars: readonly HostThreadBar[] }
  /** the host DRAM the thread's driver allocates from: offset in the host region, bytes */
  readonly host: { readonly offset: number; readonly size: number }
}

/** What crossed the channel, on the serving side. */
export interface HostThreadCounters {
  /** wakes of the serving thread */
  wakes: number
  /** wakes that applied posted writes: each applies every write queued since the last */
  postedBatches: number
  /** posted MMIO writes applied (doorbells, registers, MSI-X table entries) */
  postedWrites: number
  /** posted writes the fabric refused (a BAR that does not decode, a bad offset): dropped, as a link drops them */
  postedErrors: number
  /** non-posted requests answered (every kind below) */
  requests: number
  mmioReads: number
  configAccesses: number
  mapCalls: number
  unmapCalls: number
}

/** What crossed the channel, on the worker's side. */
export interface HostThreadWorkerCounters {
  postedWrites: number
  requests: number
  /** times the worker waited for room in a full ring */
  ringFull: number
  /** interrupt handler runs (one per wake: deliveries while the handler ran are taken together) */
  interrupts: number
  /** posted writes dropped because the channel was closed */
  dropped: number
}

export interface ServeHostThreadOptions {
  fabric: PciFabric
  fn: PciFunction
  iommu: Iommu
  /** host DRAM reserved for the thread's driver (queues, PRP list pages, the buffers it allocates); default 16 MiB */
  hostBytes?: number
  /** posted writes the ring holds (a power of two); default 1024 */
  ringCapacity?: number
}

function checkDescription(d: unknown): HostThreadDescription {
  const bad = (why: string) => new NvmeError('NVME_BAD_ARGUMENT', `not a host thread description (what serveHostThread().description is): ${why}`)
  if (d === null || typeof d !== 'object') throw bad(`got ${d === null ? 'null' : typeof d}`)
  const o = d as Partial<Record<keyof HostThreadDescription, unknown>>
  if (o.kind !== KIND) throw bad(`kind is ${JSON.stringify(o.kind)}`)
  if (o.version !== VERSION) throw bad(`version ${String(o.version)}, this package speaks ${VERSION}`)
  const cap = o.ringCapacity
  if (typeof cap !== 'number' || !Number.isInteger(cap) || cap < 1 || (cap & (cap - 1)) !== 0) throw bad('ringCapacity must be a power of two')
  if (!(o.channel instanceof SharedArrayBuffer) || o.channel.byteLength !== RING_AT + 16 * cap) throw bad('channel must be the SharedArrayBuffer of the channel')
  const i32 = new Int32Array(o.channel)
  if (Atomics.load(i32, W.magic) !== MAGIC || Atomics.load(i32, W.version) !== VERSION) throw bad('the channel has no host thread header')
  if (!(o.interrupts instanceof SharedArrayBuffer)) throw bad('interrupts must be a SharedArrayBuffer')
  const p = o.physical as Partial<PhysicalMemoryDescription> | null | undefined
  if (p === null || typeof p !== 'object' || !(p.memory instanceof WebAssembly.Memory) || !(p.memory.buffer instanceof SharedArrayBuffer)) throw bad('physical must describe a shared physical memory')
  const fn = o.fn as HostThreadDescription['fn'] | undefined
  if (fn === null || typeof fn !== 'object' || typeof fn.name !== 'string' || !Number.isInteger(fn.rid) || !Number.isInteger(fn.vectors) || !Array.isArray(fn.bars)) throw bad('fn must name the function, its rid, vectors and BARs')
  const host = o.host as HostThreadDescription['host'] | undefined
  if (host === null || typeof host !== 'object' || !Number.isInteger(host.offset) || !Number.isInteger(host.size) || host.size <= 0) throw bad('host must be the reserved host DRAM (offset, size)')
  return d as HostThreadDescription
}

// ---- the serving side ----

/** The serving end of a host thread: see serveHostThread. */
export class HostThreadServer {
  /** post this to the worker; connectHostThread takes it */
  readonly description: HostThreadDescription
  readonly counters: HostThreadCounters = { wakes: 0, postedBatches: 0, postedWrites: 0, postedErrors: 0, requests: 0, mmioReads: 0, configAccesses: 0, mapCalls: 0, unmapCalls: 0 }
  #firstPostedError: Error | undefined
  readonly #fabric: PciFabric
  readonly #fn: PciFunction
  readonly #iommu: Iommu
  readonly #pm: PhysicalMemory
  readonly #i32: Int32Array
  readonly #u32: Uint32Array
  readonly #f64: Float64Array
  readonly #u16: Uint16Array
  readonly #mask: number
  readonly #bars: (ReturnType<PciFabric['ioremap']> | undefined)[] = []
  /** host DRAM reserved for the thread: its address, and its offset in the host region */
  readonly #hostAt: number
  readonly #hostOffset: number
  readonly #hostSize: number
  /** the worker's IOMMU mappings: IOVA -> bytes */
  readonly #mapped = new Map<number, number>()
  #head = 0
  #closed = false
  readonly #onWake = (): void => this.#serve()

  /** @internal use serveHostThread */
  constructor(o: ServeHostThreadOptions) {
    if (o === null || typeof o !== 'object') throw new NvmeError('NVME_BAD_ARGUMENT', 'serveHostThread takes { fabric, fn, iommu }')
    const { fabric, fn, iommu } = o
    const pm = fabric?.physical
    if (pm === undefined) throw new NvmeError('NVME_BAD_ARGUMENT', 'the fabric has no physical memory: a host thread shares it')
    if (!(pm.memory.buffer instanceof SharedArrayBuffer)) throw new NvmeError('NVME_BAD_ARGUMENT', 'the physical memory is not shared: create it with shared: true (the default)')
    if (fn?.fabric !== fabric) throw new NvmeError('NVME_BAD_ARGUMENT', 'fn is not a function of this fabric')
    if (iommu?.physical !== pm) throw new NvmeError('NVME_BAD_ARGUMENT', "the IOMMU is not the one over the fabric's physical memory")
    const cap = o.ringCapacity ?? 1024
    if (!Number.isInteger(cap) || cap < 4 || cap > 1 << 20 || (cap & (cap - 1)) !== 0) throw new NvmeError('NVME_BAD_ARGUMENT', `ringCapacity must be a power of two in [4, 2^20], got ${cap}`)
    const hostBytes = o.hostBytes ?? 16 << 20
    if (!Number.isInteger(hostBytes) || hostBytes < 64 * 1024 || hostBytes % PAGE !== 0) throw new NvmeError('NVME_BAD_ARGUMENT', `hostBytes must be a multiple of 4096 of at least 64 KiB, got ${hostBytes}`)
    const alloc = hostAllocator(pm)
    const at = hostBytes <= alloc.available ? alloc.alloc(hostBytes) : -1
    if (at < 0) throw new NvmeError('NVME_NO_SPACE', `host DRAM has no ${hostBytes} free bytes for the host thread (${alloc.available} free)`)
    this.#fabric = fabric
    this.#fn = fn
    this.#iommu = iommu
    this.#pm = pm
    this.#hostAt = at
    this.#hostOffset = at - pm.region('host').base
    this.#hostSize = hostBytes
    const channel = new SharedArrayBuffer(RING_AT + 16 * cap)
    this.#i32 = new Int32Array(channel)
    this.#u32 = new Uint32Array(channel)
    this.#f64 = new Float64Array(channel)
    this.#u16 = new Uint16Array(channel)
    this.#mask = cap - 1
    this.#i32[W.magic] = MAGIC
    this.#i32[W.version] = VERSION
    this.#i32[W.server] = threadId
    this.#i32[W.slot] = -1
    this.description = {
      kind: KIND,
      version: VERSION,
      physical: pm.describe(),
      channel,
      ringCapacity: cap,
      interrupts: fabric.interrupts.counts.buffer as SharedArrayBuffer,
      fn: {
        name: fn.name,
        rid: fn.rid,
        vectors: fn.msix?.vectors ?? 0,
        bars: fn.bars.map((b) => ({ index: b.index, kind: b.kind, size: b.size, regionBase: b.region?.base ?? -1 })),
      },
      host: { offset: this.#hostOffset, size: hostBytes },
    }
    this.#arm()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** the first posted write the fabric refused (they are dropped, as a link drops them; counters.postedErrors counts them) */
  get firstPostedError(): Error | undefined {
    return this.#firstPostedError
  }

  /** Whether the thread waits for the answer to a request (served on this thread's next turn). */
  get pendingRequest(): boolean {
    return Atomics.load(this.#i32, W.mbox) === Mbox.request
  }

  /** Whether a driver is connected (between connectHostThread and disconnectHostThread). */
  get attached(): boolean {
    return Atomics.load(this.#i32, W.attached) === 1
  }

  /**
   * Stops serving and releases what the thread held: a request it waits on wakes with
   * NVME_CLOSED (so do its later ones; its posted writes are dropped), the IOMMU mappings
   * it made are removed, its host DRAM is freed, and its kernels scratch slot is released
   * if it did not release it (call close() once the worker is done or terminated: the
   * attached memory's kernels must not be used after). The controller is left as it is;
   * the next driver's init() resets it. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const i = this.#i32
    Atomics.store(i, W.closed, 1)
    Atomics.store(i, W.mbox, Mbox.closed)
    Atomics.notify(i, W.mbox)
    Atomics.notify(i, W.head)
    // our own waitAsync returns (and finds the channel closed)
    Atomics.add(i, W.wake, 1)
    Atomics.notify(i, W.wake)
    this.#unmapAll()
    hostAllocator(this.#pm).free(this.#hostAt)
    const slot = Atomics.exchange(i, W.slot, -1)
    if (slot >= 0) releaseScratchSlotOf(this.#pm.memory, slot)
    Atomics.store(i, W.attached, 0)
  }

  #arm(): void {
    if (this.#closed) return
    const i = this.#i32
    const seen = Atomics.load(i, W.wake)
    Atomics.store(i, W.armed, 1)
    if (Atomics.load(i, W.tail) !== this.#head || Atomics.load(i, W.mbox) === Mbox.request) {
      // work arrived while serving: take it on the next turn (a full turn, so others get one)
      Atomics.store(i, W.armed, 0)
      setImmediate(this.#onWake)
      return
    }
    const r = waitAsync(i, W.wake, seen)
    if (r.async) void r.value.then(this.#onWake)
    else setImmediate(this.#onWake)
  }

  #serve(): void {
    if (this.#closed) return
    this.counters.wakes++
    this.#drain()
    if (Atomics.load(this.#i32, W.mbox) === Mbox.request) {
      // writes posted before the request reach the device before it is served
      this.#drain()
      this.#answer()
    }
    this.#arm()
  }

  #bar(index: number): ReturnType<PciFabric['ioremap']> {
    return (this.#bars[index] ??= this.#fabric.ioremap(this.#fn, index))
  }

  /** Applies the posted writes in the ring, up to the tail seen on entry. */
  #drain(): void {
    const i = this.#i32
    const u = this.#u32
    const tail = Atomics.load(i, W.tail)
    let head = this.#head
    if (head === tail) return
    let n = 0
    while (head !== tail) {
      const e = RING_AT / 4 + ENTRY_WORDS * (head & this.#mask)
      const hdr = u[e]!
      const size = hdr & 0xff
      const off = u[e + 1]!
      try {
        const bar = this.#bar(hdr >>> 8)
        if (size === 8) bar.write64(off, (BigInt(u[e + 3]!) << 32n) | BigInt(u[e + 2]!))
        else bar.write(off, size as 1 | 2 | 4, u[e + 2]!)
      } catch (err) {
        this.counters.postedErrors++
        this.#firstPostedError ??= err instanceof Error ? err : new Error(String(err))
      }
      head = (head + 1) | 0
      n++
    }
    this.#head = head
    Atomics.store(i, W.head, head)
    if (Atomics.load(i, W.roomWait) !== 0) {
      Atomics.store(i, W.roomWait, 0)
      Atomics.notify(i, W.head)
    }
    this.counters.postedBatches++
    this.counters.postedWrites += n
  }

  #answer(): void {
    const i = this.#i32
    const f = this.#f64
    const op = i[W.op]!
    const a0 = f[ARGS]!
    const a1 = f[ARGS + 1]!
    const a2 = f[ARGS + 2]!
    const a3 = f[ARGS + 3]!
    this.counters.requests++
    let r0 = 0
    let r1 = 0
    try {
      switch (op) {
        case Op.mmioRead:
          this.counters.mmioReads++
          r0 = this.#bar(a0).read(a1, a2 as 1 | 2 | 4)
          break
        case Op.mmioRead64: {
          this.counters.mmioReads++
          const v = this.#bar(a0).read64(a1)
          r0 = Number(v & 0xffffffffn)
          r1 = Number(v >> 32n)
          break
        }
        case Op.configRead:
          this.counters.configAccesses++
          r0 = this.#fn.config.read(a0, a1 as 1 | 2 | 4)
          break
        case Op.configWrite:
          this.counters.configAccesses++
          this.#fn.config.write(a0, a1 as 1 | 2 | 4, a2)
          break
        case Op.findCapability:
          this.counters.configAccesses++
          r0 = this.#fn.config.findCapability(a0)
          break
        case Op.map:
          this.counters.mapCalls++
          this.#map(a0, a1, a2, a3, f[ARGS + 4]!)
          break
        case Op.unmap:
          this.counters.unmapCalls++
          this.#unmap(a0, a1, a2)
          break
        case Op.allocateVectors:
          r0 = this.#fabric.interrupts.allocate(a0)
          break
        case Op.barAddress:
          r0 = this.#fabric.barAddress(this.#fn, a0)
          break
        case Op.attach:
          if (Atomics.load(i, W.attached) === 1) throw new NvmeError('NVME_BAD_ARGUMENT', `${this.#fn.name}'s host thread already has a driver connected`)
          Atomics.store(i, W.slot, a0)
          Atomics.store(i, W.attached, 1)
          break
        case Op.detach:
          // the driver is gone: what it mapped goes (a next driver maps the same IOVAs)
          this.#unmapAll()
          Atomics.store(i, W.attached, 0)
          break
        default:
          throw new NvmeError('NVME_BAD_ARGUMENT', `unknown host thread request ${op}`)
      }
      f[RESULTS] = r0
      f[RESULTS + 1] = r1
      Atomics.store(i, W.mbox, Mbox.answered)
    } catch (err) {
      this.#putError(err)
      Atomics.store(i, W.mbox, Mbox.failed)
    }
    Atomics.notify(i, W.mbox)
  }

  #map(rid: number, iova: number, hpa: number, length: number, access: number): void {
    if (rid !== this.#fn.rid) throw new NvmeError('NVME_BAD_ARGUMENT', `the host thread maps for ${this.#fn.name} (requester ${this.#fn.rid}) only, not requester ${rid}`)
    if (!(hpa >= this.#hostOffset && hpa + length <= this.#hostOffset + this.#hostSize)) {
      throw new NvmeError('NVME_BAD_ARGUMENT', `host physical [${hpa}, ${hpa + length}) is outside the host thread's host DRAM [${this.#hostOffset}, ${this.#hostOffset + this.#hostSize})`)
    }
    this.#iommu.map(rid, iova, hpa, length, access)
    this.#mapped.set(iova, length)
  }

  #unmap(rid: number, iova: number, length: number): void {
    if (rid !== this.#fn.rid) throw new NvmeError('NVME_BAD_ARGUMENT', `the host thread maps for ${this.#fn.name} (requester ${this.#fn.rid}) only, not requester ${rid}`)
    this.#iommu.unmap(rid, iova, length)
    if (this.#mapped.get(iova) === length) this.#mapped.delete(iova)
    else for (const [a, n] of this.#mapped) if (a >= iova && a + n <= iova + length) this.#mapped.delete(a)
  }

  #unmapAll(): void {
    for (const [iova, length] of this.#mapped) this.#iommu.unmap(this.#fn.rid, iova, length)
    this.#mapped.clear()
  }

  #putError(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err))
    const code = (e as { code?: unknown }).code
    const text = JSON.stringify({ name: e.name, code: typeof code === 'string' ? code : undefined, message: e.message }).slice(0, ERR_UNITS)
    for (let k = 0; k < text.length; k++) this.#u16[ERR_AT + k] = text.charCodeAt(k)
    this.#i32[W.errLen] = text.length
  }
}

/**
 * Serves a host driver on another thread (connectHostThread there) for `fn`: reserves its
 * host DRAM and makes the channel. The serving thread never blocks: it waits for the
 * worker with Atomics.waitAsync, applies posted writes in batches and answers requests.
 */
export function serveHostThread(options: ServeHostThreadOptions): HostThreadServer {
  return new HostThreadServer(options)
}

// ---- the worker's side ----

/** The worker's end of the channel. */
class Channel {
  readonly counters: HostThreadWorkerCounters = { postedWrites: 0, requests: 0, ringFull: 0, interrupts: 0, dropped: 0 }
  readonly #i32: Int32Array
  readonly #u32: Uint32Array
  readonly #f64: Float64Array
  readonly #u16: Uint16Array
  readonly #cap: number
  readonly #mask: number
  #tail: number
  /** the second result of the last request */
  r1 = 0
  /** closed on this side (disconnected, or found closed) */
  done = false
  /** runs after every posted write (the keep-alive check of interrupt mode) */
  afterPost: (() => void) | undefined = undefined

  constructor(d: HostThreadDescription) {
    this.#i32 = new Int32Array(d.channel)
    this.#u32 = new Uint32Array(d.channel)
    this.#f64 = new Float64Array(d.channel)
    this.#u16 = new Uint16Array(d.channel)
    this.#cap = d.ringCapacity
    this.#mask = d.ringCapacity - 1
    this.#tail = Atomics.load(this.#i32, W.tail)
  }

  get serverThread(): number {
    return Atomics.load(this.#i32, W.server)
  }

  get closed(): boolean {
    return this.done || Atomics.load(this.#i32, W.closed) !== 0
  }

  /** wakes the serving thread if it sleeps */
  #kick(): void {
    const i = this.#i32
    if (Atomics.load(i, W.armed) === 1 && Atomics.compareExchange(i, W.armed, 1, 0) === 1) {
      Atomics.add(i, W.wake, 1)
      Atomics.notify(i, W.wake)
    }
  }

  /** A posted write: one ring entry. */
  post(bar: number, size: 1 | 2 | 4 | 8, offset: number, lo: number, hi: number): void {
    const i = this.#i32
    if (this.done || Atomics.load(i, W.closed) !== 0) {
      this.counters.dropped++
      return
    }
    const tail = this.#tail
    if (((tail - Atomics.load(i, W.head)) | 0) >= this.#cap) {
      this.counters.ringFull++
      for (;;) {
        const head = Atomics.load(i, W.head)
        if (((tail - head) | 0) < this.#cap) break
        if (Atomics.load(i, W.closed) !== 0) {
          this.counters.dropped++
          return
        }
        Atomics.store(i, W.roomWait, 1)
        this.#kick()
        Atomics.wait(i, W.head, head, 50)
      }
    }
    const e = RING_AT / 4 + ENTRY_WORDS * (tail & this.#mask)
    const u = this.#u32
    u[e] = (bar << 8) | size
    u[e + 1] = offset
    u[e + 2] = lo
    u[e + 3] = hi
    this.#tail = (tail + 1) | 0
    Atomics.store(i, W.tail, this.#tail)
    this.counters.postedWrites++
    this.#kick()
    this.afterPost?.()
  }

  /** A non-posted request: blocks until the serving thread answers; returns the first result. */
  request(op: number, a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0): number {
    const i = this.#i32
    if (this.done) throw closedError('this side disconnected')
    const f = this.#f64
    f[ARGS] = a0
    f[ARGS + 1] = a1
    f[ARGS + 2] = a2
    f[ARGS + 3] = a3
    f[ARGS + 4] = a4
    i[W.op] = op
    if (Atomics.compareExchange(i, W.mbox, Mbox.idle, Mbox.request) !== Mbox.idle) throw closedError('the serving side closed it')
    this.counters.requests++
    this.#kick()
    let s: number
    while ((s = Atomics.load(i, W.mbox)) === Mbox.request) Atomics.wait(i, W.mbox, Mbox.request)
    if (s === Mbox.answered) {
      const r0 = f[RESULTS]!
      this.r1 = f[RESULTS + 1]!
      Atomics.compareExchange(i, W.mbox, Mbox.answered, Mbox.idle)
      return r0
    }
    if (s === Mbox.failed) {
      const err = this.#error()
      Atomics.compareExchange(i, W.mbox, Mbox.failed, Mbox.idle)
      throw err
    }
    throw closedError('the serving side closed it while a request waited')
  }

  /** The error the serving thread put in the mailbox, as the class it was thrown as. */
  #error(): Error {
    const n = this.#i32[W.errLen]!
    let text = ''
    for (let k = 0; k < n; k++) text += String.fromCharCode(this.#u16[ERR_AT + k]!)
    let e: { name?: string; code?: string; message?: string }
    try {
      e = JSON.parse(text) as typeof e
    } catch {
      e = { message: text }
    }
    const message = e.message ?? 'request failed on the serving thread'
    switch (e.name) {
      case 'NvmeError':
        return new NvmeError(e.code as NvmeErrorCode, message)
      case 'PcieError':
        return new PcieError(e.code as PcieErrorCode, message)
      case 'MemoryError':
        return new MemoryError(e.code as MemoryErrorCode, message)
      case 'RangeError':
        return Object.assign(new RangeError(message), e.code === undefined ? {} : { code: e.code })
      case 'TypeError':
        return Object.assign(new TypeError(message), e.code === undefined ? {} : { code: e.code })
      default:
        return Object.assign(new Error(message), { name: e.name ?? 'Error' }, e.code === undefined ? {} : { code: e.code })
    }
  }

  /** releases the worker's kernels scratch slot, unless the serving side did */
  releaseSlot(pm: PhysicalMemory): void {
    const slot = Atomics.exchange(this.#i32, W.slot, -1)
    if (slot >= 0) releaseScratchSlotOf(pm.memory, slot)
  }
}

class ProxyMmio implements HostMmio {
  constructor(
    readonly ch: Channel,
    readonly index: number,
    readonly size: number,
  ) {}

  get base(): number {
    return this.ch.request(Op.barAddress, this.index)
  }

  read(offset: number, size: 1 | 2 | 4): number {
    return this.ch.request(Op.mmioRead, this.index, offset, size)
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    this.ch.post(this.index, size, offset, value >>> 0, 0)
  }

  read64(offset: number): bigint {
    const lo = this.ch.request(Op.mmioRead64, this.index, offset)
    return (BigInt(this.ch.r1) << 32n) | BigInt(lo)
  }

  write64(offset: number, value: bigint): void {
    this.ch.post(this.index, 8, offset, Number(value & 0xffffffffn), Number((value >> 32n) & 0xffffffffn))
  }
}

class ProxyBar implements HostBar {
  readonly region: { readonly base: number } | undefined
  constructor(
    readonly ch: Channel,
    readonly index: number,
    readonly kind: 'registers' | 'memory',
    readonly size: number,
    regionBase: number,
  ) {
    this.region = regionBase >= 0 ? { base: regionBase } : undefined
  }

  get address(): number {
    return this.ch.request(Op.barAddress, this.index)
  }
}

class ProxyFunction implements HostFunction {
  readonly name: string
  readonly rid: number
  readonly msix: { readonly vectors: number } | undefined
  readonly bars: readonly ProxyBar[]
  readonly config: HostFunction['config']
  constructor(ch: Channel, d: HostThreadDescription['fn']) {
    this.name = d.name
    this.rid = d.rid
    this.msix = d.vectors > 0 ? { vectors: d.vectors } : undefined
    this.bars = d.bars.map((b) => new ProxyBar(ch, b.index, b.kind, b.size, b.regionBase))
    this.config = {
      findCapability: (id) => ch.request(Op.findCapability, id),
      read: (offset, size) => ch.request(Op.configRead, offset, size),
      write: (offset, size, value) => void ch.request(Op.configWrite, offset, size, value),
    }
  }
}

/** The worker waits on one interrupt vector's delivery count. */
class VectorWait {
  handler: ((data: number) => void) | undefined = undefined
  #seen: number
  #armed = false
  readonly #fire = (): void => this.#wake()
  constructor(
    readonly ch: Channel,
    readonly counts: Int32Array,
    readonly data: number,
    readonly after: () => void,
  ) {
    this.#seen = Atomics.load(counts, data)
  }

  arm(): void {
    if (this.#armed || this.ch.closed) return
    this.#armed = true
    const r = waitAsync(this.counts, this.data, this.#seen)
    if (r.async) void r.value.then(this.#fire)
    else setImmediate(this.#fire)
  }

  #wake(): void {
    this.#armed = false
    if (this.ch.closed) return
    const now = Atomics.load(this.counts, this.data)
    if (now === this.#seen) return this.arm()
    this.#seen = now
    try {
      this.ch.counters.interrupts++
      this.handler?.(this.data)
    } finally {
      this.after()
      this.arm()
    }
  }
}

/**
 * The fabric as a driver on a host thread sees it (connectHostThread builds it): the shared
 * physical memory, BAR mappings whose writes are posted through the channel and whose reads
 * are requests, the function's config space by request, and interrupts by waiting on the
 * fabric's shared delivery counts.
 */
export class HostThreadFabric implements HostFabric {
  readonly physical: PhysicalMemory
  readonly fn: HostFunction
  readonly iommu: HostIommu
  readonly interrupts: HostFabric['interrupts']
  readonly #ch: Channel
  readonly #mmio = new Map<number, ProxyMmio>()
  readonly #waits = new Map<number, VectorWait>()
  readonly #counts: Int32Array
  /** keeps the thread alive while interrupt-mode commands are outstanding (a pending Atomics.waitAsync does not) */
  readonly #keepAlive: ReturnType<typeof setInterval>
  #held = false
  #driver: NvmeHostDriver | undefined

  /** @internal use connectHostThread */
  constructor(d: HostThreadDescription, physical: PhysicalMemory) {
    const ch = (this.#ch = new Channel(d))
    this.physical = physical
    this.fn = new ProxyFunction(ch, d.fn)
    this.#counts = new Int32Array(d.interrupts)
    const counts = this.#counts
    this.iommu = {
      map: (rid, iova, hpa, length, access) => void ch.request(Op.map, rid, iova, hpa, length, access),
      unmap: (rid, iova, length) => void ch.request(Op.unmap, rid, iova, length),
    }
    this.interrupts = {
      allocate: (count = 1) => ch.request(Op.allocateVectors, count),
      onInterrupt: (data, handler) => {
        if (!Number.isInteger(data) || data < 0 || data >= counts.length) throw new NvmeError('NVME_BAD_ARGUMENT', `interrupt data ${data} is outside the interrupt controller's ${counts.length}`)
        let w = this.#waits.get(data)
        if (w === undefined) this.#waits.set(data, (w = new VectorWait(ch, counts, data, this.#afterInterrupt)))
        w.handler = handler
        w.arm()
      },
    }
    this.#keepAlive = setInterval(() => {}, 1 << 30)
    this.#keepAlive.unref()
  }

  /** what crossed the channel from this side */
  get counters(): Readonly<HostThreadWorkerCounters> {
    return this.#ch.counters
  }

  /** closed by either side */
  get closed(): boolean {
    return this.#ch.closed
  }

  ioremap(fn: HostFunction, index: number): HostMmio {
    if (fn !== this.fn) throw new NvmeError('NVME_BAD_ARGUMENT', `this host thread serves ${this.fn.name} only`)
    let m = this.#mmio.get(index)
    if (m === undefined) {
      const bar = this.fn.bars.find((b) => b.index === index)
      if (bar === undefined) throw new PcieError('PCIE_BAD_ACCESS', `${fn.name} has no BAR ${index}`)
      this.#mmio.set(index, (m = new ProxyMmio(this.#ch, index, bar.size)))
    }
    return m
  }

  /** @internal */
  attach(slot: number): void {
    this.#ch.request(Op.attach, slot)
  }

  /** @internal */
  bind(driver: NvmeHostDriver): void {
    this.#driver = driver
    // interrupt mode: hold the thread while commands wait for their interrupts. Commands
    // start with a doorbell (a posted write), so the check runs after each
    if (driver.mode === 'interrupt') this.#ch.afterPost = this.#afterPost
  }

  readonly #afterPost = (): void => {
    if (!this.#held && this.#driver!.outstanding > 0) {
      this.#held = true
      this.#keepAlive.ref()
    }
  }

  /** after the driver's interrupt handler ran */
  readonly #afterInterrupt = (): void => {
    if (this.#held && (this.#driver === undefined || this.#driver.outstanding === 0)) {
      this.#held = false
      this.#keepAlive.unref()
    }
  }

  /** @internal never attached: stop without a word to the serving side (whose slot record is not ours) */
  abandon(): void {
    this.#ch.done = true
    clearInterval(this.#keepAlive)
  }

  /** @internal detaches from the serving side (disconnectHostThread) */
  close(): void {
    const ch = this.#ch
    if (ch.done) return
    this.#driver?.stop()
    try {
      if (!ch.closed) ch.request(Op.detach)
    } catch (err) {
      if (!(err instanceof NvmeError && err.code === 'NVME_CLOSED')) throw err
    }
    ch.done = true
    clearInterval(this.#keepAlive)
    ch.releaseSlot(this.physical)
  }
}

/** Options of connectHostThread: the driver's, and whether to init() it. */
export type HostThreadOptions = Omit<HostDriverOptions, 'fabric' | 'fn' | 'iommu' | 'allocator'> & {
  /** bring the controller up before resolving (driver.init()); default true */
  init?: boolean
}

/**
 * On the host thread (a worker): attaches to the shared physical memory, connects to the
 * serving thread and returns an NvmeHostDriver over the channel, already init()ed unless
 * `init: false`. Its `fabric` is a HostThreadFabric; its host DRAM is what the serving
 * side reserved. Every register read, config access and IOMMU map blocks this thread until
 * the serving thread answers; doorbells do not wait. disconnectHostThread(driver) when done.
 */
export async function connectHostThread(description: HostThreadDescription, options: HostThreadOptions = {}): Promise<NvmeHostDriver> {
  const d = checkDescription(description)
  const { init = true, ...driverOptions } = options ?? {}
  const probe = new Channel(d)
  if (probe.serverThread === threadId) throw new NvmeError('NVME_BAD_ARGUMENT', 'connectHostThread must run on another thread than serveHostThread (the host thread blocks while the serving thread answers)')
  if (probe.closed) throw closedError('the serving side closed it')
  const pm = attachPhysicalMemory(d.physical)
  const fabric = new HostThreadFabric(d, pm)
  try {
    fabric.attach(pm.kernels.slot)
  } catch (err) {
    fabric.abandon()
    pm.close()
    throw err
  }
  let driver: NvmeHostDriver
  try {
    const host = pm.region('host')
    driver = new NvmeHostDriver({ ...driverOptions, fabric, fn: fabric.fn, iommu: fabric.iommu, allocator: new RegionAllocator(host, d.host.offset, d.host.size) })
  } catch (err) {
    fabric.close()
    throw err
  }
  fabric.bind(driver)
  if (init) {
    try {
      await driver.init()
    } catch (err) {
      fabric.close()
      throw err
    }
  }
  return driver
}

/**
 * On the host thread: stops the driver's watchdog, tells the serving side the driver is gone
 * (it unmaps what the driver mapped), and releases this thread's kernels slot. The driver
 * must not be used after. Shut the controller down first (driver.shutdown()) to leave it
 * quiet. Idempotent.
 */
export function disconnectHostThread(driver: NvmeHostDriver): void {
  if (!(driver?.fabric instanceof HostThreadFabric)) throw new NvmeError('NVME_BAD_ARGUMENT', 'not a driver connectHostThread returned')
  driver.fabric.close()
}
