// Get Log Page (NVMe Base 2.0 §5.16) and the log pages a controller core serves: Error
// Information (§5.16.1.2), SMART / Health Information (§5.16.1.3), Firmware Slot Information
// (§5.16.1.4), Changed Namespace List (§5.16.1.5) and Commands Supported and Effects
// (§5.16.1.6). Little-endian; layouts checked against libnvme's src/nvme/types.h (struct
// nvme_error_log_page, nvme_smart_log, nvme_firmware_slot, nvme_cmd_effects_log) and Linux's
// include/linux/nvme.h.
//
// Get Log Page command dwords:
//
//   CDW10  31:16 NUMDL (number of dwords, 0's based, low half), bit 15 RAE (retain
//          asynchronous event), 14:8 LSP (log specific parameter), 7:0 LID
//   CDW11  31:16 LSI (log specific identifier), 15:0 NUMDU (number of dwords, high half)
//   CDW12  LPOL  log page offset, bits 31:0 (bytes; an index when OT is set)
//   CDW13  LPOU  log page offset, bits 63:32
//   CDW14  31:24 CSI, bit 23 OT (offset type: index rather than bytes), 6:0 UUID index
//
// Error Information Log Entry (64 bytes each, newest first):
//
//   off   size  field
//     0      8  Error Count           unique, incrementing, 0 = invalid entry
//     8      2  SQID                  FFFFh when not command specific
//    10      2  CID                   FFFFh when not command specific
//    12      2  Status Field          the CQE's Status field, Phase Tag in bit 0
//    14      2  Parameter Error Location   bits 7:0 byte, 10:8 bit of the SQE
//    16      8  LBA
//    24      4  Namespace
//    28      1  Vendor Specific Information Available   (a log page ID, 80h-FFh, or 0)
//    29      1  Transport Type (TRTYPE)
//    30      2  reserved
//    32      8  Command Specific Information
//    40      2  Transport Type Specific Information
//    42     22  reserved
//
// SMART / Health Information (512 bytes):
//
//   off   size  field                          off   size  field
//     0      1  Critical Warning                 96     16  Controller Busy Time (min)
//     1      2  Composite Temperature (K)       112     16  Power Cycles
//     3      1  Available Spare (%)             128     16  Power On Hours
//     4      1  Available Spare Threshold (%)   144     16  Unsafe Shutdowns
//     5      1  Percentage Used                 160     16  Media and Data Integrity Errors
//     6      1  Endurance Group Crit. Warning   176     16  Number of Error Log Entries
//     7     25  reserved                        192      4  Warning Comp. Temperature Time
//    32     16  Data Units Read                 196      4  Critical Comp. Temperature Time
//    48     16  Data Units Written              200     16  Temperature Sensor 1-8 (u16, K)
//    64     16  Host Read Commands              216      4  Thermal Mgmt Temp 1 Transition Count
//    80     16  Host Write Commands             220      4  Thermal Mgmt Temp 2 Transition Count
//                                               224      4  Total Time For Thermal Mgmt Temp 1
//                                               228      4  Total Time For Thermal Mgmt Temp 2
//                                               232    280  reserved
//
// The 16-byte counters are 128-bit little-endian integers (bigints here); a data unit is 1000
// blocks of 512 bytes, rounded up. The Composite Temperature is unaligned (bytes 1-2).

import { encodeStruct, decodeStruct, field, readAscii, viewOf, writeAscii, type FieldSpec } from './identify.js'

/** Log Page Identifiers (NVMe Base 2.0 §5.16, Figure "Log Page Identifiers"). */
export const LogPageId = {
  SupportedLogPages: 0x00,
  ErrorInformation: 0x01,
  SmartHealth: 0x02,
  FirmwareSlot: 0x03,
  ChangedNamespaceList: 0x04,
  CommandsSupportedAndEffects: 0x05,
  DeviceSelfTest: 0x06,
  TelemetryHostInitiated: 0x07,
  TelemetryControllerInitiated: 0x08,
  EnduranceGroupInformation: 0x09,
  PredictableLatencyPerNvmSet: 0x0a,
  PredictableLatencyEventAggregate: 0x0b,
  AsymmetricNamespaceAccess: 0x0c,
  PersistentEventLog: 0x0d,
  /** LBA Status Information (NVM command set). */
  LbaStatusInformation: 0x0e,
  EnduranceGroupEventAggregate: 0x0f,
  MediaUnitStatus: 0x10,
  SupportedCapacityConfigurationList: 0x11,
  FeatureIdentifiersSupportedAndEffects: 0x12,
  NvmeMiCommandsSupportedAndEffects: 0x13,
  CommandAndFeatureLockdown: 0x14,
  BootPartition: 0x15,
  RotationalMediaInformation: 0x16,
  /** Discovery (Discovery controllers). */
  Discovery: 0x70,
  ReservationNotification: 0x80,
  SanitizeStatus: 0x81,
} as const

// ---------------------------------------------------------------------------------------------
// Get Log Page command dwords

export interface GetLogPageFields {
  /** Log Page Identifier. */
  lid: number
  /** Log Specific Parameter (7 bits). */
  lsp: number
  /** Retain Asynchronous Event. */
  rae: boolean
  /** Number of Dwords, 0's based (NUMDU:NUMDL, 32 bits). */
  numd: number
  /** Log Specific Identifier. */
  lsi: number
  /** Log Page Offset (LPOU:LPOL), bytes, or an entry index when ot (exact below 2^53). */
  offset: number
  /** Command Set Identifier. */
  csi: number
  /** Offset Type: offset is an index. */
  ot: boolean
  /** UUID Index (7 bits). */
  uuidIndex: number
}

export interface GetLogPageCdws {
  cdw10: number
  cdw11: number
  cdw12: number
  cdw13: number
  cdw14: number
}

function checkUint(name: string, v: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${String(v)} is not an integer in 0..${max}`)
  return v
}

const TWO_32 = 0x100000000

/** The 0's based dword count (NUMD) of a transfer of `bytes` bytes (a multiple of 4, at least 4). */
export function numdOfBytes(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 4 || bytes % 4 !== 0 || bytes > 4 * TWO_32) {
    throw new RangeError(`${bytes} bytes is not a log transfer length (a multiple of 4 from 4 to 16 GiB)`)
  }
  return bytes / 4 - 1
}

/** The bytes a 0's based dword count (NUMD) asks for. */
export function bytesOfNumd(numd: number): number {
  return (numd + 1) * 4
}

export function encodeGetLogPage(f: Partial<GetLogPageFields>): GetLogPageCdws {
  const numd = checkUint('numd', f.numd ?? 0, 0xffffffff)
  const offset = f.offset ?? 0
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset ${offset} is not a safe non-negative integer`)
  const lpol = offset >>> 0
  return {
    cdw10: (((numd & 0xffff) << 16) | (f.rae === true ? 0x8000 : 0) | (checkUint('lsp', f.lsp ?? 0, 0x7f) << 8) | checkUint('lid', f.lid ?? 0, 0xff)) >>> 0,
    cdw11: ((checkUint('lsi', f.lsi ?? 0, 0xffff) << 16) | (numd >>> 16)) >>> 0,
    cdw12: lpol,
    cdw13: (offset - lpol) / TWO_32,
    cdw14: ((checkUint('csi', f.csi ?? 0, 0xff) << 24) | (f.ot === true ? 0x80_0000 : 0) | checkUint('uuidIndex', f.uuidIndex ?? 0, 0x7f)) >>> 0,
  }
}

export function decodeGetLogPage(c: GetLogPageCdws): GetLogPageFields {
  return {
    lid: c.cdw10 & 0xff,
    lsp: (c.cdw10 >>> 8) & 0x7f,
    rae: (c.cdw10 & 0x8000) !== 0,
    numd: ((c.cdw11 & 0xffff) * 0x10000 + (c.cdw10 >>> 16)) >>> 0,
    lsi: c.cdw11 >>> 16,
    offset: (c.cdw12 >>> 0) + (c.cdw13 >>> 0) * TWO_32,
    csi: c.cdw14 >>> 24,
    ot: (c.cdw14 & 0x80_0000) !== 0,
    uuidIndex: c.cdw14 & 0x7f,
  }
}

function checkBuffer(name: string, buf: Uint8Array, size: number, offset = 0): void {
  if (!(buf instanceof Uint8Array) || !Number.isInteger(offset) || offset < 0 || buf.length < offset + size) {
    throw new RangeError(`${name} needs ${size} bytes at ${offset} of a Uint8Array`)
  }
}

// ---------------------------------------------------------------------------------------------
// Error Information (LID 01h)

export const ERROR_LOG_ENTRY_SIZE = 64

export interface ErrorInformationEntry {
  /** Error Count: unique and incrementing; 0 marks an invalid entry (exact below 2^53). */
  errorCount: number
  /** Submission Queue ID (FFFFh when not command specific). */
  sqid: number
  /** Command ID (FFFFh when not command specific). */
  cid: number
  /** The CQE Status field: status in bits 15:1, Phase Tag in bit 0 (see decodeCqeStatusField). */
  statusField: number
  /** Parameter Error Location: bits 7:0 byte, 10:8 bit (see parameterErrorLocation). */
  parameterErrorLocation: number
  /** First LBA in error (exact below 2^53). */
  lba: number
  /** Namespace. */
  nsid: number
  /** Vendor Specific Information Available: a log page ID (80h-FFh) or 0. */
  vendorSpecific: number
  /** Transport Type (Discovery log TRTYPE values), 0 if not transport related. */
  trtype: number
  /** Command Specific Information (64 bits). */
  commandSpecific: bigint
  /** Transport Type Specific Information. */
  transportSpecific: number
}

export const ERROR_LOG_ENTRY_FIELDS: ReadonlyArray<FieldSpec<keyof ErrorInformationEntry>> = [
  field('errorCount', 0, 'u64'),
  field('sqid', 8, 'u16'),
  field('cid', 10, 'u16'),
  field('statusField', 12, 'u16'),
  field('parameterErrorLocation', 14, 'u16'),
  field('lba', 16, 'u64'),
  field('nsid', 24, 'u32'),
  field('vendorSpecific', 28, 'u8'),
  field('trtype', 29, 'u8'),
  field('commandSpecific', 32, 'u64n'),
  field('transportSpecific', 40, 'u16'),
]

/** The Parameter Error Location of a byte (0-63) and bit (0-7) of the command. */
export function parameterErrorLocation(byte: number, bit: number): number {
  return checkUint('byte', byte, 0xff) | (checkUint('bit', bit, 7) << 8)
}

export function decodeParameterErrorLocation(v: number): { byte: number; bit: number } {
  return { byte: v & 0xff, bit: (v >> 8) & 7 }
}

/** Write one 64-byte entry at `offset` of `out` (zeroed first; absent fields 0). */
export function encodeErrorLogEntry(e: Partial<ErrorInformationEntry>, out: Uint8Array, offset = 0): void {
  checkBuffer('Error Information entry', out, ERROR_LOG_ENTRY_SIZE, offset)
  out.fill(0, offset, offset + ERROR_LOG_ENTRY_SIZE)
  encodeStruct(ERROR_LOG_ENTRY_FIELDS, e, out, offset)
}

export function decodeErrorLogEntry(buf: Uint8Array, offset = 0): ErrorInformationEntry {
  checkBuffer('Error Information entry', buf, ERROR_LOG_ENTRY_SIZE, offset)
  return decodeStruct(ERROR_LOG_ENTRY_FIELDS, buf, offset) as unknown as ErrorInformationEntry
}

// ---------------------------------------------------------------------------------------------
// SMART / Health Information (LID 02h)

export const SMART_LOG_SIZE = 512
export const TEMPERATURE_SENSORS = 8

/** Critical Warning bits. */
export const CriticalWarning = {
  AvailableSpare: 1 << 0,
  Temperature: 1 << 1,
  /** NVM subsystem reliability degraded. */
  Reliability: 1 << 2,
  ReadOnly: 1 << 3,
  VolatileMemoryBackup: 1 << 4,
  PersistentMemoryRegion: 1 << 5,
} as const

export interface SmartLog {
  criticalWarning: number
  /** Composite Temperature, K. */
  compositeTemperature: number
  /** Available Spare, %. */
  availableSpare: number
  /** Available Spare Threshold, %. */
  availableSpareThreshold: number
  /** Percentage Used (may exceed 100; 255 = 255 or more). */
  percentageUsed: number
  enduranceGroupCriticalWarningSummary: number
  /** Data Units Read, 1000 × 512 bytes. */
  dataUnitsRead: bigint
  /** Data Units Written, 1000 × 512 bytes. */
  dataUnitsWritten: bigint
  hostReadCommands: bigint
  hostWriteCommands: bigint
  /** Controller Busy Time, minutes. */
  controllerBusyTime: bigint
  powerCycles: bigint
  powerOnHours: bigint
  unsafeShutdowns: bigint
  mediaErrors: bigint
  /** Number of Error Information Log Entries over the controller's life. */
  errorLogEntries: bigint
  /** Warning Composite Temperature Time, minutes. */
  warningTemperatureTime: number
  /** Critical Composite Temperature Time, minutes. */
  criticalTemperatureTime: number
  /** Temperature Sensors 1-8, K (0 = not implemented). */
  temperatureSensors: number[]
  /** Thermal Management Temperature 1 Transition Count. */
  thermalTransitionCount1: number
  /** Thermal Management Temperature 2 Transition Count. */
  thermalTransitionCount2: number
  /** Total Time For Thermal Management Temperature 1, s. */
  thermalTotalTime1: number
  /** Total Time For Thermal Management Temperature 2, s. */
  thermalTotalTime2: number
}

type SmartScalar = Exclude<keyof SmartLog, 'temperatureSensors'>

export const SMART_LOG_FIELDS: ReadonlyArray<FieldSpec<SmartScalar>> = [
  field('criticalWarning', 0, 'u8'),
  field('compositeTemperature', 1, 'u16'),
  field('availableSpare', 3, 'u8'),
  field('availableSpareThreshold', 4, 'u8'),
  field('percentageUsed', 5, 'u8'),
  field('enduranceGroupCriticalWarningSummary', 6, 'u8'),
  field('dataUnitsRead', 32, 'u128'),
  field('dataUnitsWritten', 48, 'u128'),
  field('hostReadCommands', 64, 'u128'),
  field('hostWriteCommands', 80, 'u128'),
  field('controllerBusyTime', 96, 'u128'),
  field('powerCycles', 112, 'u128'),
  field('powerOnHours', 128, 'u128'),
  field('unsafeShutdowns', 144, 'u128'),
  field('mediaErrors', 160, 'u128'),
  field('errorLogEntries', 176, 'u128'),
  field('warningTemperatureTime', 192, 'u32'),
  field('criticalTemperatureTime', 196, 'u32'),
  field('thermalTransitionCount1', 216, 'u32'),
  field('thermalTransitionCount2', 220, 'u32'),
  field('thermalTotalTime1', 224, 'u32'),
  field('thermalTotalTime2', 228, 'u32'),
]

const TEMPERATURE_SENSORS_OFFSET = 200

/** Encode the SMART / Health log into `out` (512 bytes, zeroed first; absent fields 0). */
export function encodeSmartLog(s: Partial<SmartLog>, out: Uint8Array): void {
  checkBuffer('SMART / Health log', out, SMART_LOG_SIZE)
  const sensors = s.temperatureSensors ?? []
  if (sensors.length > TEMPERATURE_SENSORS) throw new RangeError(`${sensors.length} temperature sensors, more than ${TEMPERATURE_SENSORS}`)
  out.fill(0, 0, SMART_LOG_SIZE)
  encodeStruct(SMART_LOG_FIELDS, s, out)
  const dv = viewOf(out)
  sensors.forEach((t, i) => dv.setUint16(TEMPERATURE_SENSORS_OFFSET + 2 * i, checkUint(`temperature sensor ${i + 1}`, t, 0xffff), true))
}

export function decodeSmartLog(buf: Uint8Array): SmartLog {
  checkBuffer('SMART / Health log', buf, SMART_LOG_SIZE)
  const dv = viewOf(buf)
  const temperatureSensors: number[] = []
  for (let i = 0; i < TEMPERATURE_SENSORS; i++) temperatureSensors.push(dv.getUint16(TEMPERATURE_SENSORS_OFFSET + 2 * i, true))
  return { ...(decodeStruct(SMART_LOG_FIELDS, buf) as unknown as Omit<SmartLog, 'temperatureSensors'>), temperatureSensors }
}

// ---------------------------------------------------------------------------------------------
// Firmware Slot Information (LID 03h): 512 bytes
//
//   off   size  field
//     0      1  AFI   bits 2:0 active slot, bits 6:4 slot activated at the next reset (0 = none)
//     1      7  reserved
//     8      8  FRS1  firmware revision in slot 1, ASCII (all zero when the slot is empty)
//    ..
//    56      8  FRS7
//    64    448  reserved

export const FIRMWARE_SLOT_LOG_SIZE = 512
export const FIRMWARE_SLOTS = 7

export interface FirmwareSlotLog {
  /** Active Firmware Info. */
  afi: number
  /** Firmware revisions of slots 1-7 ('' for an empty slot). */
  frs: string[]
}

/** AFI of the active slot (1-7) and the slot to activate at the next reset (0 = none). */
export function encodeAfi(activeSlot: number, nextResetSlot = 0): number {
  return checkUint('active slot', activeSlot, 7) | (checkUint('next reset slot', nextResetSlot, 7) << 4)
}

export function decodeAfi(afi: number): { activeSlot: number; nextResetSlot: number } {
  return { activeSlot: afi & 7, nextResetSlot: (afi >> 4) & 7 }
}

/** Encode the Firmware Slot log into `out` (512 bytes, zeroed first). A revision is ASCII, space padded; '' leaves the slot zero. */
export function encodeFirmwareSlotLog(l: Partial<FirmwareSlotLog>, out: Uint8Array): void {
  checkBuffer('Firmware Slot log', out, FIRMWARE_SLOT_LOG_SIZE)
  const frs = l.frs ?? []
  if (frs.length > FIRMWARE_SLOTS) throw new RangeError(`${frs.length} firmware slots, more than ${FIRMWARE_SLOTS}`)
  out.fill(0, 0, FIRMWARE_SLOT_LOG_SIZE)
  out[0] = checkUint('afi', l.afi ?? 0, 0xff)
  frs.forEach((r, i) => {
    if (r !== '') writeAscii(out, 8 + 8 * i, 8, r, `FRS${i + 1}`)
  })
}

export function decodeFirmwareSlotLog(buf: Uint8Array): FirmwareSlotLog {
  checkBuffer('Firmware Slot log', buf, FIRMWARE_SLOT_LOG_SIZE)
  const frs: string[] = []
  for (let i = 0; i < FIRMWARE_SLOTS; i++) frs.push(readAscii(buf, 8 + 8 * i, 8))
  return { afi: buf[0]!, frs }
}

// ---------------------------------------------------------------------------------------------
// Changed Namespace List (LID 04h): 4096 bytes, up to 1024 NSIDs (u32) in increasing order,
// zero after the last; when more than 1024 changed, the first entry is FFFFFFFFh and the rest 0.

export const CHANGED_NAMESPACE_LIST_SIZE = 4096
export const MAX_CHANGED_NAMESPACES = 1024

export interface ChangedNamespaceList {
  /** More than 1024 namespaces changed: the host must rescan them all. */
  overflow: boolean
  nsids: number[]
}

/** Encode the NSIDs (any order, duplicates dropped; sorted on the way out) into `out` (4096 bytes, zeroed first). */
export function encodeChangedNamespaceList(nsids: ReadonlyArray<number>, out: Uint8Array): void {
  checkBuffer('Changed Namespace List', out, CHANGED_NAMESPACE_LIST_SIZE)
  for (const id of nsids) checkUint('NSID', id, 0xfffffffe)
  const ids = [...new Set(nsids)].sort((a, b) => a - b)
  out.fill(0, 0, CHANGED_NAMESPACE_LIST_SIZE)
  const dv = viewOf(out)
  if (ids.includes(0)) throw new RangeError('NSID 0 is not a namespace')
  if (ids.length > MAX_CHANGED_NAMESPACES) {
    dv.setUint32(0, 0xffffffff, true)
    return
  }
  ids.forEach((id, i) => dv.setUint32(4 * i, id, true))
}

export function decodeChangedNamespaceList(buf: Uint8Array): ChangedNamespaceList {
  checkBuffer('Changed Namespace List', buf, CHANGED_NAMESPACE_LIST_SIZE)
  const dv = viewOf(buf)
  if (dv.getUint32(0, true) === 0xffffffff) return { overflow: true, nsids: [] }
  const nsids: number[] = []
  for (let i = 0; i < MAX_CHANGED_NAMESPACES; i++) {
    const id = dv.getUint32(4 * i, true)
    if (id === 0) break
    nsids.push(id)
  }
  return { overflow: false, nsids }
}

// ---------------------------------------------------------------------------------------------
// Commands Supported and Effects (LID 05h): 4096 bytes, one u32 per opcode, 256 admin at 0,
// 256 I/O (of the selected command set) at 1024, the rest reserved:
//
//   bit  31      20 19   18  16 15     5  4     3     2     1      0
//        |   CSP   | USS |  CSE  | rsvd | CCC | NIC | NCC | LBCC | CSUPP |
//
// CSUPP supported; LBCC changes logical block content; NCC changes namespace capabilities;
// NIC changes the namespace inventory; CCC changes controller capabilities; CSE submission
// and execution restriction (000b none, 001b one at a time per namespace, 010b one at a time
// in the subsystem); USS UUID selection supported; CSP command scope.

export const COMMAND_EFFECTS_LOG_SIZE = 4096
export const COMMAND_EFFECTS_IO_OFFSET = 1024

export const CommandEffect = {
  CSUPP: 1 << 0,
  LBCC: 1 << 1,
  NCC: 1 << 2,
  NIC: 1 << 3,
  CCC: 1 << 4,
  CSE_SHIFT: 16,
  CSE_MASK: 7,
  USS: 1 << 19,
  CSP_SHIFT: 20,
  CSP_MASK: 0xfff,
} as const

/** Command Submission and Execution (CSE) values. */
export const CommandSubmissionExecution = {
  NoRestriction: 0,
  OnePerNamespace: 1,
  OnePerSubsystem: 2,
} as const

export interface CommandEffects {
  /** Command Supported. */
  csupp: boolean
  /** Logical Block Content Change. */
  lbcc: boolean
  /** Namespace Capability Change. */
  ncc: boolean
  /** Namespace Inventory Change. */
  nic: boolean
  /** Controller Capability Change. */
  ccc: boolean
  /** Command Submission and Execution (3 bits). */
  cse: number
  /** UUID Selection Supported. */
  uss: boolean
  /** Command Scope (12 bits). */
  csp: number
}

export function encodeCommandEffects(e: Partial<CommandEffects>): number {
  let v = 0
  if (e.csupp === true) v |= CommandEffect.CSUPP
  if (e.lbcc === true) v |= CommandEffect.LBCC
  if (e.ncc === true) v |= CommandEffect.NCC
  if (e.nic === true) v |= CommandEffect.NIC
  if (e.ccc === true) v |= CommandEffect.CCC
  v |= checkUint('cse', e.cse ?? 0, CommandEffect.CSE_MASK) << CommandEffect.CSE_SHIFT
  if (e.uss === true) v |= CommandEffect.USS
  v |= checkUint('csp', e.csp ?? 0, CommandEffect.CSP_MASK) << CommandEffect.CSP_SHIFT
  return v >>> 0
}

export function decodeCommandEffects(v: number): CommandEffects {
  return {
    csupp: (v & CommandEffect.CSUPP) !== 0,
    lbcc: (v & CommandEffect.LBCC) !== 0,
    ncc: (v & CommandEffect.NCC) !== 0,
    nic: (v & CommandEffect.NIC) !== 0,
    ccc: (v & CommandEffect.CCC) !== 0,
    cse: (v >>> CommandEffect.CSE_SHIFT) & CommandEffect.CSE_MASK,
    uss: (v & CommandEffect.USS) !== 0,
    csp: (v >>> CommandEffect.CSP_SHIFT) & CommandEffect.CSP_MASK,
  }
}

export interface CommandEffectsLog {
  /** 256 entries, indexed by admin opcode. */
  admin: number[]
  /** 256 entries, indexed by I/O opcode. */
  io: number[]
}

/** Encode the log into `out` (4096 bytes, zeroed first); each list is indexed by opcode (at most 256, holes are 0). */
export function encodeCommandEffectsLog(l: { admin?: ReadonlyArray<number | undefined>; io?: ReadonlyArray<number | undefined> }, out: Uint8Array): void {
  checkBuffer('Commands Supported and Effects log', out, COMMAND_EFFECTS_LOG_SIZE)
  const admin = l.admin ?? []
  const io = l.io ?? []
  if (admin.length > 256 || io.length > 256) throw new RangeError('more than 256 opcodes')
  out.fill(0, 0, COMMAND_EFFECTS_LOG_SIZE)
  const dv = viewOf(out)
  for (let i = 0; i < admin.length; i++) dv.setUint32(4 * i, checkUint(`admin ${i}`, admin[i] ?? 0, 0xffffffff), true)
  for (let i = 0; i < io.length; i++) dv.setUint32(COMMAND_EFFECTS_IO_OFFSET + 4 * i, checkUint(`io ${i}`, io[i] ?? 0, 0xffffffff), true)
}

export function decodeCommandEffectsLog(buf: Uint8Array): CommandEffectsLog {
  checkBuffer('Commands Supported and Effects log', buf, COMMAND_EFFECTS_LOG_SIZE)
  const dv = viewOf(buf)
  const admin: number[] = []
  const io: number[] = []
  for (let i = 0; i < 256; i++) {
    admin.push(dv.getUint32(4 * i, true))
    io.push(dv.getUint32(COMMAND_EFFECTS_IO_OFFSET + 4 * i, true))
  }
  return { admin, io }
}
