// @ipukit/nvmf: the whole public surface.
// NVMe/TCP PDUs and fabrics structures (NVMe/TCP Transport 1.0, NVMe Base 2.0 §6)
export { PduType, pduTypeName, PduFlag, TermReqFes, CH_SIZE, ICREQ_SIZE, ICRESP_SIZE, CAPSULE_CMD_HLEN, CAPSULE_RESP_HLEN, DATA_HLEN, R2T_HLEN, TERM_REQ_HLEN, TERM_REQ_MAX_DATA, DIGEST_SIZE, PFV_1_0, PDA_MAX, PDU_HLEN, hasHeaderDigest, mayHaveData, readCommonHeader, writeCommonHeader, dataOffset, layoutPdu, encodeICReq, decodeICReq, encodeICResp, decodeICResp, writeDataHeader, readDataHeader, writeTermReq, readTermReq } from './spec/pdu.js'
export type { PduTypeValue, CommonHeader, PduLayout, ICReq, ICResp, DataHeader, TermReq } from './spec/pdu.js'
export { FABRICS_OPCODE, CONNECT_DATA_SIZE, NQN_FIELD_SIZE, NQN_MAX_LENGTH, DISCOVERY_NQN, CNTLID_DYNAMIC, CNTLID_ANY_STATIC, ConnectAttribute, decodeConnect, encodeConnect, decodeConnectData, encodeConnectData, connectInvalidParameter, nqnProblem, readNulString, writeNulString, readSpaceString, writeSpaceString, decodeProperty, encodePropertyGet, encodePropertySet, DISCOVERY_LOG_HEADER_SIZE, DISCOVERY_LOG_ENTRY_SIZE, DISCOVERY_LOG_ID, TransportType, AddressFamily, SubsystemType, TransportRequirement, encodeDiscoveryLog, decodeDiscoveryLog, TcpSgl } from './spec/fabrics.js'
export type { ConnectCommand, ConnectData, PropertyCommand, DiscoveryLogEntry } from './spec/fabrics.js'
// the target
export { NvmfTarget } from './target.js'
export type { TargetOptions, TargetEvents, ConnectEvent, TransportLimits, ListenerInfo, ConnectResult } from './target.js'
export { NvmfSubsystem } from './subsystem.js'
export type { SubsystemOptions, SubsystemNamespace } from './subsystem.js'
export { FabricsController } from './controller.js'
export type { FabricsQpair, FabricsControllerOptions } from './controller.js'
export { TcpTransport, TcpQpair } from './tcp-target.js'
export type { TcpTransportOptions } from './tcp-target.js'
// the host
export { NvmfHost, HOST_PATH_ERROR, HOST_ABORTED } from './host.js'
export type { NvmfHostOptions, NvmfNamespace, NvmfNamespacePi, HostCompletion, HostCallback, HostState } from './host.js'
export { NvmfError } from './errors.js'
export type { NvmfErrorCode } from './errors.js'
// the nvme-tcp bdev
export { NvmeTcpBdev, attachNvmeController, detachNvmeController } from './bdev-nvme.js'
export type { AttachControllerOptions } from './bdev-nvme.js'
// SPDK JSON configuration
export { applyNvmfConfig, BDEV_NVME_CONFIG_METHODS, nvmfConfigMethods } from './config.js'
