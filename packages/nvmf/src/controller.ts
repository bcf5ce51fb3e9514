// A fabrics controller (NVMe Base 2.0 §3.3, SPDK lib/nvmf/ctrlr.c): made by a Connect on an
// admin queue (the dynamic controller model), it owns that queue and the I/O queues later
// Connects attach, emulates the controller properties a host reads and writes with Property
// Get / Set (CAP, VS, CC, CSTS: there are no registers on a fabric), and runs every other
// command through the transport-independent core of @ipukit/nvme. Keep Alive Timeout from
// Connect's KATO; when it expires the controller is torn down, its queues disconnected.
import type { Bdevs, BdevChannel } from '@ipukit/bdev'
import { NvmeStatus } from '@ipukit/bdev'
import { type ControllerTransport, NvmeController, type NvmeRequest, Reg } from '@ipukit/nvme'
import type { NvmfSubsystem } from './subsystem.js'

/** A queue of a fabrics controller, whatever carries it (a TCP connection, say). */
export interface FabricsQpair {
  readonly qid: number
  /** entries */
  readonly sqsize: number
  /** the listener it came through (host:port, and the transport) */
  readonly listenAddress: string
  /** closes the queue's connection: a Disconnect, a controller teardown, a fatal error */
  disconnect(reason: string): void
}

export interface FabricsControllerOptions {
  subsystem: NvmfSubsystem
  bdevs: Bdevs
  ch: BdevChannel
  cntlid: number
  hostnqn: string
  hostid: Uint8Array
  /** the keep-alive timeout Connect asked, ms (0: none) */
  kato: number
  /** entries per I/O queue at most (CAP.MQES + 1) */
  maxQueueDepth: number
  /** I/O queues a controller may have (Number of Queues) */
  maxIoQueues: number
  /** in-capsule data the transport takes for I/O commands, bytes (IOCCSZ = (64 + it) / 16) */
  inCapsuleDataSize: number
  /** the transport's largest transfer, bytes (MDTS) */
  maxIoSize: number
  /** the discovery log (a discovery controller) */
  discoveryLog?: (hostnqn: string) => Uint8Array
}

const CAP_TO = 30 // 15 s for CSTS.RDY: a fabrics controller is ready at once; this bounds a host's wait

export class FabricsController implements ControllerTransport {
  readonly type = 'fabrics' as const
  readonly subsystem: NvmfSubsystem
  readonly cntlid: number
  readonly hostnqn: string
  readonly hostid: Uint8Array
  readonly core: NvmeController
  readonly maxQueueDepth: number
  admin: FabricsQpair | null = null
  readonly io = new Map<number, FabricsQpair>()
  /** CC and CSTS as the host set and sees them */
  cc = 0
  csts = 0
  #destroyed = false
  readonly #onDestroy: (c: FabricsController, reason: string) => void

  constructor(o: FabricsControllerOptions, onDestroy: (c: FabricsController, reason: string) => void) {
    this.subsystem = o.subsystem
    this.cntlid = o.cntlid
    this.hostnqn = o.hostnqn
    this.hostid = o.hostid
    this.maxQueueDepth = o.maxQueueDepth
    this.#onDestroy = onDestroy
    const discovery = o.subsystem.type === 'discovery'
    const s = o.subsystem
    this.core = new NvmeController({
      bdevs: o.bdevs,
      ch: o.ch,
      transport: this,
      cntlid: o.cntlid,
      serial: s.serial,
      model: s.model,
      subnqn: s.nqn,
      maxIoQueues: discovery ? 1 : o.maxIoQueues,
      // MDTS in 4 KiB units (MPSMIN 0): 128 KiB is 5
      mdts: Math.max(1, Math.floor(Math.log2(o.maxIoSize / 4096))),
      // KAS 10: 1 s granularity, as SPDK
      kas: 10,
      cntrltype: discovery ? 2 : 1,
      fabrics: { ioccsz: (64 + o.inCapsuleDataSize) / 16, iorcsz: 1, icdoff: 0, msdbd: 1 },
      namespaces: discovery ? [] : [...s.namespaces.values()].map((n) => ({ nsid: n.nsid, bdev: n.bdev })),
      ...(o.discoveryLog !== undefined && { logPage: (lid: number) => (lid === 0x70 ? o.discoveryLog!(this.hostnqn) : null) }),
    })
    this.core.setKeepAliveTimeout(o.kato)
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  /** CAP (NVMe Base §3.1.3.1): MQES, CQR, TO, CSS NVM; no doorbells, no page sizes beyond 4 KiB. */
  get cap(): bigint {
    return BigInt(this.maxQueueDepth - 1) | (1n << 16n) | (BigInt(CAP_TO) << 24n) | (1n << 37n)
  }

  /**
   * Property Get (NVMe Base §6.5): the value, or undefined for an offset that is not a
   * property of a fabrics controller or a size that does not match it (Invalid Field).
   */
  propertyGet(offset: number, size: 4 | 8): bigint | undefined {
    switch (offset) {
      case Reg.CAP:
        return size === 8 ? this.cap : undefined
      case Reg.VS:
        return size === 4 ? 0x0002_0000n : undefined
      case Reg.CC:
        return size === 4 ? BigInt(this.cc >>> 0) : undefined
      case Reg.CSTS:
        return size === 4 ? BigInt(this.csts) : undefined
      case Reg.NSSR:
        return size === 4 ? 0n : undefined
      default:
        return undefined
    }
  }

  /** Property Set (NVMe Base §6.6): an NVMe status. Only CC is writable (NSSR: no subsystem reset). */
  propertySet(offset: number, size: 4 | 8, value: bigint): number {
    if (offset === Reg.NSSR && size === 4) return NvmeStatus.Success
    if (offset !== Reg.CC || size !== 4) return NvmeStatus.InvalidField
    const prev = this.cc
    // reserved bits read as 0; CSS, MPS, AMS change only while disabled
    let cc = Number(value & 0x01ff_fff1n)
    const en = (cc & 1) === 1
    const wasEn = (prev & 1) === 1
    if (wasEn && en) cc = (cc & ~0x3ff0) | (prev & 0x3ff0)
    this.cc = cc
    if (!wasEn && en) {
      // CSS must be NVM (000b) or all I/O command sets (110b); MPS 4 KiB (CAP.MPSMAX 0)
      const css = (cc >>> 4) & 7
      const mps = (cc >>> 7) & 0xf
      if ((css !== 0 && css !== 6 && css !== 7) || mps !== 0) this.csts |= 2 // CFS
      else this.csts = (this.csts & ~2) | 1
    } else if (wasEn && !en) {
      // a controller reset (§3.7.2): the I/O queues go, outstanding commands end
      this.csts = 0
      this.core.reset()
      for (const q of [...this.io.values()]) q.disconnect('controller reset (CC.EN 0)')
      this.io.clear()
    }
    const shn = (cc >>> 14) & 3
    if (shn !== 0 && ((prev >>> 14) & 3) === 0) this.csts = (this.csts & ~0xc) | (2 << 2) // SHST complete: RAM and file bdevs flush synchronously below
    if (shn === 0) this.csts &= ~0xc
    return NvmeStatus.Success
  }

  /** Whether the host enabled it (I/O queues may connect once CSTS.RDY is 1). */
  get ready(): boolean {
    return (this.csts & 1) === 1
  }

  /** I/O queues the host was granted (Set Features Number of Queues), the most qid */
  get maxQid(): number {
    return Math.min(this.core.features.ioSqs, this.core.features.ioCqs) + 1
  }

  // ---- ControllerTransport ----

  abort(): boolean {
    // commands run as their capsule (and data) arrive: nothing waits here to be aborted
    return false
  }

  keepAliveExpired(): void {
    this.destroy(`keep-alive timeout (${this.core.features.keepAliveTimeout} ms) expired`)
  }

  // ---- life ----

  /** A queue's connection went away: the admin queue's takes the controller with it. */
  qpairGone(q: FabricsQpair): void {
    if (this.admin === q) {
      this.admin = null
      this.destroy('the admin queue disconnected')
    } else if (this.io.get(q.qid) === q) this.io.delete(q.qid)
  }

  /** Tears the controller down: its queues are disconnected, its cntlid is free again. */
  destroy(reason: string): void {
    if (this.#destroyed) return
    this.#destroyed = true
    const admin = this.admin
    this.admin = null
    for (const q of [...this.io.values()]) q.disconnect(reason)
    this.io.clear()
    admin?.disconnect(reason)
    this.core.close()
    this.#onDestroy(this, reason)
  }

  /** Runs a non-fabrics command on the core; req.done is the queue's. */
  execute(req: NvmeRequest): void {
    this.core.execute(req)
  }
}
