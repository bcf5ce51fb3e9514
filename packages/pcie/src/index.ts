// @ipukit/pcie: the whole public surface.
export { AcsBit, barAddress, CapId, Cfg, Command, ConfigSpace, defineBar64, ExtCapId, PortType } from './config-space.js'
export { PcieError } from './errors.js'
export type { PcieErrorCode } from './errors.js'
export { acsBits, HostBridge, PciBus, PciDevice, PciFabric, PciFunction } from './topology.js'
export type {
  AcsSpec,
  BarMapping,
  BarSpec,
  CpuSpec,
  EndpointSpec,
  FunctionKind,
  FunctionSpec,
  HostBridgeSpec,
  LinkSpec,
  PciFabricOptions,
  PortSpec,
  RegisterHandler,
  SriovSpec,
  SwitchSpec,
} from './topology.js'
export { InterruptController, MSI_ADDRESS, MSIX_CAP_SIZE, MSIX_ENTRY_SIZE, MsixControl, MsixTable } from './msix.js'
export type { MsixOutcome, MsixSpec } from './msix.js'
export {
  calcMapTypeAndDist,
  cpuSupportsP2pdma,
  FIND_MANY_MAX_CANDIDATES,
  HOST_BRIDGE_ALLOWLIST,
  hostBridgeWhitelist,
  P2pdma,
} from './p2pdma.js'
export type { HostBridgeAllowlistEntry, P2pdmaOptions, P2pMapType, P2pmemInfo, P2pPath } from './p2pdma.js'
export { BusMasterDomain, DmaEngine, LocalMemoryDomain } from './dma-engine.js'
export { LANE_BYTES_PER_SECOND, linkBandwidth, TLP_OVERHEAD, Traffic } from './traffic.js'
export type { DirectionBytes, Estimate, EstimateOptions, LinkInfo, ReadWriteBytes, TrafficReport } from './traffic.js'
export { loadTopology, parseTopology } from './document.js'
export type { LoadOptions, TopologyDocument } from './document.js'
export { copyOffload, formatCopyOffload } from './copy-offload.js'
export type { CopyOffloadOptions, CopyOffloadPhase, CopyOffloadResult } from './copy-offload.js'
