// @ipukit/memory: the whole public surface.
export { attachPhysicalMemory, createPhysicalMemory, PAGE, PhysicalMemory, planMemory } from './physical-memory.js'
export type { IobufLayout, IobufOptions, MemoryLayout, PhysicalMemoryDescription, PhysicalMemoryOptions, Region, RegionKind } from './physical-memory.js'
export { RegionAllocator } from './region-allocator.js'
export { IOBUF_RETRY, IobufChannel, IobufEntry } from './iobuf.js'
export type { IobufStats } from './iobuf.js'
export { Access, formatRequester, Iommu, requesterId } from './iommu.js'
export type { AccessBits, IommuFault } from './iommu.js'
export {
  AccelMemoryDomain,
  CustomMemoryDomain,
  DeviceMemoryDomain,
  HostMemoryDomain,
  MemoryDomain,
  SystemMemoryDomain,
  transferData,
} from './memory-domain.js'
export type { DomainType, MemoryDomainOps } from './memory-domain.js'
export { checkIovs, iovCopy, IovCursor, IoVecList, iovZero } from './iov.js'
export { defer, drainCompletions, pendingCompletions } from './completion.js'
export type { Completion } from './completion.js'
export { MemoryError, Status, statusName } from './status.js'
export type { MemoryErrorCode, StatusCode } from './status.js'
