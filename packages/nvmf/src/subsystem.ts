// An NVM subsystem (SPDK lib/nvmf/subsystem.c): an NQN, a serial and model number, its
// namespaces (bdevs), which hosts may connect (any, or an allowlist of host NQNs), through
// which listeners, and the controllers connected hosts have. The discovery subsystem is one
// too, with no namespaces: its controllers serve the discovery log page.
//
// The same subsystem may also have static controllers of another transport: a PCIe
// function's (attachPcie), so one namespace is served to a PCIe host and to TCP hosts at once.
import { BdevError } from '@ipukit/bdev'
import { NvmePcieController, type PcieControllerOptions } from '@ipukit/nvme'
import type { FabricsController } from './controller.js'
import { NvmfError } from './errors.js'
import { DISCOVERY_NQN, nqnProblem } from './spec/fabrics.js'
import type { NvmfTarget } from './target.js'

export interface SubsystemOptions {
  nqn: string
  /** Identify SN (20 ASCII characters at most); default from the NQN */
  serial?: string
  /** Identify MN (40 at most); default "ipukit NVMe-oF controller" */
  model?: string
  /** any host may connect (SPDK's allow_any_host); default false: the allowlist only */
  allowAnyHost?: boolean
  /** host NQNs allowed to connect */
  hosts?: string[]
  /** namespaces at most; default 32 (SPDK's max_namespaces) */
  maxNamespaces?: number
}

export interface SubsystemNamespace {
  nsid: number
  bdev: string
}

export class NvmfSubsystem {
  readonly target: NvmfTarget
  readonly nqn: string
  readonly type: 'nvme' | 'discovery'
  readonly serial: string
  readonly model: string
  allowAnyHost: boolean
  readonly hosts = new Set<string>()
  /** listener addresses ("TCP 127.0.0.1:4420") the subsystem is reachable through */
  readonly listeners = new Set<string>()
  readonly namespaces = new Map<number, SubsystemNamespace>()
  readonly maxNamespaces: number
  /** connected fabrics controllers, by CNTLID */
  readonly controllers = new Map<number, FabricsController>()
  /** static controllers of other transports (a PCIe function's) */
  readonly pcie = new Set<NvmePcieController>()
  #nextCntlid = 1

  /** @internal use NvmfTarget.createSubsystem */
  constructor(target: NvmfTarget, o: SubsystemOptions, type: 'nvme' | 'discovery' = 'nvme') {
    const why = nqnProblem(o.nqn)
    if (why !== null) throw new NvmfError('NVMF_BAD_ARGUMENT', `subsystem NQN '${o.nqn}' ${why}`)
    if (type === 'nvme' && o.nqn === DISCOVERY_NQN) throw new NvmfError('NVMF_BAD_ARGUMENT', `${DISCOVERY_NQN} is the discovery subsystem's`)
    this.target = target
    this.nqn = o.nqn
    this.type = type
    this.serial = o.serial ?? defaultSerial(o.nqn)
    this.model = o.model ?? (type === 'discovery' ? 'ipukit NVMe-oF discovery' : 'ipukit NVMe-oF controller')
    if (!/^[\x20-\x7e]{1,20}$/.test(this.serial)) throw new NvmfError('NVMF_BAD_ARGUMENT', `serial '${this.serial}': 1 to 20 printable ASCII characters`)
    if (!/^[\x20-\x7e]{1,40}$/.test(this.model)) throw new NvmfError('NVMF_BAD_ARGUMENT', `model '${this.model}': 1 to 40 printable ASCII characters`)
    this.allowAnyHost = type === 'discovery' || (o.allowAnyHost ?? false)
    this.maxNamespaces = o.maxNamespaces ?? 32
    if (!Number.isInteger(this.maxNamespaces) || this.maxNamespaces < 1 || this.maxNamespaces > 1024) throw new NvmfError('NVMF_BAD_ARGUMENT', `maxNamespaces must be 1 to 1024, got ${this.maxNamespaces}`)
    for (const h of o.hosts ?? []) this.addHost(h)
  }

  // ---- hosts ----

  addHost(hostnqn: string): void {
    const why = nqnProblem(hostnqn)
    if (why !== null) throw new NvmfError('NVMF_BAD_ARGUMENT', `host NQN '${hostnqn}' ${why}`)
    this.hosts.add(hostnqn)
    this.target.changed()
  }

  /** Removes a host from the allowlist; its controllers are disconnected (SPDK does the same). */
  removeHost(hostnqn: string): void {
    if (!this.hosts.delete(hostnqn)) throw new NvmfError('NVMF_NOT_FOUND', `host '${hostnqn}' is not on ${this.nqn}'s allowlist`)
    if (!this.allowAnyHost) for (const c of [...this.controllers.values()]) if (c.hostnqn === hostnqn) c.destroy(`host ${hostnqn} removed from ${this.nqn}`)
    this.target.changed()
  }

  hostAllowed(hostnqn: string): boolean {
    return this.allowAnyHost || this.hosts.has(hostnqn)
  }

  // ---- listeners ----

  /** Makes the subsystem reachable through a listener of the target ("TCP addr:port"). */
  addListener(address: string): void {
    if (!this.target.hasListener(address)) throw new NvmfError('NVMF_NOT_FOUND', `the target has no listener ${address} (listen first)`)
    if (this.listeners.has(address)) throw new NvmfError('NVMF_EXISTS', `${this.nqn} already listens on ${address}`)
    this.listeners.add(address)
    this.target.changed()
  }

  removeListener(address: string): void {
    if (!this.listeners.delete(address)) throw new NvmfError('NVMF_NOT_FOUND', `${this.nqn} has no listener ${address}`)
    for (const c of [...this.controllers.values()]) for (const q of [c.admin, ...c.io.values()]) if (q?.listenAddress === address) q.disconnect(`listener ${address} removed`)
    this.target.changed()
  }

  // ---- namespaces ----

  /** Adds a bdev as a namespace (the lowest free NSID unless one is given); connected hosts get a namespace attribute notice. */
  addNamespace(o: { bdev: string; nsid?: number }): number {
    if (this.type === 'discovery') throw new NvmfError('NVMF_BAD_ARGUMENT', 'the discovery subsystem has no namespaces')
    if (this.target.bdevs.get(o.bdev) === undefined) throw new NvmfError('NVMF_NOT_FOUND', `no bdev '${o.bdev}'`)
    let nsid = o.nsid ?? 0
    if (nsid === 0) {
      nsid = 1
      while (this.namespaces.has(nsid)) nsid++
    }
    if (!Number.isInteger(nsid) || nsid < 1 || nsid > this.maxNamespaces) throw new NvmfError('NVMF_BAD_ARGUMENT', `nsid must be 1 to ${this.maxNamespaces} (max_namespaces), got ${nsid}`)
    if (this.namespaces.has(nsid)) throw new NvmfError('NVMF_EXISTS', `${this.nqn} has a namespace ${nsid}`)
    const ns = { nsid, bdev: o.bdev }
    // each controller opens the bdev; do it for all before recording, so a failure leaves nothing behind
    const done: { removeNamespace(n: number): void }[] = []
    try {
      for (const c of this.#cores()) {
        c.addNamespace(ns)
        done.push(c)
      }
    } catch (e) {
      for (const c of done) c.removeNamespace(nsid)
      throw e instanceof BdevError ? new NvmfError('NVMF_BAD_ARGUMENT', e.message, { cause: e }) : e
    }
    this.namespaces.set(nsid, ns)
    return nsid
  }

  removeNamespace(nsid: number): void {
    if (!this.namespaces.delete(nsid)) throw new NvmfError('NVMF_NOT_FOUND', `${this.nqn} has no namespace ${nsid}`)
    for (const c of this.#cores()) if (c.namespaces.has(nsid)) c.removeNamespace(nsid)
  }

  #cores() {
    return [...[...this.controllers.values()].map((c) => c.core), ...[...this.pcie].map((p) => p.core)]
  }

  // ---- controllers ----

  /** @internal a free CNTLID (1 to FFEFh), shared with the static controllers */
  allocateCntlid(): number {
    const used = new Set<number>([...this.controllers.keys(), ...[...this.pcie].map((p) => p.core.cntlid)])
    for (let i = 0; i < 0xffef; i++) {
      const id = this.#nextCntlid
      this.#nextCntlid = (this.#nextCntlid % 0xffef) + 1
      if (!used.has(id)) return id
    }
    return -1
  }

  /**
   * A static controller of this subsystem on a PCIe function: the memory-based transport of
   * @ipukit/nvme behind the same namespaces. Its CNTLID, serial, model and NQN are the
   * subsystem's; namespaces added or removed later reach it too.
   */
  attachPcie(o: Omit<PcieControllerOptions, 'bdevs' | 'namespaces' | 'cntlid' | 'subnqn' | 'serial' | 'model'> & { ch: PcieControllerOptions['ch'] }): NvmePcieController {
    if (this.type === 'discovery') throw new NvmfError('NVMF_BAD_ARGUMENT', 'the discovery subsystem has no PCIe controller')
    const cntlid = this.allocateCntlid()
    if (cntlid < 0) throw new NvmfError('NVMF_BAD_ARGUMENT', `${this.nqn} has no free controller ID`)
    const p = new NvmePcieController({ ...o, bdevs: this.target.bdevs, cntlid, subnqn: this.nqn, serial: this.serial, model: this.model, namespaces: [...this.namespaces.values()] })
    this.pcie.add(p)
    return p
  }

  detachPcie(p: NvmePcieController): void {
    if (!this.pcie.delete(p)) throw new NvmfError('NVMF_NOT_FOUND', 'that PCIe controller is not this subsystem\'s')
    p.core.close()
  }

  /** Disconnects every controller (the subsystem is being removed). */
  close(): void {
    for (const c of [...this.controllers.values()]) c.destroy(`subsystem ${this.nqn} removed`)
    for (const p of [...this.pcie]) this.detachPcie(p)
  }
}

function defaultSerial(nqn: string): string {
  // a stable 20-character serial from the NQN (FNV-1a)
  let h = 0x811c9dc5
  for (let i = 0; i < nqn.length; i++) h = Math.imul(h ^ nqn.charCodeAt(i), 0x01000193) >>> 0
  return `IPUKIT${h.toString(16).padStart(8, '0')}`.toUpperCase()
}
