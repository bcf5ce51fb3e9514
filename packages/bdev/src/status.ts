// Completion statuses of block I/O, as NVMe reports them (NVMe Base 2.0 §4.6.1.2.1 and the
// NVM Command Set 1.0 §4.1.1): every bdev completes with one, so a layer above (the NVMe
// controller, an NVMe/TCP target) hands it to the host unchanged. A status is the status
// code type and the status code in one number:
//
//   bit  15      11 10    8 7           0
//        | 00000  |  SCT  |     SC      |
//
// 0 is success. The controller adds DNR and More when it writes the CQE.

export const StatusCodeType = {
  Generic: 0,
  CommandSpecific: 1,
  Media: 2,
  Path: 3,
  VendorSpecific: 7,
} as const

/** A status from its code type and code. */
export function nvmeStatus(sct: number, sc: number): number {
  return ((sct & 7) << 8) | (sc & 0xff)
}

export function statusSct(status: number): number {
  return (status >> 8) & 7
}

export function statusSc(status: number): number {
  return status & 0xff
}

/** The statuses bdevs complete with (the rest of NVMe's table is @ipukit/nvme's). */
export const NvmeStatus = {
  Success: 0x000,
  // Generic Command Status (SCT 0)
  InvalidOpcode: 0x001,
  InvalidField: 0x002,
  CommandIdConflict: 0x003,
  DataTransferError: 0x004,
  PowerLossAbort: 0x005,
  InternalError: 0x006,
  AbortRequested: 0x007,
  SqDeletionAbort: 0x008,
  FusedFailAbort: 0x009,
  FusedMissingAbort: 0x00a,
  InvalidNamespaceOrFormat: 0x00b,
  CommandSequenceError: 0x00c,
  InvalidSglSegmentDescriptor: 0x00d,
  InvalidSglDescriptorCount: 0x00e,
  DataSglLengthInvalid: 0x00f,
  MetadataSglLengthInvalid: 0x010,
  SglDescriptorTypeInvalid: 0x011,
  InvalidControllerMemoryBufferUse: 0x012,
  PrpOffsetInvalid: 0x013,
  AtomicWriteUnitExceeded: 0x014,
  OperationDenied: 0x015,
  SglOffsetInvalid: 0x016,
  HostIdInconsistentFormat: 0x018,
  KeepAliveExpired: 0x019,
  KeepAliveTimeoutInvalid: 0x01a,
  PreemptAbort: 0x01b,
  SanitizeFailed: 0x01c,
  SanitizeInProgress: 0x01d,
  SglDataBlockGranularityInvalid: 0x01e,
  CommandNotSupportedForCmbQueue: 0x01f,
  NamespaceWriteProtected: 0x020,
  CommandInterrupted: 0x021,
  TransientTransportError: 0x022,
  LbaOutOfRange: 0x080,
  CapacityExceeded: 0x081,
  NamespaceNotReady: 0x082,
  ReservationConflict: 0x083,
  FormatInProgress: 0x084,
  // Media and Data Integrity Errors (SCT 2)
  WriteFault: 0x280,
  UnrecoveredReadError: 0x281,
  GuardCheckError: 0x282,
  AppTagCheckError: 0x283,
  RefTagCheckError: 0x284,
  CompareFailure: 0x285,
  AccessDenied: 0x286,
  DeallocatedOrUnwrittenBlock: 0x287,
} as const
export type NvmeStatusCode = (typeof NvmeStatus)[keyof typeof NvmeStatus]

const NAMES = new Map<number, string>(Object.entries(NvmeStatus).map(([k, v]) => [v, k]))

/** A status's name for logs ('Success', 'GuardCheckError', …), or SCT/SC in hex. */
export function nvmeStatusName(status: number): string {
  return NAMES.get(status) ?? `sct ${statusSct(status)} sc 0x${statusSc(status).toString(16).padStart(2, '0')}`
}

/** The NVMe status of a PI check failure of this kind. */
export function piStatus(kind: 'guard' | 'appTag' | 'refTag' | undefined): number {
  return kind === 'appTag' ? NvmeStatus.AppTagCheckError : kind === 'refTag' ? NvmeStatus.RefTagCheckError : NvmeStatus.GuardCheckError
}
