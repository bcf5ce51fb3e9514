// The fabric: host bridges and their root buses, root ports, switches (an upstream port,
// an internal bus, downstream ports), endpoints and their functions, SR-IOV virtual
// functions. Built from code or from a JSON document, enumerated depth first as firmware
// does (bus numbers, then BAR addresses in each host bridge's MMIO window), and rendered
// like `lspci -tv`.
//
//   host bridge ── root bus ──┬── 00.0 host bridge device (what the P2P allowlist checks)
//                             ├── root port ── bus ── endpoint (device 0, functions 0..7)
//                             └── root port ── bus ── switch upstream port
//                                                       └── internal bus ──┬── downstream port ── endpoint
//                                                                          └── downstream port ── endpoint
import { checkInt, rangeError, typeError } from '@ipukit/kernels'
import type { Iommu, PhysicalMemory, Region } from '@ipukit/memory'
import { AcsBit, barAddress, CapId, Cfg, Command, ConfigSpace, defineBar64, ExtCapId, PortType } from './config-space.js'
import { PcieError } from './errors.js'
import { hex2, hex4, renderBus } from './internal/render.js'
import { InterruptController, type MsixSpec, MsixTable } from './msix.js'
import { cpuSupportsP2pdma, HOST_BRIDGE_ALLOWLIST, type HostBridgeAllowlistEntry, hostBridgeWhitelist, P2pdma, type P2pdmaOptions } from './p2pdma.js'
import { BusMasterDomain } from './dma-engine.js'
import { type LinkInfo, Traffic } from './traffic.js'

export type FunctionKind = 'host-bridge' | 'root-port' | 'upstream-port' | 'downstream-port' | 'endpoint'

/** A register BAR's device model: reads and writes of 1, 2 and 4 bytes (8 through read64/write64). */
export interface RegisterHandler {
  read(offset: number, size: 1 | 2 | 4): number
  write(offset: number, size: 1 | 2 | 4, value: number): void
  read64?(offset: number): bigint
  write64?(offset: number, value: bigint): void
}

export interface BarSpec {
  index: number
  /** bytes, a power of two */
  size: number
  /** 'registers': accesses go to `handler`; 'memory': a region of the shared memory (CMB, PMR, p2pmem) */
  kind: 'registers' | 'memory'
  /** memory BARs: the device region of the PhysicalMemory that backs it */
  region?: string
  handler?: RegisterHandler
  prefetchable?: boolean
}

/** PCIe generation (1–6) and width of a link; bandwidth comes from both. */
export interface LinkSpec {
  gen: 1 | 2 | 3 | 4 | 5 | 6
  width: 1 | 2 | 4 | 8 | 12 | 16 | 32
}

export interface AcsSpec {
  /** ACS Control bits set at reset (the capability advertises all of them) */
  requestRedirect?: boolean
  completionRedirect?: boolean
  egressControl?: boolean
  sourceValidation?: boolean
  upstreamForwarding?: boolean
}

export interface SriovSpec {
  totalVfs: number
  vfDeviceId: number
  firstVfOffset?: number
  vfStride?: number
}

export interface FunctionSpec {
  fn?: number
  name?: string
  vendorId: number
  deviceId: number
  /** 24-bit class code (base, sub, prog-if), e.g. 0x010802 for NVMe */
  classCode?: number
  bars?: BarSpec[]
  msix?: MsixSpec
  acs?: AcsSpec
  sriov?: SriovSpec
}

export interface EndpointSpec {
  name: string
  /** device number on a root bus (root-complex integrated endpoints); 0 below a port */
  device?: number
  link?: LinkSpec
  functions: FunctionSpec[]
}

export interface PortSpec {
  name: string
  device?: number
  vendorId?: number
  deviceId?: number
  link?: LinkSpec
  acs?: AcsSpec
}

export interface SwitchSpec {
  name: string
  vendorId?: number
  deviceId?: number
  /** link above the switch (its upstream port's) */
  link?: LinkSpec
  acs?: AcsSpec
  downstreamPorts: (PortSpec | string)[]
}

export interface HostBridgeSpec {
  name: string
  /** the host bridge device at 00.0 of the root bus (what the P2PDMA allowlist checks) */
  vendorId: number
  deviceId: number
  domain?: number
  bus?: number
  /** leave out the 00.0 device (then the first root port stands for the host bridge) */
  noHostBridgeDevice?: boolean
}

export interface CpuSpec {
  vendor: 'intel' | 'amd' | 'other'
  /** x86 family (AMD Zen is 0x17 and later) */
  family: number
}

export class PciBus {
  number = -1
  readonly devices: PciDevice[] = []
  constructor(
    readonly hostBridge: HostBridge,
    /** the bridge whose secondary bus this is; null for a root bus */
    readonly self: PciFunction | null,
  ) {}
}

/** A device: a slot on a bus holding functions (and the link above it, below a port). */
export class PciDevice {
  readonly functions: PciFunction[] = []
  /** index of the link above this device in the fabric's traffic counters, or -1 (none) */
  linkIndex = -1
  constructor(
    readonly bus: PciBus,
    public number: number,
    readonly name: string,
    readonly link: LinkSpec | undefined,
  ) {}
}

export interface BarMapping {
  readonly fn: PciFunction
  readonly index: number
  readonly size: number
  readonly kind: 'registers' | 'memory'
  readonly region: Region | undefined
  /** the device model of a register BAR (PciFunction.setRegisterHandler); reserved registers read 0 without one */
  handler: RegisterHandler | undefined
  /** bus address while the function decodes memory, else -1 */
  address: number
  /** overlaps another BAR: it does not decode until it moves */
  conflict: boolean
  /** @internal the address of its IOMMU window, or -1 */
  window: number
}

export class PciFunction {
  readonly config = new ConfigSpace()
  readonly bars: BarMapping[] = []
  msix: MsixTable | undefined
  /** bridges: the bus below */
  readonly secondary: PciBus | undefined
  /** virtual functions: the physical function they belong to */
  readonly physfn: PciFunction | undefined
  readonly virtfns: PciFunction[] = []
  /** a number unique in the fabric, never reused */
  readonly uid: number
  #sriov: SriovSpec | undefined

  constructor(
    readonly fabric: PciFabric,
    readonly device: PciDevice,
    readonly kind: FunctionKind,
    readonly fn: number,
    readonly name: string,
    spec: { vendorId: number; deviceId: number; classCode?: number },
    physfn?: PciFunction,
  ) {
    this.physfn = physfn
    this.uid = fabric.nextUid()
    const c = this.config
    c.set(Cfg.VENDOR, 2, spec.vendorId)
    c.set(Cfg.DEVICE, 2, spec.deviceId)
    c.set(Cfg.COMMAND, 2, 0, Command.MemorySpace | Command.BusMaster)
    c.set(Cfg.STATUS, 2, 0, 0, 0xf900)
    c.set(Cfg.CLASS, 1, (spec.classCode ?? 0) & 0xff)
    c.set(Cfg.CLASS + 1, 2, (spec.classCode ?? 0) >>> 8)
    const bridge = kind === 'root-port' || kind === 'upstream-port' || kind === 'downstream-port'
    c.set(Cfg.HEADER_TYPE, 1, bridge ? 1 : 0)
    if (bridge) {
      this.secondary = new PciBus(device.bus.hostBridge, this)
      c.set(Cfg.PRIMARY_BUS, 1, 0, 0xff)
      c.set(Cfg.SECONDARY_BUS, 1, 0, 0xff)
      c.set(Cfg.SUBORDINATE_BUS, 1, 0, 0xff)
    }
    if (kind !== 'host-bridge') {
      const at = c.addCapability(CapId.PciExpress, 0x3c)
      const type =
        kind === 'root-port' ? PortType.RootPort : kind === 'upstream-port' ? PortType.UpstreamPort : kind === 'downstream-port' ? PortType.DownstreamPort : device.bus.self === null ? PortType.RootComplexIntegratedEndpoint : PortType.Endpoint
      c.set(at + 2, 2, 2 | (type << 4))
      const link = device.link
      if (link) {
        // Link Capabilities: max speed [3:0], max width [9:4]; Link Status mirrors them
        c.set(at + 0x0c, 4, link.gen | (link.width << 4))
        c.set(at + 0x12, 2, link.gen | (link.width << 4))
      }
    }
    c.onWrite = (offset) => this.#configWritten(offset)
  }

  /** Bus number (after enumeration). */
  get bus(): number {
    return this.device.bus.number
  }

  get devfn(): number {
    return (this.device.number << 3) | this.fn
  }

  /** Requester ID: bus << 8 | device << 3 | function. */
  get rid(): number {
    return (this.bus << 8) | this.devfn
  }

  /** dddd:bb:dd.f */
  get bdf(): string {
    const h = (n: number, w: number) => n.toString(16).padStart(w, '0')
    return `${h(this.device.bus.hostBridge.domain, 4)}:${h(this.bus, 2)}:${h(this.device.number, 2)}.${this.fn}`
  }

  get vendorId(): number {
    return this.config.read(Cfg.VENDOR, 2)
  }

  get deviceId(): number {
    return this.config.read(Cfg.DEVICE, 2)
  }

  get isBridge(): boolean {
    return this.secondary !== undefined
  }

  /** pci_upstream_bridge(): the bridge above (a VF answers for its PF); null on a root bus. */
  upstreamBridge(): PciFunction | null {
    const f = this.physfn ?? this
    return f.device.bus.self
  }

  /** The PCIe device/port type from the PCI Express capability (-1 without one). */
  get portType(): number {
    const at = this.config.findCapability(CapId.PciExpress)
    return at === 0 ? -1 : (this.config.read(at + 2, 2) >> 4) & 0xf
  }

  /** pci_bridge_has_acs_redir(): an ACS capability with RR, CR or EC set in its control. */
  hasAcsRedirect(): boolean {
    const at = this.config.findExtendedCapability(ExtCapId.Acs)
    if (at === 0) return false
    const ctrl = this.config.read(at + 6, 2)
    return (ctrl & (AcsBit.RequestRedirect | AcsBit.CompletionRedirect | AcsBit.EgressControl)) !== 0
  }

  /** Sets ACS control bits (as software would); the fabric forgets cached P2P results. */
  setAcs(spec: AcsSpec): void {
    const at = this.config.findExtendedCapability(ExtCapId.Acs)
    if (at === 0) throw new PcieError('PCIE_BAD_TOPOLOGY', `${this.name} has no ACS capability`)
    this.config.write(at + 6, 2, acsBits(spec))
  }

  /** The link above this function's device (below its port). */
  get link(): LinkSpec | undefined {
    return (this.physfn ?? this).device.link
  }

  /** Attaches the device model behind a register BAR (a topology document cannot name one). */
  setRegisterHandler(index: number, handler: RegisterHandler): void {
    const b = this.bars.find((x) => x.index === index)
    if (b === undefined || b.kind !== 'registers') throw rangeError(`${this.name} has no register BAR ${index}`)
    if (handler === null || typeof handler !== 'object' || typeof handler.read !== 'function' || typeof handler.write !== 'function') {
      throw typeError('handler needs read(offset, size) and write(offset, size, value)')
    }
    b.handler = handler
  }

  /** @internal */
  addBar(spec: BarSpec, region: Region | undefined): void {
    defineBar64(this.config, spec.index, spec.size, spec.prefetchable ?? spec.kind === 'memory')
    this.bars.push({ fn: this, index: spec.index, size: spec.size, kind: spec.kind, region, handler: spec.handler, address: -1, conflict: false, window: -1 })
  }

  /** @internal */
  setupSriov(spec: SriovSpec): void {
    const at = this.config.addExtendedCapability(ExtCapId.SrIov, 1, 0x40)
    this.config.set(at + 0x08, 2, 0, 0x0001) // control: VF Enable writable
    this.config.set(at + 0x0c, 2, spec.totalVfs) // InitialVFs
    this.config.set(at + 0x0e, 2, spec.totalVfs) // TotalVFs
    this.config.set(at + 0x10, 2, 0, 0xffff) // NumVFs
    this.config.set(at + 0x14, 2, spec.firstVfOffset ?? 1)
    this.config.set(at + 0x16, 2, spec.vfStride ?? 1)
    this.config.set(at + 0x1a, 2, spec.vfDeviceId)
    this.#sriov = spec
  }

  #configWritten(offset: number): void {
    this.msix?.configWritten(offset)
    if (offset === Cfg.COMMAND || (offset >= Cfg.BAR0 && offset < Cfg.BAR0 + 24 && !this.isBridge)) this.fabric.remap(this)
    if (this.#sriov && offset >= 0x100) this.#sriovWritten()
    this.fabric.invalidateP2p()
  }

  /** Number of VFs enabled through the SR-IOV capability. */
  get numVfs(): number {
    return this.virtfns.length
  }

  #sriovWritten(): void {
    const at = this.config.findExtendedCapability(ExtCapId.SrIov)
    const enable = (this.config.read(at + 0x08, 2) & 1) === 1
    const want = enable ? Math.min(this.config.read(at + 0x10, 2), this.#sriov!.totalVfs) : 0
    if (want === this.virtfns.length) return
    this.fabric.setVfs(this, want, this.config.read(at + 0x14, 2), this.config.read(at + 0x16, 2), this.#sriov!.vfDeviceId)
  }
}

export function acsBits(spec: AcsSpec): number {
  return (
    (spec.requestRedirect ? AcsBit.RequestRedirect : 0) |
    (spec.completionRedirect ? AcsBit.CompletionRedirect : 0) |
    (spec.egressControl ? AcsBit.EgressControl : 0) |
    (spec.sourceValidation ? AcsBit.SourceValidation : 0) |
    (spec.upstreamForwarding ? AcsBit.UpstreamForwarding : 0)
  )
}

function addAcs(f: PciFunction, spec: AcsSpec): void {
  const at = f.config.addExtendedCapability(ExtCapId.Acs, 1, 8)
  const all = AcsBit.SourceValidation | AcsBit.RequestRedirect | AcsBit.CompletionRedirect | AcsBit.UpstreamForwarding | AcsBit.EgressControl
  f.config.set(at + 4, 2, all)
  f.config.set(at + 6, 2, acsBits(spec), all)
}

export class HostBridge {
  readonly rootBus: PciBus
  readonly domain: number
  /** the root bus number requested (assigned at enumeration if undefined) */
  readonly requestedBus: number | undefined
  readonly vendorId: number
  readonly deviceId: number
  /** this host bridge's MMIO window for BARs */
  mmioBase = 0
  mmioNext = 0

  constructor(
    readonly fabric: PciFabric,
    readonly name: string,
    spec: HostBridgeSpec,
  ) {
    this.domain = spec.domain ?? 0
    this.requestedBus = spec.bus
    this.vendorId = spec.vendorId
    this.deviceId = spec.deviceId
    this.rootBus = new PciBus(this, null)
    if (!spec.noHostBridgeDevice) {
      const dev = new PciDevice(this.rootBus, 0, name, undefined)
      this.rootBus.devices.push(dev)
      const f = new PciFunction(fabric, dev, 'host-bridge', 0, name, { vendorId: spec.vendorId, deviceId: spec.deviceId, classCode: 0x060000 })
      dev.functions.push(f)
      fabric.register(f)
    }
  }

  /** pci_host_bridge_dev(): the first device on the root bus, if it is 00.0 or a root port. */
  hostBridgeDevice(): PciFunction | null {
    const first = this.rootBus.devices[0]?.functions[0]
    if (first === undefined) return null
    if (first.devfn === 0) return first
    if (first.portType === PortType.RootPort) return first
    return null
  }

  /** A root port on the root bus. */
  addRootPort(spec: PortSpec): PciFunction {
    return this.fabric.attachPort(this.rootBus, 'root-port', spec)
  }

  /** A root-complex integrated endpoint on the root bus. */
  addEndpoint(spec: EndpointSpec): PciDevice {
    return this.fabric.attachEndpoint(this.rootBus, spec)
  }
}

export interface PciFabricOptions {
  /** the CPU (its vendor and family decide cpu_supports_p2pdma()); default Intel family 6 */
  cpu?: CpuSpec
  /** the memory that memory BARs live in (their regions) and DMA moves */
  physical?: PhysicalMemory
  /** the IOMMU in front of host memory; memory BARs become windows in its host physical space */
  iommu?: Iommu
  /** the host bridges P2P may cross; default Linux's pci_p2pdma_whitelist[] */
  allowlist?: readonly HostBridgeAllowlistEntry[]
  /** tie-breaking and warnings of the P2PDMA queries */
  p2pdma?: P2pdmaOptions
  /** the link a topology leaves unspecified; default Gen4 x16 */
  defaultLink?: LinkSpec
  /** message data values the host's interrupt controller has; default 4096 */
  interruptVectors?: number
}

// BAR windows live above host DRAM and above 4 GiB: one 64 GiB window per host bridge
const MMIO_BASE = 2 ** 38
const MMIO_WINDOW = 2 ** 36

/** The whole PCIe model. */
export class PciFabric {
  readonly cpu: CpuSpec
  readonly physical: PhysicalMemory | undefined
  readonly iommu: Iommu | undefined
  readonly allowlist: readonly HostBridgeAllowlistEntry[]
  readonly defaultLink: LinkSpec
  readonly hostBridges: HostBridge[] = []
  readonly functions: PciFunction[] = []
  /** the host's interrupt controller: MSI-X messages end here */
  readonly interrupts: InterruptController
  /** map types, distances, provider selection and p2pmem */
  readonly p2pdma: P2pdma
  #traffic: Traffic | undefined
  #uid = 0
  #byUid = new Map<number, PciFunction>()
  #busOrder: PciFunction[] | undefined
  #busMasters = new Map<PciFunction, BusMasterDomain>()
  /** region slot (index in the physical layout) -> the memory BAR it backs */
  #barOfSlot: (BarMapping | undefined)[] = []
  #slotBase: Float64Array = new Float64Array(0)
  #byName = new Map<string, PciFunction>()
  #byRid = new Map<number, PciFunction>()
  #enumerated = false
  /** mapped BARs sorted by address, for MMIO dispatch */
  #map: BarMapping[] = []
  #last: BarMapping | undefined
  /** bumped whenever something P2P results depend on changes */
  p2pEpoch = 0
  #invalidators: (() => void)[] = []

  constructor(options: PciFabricOptions = {}) {
    this.cpu = options.cpu ?? { vendor: 'intel', family: 6 }
    if (!['intel', 'amd', 'other'].includes(this.cpu.vendor)) throw rangeError(`cpu.vendor must be intel, amd or other, got ${String(this.cpu.vendor)}`)
    checkInt('cpu.family', this.cpu.family, 0, 0xff)
    this.physical = options.physical
    this.iommu = options.iommu
    if (this.iommu !== undefined && this.physical !== undefined && this.iommu.physical !== this.physical) throw rangeError('the IOMMU belongs to another physical memory')
    this.allowlist = options.allowlist ?? HOST_BRIDGE_ALLOWLIST
    this.defaultLink = options.defaultLink ?? { gen: 4, width: 16 }
    checkLink('defaultLink', this.defaultLink)
    this.interrupts = new InterruptController(options.interruptVectors ?? 4096)
    this.p2pdma = new P2pdma(this, options.p2pdma)
    if (this.physical !== undefined) {
      const regions = this.physical.layout.regions
      this.#slotBase = Float64Array.from(regions, (r) => r.base)
      this.#barOfSlot = new Array(regions.length)
    }
  }

  /** @internal */
  nextUid(): number {
    return this.#uid++
  }

  /** The counters every DMA is charged to (after enumeration). */
  get traffic(): Traffic {
    if (this.#traffic === undefined) throw new PcieError('PCIE_BAD_TOPOLOGY', 'enumerate the fabric first')
    return this.#traffic
  }

  /** The links of the fabric (after enumeration). */
  get links(): readonly LinkInfo[] {
    return this.traffic.links
  }

  /** The DMA view of a function (its bus master domain), one per function. */
  busMaster(fn: PciFunction): BusMasterDomain {
    if (fn.fabric !== this) throw rangeError(`${fn.name} is not a function of this fabric`)
    let d = this.#busMasters.get(fn)
    if (d === undefined) this.#busMasters.set(fn, (d = new BusMasterDomain(fn)))
    return d
  }

  /** @internal the index of the physical region holding `address` (-1 if none) */
  regionSlot(address: number): number {
    const b = this.#slotBase
    let lo = 0
    let hi = b.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (b[mid]! <= address) lo = mid
      else hi = mid - 1
    }
    return b.length > 0 && address >= b[0]! ? lo : -1
  }

  /** @internal the memory BAR backed by a region slot, if any */
  barOfRegionSlot(slot: number): BarMapping | undefined {
    return this.#barOfSlot[slot]
  }

  /**
   * Whether the root complex forwards a request from `requester` to `provider`'s BAR
   * (cpu_supports_p2pdma() or host_bridge_whitelist()).
   */
  rootComplexRoutes(provider: PciFunction, requester: PciFunction): boolean {
    return cpuSupportsP2pdma(this) || hostBridgeWhitelist(provider, requester)
  }

  /** @internal */
  functionByUid(uid: number): PciFunction {
    const f = this.#byUid.get(uid)
    if (f === undefined) throw rangeError(`no function with uid ${uid}`)
    return f
  }

  /** Every function, in the order Linux's device list has them (domain, bus, devfn). */
  functionsInBusOrder(): readonly PciFunction[] {
    if (this.#busOrder === undefined) {
      const key = (f: PciFunction) => f.device.bus.hostBridge.domain * 65536 + f.rid
      this.#busOrder = [...this.functions].sort((a, b) => key(a) - key(b))
    }
    return this.#busOrder
  }

  addHostBridge(spec: HostBridgeSpec): HostBridge {
    this.#building()
    if (this.#byName.has(spec.name) || this.hostBridges.some((h) => h.name === spec.name)) throw bad(`name '${spec.name}' is used twice`)
    checkInt('vendorId', spec.vendorId, 0, 0xffff)
    checkInt('deviceId', spec.deviceId, 0, 0xffff)
    if (spec.bus !== undefined) checkInt('bus', spec.bus, 0, 255)
    if (spec.domain !== undefined) checkInt('domain', spec.domain, 0, 0xffff)
    if (this.hostBridges.length >= 256) throw bad('at most 256 host bridges (each gets a 64 GiB MMIO window)')
    const hb = new HostBridge(this, spec.name, spec)
    this.hostBridges.push(hb)
    return hb
  }

  #building(): void {
    if (this.#enumerated) throw bad('the fabric is already enumerated; build it completely first')
  }

  /** @internal */
  register(f: PciFunction): void {
    if (this.#byName.has(f.name)) throw bad(`name '${f.name}' is used twice`)
    this.#byName.set(f.name, f)
    this.#byUid.set(f.uid, f)
    this.functions.push(f)
    this.#busOrder = undefined
  }

  #msix(f: PciFunction, spec: MsixSpec): void {
    if (spec === null || typeof spec !== 'object') throw bad(`${f.name}: msix must be { vectors, bar, tableOffset, pbaOffset }`)
    const b = f.bars.find((x) => x.index === spec.bar)
    if (b === undefined || b.kind !== 'registers') throw bad(`${f.name}: msix.bar ${String(spec.bar)} is not one of its register BARs`)
    f.msix = new MsixTable(f.config, spec, b.size, this.interrupts)
  }

  /** @internal */
  attachPort(bus: PciBus, kind: 'root-port' | 'downstream-port' | 'upstream-port', spec: PortSpec, device?: number): PciFunction {
    this.#building()
    if (typeof spec?.name !== 'string' || spec.name === '') throw bad('a port needs a name')
    if (spec.link) checkLink(spec.name, spec.link)
    const number = device ?? spec.device ?? nextDevice(bus)
    checkSlot(bus, number, spec.name)
    const dev = new PciDevice(bus, number, spec.name, spec.link)
    bus.devices.push(dev)
    const f = new PciFunction(this, dev, kind, 0, spec.name, { vendorId: spec.vendorId ?? 0x8086, deviceId: spec.deviceId ?? 0x2030, classCode: 0x060400 })
    dev.functions.push(f)
    if (spec.acs) addAcs(f, spec.acs)
    this.register(f)
    return f
  }

  /** @internal */
  attachEndpoint(bus: PciBus, spec: EndpointSpec): PciDevice {
    this.#building()
    if (typeof spec?.name !== 'string' || spec.name === '') throw bad('an endpoint needs a name')
    if (!Array.isArray(spec.functions) || spec.functions.length === 0 || spec.functions.length > 8) throw bad(`${spec.name}: an endpoint has 1 to 8 functions`)
    if (bus.self !== null && bus.devices.length > 0) throw bad(`${spec.name}: the link below ${bus.self.name} already has a device`)
    if (spec.link) checkLink(spec.name, spec.link)
    const number = bus.self === null ? (spec.device ?? nextDevice(bus)) : 0
    checkSlot(bus, number, spec.name)
    const dev = new PciDevice(bus, number, spec.name, spec.link)
    bus.devices.push(dev)
    const seen = new Set<number>()
    for (const [i, fs] of spec.functions.entries()) {
      const fnNo = fs.fn ?? i
      checkInt(`${spec.name}.functions[${i}].fn`, fnNo, 0, 7)
      if (seen.has(fnNo)) throw bad(`${spec.name}: function ${fnNo} twice`)
      seen.add(fnNo)
      checkInt(`${spec.name}.functions[${i}].vendorId`, fs.vendorId, 0, 0xffff)
      checkInt(`${spec.name}.functions[${i}].deviceId`, fs.deviceId, 0, 0xffff)
      const f = new PciFunction(this, dev, 'endpoint', fnNo, fs.name ?? (spec.functions.length === 1 ? spec.name : `${spec.name}.${fnNo}`), fs)
      if (spec.functions.length > 1) f.config.set(Cfg.HEADER_TYPE, 1, 0x80)
      for (const b of fs.bars ?? []) this.#bar(f, b)
      if (fs.msix) this.#msix(f, fs.msix)
      if (fs.acs) addAcs(f, fs.acs)
      if (fs.sriov) {
        checkInt(`${f.name}.sriov.totalVfs`, fs.sriov.totalVfs, 1, 256)
        f.setupSriov(fs.sriov)
      }
      dev.functions.push(f)
      this.register(f)
    }
    if (spec.functions.length > 1) dev.functions[0]!.config.set(Cfg.HEADER_TYPE, 1, 0x80)
    dev.functions.sort((a, b) => a.fn - b.fn)
    return dev
  }

  #bar(f: PciFunction, b: BarSpec): void {
    checkInt(`${f.name} BAR index`, b.index, 0, 4)
    if (b.index % 2 !== 0) throw bad(`${f.name}: BAR ${b.index}: 64-bit BARs take even indexes (0, 2, 4)`)
    if (f.bars.some((x) => x.index === b.index)) throw bad(`${f.name}: BAR ${b.index} twice`)
    checkInt(`${f.name} BAR ${b.index} size`, b.size, 4096, 2 ** 40)
    if ((b.size & (b.size - 1)) !== 0 && b.size < 2 ** 31) throw bad(`${f.name}: BAR ${b.index} size ${b.size} is not a power of two`)
    let region: Region | undefined
    if (b.kind === 'memory') {
      if (this.physical === undefined) throw bad(`${f.name}: memory BARs need the fabric's physical memory`)
      if (typeof b.region !== 'string') throw bad(`${f.name}: BAR ${b.index} is a memory BAR: name its region`)
      region = this.physical.region(b.region)
      if (region.kind !== 'device') throw bad(`${f.name}: region '${b.region}' is not a device region`)
      if (region.size < b.size) throw bad(`${f.name}: BAR ${b.index} (${b.size} bytes) is larger than region '${b.region}' (${region.size})`)
    } else if (b.kind === 'registers') {
      if (b.handler !== undefined && (typeof b.handler.read !== 'function' || typeof b.handler.write !== 'function')) {
        throw bad(`${f.name}: BAR ${b.index} handler needs read and write`)
      }
    } else throw bad(`${f.name}: BAR ${b.index} kind must be 'registers' or 'memory'`)
    f.addBar(b, region)
  }

  /** @internal a switch below a port: an upstream port, its internal bus and downstream ports */
  attachSwitch(bus: PciBus, spec: SwitchSpec): { upstream: PciFunction; downstream: PciFunction[] } {
    if (bus.self === null) throw bad(`${spec.name}: a switch hangs below a root port or a downstream port`)
    if (bus.devices.length > 0) throw bad(`${spec.name}: the link below ${bus.self.name} already has a device`)
    if (!Array.isArray(spec.downstreamPorts) || spec.downstreamPorts.length === 0 || spec.downstreamPorts.length > 32) {
      throw bad(`${spec.name}: a switch has 1 to 32 downstream ports`)
    }
    const up = this.attachPort(bus, 'upstream-port', { name: spec.name, vendorId: spec.vendorId ?? 0x10b5, deviceId: spec.deviceId ?? 0x8796, ...(spec.link && { link: spec.link }), ...(spec.acs && { acs: spec.acs }) }, 0)
    const down = spec.downstreamPorts.map((p, i) => {
      const ps = typeof p === 'string' ? { name: p } : p
      return this.attachPort(up.secondary!, 'downstream-port', { vendorId: spec.vendorId ?? 0x10b5, deviceId: spec.deviceId ?? 0x8796, ...ps }, ps.device ?? i)
    })
    return { upstream: up, downstream: down }
  }

  /** A switch below a root port or downstream port. */
  addSwitch(port: PciFunction, spec: SwitchSpec): { upstream: PciFunction; downstream: PciFunction[] } {
    this.#building()
    if (port.secondary === undefined || port.kind === 'upstream-port') throw bad(`${spec.name}: ${port.name} is not a root or downstream port`)
    return this.attachSwitch(port.secondary, spec)
  }

  /** An endpoint below a root port or downstream port. */
  addEndpoint(port: PciFunction, spec: EndpointSpec): PciDevice {
    if (port.secondary === undefined || port.kind === 'upstream-port') throw bad(`${spec.name}: ${port.name} is not a root or downstream port`)
    return this.attachEndpoint(port.secondary, spec)
  }

  /**
   * Assigns bus numbers depth first, then BAR addresses (naturally aligned, in each host
   * bridge's MMIO window), enables memory decoding and bus mastering, and maps memory BARs
   * into the IOMMU's host physical space (so peers can reach them).
   */
  enumerate(): this {
    this.#building()
    // bus numbers are per PCI domain (segment): 256 of them in each
    const next = new Map<number, number>()
    for (const [i, hb] of this.hostBridges.entries()) {
      const used = next.get(hb.domain) ?? 0
      const root = hb.requestedBus ?? used
      if (root < used) throw bad(`${hb.name}: root bus ${root} overlaps buses already used in domain ${hb.domain}`)
      hb.rootBus.number = root
      const last = this.#numberBus(hb.rootBus, root)
      if (last > 255) throw bad(`${hb.name}: the fabric below it needs buses up to ${last}; a domain has 256 (0 to 255)`)
      next.set(hb.domain, last + 1)
      hb.mmioBase = hb.mmioNext = MMIO_BASE + i * MMIO_WINDOW
    }
    for (const hb of this.hostBridges) this.#assignBars(hb.rootBus, hb)
    for (const f of this.functions) this.#byRid.set(f.device.bus.hostBridge.domain * 65536 + f.rid, f)
    const links: LinkInfo[] = []
    for (const f of this.functionsInBusOrder()) {
      const dev = f.device
      const port = dev.bus.self
      if (port === null || port.kind === 'upstream-port' || dev.linkIndex >= 0 || f.physfn !== undefined) continue
      dev.linkIndex = links.length
      links.push({ index: links.length, port, device: dev, spec: dev.link ?? this.defaultLink, specified: dev.link !== undefined })
    }
    const regions = this.physical?.layout.regions ?? []
    this.#traffic = new Traffic(links, regions.map((r) => ({ name: r.name, kind: r.kind })))
    this.#enumerated = true
    for (const f of this.functions) this.remap(f)
    return this
  }

  #numberBus(bus: PciBus, number: number): number {
    bus.number = number
    let last = number
    for (const dev of [...bus.devices].sort((a, b) => a.number - b.number)) {
      for (const f of dev.functions) {
        if (f.secondary === undefined) continue
        const sec = last + 1
        f.config.set(Cfg.PRIMARY_BUS, 1, number, 0xff)
        f.config.set(Cfg.SECONDARY_BUS, 1, sec, 0xff)
        last = this.#numberBus(f.secondary, sec)
        f.config.set(Cfg.SUBORDINATE_BUS, 1, last, 0xff)
      }
    }
    bus.devices.sort((a, b) => a.number - b.number)
    return last
  }

  #assignBars(bus: PciBus, hb: HostBridge): void {
    for (const dev of bus.devices) {
      for (const f of dev.functions) {
        for (const b of [...f.bars].sort((x, y) => y.size - x.size)) {
          const at = Math.ceil(hb.mmioNext / b.size) * b.size
          if (at + b.size > hb.mmioBase + MMIO_WINDOW) throw bad(`${hb.name}: BARs do not fit its ${MMIO_WINDOW}-byte MMIO window`)
          hb.mmioNext = at + b.size
          const reg = Cfg.BAR0 + 4 * b.index
          f.config.set(reg, 4, (f.config.read(reg, 4) & 0xf) | (at % 2 ** 32), readMask(f, reg))
          f.config.set(reg + 4, 4, Math.floor(at / 2 ** 32), readMask(f, reg + 4))
        }
        f.config.set(Cfg.COMMAND, 2, Command.MemorySpace | Command.BusMaster, Command.MemorySpace | Command.BusMaster)
        if (f.secondary) this.#assignBars(f.secondary, hb)
      }
    }
  }

  /** @internal re-reads a function's BARs and command register into the MMIO map */
  remap(f: PciFunction): void {
    if (!this.#enumerated) return
    const decode = (f.config.read(Cfg.COMMAND, 2) & Command.MemorySpace) !== 0
    for (const b of f.bars) b.address = decode ? barAddress(f.config, b.index) : -1
    // Overlapping BARs are a software error with undefined results on real hardware. Here
    // the BAR just (re)programmed loses: it stops decoding (accesses master-abort) until
    // it moves, and `conflict` says so. A config write never throws.
    const live = this.functions.flatMap((x) => x.bars.filter((b) => b.address >= 0)).sort((a, b) => a.address - b.address)
    const map: BarMapping[] = []
    for (const b of live) {
      b.conflict = false
      const p = map[map.length - 1]
      if (p !== undefined && p.address + p.size > b.address) {
        if (p.fn === f && b.fn !== f) {
          p.conflict = true
          map[map.length - 1] = b
        } else b.conflict = true
        continue
      }
      map.push(b)
    }
    this.#map = map
    this.#last = undefined
    // memory BARs: a window in the IOMMU's host physical space while they decode (above
    // host DRAM and below the 48-bit limit)
    const dramTop = this.physical?.region('host').size ?? 0
    for (const x of this.functions) {
      for (const b of x.bars) {
        if (b.kind !== 'memory') continue
        const want = b.address >= dramTop && !b.conflict && b.address + b.size <= 2 ** 48 ? b.address : -1
        if (want === b.window) continue
        if (this.iommu) {
          if (b.window >= 0) this.iommu.removeWindow(b.window)
          if (want >= 0) this.iommu.addWindow(want, b.region!, b.size)
        }
        b.window = want
        this.#barOfSlot[this.regionSlot(b.region!.base)] = want >= 0 ? b : undefined
      }
    }
  }

  /** @internal */
  setVfs(pf: PciFunction, n: number, offset: number, stride: number, deviceId: number): void {
    const bus = pf.device.bus
    const domain = bus.hostBridge.domain * 65536
    for (const vf of pf.virtfns) {
      this.#byRid.delete(domain + vf.rid)
      this.#byName.delete(vf.name)
      this.#byUid.delete(vf.uid)
      this.#busMasters.delete(vf)
      this.functions.splice(this.functions.indexOf(vf), 1)
      bus.devices.splice(bus.devices.indexOf(vf.device), 1)
    }
    this.#busOrder = undefined
    pf.virtfns.length = 0
    for (let i = 0; i < n; i++) {
      const rid = pf.rid + offset + i * stride
      // a VF whose routing ID leaves the PF's bus would need bus numbers that enumeration
      // reserved; this model creates only the VFs that fit on the PF's bus
      if (rid >> 8 !== pf.bus || this.#byRid.has(domain + rid)) break
      const vdev = new PciDevice(bus, (rid >> 3) & 31, `${pf.name}v${i}`, undefined)
      const vf = new PciFunction(this, vdev, 'endpoint', rid & 7, `${pf.name}v${i}`, { vendorId: pf.vendorId, deviceId }, pf)
      vdev.functions.push(vf)
      pf.virtfns.push(vf)
      this.functions.push(vf)
      this.#byUid.set(vf.uid, vf)
      this.#byName.set(vf.name, vf)
      this.#byRid.set(domain + vf.rid, vf)
      bus.devices.push(vdev)
    }
    bus.devices.sort((a, b) => a.number - b.number)
    this.invalidateP2p()
  }

  /** A function by name. */
  get(name: string): PciFunction {
    const f = this.#byName.get(name)
    if (f === undefined) throw rangeError(`no function named '${name}'`)
    return f
  }

  /** A function by requester ID (and domain), or undefined. */
  byRid(rid: number, domain = 0): PciFunction | undefined {
    return this.#byRid.get(domain * 65536 + rid)
  }

  get enumerated(): boolean {
    return this.#enumerated
  }

  // ---- MMIO ----

  /** The mapped BAR decoding [address, address + size), or undefined. */
  decode(address: number, size = 1): BarMapping | undefined {
    const l = this.#last
    if (l !== undefined && address >= l.address && address + size <= l.address + l.size) return l
    const m = this.#map
    let lo = 0
    let hi = m.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const b = m[mid]!
      if (address < b.address) hi = mid - 1
      else if (address >= b.address + b.size) lo = mid + 1
      else {
        if (address + size > b.address + b.size) return undefined
        this.#last = b
        return b
      }
    }
    return undefined
  }

  #route(address: number, size: number, write: boolean): BarMapping {
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new PcieError('PCIE_BAD_ACCESS', `MMIO ${write ? 'write' : 'read'} of ${size} bytes: sizes are 1, 2, 4 or 8`)
    if (address % size !== 0) throw new PcieError('PCIE_BAD_ACCESS', `MMIO ${write ? 'write' : 'read'} at ${hex(address)} is not ${size}-byte aligned`)
    const b = this.decode(address, size)
    if (b === undefined) {
      const any = this.decode(address, 1)
      throw new PcieError(
        any ? 'PCIE_BAD_ACCESS' : 'PCIE_UNCLAIMED',
        any ? `MMIO ${write ? 'write' : 'read'} of ${size} bytes at ${hex(address)} runs past the end of BAR ${any.index} of ${any.fn.name}` : `no BAR decodes ${hex(address)} (master abort)`,
      )
    }
    return b
  }

  /** A CPU read of 1, 2 or 4 bytes from a BAR (8 with mmioRead64). */
  mmioRead(address: number, size: 1 | 2 | 4): number {
    const b = this.#route(address, size, false)
    return barRead(b, address - b.address, size)
  }

  /** A CPU write of 1, 2 or 4 bytes to a BAR (8 with mmioWrite64). */
  mmioWrite(address: number, size: 1 | 2 | 4, value: number): void {
    const b = this.#route(address, size, true)
    barWrite(b, address - b.address, size, value)
  }

  mmioRead64(address: number): bigint {
    const b = this.#route(address, 8, false)
    return barRead64(b, address - b.address)
  }

  mmioWrite64(address: number, value: bigint): void {
    const b = this.#route(address, 8, true)
    barWrite64(b, address - b.address, value)
  }

  /**
   * A driver's view of a BAR (Linux's pci_iomap): read and write by offset. Each access is
   * an MMIO access at the BAR's current address, decoded like any other, so a BAR that
   * moves or stops decoding is seen at once.
   */
  ioremap(fn: PciFunction, index: number): MmioWindow {
    const b = fn.bars.find((x) => x.index === index)
    if (b === undefined || fn.fabric !== this) throw rangeError(`${fn.name} has no BAR ${index}`)
    return new MmioWindow(this, b)
  }

  /** Bus address of a function's BAR (-1 when it does not decode). */
  barAddress(f: PciFunction, index: number): number {
    const b = f.bars.find((x) => x.index === index)
    if (b === undefined) throw rangeError(`${f.name} has no BAR ${index}`)
    return b.address
  }

  // ---- P2P result caching ----

  /** @internal register a cache to clear when the topology's P2P facts change */
  onP2pChange(clear: () => void): void {
    this.#invalidators.push(clear)
  }

  /** @internal */
  invalidateP2p(): void {
    this.p2pEpoch++
    for (const c of this.#invalidators) c()
  }

  // ---- rendering ----

  /** The tree, as `lspci -tv` draws it (function names and [vendor:device] for the device names). */
  render(): string {
    const out: string[] = []
    const line: string[] = []
    let p = 0
    const put = (text: string) => {
      for (const ch of text) line[p++] = ch
    }
    if (this.hostBridges.length === 1) {
      const hb = this.hostBridges[0]!
      put(`-[${hex4(hb.domain)}:${hex2(hb.rootBus.number)}]-`)
      renderBus(hb.rootBus, line, p, out)
    } else {
      put('-')
      const base = p
      this.hostBridges.forEach((hb, i) => {
        p = base
        put(`${i === this.hostBridges.length - 1 ? '\\' : '+'}-[${hex4(hb.domain)}:${hex2(hb.rootBus.number)}]-`)
        renderBus(hb.rootBus, line, p, out)
      })
    }
    return out.join('\n')
  }
}

/** A mapped BAR (PciFabric.ioremap): offsets instead of bus addresses. */
export class MmioWindow {
  readonly #fabric: PciFabric
  readonly #bar: BarMapping
  constructor(fabric: PciFabric, bar: BarMapping) {
    this.#fabric = fabric
    this.#bar = bar
  }

  /** The BAR's bus address now (-1 while it does not decode). */
  get base(): number {
    return this.#bar.address
  }

  get size(): number {
    return this.#bar.size
  }

  #check(offset: number, size: number, write: boolean): BarMapping {
    const b = this.#bar
    if (b.address < 0 || b.conflict) throw new PcieError('PCIE_UNCLAIMED', `BAR ${b.index} of ${b.fn.name} does not decode`)
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new PcieError('PCIE_BAD_ACCESS', `MMIO ${write ? 'write' : 'read'} of ${size} bytes: sizes are 1, 2, 4 or 8`)
    if (!(offset >= 0 && offset + size <= b.size)) throw new PcieError('PCIE_BAD_ACCESS', `MMIO ${write ? 'write' : 'read'} of ${size} bytes at offset ${offset} is outside BAR ${b.index} of ${b.fn.name} (${b.size} bytes)`)
    if (offset % size !== 0) throw new PcieError('PCIE_BAD_ACCESS', `MMIO ${write ? 'write' : 'read'} at offset ${offset} is not ${size}-byte aligned`)
    return b
  }

  // The checks are those of PciFabric's decode for an address inside this BAR (BARs that
  // decode never overlap); offsets stay small integers, so no address is boxed.
  read(offset: number, size: 1 | 2 | 4): number {
    return barRead(this.#check(offset, size, false), offset, size)
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    barWrite(this.#check(offset, size, true), offset, size, value)
  }

  read64(offset: number): bigint {
    return barRead64(this.#check(offset, 8, false), offset)
  }

  write64(offset: number, value: bigint): void {
    barWrite64(this.#check(offset, 8, true), offset, value)
  }
}

function barRead(b: BarMapping, off: number, size: 1 | 2 | 4): number {
  if (b.kind === 'memory') {
    const m = b.fn.fabric.physical!.bytes
    const at = b.region!.base + off
    return size === 1 ? m[at]! : size === 2 ? m[at]! | (m[at + 1]! << 8) : (m[at]! | (m[at + 1]! << 8) | (m[at + 2]! << 16) | (m[at + 3]! << 24)) >>> 0
  }
  const msix = b.fn.msix
  if (msix !== undefined && msix.claims(b.index, off, size)) return msix.read(b.index, off, size)
  return b.handler ? b.handler.read(off, size) : 0
}

function barWrite(b: BarMapping, off: number, size: 1 | 2 | 4, value: number): void {
  if (b.kind === 'memory') {
    const m = b.fn.fabric.physical!.bytes
    const at = b.region!.base + off
    for (let i = 0; i < size; i++) m[at + i] = (value >>> (8 * i)) & 0xff
    return
  }
  const msix = b.fn.msix
  if (msix !== undefined && msix.claims(b.index, off, size)) return msix.write(b.index, off, size, value)
  b.handler?.write(off, size, value)
}

function barRead64(b: BarMapping, off: number): bigint {
  if (b.kind === 'registers' && b.handler?.read64 && !(b.fn.msix?.claims(b.index, off, 8) ?? false)) return b.handler.read64(off)
  const lo = barRead(b, off, 4)
  const hi = barRead(b, off + 4, 4)
  return (BigInt(hi) << 32n) | BigInt(lo)
}

function barWrite64(b: BarMapping, off: number, value: bigint): void {
  if (b.kind === 'registers' && b.handler?.write64 && !(b.fn.msix?.claims(b.index, off, 8) ?? false)) return b.handler.write64(off, value)
  barWrite(b, off, 4, Number(value & 0xffffffffn))
  barWrite(b, off + 4, 4, Number((value >> 32n) & 0xffffffffn))
}

function readMask(f: PciFunction, reg: number): number {
  return f.config.writable[reg]! | (f.config.writable[reg + 1]! << 8) | (f.config.writable[reg + 2]! << 16) | (f.config.writable[reg + 3]! << 24)
}

function nextDevice(bus: PciBus): number {
  let n = 0
  while (bus.devices.some((d) => d.number === n)) n++
  return n
}

function checkSlot(bus: PciBus, number: number, name: string): void {
  checkInt(`${name}: device number`, number, 0, 31)
  if (bus.devices.some((d) => d.number === number)) throw bad(`${name}: device number ${number} is taken on that bus`)
}

function checkLink(name: string, link: LinkSpec): void {
  if (link === null || typeof link !== 'object') throw bad(`${name}: link must be { gen, width }`)
  if (![1, 2, 3, 4, 5, 6].includes(link.gen)) throw bad(`${name}: link gen must be 1 to 6, got ${String(link.gen)}`)
  if (![1, 2, 4, 8, 12, 16, 32].includes(link.width)) throw bad(`${name}: link width must be 1, 2, 4, 8, 12, 16 or 32, got ${String(link.width)}`)
}

function bad(message: string): PcieError {
  return new PcieError('PCIE_BAD_TOPOLOGY', message)
}

const hex = (n: number) => `0x${n.toString(16)}`

