// The NVMe status table beyond the codes bdevs complete with, and the CQE Status field.
//
// A status here is the one-number form @ipukit/bdev uses, the code type and the code:
//
//   bit  15      11 10    8 7           0
//        | 00000  |  SCT  |     SC      |          0 is success
//
// The Status field of a Completion Queue Entry (NVMe Base 2.0 §3.3.3.2.1 "Status Field
// Definition", Figure "Completion Queue Entry: Status Field") carries it one bit up, under the
// Phase Tag, with the retry hints above it:
//
//   bit    15    14    13 12    11    9 8            1    0
//        | DNR | More |  CRD  |   SCT  |      SC      | P |
//
// so `(status << 1)` places SC and SCT, and the Phase Tag is bit 0 of the same 16 bits (byte 14
// of the CQE). CRD picks one of the Identify Controller's CRDT1-3 retry delays (0 = none). The
// same 16-bit layout, Phase Tag included, is stored in the Error Information log entry.
//
// The Command Specific codes (SCT 1) are per command set: SC 00h-7Fh are the admin commands',
// 80h-BFh the I/O command set's, and the NVM command set and the Fabrics commands both start
// at 80h (NVM 80h is Conflicting Attributes, Fabrics 80h is Incompatible Format). Hence the
// separate tables, and the context argument of statusName().

import { NvmeStatus, nvmeStatus, nvmeStatusName, StatusCodeType, statusSc, statusSct } from '@ipukit/bdev'

export { NvmeStatus, nvmeStatus, nvmeStatusName, StatusCodeType, statusSc, statusSct }
export type { NvmeStatusCode } from '@ipukit/bdev'

/** Generic Command Status codes (SCT 0) that NvmeStatus does not have (NVMe Base 2.0 Figure "Generic Command Status Values"). */
export const GenericStatus = {
  /** 23h Command Prohibited by Command and Feature Lockdown (2.0). */
  CommandProhibitedByLockdown: 0x023,
  /** 24h Admin Command Media Not Ready (2.0). */
  AdminCommandMediaNotReady: 0x024,
} as const

/** Command Specific Status codes of admin commands (SCT 1, SC 00h-7Fh; NVMe Base 2.0 Figure "Command Specific Status Values"). */
export const AdminCommandStatus = {
  /** Create I/O Submission Queue: the CQ does not exist. */
  CompletionQueueInvalid: 0x100,
  /** Create I/O queue, Delete I/O queue: QID in use or out of range. */
  InvalidQueueIdentifier: 0x101,
  /** Create I/O queue: size 0, or above CAP.MQES. */
  InvalidQueueSize: 0x102,
  AbortCommandLimitExceeded: 0x103,
  // 104h is reserved (it was "Abort Command Is Missing" in NVMe 1.0)
  AsyncEventRequestLimitExceeded: 0x105,
  InvalidFirmwareSlot: 0x106,
  InvalidFirmwareImage: 0x107,
  /** Create I/O Completion Queue: the interrupt vector does not exist. */
  InvalidInterruptVector: 0x108,
  InvalidLogPage: 0x109,
  /** Format NVM, Namespace Management: the LBA format is not supported. */
  InvalidFormat: 0x10a,
  FirmwareActivationRequiresConventionalReset: 0x10b,
  /** Delete I/O Completion Queue: an SQ still uses the CQ, or the CQ is the admin CQ. */
  InvalidQueueDeletion: 0x10c,
  FeatureIdentifierNotSaveable: 0x10d,
  FeatureNotChangeable: 0x10e,
  FeatureNotNamespaceSpecific: 0x10f,
  FirmwareActivationRequiresNvmSubsystemReset: 0x110,
  FirmwareActivationRequiresControllerLevelReset: 0x111,
  FirmwareActivationRequiresMaximumTimeViolation: 0x112,
  FirmwareActivationProhibited: 0x113,
  OverlappingRange: 0x114,
  NamespaceInsufficientCapacity: 0x115,
  NamespaceIdentifierUnavailable: 0x116,
  // 117h is reserved
  NamespaceAlreadyAttached: 0x118,
  NamespaceIsPrivate: 0x119,
  NamespaceNotAttached: 0x11a,
  ThinProvisioningNotSupported: 0x11b,
  ControllerListInvalid: 0x11c,
  DeviceSelfTestInProgress: 0x11d,
  BootPartitionWriteProhibited: 0x11e,
  InvalidControllerIdentifier: 0x11f,
  InvalidSecondaryControllerState: 0x120,
  InvalidNumberOfControllerResources: 0x121,
  InvalidResourceIdentifier: 0x122,
  /** Sanitize Prohibited While Persistent Memory Region is Enabled. */
  SanitizeProhibited: 0x123,
  AnaGroupIdentifierInvalid: 0x124,
  AnaAttachFailed: 0x125,
  /** 26h-2Dh are new in 2.0. */
  InsufficientCapacity: 0x126,
  NamespaceAttachmentLimitExceeded: 0x127,
  ProhibitionOfCommandExecutionNotSupported: 0x128,
  IoCommandSetNotSupported: 0x129,
  IoCommandSetNotEnabled: 0x12a,
  IoCommandSetCombinationRejected: 0x12b,
  InvalidIoCommandSet: 0x12c,
  IdentifierUnavailable: 0x12d,
} as const

/**
 * Command Specific Status codes of the NVM command set's commands (SCT 1, SC 80h-BFh; NVM
 * Command Set 1.0, Figure "Status Code – Command Specific Status Values").
 */
export const NvmCommandStatus = {
  /** Dataset Management, Write Zeroes, ...: attributes that contradict each other. */
  ConflictingAttributes: 0x180,
  /** Read, Write, Compare, ...: PRINFO not valid for the namespace's protection settings. */
  InvalidProtectionInformation: 0x181,
  AttemptedWriteToReadOnlyRange: 0x182,
  /** Verify, Write Zeroes, Write Uncorrectable, DSM, Copy: above the VSL/WZSL/WUSL/DMRSL limits (2.0). */
  CommandSizeLimitExceeded: 0x183,
} as const

/** Command Specific Status codes of the Fabrics commands (SCT 1, SC 80h-BFh; NVMe Base 2.0 §6). */
export const FabricsCommandStatus = {
  /** Connect: the record format (RECFMT) is not supported. */
  IncompatibleFormat: 0x180,
  /** Connect: the controller is already associated with a host, or the queue already exists. */
  ControllerBusy: 0x181,
  /** Connect: a parameter is invalid; the CQE's DW0 says which (IATTR, IPO). */
  ConnectInvalidParameters: 0x182,
  /** Connect: the NVM subsystem is not available; rediscover. */
  ConnectRestartDiscovery: 0x183,
  /** Connect: this host may not associate with the (or any) controller. */
  ConnectInvalidHost: 0x184,
  /** Disconnect: sent on the wrong queue type. */
  InvalidQueueType: 0x185,
  /** Get Log Page of the Discovery log: the log changed while being read. */
  DiscoverRestart: 0x190,
  /** The queue needs in-band authentication first. */
  AuthenticationRequired: 0x191,
} as const

/** Media and Data Integrity Errors (SCT 2) that NvmeStatus does not have (NVM Command Set 1.0). */
export const MediaStatus = {
  /** 88h End-to-end Storage Tag Check Error (2.0). */
  StorageTagCheckError: 0x288,
} as const

/** Path Related Status codes (SCT 3; NVMe Base 2.0 Figure "Path Related Status Values"). */
export const PathStatus = {
  InternalPathError: 0x300,
  AsymmetricAccessPersistentLoss: 0x301,
  AsymmetricAccessInaccessible: 0x302,
  AsymmetricAccessTransition: 0x303,
  // 04h-5Fh reserved
  ControllerPathingError: 0x360,
  // 61h-6Fh reserved
  HostPathingError: 0x370,
  CommandAbortedByHost: 0x371,
} as const

/** Which command set a Command Specific status (SCT 1, SC ≥ 80h) belongs to. */
export type StatusContext = 'admin' | 'nvm' | 'fabrics'

function reverse(...tables: Array<Record<string, number>>): Map<number, string> {
  const m = new Map<number, string>()
  for (const t of tables) for (const [k, v] of Object.entries(t)) if (!m.has(v)) m.set(v, k)
  return m
}

const OTHER_NAMES = reverse(GenericStatus, AdminCommandStatus, MediaStatus, PathStatus)
const NVM_NAMES = reverse(NvmCommandStatus)
const FABRICS_NAMES = reverse(FabricsCommandStatus)

/**
 * Any status's name for logs: bdev's table, the admin, NVM and Fabrics command specific
 * tables, media and path errors; SCT/SC in hex when unknown. `context` resolves the command
 * specific codes at 80h-BFh that the NVM command set and Fabrics share (default: NVM, then
 * Fabrics for the codes only Fabrics defines).
 */
export function statusName(status: number, context?: StatusContext): string {
  const s = status & 0x7ff
  if (s === 0) return 'Success'
  if (statusSct(s) === StatusCodeType.CommandSpecific && statusSc(s) >= 0x80) {
    const name = context === 'fabrics' ? (FABRICS_NAMES.get(s) ?? NVM_NAMES.get(s)) : (NVM_NAMES.get(s) ?? FABRICS_NAMES.get(s))
    if (name !== undefined) return name
  }
  return OTHER_NAMES.get(s) ?? nvmeStatusName(s)
}

// ---------------------------------------------------------------------------------------------
// The CQE Status field

/** Status field bits (bit 0 is the Phase Tag). */
export const CqeStatusBits = {
  PHASE: 0x0001,
  SC_SHIFT: 1,
  SCT_SHIFT: 9,
  CRD_SHIFT: 12,
  CRD_MASK: 0x3000,
  MORE: 0x4000,
  DNR: 0x8000,
} as const

export interface CqeStatusFlags {
  /** Phase Tag: 1 on the first pass through the CQ after enable, inverted on each wrap. */
  phase?: 0 | 1 | boolean
  /** Command Retry Delay: 0 none, 1-3 select CRDT1-3 of Identify Controller. */
  crd?: number
  /** More: the Error Information log has more for this command. */
  more?: boolean
  /** Do Not Retry: the same command would fail again. */
  dnr?: boolean
}

export interface CqeStatusFieldParts {
  phase: 0 | 1
  /** (SCT << 8) | SC, as NvmeStatus. */
  status: number
  crd: number
  more: boolean
  dnr: boolean
}

/** The 16-bit CQE Status field (byte 14 of the CQE) of a status and its flags. */
export function cqeStatusField(status: number, flags?: CqeStatusFlags): number {
  let v = (status & 0x7ff) << 1
  if (flags === undefined) return v
  const { phase, crd, more, dnr } = flags
  if (phase === true || phase === 1) v |= CqeStatusBits.PHASE
  if (crd !== undefined && crd !== 0) {
    if (!Number.isInteger(crd) || crd < 0 || crd > 3) throw new RangeError(`CRD ${crd} is not 0-3`)
    v |= crd << CqeStatusBits.CRD_SHIFT
  }
  if (more === true) v |= CqeStatusBits.MORE
  if (dnr === true) v |= CqeStatusBits.DNR
  return v
}

/** The parts of a 16-bit CQE Status field. */
export function decodeCqeStatusField(v: number): CqeStatusFieldParts {
  return {
    phase: (v & 1) as 0 | 1,
    status: (v >> 1) & 0x7ff,
    crd: (v >> CqeStatusBits.CRD_SHIFT) & 3,
    more: (v & CqeStatusBits.MORE) !== 0,
    dnr: (v & CqeStatusBits.DNR) !== 0,
  }
}

/** The status ((SCT << 8) | SC) in a CQE Status field, without decoding the rest. */
export function cqeStatus(v: number): number {
  return (v >> 1) & 0x7ff
}
