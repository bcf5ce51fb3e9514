// The nvme-tcp bdev (SPDK module/bdev/nvme, bdev_nvme_attach_controller): a controller of a
// remote NVMe/TCP subsystem, its namespaces as bdevs named <name>n<nsid>. The bottom of a
// stack: a write runs its I/O's accel sequence into an iobuf buffer that is then the data of
// the command's PDUs (in-capsule or H2CData), so crypto -> dif -> nvme-tcp encrypts and
// protects the host's data in one pass straight into what the socket sends; a read lands in
// such a buffer from the socket, and the sequence (verify and decrypt) runs out of it into
// the caller's buffers. An I/O without a sequence whose buffers are local memory, or host
// memory the domain translates, is sent from (or received into) them directly.
import { Bdev, BdevError, type BdevIo, type BdevIoType, type Bdevs, NvmeStatus, runSequence } from '@ipukit/bdev'
import { IoVecList } from '@ipukit/memory'
import { AdminOpcode, NvmOpcode } from '@ipukit/nvme'
import { NvmfError } from './errors.js'
import { type HostCompletion, NvmfHost, type NvmfHostOptions } from './host.js'

export interface AttachControllerOptions {
  /** the controller's name: its namespaces become <name>n1, <name>n2, ... */
  name: string
  traddr: string
  trsvcid: string | number
  subnqn: string
  hostnqn?: string
  hdgst?: boolean
  ddgst?: boolean
  /** I/O queues; default 1 (one per thread in SPDK: this runs on one) */
  ioQueues?: number
  queueDepth?: number
  reconnectDelayMs?: number
  ctrlLossTimeoutMs?: number
  ioTimeoutMs?: number
  /** ms for the TCP connection, ICResp and each bring-up command; default 10 000 */
  connectTimeoutMs?: number
  kato?: number
}

/** A namespace of a remote controller, as a bdev. */
export class NvmeTcpBdev extends Bdev {
  readonly module = 'nvme'
  readonly host: NvmfHost
  readonly nsid: number
  readonly controller: string
  readonly #bdevs: Bdevs
  #next = 0

  /** @internal use attachNvmeController */
  constructor(bdevs: Bdevs, controller: string, host: NvmfHost, nsid: number) {
    const ns = host.namespaces.get(nsid)!
    super({ name: `${controller}n${nsid}`, blockCount: ns.blocks, blockSize: ns.blockSize, mdSize: ns.mdSize, ...(ns.pi.type !== 0 && { pi: ns.pi }), maxIoBlocks: Math.floor(Math.min(host.maxTransfer, bdevs.accel.physical.layout.iobuf.largeSize) / (ns.blockSize + ns.mdSize)) })
    this.#bdevs = bdevs
    this.host = host
    this.nsid = nsid
    this.controller = controller
  }

  ioTypeSupported(_type: BdevIoType): boolean {
    // read, write, flush, unmap (DSM deallocate), write_zeroes, reset (the host's error recovery)
    return true
  }

  #queue(): number {
    const n = this.host.ioQueues
    const q = this.#next
    this.#next = (this.#next + 1) % n
    return q
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case 'read':
      case 'write':
        return this.#rw(io)
      case 'flush':
        return this.#cmd(io, NvmOpcode.Flush, 0, 0)
      case 'write_zeroes':
        // NLB is 16 bits: one Write Zeroes per 65536 blocks
        io.pending = Math.ceil(io.numBlocks / 65536)
        io.progress = 0
        io.status = NvmeStatus.Success
        for (let at = 0; at < io.numBlocks; at += 65536) this.#cmd(io, NvmOpcode.WriteZeroes, io.offsetBlocks + at, Math.min(65536, io.numBlocks - at))
        return
      case 'unmap':
        return this.#unmap(io)
      default:
        // reset: the host's error recovery is the controller reset; nothing queued here
        return io.complete(NvmeStatus.Success)
    }
  }

  #rw(io: BdevIo): void {
    const bytes = io.numBlocks * this.blockLen
    if (io.seq === null) {
      // no sequence: send from, or receive into, the caller's buffers themselves
      if (io.domain === null) return this.#send(io, io.iovs!)
      const phys = io.lists[1].clear()
      if (io.domain.translate(io.iovs!, phys, io.type === 'write' ? 1 : 2) === 0) return this.#send(io, phys)
    }
    // a sequence (or a domain that does not translate): the PDU data buffer is an iobuf buffer
    const a = io.bufs[0] !== 0 ? io.bufs[0]! : io.ch.accel.iobuf.get(bytes)
    if (a === 0) return io.ch.retry(io, (again) => this.#rw(again))
    io.bufs[0] = a
    const local = io.lists[0].clear().push(a, bytes)
    // a bound method, not a closure over `local`: no allocation per write (local is x.lists[0])
    if (io.type === 'write') return runSequence(io, local, this.#encodedFn)
    this.#send(io, local)
  }

  #send(io: BdevIo, data: IoVecList): void {
    const write = io.type === 'write'
    const rc = this.host.rw(this.#queue(), write, this.nsid, io.offsetBlocks, io.numBlocks, data, completed, ctxOf(this, io), io.fua && write ? 1 << 30 : 0)
    if (rc !== 0) io.ch.retry(io, (again) => this.#send(again, data))
  }

  /** @internal the command completed: a read with a sequence runs it out of the buffer */
  finished(io: BdevIo, c: HostCompletion): void {
    // a read into the iobuf buffer: the sequence (or the copy to an untranslatable domain) runs out of it
    if (c.status === NvmeStatus.Success && io.type === 'read' && io.bufs[0] !== 0) return runSequence(io, io.lists[0], this.#doneFn)
    if (io.type === 'write_zeroes') return this.#zeroesDone(io, c.status)
    this.#done(io, c.status)
  }

  readonly #doneFn = (io: BdevIo, status: number): void => this.#done(io, status)
  /** the write's sequence ran into the PDU data buffer (io.lists[0]): send it */
  readonly #encodedFn = (io: BdevIo, status: number): void => (status === NvmeStatus.Success ? this.#send(io, io.lists[0]) : this.#done(io, status))

  #done(io: BdevIo, status: number): void {
    if (io.bufs[0] !== 0) {
      io.ch.accel.iobuf.put(io.bufs[0]!)
      io.bufs[0] = 0
    }
    io.complete(status)
  }

  #cmd(io: BdevIo, opcode: number, lba: number, blocks: number): void {
    const rc = this.host.io(
      this.#queue(),
      (v) => {
        v.setUint8(0, opcode)
        v.setUint32(4, this.nsid, true)
        if (blocks > 0) {
          v.setUint32(40, lba % 0x1_0000_0000, true)
          v.setUint32(44, Math.floor(lba / 0x1_0000_0000), true)
          v.setUint32(48, (blocks - 1) & 0xffff, true)
        }
      },
      null,
      false,
      completed,
      ctxOf(this, io),
    )
    if (rc !== 0) io.ch.retry(io, (again) => this.#cmd(again, opcode, lba, blocks))
  }

  #zeroesDone(io: BdevIo, status: number): void {
    if (status !== NvmeStatus.Success && io.status === NvmeStatus.Success) io.status = status
    if (++io.progress === io.pending) this.#done(io, io.status)
  }

  /** Dataset Management, deallocate: one range per 65536 blocks, the ranges in an iobuf buffer. */
  #unmap(io: BdevIo): void {
    const ranges = Math.ceil(io.numBlocks / 65536)
    if (ranges > 256) return io.complete(NvmeStatus.InvalidField)
    const a = io.bufs[0] !== 0 ? io.bufs[0]! : io.ch.accel.iobuf.get(ranges * 16)
    if (a === 0) return io.ch.retry(io, (again) => this.#unmap(again))
    io.bufs[0] = a
    const v = new DataView(this.#bdevs.accel.physical.memory.buffer)
    let lba = io.offsetBlocks
    let left = io.numBlocks
    for (let r = 0; r < ranges; r++) {
      const n = Math.min(65536, left)
      v.setUint32(a + 16 * r, 0, true)
      v.setUint32(a + 16 * r + 4, n, true)
      v.setUint32(a + 16 * r + 8, lba % 0x1_0000_0000, true)
      v.setUint32(a + 16 * r + 12, Math.floor(lba / 0x1_0000_0000), true)
      lba += n
      left -= n
    }
    const list = io.lists[0].clear().push(a, ranges * 16)
    const rc = this.host.io(
      this.#queue(),
      (sqe) => {
        sqe.setUint8(0, NvmOpcode.DatasetManagement)
        sqe.setUint32(4, this.nsid, true)
        sqe.setUint32(40, ranges - 1, true)
        sqe.setUint32(44, 1 << 2, true) // AD: deallocate
      },
      list,
      false,
      completedUnmap,
      ctxOf(this, io),
    )
    if (rc !== 0) io.ch.retry(io, (again) => this.#unmap(again))
  }

  /** @internal */
  unmapDone(io: BdevIo, c: HostCompletion): void {
    this.#done(io, c.status)
  }

  /** The last namespace of a controller going closes its connection (bdevs.close(), an unregister). */
  override async destruct(): Promise<void> {
    const map = controllers.get(this.#bdevs)
    const c = map?.get(this.controller)
    if (c === undefined || c.host !== this.host) return
    c.bdevs.splice(c.bdevs.indexOf(this), 1)
    if (c.bdevs.length === 0) {
      map!.delete(this.controller)
      await this.host.close()
    }
  }

  override driverSpecific(): Record<string, unknown> {
    return { nvme: [{ trid: { trtype: 'TCP', traddr: this.host.traddr, trsvcid: String(this.host.port), subnqn: this.host.subnqn }, ctrlr_data: { cntlid: this.host.cntlid }, ns_data: { id: this.nsid }, state: this.host.state }] }
  }
}

// the completion's context: one per I/O object, made once and reused (no allocation per I/O)
const contexts = new WeakMap<BdevIo, { bdev: NvmeTcpBdev; io: BdevIo }>()
function ctxOf(bdev: NvmeTcpBdev, io: BdevIo): { bdev: NvmeTcpBdev; io: BdevIo } {
  let c = contexts.get(io)
  if (c === undefined) contexts.set(io, (c = { bdev, io }))
  else c.bdev = bdev
  return c
}
function completed(ctx: { bdev: NvmeTcpBdev; io: BdevIo }, c: HostCompletion): void {
  ctx.bdev.finished(ctx.io, c)
}
function completedUnmap(ctx: { bdev: NvmeTcpBdev; io: BdevIo }, c: HostCompletion): void {
  ctx.bdev.unmapDone(ctx.io, c)
}
/** The controllers attached, by name. */
const controllers = new WeakMap<Bdevs, Map<string, { host: NvmfHost; bdevs: NvmeTcpBdev[] }>>()

/**
 * Attaches a remote NVMe/TCP controller (SPDK bdev_nvme_attach_controller): connects, and
 * registers a bdev per active namespace. Resolves to the bdevs' names.
 */
export async function attachNvmeController(bdevs: Bdevs, o: AttachControllerOptions): Promise<string[]> {
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9_.-]{1,200}$/.test(o.name)) throw new NvmfError('NVMF_BAD_ARGUMENT', `name must be 1 to 200 letters, digits, '_', '.' or '-', got '${String(o.name)}'`)
  let map = controllers.get(bdevs)
  if (map === undefined) controllers.set(bdevs, (map = new Map()))
  if (map.has(o.name)) throw new NvmfError('NVMF_EXISTS', `a controller named '${o.name}' is attached`)
  const opts: NvmfHostOptions = {
    physical: bdevs.accel.physical,
    traddr: o.traddr,
    trsvcid: o.trsvcid,
    subnqn: o.subnqn,
    ...(o.hostnqn !== undefined && { hostnqn: o.hostnqn }),
    hdgst: o.hdgst ?? false,
    ddgst: o.ddgst ?? false,
    ioQueues: o.ioQueues ?? 1,
    queueDepth: o.queueDepth ?? 128,
    ...(o.reconnectDelayMs !== undefined && { reconnectDelayMs: o.reconnectDelayMs }),
    ...(o.ctrlLossTimeoutMs !== undefined && { ctrlLossTimeoutMs: o.ctrlLossTimeoutMs }),
    ...(o.ioTimeoutMs !== undefined && { ioTimeoutMs: o.ioTimeoutMs }),
    ...(o.connectTimeoutMs !== undefined && { connectTimeoutMs: o.connectTimeoutMs }),
    ...(o.kato !== undefined && { kato: o.kato }),
  }
  const host = new NvmfHost(opts)
  try {
    await host.connect()
  } catch (e) {
    // a refused Connect leaves the admin queue's socket open (the host would retry on it): an attach that failed holds nothing
    await host.close()
    throw e
  }
  const made: NvmeTcpBdev[] = []
  try {
    for (const nsid of host.namespaces.keys()) {
      if (bdevs.get(`${o.name}n${nsid}`) !== undefined) throw new NvmfError('NVMF_EXISTS', `a bdev named '${o.name}n${nsid}' exists`)
      const b = new NvmeTcpBdev(bdevs, o.name, host, nsid)
      bdevs.register(b)
      made.push(b)
    }
  } catch (e) {
    for (const b of made) await bdevs.unregister(b.name)
    await host.close()
    throw e instanceof BdevError ? new NvmfError('NVMF_BAD_ARGUMENT', e.message, { cause: e }) : e
  }
  map.set(o.name, { host, bdevs: made })
  return made.map((b) => b.name)
}

/** Detaches a controller (bdev_nvme_detach_controller): its bdevs are unregistered, the connection closed. */
export async function detachNvmeController(bdevs: Bdevs, name: string): Promise<void> {
  const c = controllers.get(bdevs)?.get(name)
  if (c === undefined) throw new NvmfError('NVMF_NOT_FOUND', `no controller named '${name}'`)
  for (const b of [...c.bdevs]) await bdevs.unregister(b.name)
  controllers.get(bdevs)!.delete(name)
  await c.host.close()
}

export { AdminOpcode }
