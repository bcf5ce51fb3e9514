// Features: Get Features (NVMe Base 2.0 §5.15) and Set Features (§5.27), the Feature
// Identifiers and the value codecs of the features a controller core implements (§5.27.1),
// and the Asynchronous Event Request completion (§5.2).
//
//   Get Features CDW10   10:8 SEL (000b current, 001b default, 010b saved, 011b supported
//                        capabilities), 7:0 FID
//   Set Features CDW10   bit 31 SV (save), 7:0 FID
//   both         CDW14   6:0 UUID index
//
// A feature's value travels in CDW11 (Set) and comes back in the CQE's DW0 (Get); both use
// the same bit layout, so one codec serves both directions. Number of Queues is the one whose
// completion differs in meaning: Set Features' DW0 returns the counts allocated (NSQA/NCQA),
// in the layout of the request (NSQR/NCQR). With SEL 011b DW0 holds the capabilities instead:
// bit 0 saveable, bit 1 namespace specific, bit 2 changeable.
//
//   Arbitration                   31:24 HPW, 23:16 MPW, 15:8 LPW, 2:0 AB (2^AB, 111b no limit)
//   Power Management              7:5 WH (workload hint), 4:0 PS (power state)
//   Temperature Threshold         21:20 THSEL (00b over, 01b under), 19:16 TMPSEL, 15:0 TMPTH (K)
//   Error Recovery                bit 16 DULBE, 15:0 TLER (100 ms)
//   Volatile Write Cache          bit 0 WCE
//   Number of Queues              31:16 NCQR, 15:0 NSQR, both 0's based (FFFFh is invalid)
//   Interrupt Coalescing          15:8 TIME (100 µs), 7:0 THR (0's based)
//   Interrupt Vector Config.      bit 16 CD (coalescing disable), 15:0 IV
//   Write Atomicity Normal        bit 0 DN
//   Asynchronous Event Config.    7:0 SMART / health critical warnings, 8 NAN, 9 FAN, 10 TLN,
//                                 11 ANACN, 12 PLEALCN, 13 LSIN, 14 EGEALCN, 15 NNSSHDN,
//                                 27 ZDCN (zoned), 31 DLPCN (discovery log page change)
//   Autonomous Power State Trans. bit 0 APSTE
//   Host Memory Buffer            bit 1 MR (memory return), bit 0 EHM (enable)
//   Keep Alive Timer              31:0 KATO (ms)
//   Host Identifier               bit 0 EXHID (128-bit host identifier)
//   Reservation Notif. Mask       bit 3 RESPRE, bit 2 RESREL, bit 1 REGPRE (mask the event)
//   Reservation Persistence       bit 0 PTPL
//   I/O Command Set Profile       8:0 IOCSCI (an index into the CNS 1Ch vectors)
//
// Asynchronous Event Request completion DW0:
//
//   bit  31     24 23          16 15          8 7     3 2      0
//        |reserved|  Log Page ID  | Event Info   |reserved| Type  |
//
// Type 000b error, 001b SMART / health, 010b notice, 011b immediate, 110b I/O command set
// specific, 111b vendor specific (100b one-shot is 2.1's).

/** Feature Identifiers (NVMe Base 2.0 §5.27.1, Figure "Feature Identifiers"). */
export const FeatureId = {
  Arbitration: 0x01,
  PowerManagement: 0x02,
  /** LBA Range Type (NVM command set). */
  LbaRangeType: 0x03,
  TemperatureThreshold: 0x04,
  ErrorRecovery: 0x05,
  VolatileWriteCache: 0x06,
  NumberOfQueues: 0x07,
  InterruptCoalescing: 0x08,
  InterruptVectorConfiguration: 0x09,
  WriteAtomicityNormal: 0x0a,
  AsyncEventConfiguration: 0x0b,
  AutonomousPowerStateTransition: 0x0c,
  HostMemoryBuffer: 0x0d,
  Timestamp: 0x0e,
  KeepAliveTimer: 0x0f,
  HostControlledThermalManagement: 0x10,
  NonOperationalPowerStateConfig: 0x11,
  ReadRecoveryLevelConfig: 0x12,
  PredictableLatencyModeConfig: 0x13,
  PredictableLatencyModeWindow: 0x14,
  LbaStatusInformationReportInterval: 0x15,
  HostBehaviorSupport: 0x16,
  SanitizeConfig: 0x17,
  EnduranceGroupEventConfiguration: 0x18,
  IoCommandSetProfile: 0x19,
  SpinupControl: 0x1a,
  EnhancedControllerMetadata: 0x7d,
  ControllerMetadata: 0x7e,
  NamespaceMetadata: 0x7f,
  SoftwareProgressMarker: 0x80,
  HostIdentifier: 0x81,
  ReservationNotificationMask: 0x82,
  ReservationPersistence: 0x83,
  NamespaceWriteProtectionConfig: 0x84,
} as const

const FEATURE_NAMES = new Map<number, string>(Object.entries(FeatureId).map(([k, v]) => [v, k]))

/** A Feature Identifier's name for logs, or the FID in hex. */
export function featureName(fid: number): string {
  return FEATURE_NAMES.get(fid) ?? `feature 0x${(fid & 0xff).toString(16).padStart(2, '0')}`
}

/** SEL of Get Features. */
export const FeatureSelect = {
  Current: 0,
  Default: 1,
  Saved: 2,
  SupportedCapabilities: 3,
} as const

/** DW0 bits of Get Features with SEL = SupportedCapabilities. */
export const FeatureCapability = {
  Saveable: 1 << 0,
  NamespaceSpecific: 1 << 1,
  Changeable: 1 << 2,
} as const

function checkUint(name: string, v: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} ${String(v)} is not an integer in 0..${max}`)
  return v
}

function bit(b: boolean | undefined, n: number): number {
  return b === true ? 1 << n : 0
}

function has(v: number, n: number): boolean {
  return ((v >>> n) & 1) === 1
}

// ---------------------------------------------------------------------------------------------
// Get / Set Features command dwords

export interface GetFeaturesFields {
  fid: number
  sel: number
  uuidIndex: number
}

export function encodeGetFeatures(f: Partial<GetFeaturesFields>): { cdw10: number; cdw14: number } {
  return {
    cdw10: checkUint('fid', f.fid ?? 0, 0xff) | (checkUint('sel', f.sel ?? 0, 7) << 8),
    cdw14: checkUint('uuidIndex', f.uuidIndex ?? 0, 0x7f),
  }
}

export function decodeGetFeatures(c: { cdw10: number; cdw14: number }): GetFeaturesFields {
  return { fid: c.cdw10 & 0xff, sel: (c.cdw10 >>> 8) & 7, uuidIndex: c.cdw14 & 0x7f }
}

export interface SetFeaturesFields {
  fid: number
  /** Save: the value persists across power cycles and resets. */
  sv: boolean
  uuidIndex: number
}

export function encodeSetFeatures(f: Partial<SetFeaturesFields>): { cdw10: number; cdw14: number } {
  return {
    cdw10: (checkUint('fid', f.fid ?? 0, 0xff) | (f.sv === true ? 0x8000_0000 : 0)) >>> 0,
    cdw14: checkUint('uuidIndex', f.uuidIndex ?? 0, 0x7f),
  }
}

export function decodeSetFeatures(c: { cdw10: number; cdw14: number }): SetFeaturesFields {
  return { fid: c.cdw10 & 0xff, sv: has(c.cdw10, 31), uuidIndex: c.cdw14 & 0x7f }
}

// ---------------------------------------------------------------------------------------------
// Feature values

export interface Arbitration {
  /** Arbitration Burst: 2^ab commands (7 = no limit). */
  ab: number
  /** Low Priority Weight (0's based). */
  lpw: number
  /** Medium Priority Weight (0's based). */
  mpw: number
  /** High Priority Weight (0's based). */
  hpw: number
}

export function encodeArbitration(f: Partial<Arbitration>): number {
  const ab = checkUint('ab', f.ab ?? 0, 7)
  return (ab | (checkUint('lpw', f.lpw ?? 0, 0xff) << 8) | (checkUint('mpw', f.mpw ?? 0, 0xff) << 16) | (checkUint('hpw', f.hpw ?? 0, 0xff) << 24)) >>> 0
}

export function decodeArbitration(v: number): Arbitration {
  return { ab: v & 7, lpw: (v >>> 8) & 0xff, mpw: (v >>> 16) & 0xff, hpw: v >>> 24 }
}

export interface PowerManagement {
  /** Power State. */
  ps: number
  /** Workload Hint. */
  wh: number
}

export function encodePowerManagement(f: Partial<PowerManagement>): number {
  return checkUint('ps', f.ps ?? 0, 0x1f) | (checkUint('wh', f.wh ?? 0, 7) << 5)
}

export function decodePowerManagement(v: number): PowerManagement {
  return { ps: v & 0x1f, wh: (v >>> 5) & 7 }
}

/** THSEL values. */
export const ThresholdType = {
  OverTemperature: 0,
  UnderTemperature: 1,
} as const

export interface TemperatureThreshold {
  /** Temperature Threshold, K. */
  tmpth: number
  /** Threshold Temperature Select: 0 composite, 1-8 sensors, Fh all. */
  tmpsel: number
  /** Threshold Type Select: ThresholdType. */
  thsel: number
}

export function encodeTemperatureThreshold(f: Partial<TemperatureThreshold>): number {
  return checkUint('tmpth', f.tmpth ?? 0, 0xffff) | (checkUint('tmpsel', f.tmpsel ?? 0, 0xf) << 16) | (checkUint('thsel', f.thsel ?? 0, 3) << 20)
}

export function decodeTemperatureThreshold(v: number): TemperatureThreshold {
  return { tmpth: v & 0xffff, tmpsel: (v >>> 16) & 0xf, thsel: (v >>> 20) & 3 }
}

export interface ErrorRecovery {
  /** Time Limited Error Recovery, 100 ms units (0 = none). */
  tler: number
  /** Deallocated or Unwritten Logical Block Error Enable. */
  dulbe: boolean
}

export function encodeErrorRecovery(f: Partial<ErrorRecovery>): number {
  return checkUint('tler', f.tler ?? 0, 0xffff) | bit(f.dulbe, 16)
}

export function decodeErrorRecovery(v: number): ErrorRecovery {
  return { tler: v & 0xffff, dulbe: has(v, 16) }
}

export interface VolatileWriteCache {
  /** Volatile Write Cache Enable. */
  wce: boolean
}

export function encodeVolatileWriteCache(f: Partial<VolatileWriteCache>): number {
  return bit(f.wce, 0)
}

export function decodeVolatileWriteCache(v: number): VolatileWriteCache {
  return { wce: has(v, 0) }
}

export interface NumberOfQueues {
  /** Number of I/O Submission Queues, 0's based (requested NSQR, or allocated NSQA in DW0). */
  nsq: number
  /** Number of I/O Completion Queues, 0's based (NCQR, or NCQA in DW0). */
  ncq: number
}

/** CDW11 of Set Features Number of Queues, or the DW0 a controller returns. FFFFh is not a valid count. */
export function encodeNumberOfQueues(f: Partial<NumberOfQueues>): number {
  return (checkUint('nsq', f.nsq ?? 0, 0xfffe) | (checkUint('ncq', f.ncq ?? 0, 0xfffe) << 16)) >>> 0
}

export function decodeNumberOfQueues(v: number): NumberOfQueues {
  return { nsq: v & 0xffff, ncq: v >>> 16 }
}

export interface InterruptCoalescing {
  /** Aggregation Threshold, 0's based completions. */
  thr: number
  /** Aggregation Time, 100 µs units. */
  time: number
}

export function encodeInterruptCoalescing(f: Partial<InterruptCoalescing>): number {
  return checkUint('thr', f.thr ?? 0, 0xff) | (checkUint('time', f.time ?? 0, 0xff) << 8)
}

export function decodeInterruptCoalescing(v: number): InterruptCoalescing {
  return { thr: v & 0xff, time: (v >>> 8) & 0xff }
}

export interface InterruptVectorConfiguration {
  /** Interrupt Vector. */
  iv: number
  /** Coalescing Disable. */
  cd: boolean
}

export function encodeInterruptVectorConfiguration(f: Partial<InterruptVectorConfiguration>): number {
  return checkUint('iv', f.iv ?? 0, 0xffff) | bit(f.cd, 16)
}

export function decodeInterruptVectorConfiguration(v: number): InterruptVectorConfiguration {
  return { iv: v & 0xffff, cd: has(v, 16) }
}

export interface WriteAtomicityNormal {
  /** Disable Normal: only AWUPF/NAWUPF atomicity applies. */
  dn: boolean
}

export function encodeWriteAtomicityNormal(f: Partial<WriteAtomicityNormal>): number {
  return bit(f.dn, 0)
}

export function decodeWriteAtomicityNormal(v: number): WriteAtomicityNormal {
  return { dn: has(v, 0) }
}

export interface AsyncEventConfiguration {
  /** SMART / Health Critical Warnings to report (the SMART log's Critical Warning bits). */
  smartCriticalWarnings: number
  /** (Attached) Namespace Attribute Notices. */
  nan: boolean
  /** Firmware Activation Notices. */
  fan: boolean
  /** Telemetry Log Notices. */
  tln: boolean
  /** Asymmetric Namespace Access Change Notices. */
  anacn: boolean
  /** Predictable Latency Event Aggregate Log Change Notices. */
  plealcn: boolean
  /** LBA Status Information Notices (LSIAN, "Alert Notices", in 2.1). */
  lsin: boolean
  /** Endurance Group Event Aggregate Log Change Notices. */
  egealcn: boolean
  /** Normal NVM Subsystem Shutdown (2.0). */
  nnsshdn: boolean
  /** Zone Descriptor Changed Notices (Zoned Namespace command set). */
  zdcn: boolean
  /** Discovery Log Page Change Notification (Discovery controllers). */
  dlpcn: boolean
}

const AEC_BITS: ReadonlyArray<readonly [Exclude<keyof AsyncEventConfiguration, 'smartCriticalWarnings'>, number]> = [
  ['nan', 8],
  ['fan', 9],
  ['tln', 10],
  ['anacn', 11],
  ['plealcn', 12],
  ['lsin', 13],
  ['egealcn', 14],
  ['nnsshdn', 15],
  ['zdcn', 27],
  ['dlpcn', 31],
]

/** Bit positions of the Asynchronous Event Configuration notices. */
export const AsyncEventConfigBit = Object.fromEntries(AEC_BITS) as Readonly<Record<(typeof AEC_BITS)[number][0], number>>

export function encodeAsyncEventConfiguration(f: Partial<AsyncEventConfiguration>): number {
  let v = checkUint('smartCriticalWarnings', f.smartCriticalWarnings ?? 0, 0xff)
  for (const [k, b] of AEC_BITS) v |= bit(f[k], b)
  return v >>> 0
}

export function decodeAsyncEventConfiguration(v: number): AsyncEventConfiguration {
  return {
    smartCriticalWarnings: v & 0xff,
    nan: has(v, 8),
    fan: has(v, 9),
    tln: has(v, 10),
    anacn: has(v, 11),
    plealcn: has(v, 12),
    lsin: has(v, 13),
    egealcn: has(v, 14),
    nnsshdn: has(v, 15),
    zdcn: has(v, 27),
    dlpcn: has(v, 31),
  }
}

export interface AutonomousPowerStateTransition {
  /** Autonomous Power State Transition Enable. */
  apste: boolean
}

export function encodeAutonomousPowerStateTransition(f: Partial<AutonomousPowerStateTransition>): number {
  return bit(f.apste, 0)
}

export function decodeAutonomousPowerStateTransition(v: number): AutonomousPowerStateTransition {
  return { apste: has(v, 0) }
}

export interface HostMemoryBuffer {
  /** Enable Host Memory. */
  ehm: boolean
  /** Memory Return: the buffer is the one the controller had before. */
  mr: boolean
}

export function encodeHostMemoryBuffer(f: Partial<HostMemoryBuffer>): number {
  return bit(f.ehm, 0) | bit(f.mr, 1)
}

export function decodeHostMemoryBuffer(v: number): HostMemoryBuffer {
  return { ehm: has(v, 0), mr: has(v, 1) }
}

/** CDW11 of Set Features Keep Alive Timer: KATO in ms (0 disables it). */
export function encodeKeepAliveTimer(katoMs: number): number {
  return checkUint('kato', katoMs, 0xffffffff)
}

export function decodeKeepAliveTimer(v: number): number {
  return v >>> 0
}

export interface HostIdentifierFeature {
  /** Enable Extended Host Identifier: the host identifier is 128 bits. */
  exhid: boolean
}

export function encodeHostIdentifier(f: Partial<HostIdentifierFeature>): number {
  return bit(f.exhid, 0)
}

export function decodeHostIdentifier(v: number): HostIdentifierFeature {
  return { exhid: has(v, 0) }
}

export interface ReservationNotificationMask {
  /** Mask Registration Preempted notifications. */
  regpre: boolean
  /** Mask Reservation Released notifications. */
  resrel: boolean
  /** Mask Reservation Preempted notifications. */
  respre: boolean
}

export function encodeReservationNotificationMask(f: Partial<ReservationNotificationMask>): number {
  return bit(f.regpre, 1) | bit(f.resrel, 2) | bit(f.respre, 3)
}

export function decodeReservationNotificationMask(v: number): ReservationNotificationMask {
  return { regpre: has(v, 1), resrel: has(v, 2), respre: has(v, 3) }
}

export interface ReservationPersistence {
  /** Persist Through Power Loss. */
  ptpl: boolean
}

export function encodeReservationPersistence(f: Partial<ReservationPersistence>): number {
  return bit(f.ptpl, 0)
}

export function decodeReservationPersistence(v: number): ReservationPersistence {
  return { ptpl: has(v, 0) }
}

/** CDW11 of Set Features I/O Command Set Profile: the I/O Command Set Combination Index (0-511). */
export function encodeIoCommandSetProfile(iocsci: number): number {
  return checkUint('iocsci', iocsci, 0x1ff)
}

export function decodeIoCommandSetProfile(v: number): number {
  return v & 0x1ff
}

// Timestamp (FID 0Eh): an 8-byte data buffer, not a dword.
//
//   off  size  field
//     0     6  Timestamp   ms since 1970-01-01 UTC
//     6     1  Attributes  bit 0 Synch (the count may have stopped), bits 3:1 Timestamp Origin
//     7     1  reserved

export const TIMESTAMP_SIZE = 8

/** Timestamp Origin values. */
export const TimestampOrigin = {
  /** Cleared to 0 by a Controller Level Reset. */
  Reset: 0,
  /** Set by a Set Features command. */
  SetFeatures: 1,
} as const

export interface TimestampFeature {
  /** Milliseconds since the Unix epoch (48 bits). */
  timestamp: number
  /** The controller may have stopped counting (a non-operational power state). */
  synch: boolean
  /** TimestampOrigin (3 bits). */
  origin: number
}

export function encodeTimestamp(t: Partial<TimestampFeature>, out: Uint8Array, offset = 0): void {
  const ms = t.timestamp ?? 0
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 2 ** 48) throw new RangeError(`timestamp ${ms} is not a 48-bit millisecond count`)
  if (out.length < offset + TIMESTAMP_SIZE) throw new RangeError('Timestamp needs 8 bytes')
  const dv = new DataView(out.buffer, out.byteOffset + offset, TIMESTAMP_SIZE)
  const lo = ms >>> 0
  dv.setUint32(0, lo, true)
  dv.setUint16(4, (ms - lo) / 0x100000000, true)
  dv.setUint8(6, bit(t.synch, 0) | (checkUint('origin', t.origin ?? 0, 7) << 1))
  dv.setUint8(7, 0)
}

export function decodeTimestamp(buf: Uint8Array, offset = 0): TimestampFeature {
  if (buf.length < offset + TIMESTAMP_SIZE) throw new RangeError('Timestamp needs 8 bytes')
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, TIMESTAMP_SIZE)
  const attr = dv.getUint8(6)
  return { timestamp: dv.getUint32(0, true) + dv.getUint16(4, true) * 0x100000000, synch: has(attr, 0), origin: (attr >>> 1) & 7 }
}

// Host Behavior Support (FID 16h): a 512-byte data buffer.
//
//   off  size  field
//     0     1  ACRE    Advanced Command Retry Enable (CQE CRD and the CRDT delays)
//     1     1  ETDAS   Extended Telemetry Data Area 4 Supported (2.0)
//     2     1  LBAFEE  LBA Format Extension Enable: 64 LBA formats and 16-63 in FLBAS (2.0)

export const HOST_BEHAVIOR_SUPPORT_SIZE = 512

export interface HostBehaviorSupport {
  acre: boolean
  etdas: boolean
  lbafee: boolean
}

export function encodeHostBehaviorSupport(h: Partial<HostBehaviorSupport>, out: Uint8Array): void {
  if (out.length < HOST_BEHAVIOR_SUPPORT_SIZE) throw new RangeError('Host Behavior Support needs 512 bytes')
  out.fill(0, 0, HOST_BEHAVIOR_SUPPORT_SIZE)
  out[0] = h.acre === true ? 1 : 0
  out[1] = h.etdas === true ? 1 : 0
  out[2] = h.lbafee === true ? 1 : 0
}

export function decodeHostBehaviorSupport(buf: Uint8Array): HostBehaviorSupport {
  if (buf.length < HOST_BEHAVIOR_SUPPORT_SIZE) throw new RangeError('Host Behavior Support needs 512 bytes')
  return { acre: (buf[0]! & 1) === 1, etdas: (buf[1]! & 1) === 1, lbafee: (buf[2]! & 1) === 1 }
}

// ---------------------------------------------------------------------------------------------
// Asynchronous Event Request completion (NVMe Base 2.0 §5.2)

/** Asynchronous Event Type, DW0 bits 2:0. */
export const AsyncEventType = {
  Error: 0,
  SmartHealth: 1,
  Notice: 2,
  /** Immediate: reported only to an outstanding AER, never queued (the NVM subsystem shutdown event). */
  Immediate: 3,
  /** One-Shot (2.1). */
  OneShot: 4,
  IoCommandSetSpecific: 6,
  VendorSpecific: 7,
} as const

/** Asynchronous Event Information of Error events. */
export const AsyncEventError = {
  WriteToInvalidDoorbellRegister: 0x00,
  InvalidDoorbellWriteValue: 0x01,
  DiagnosticFailure: 0x02,
  PersistentInternalError: 0x03,
  TransientInternalError: 0x04,
  FirmwareImageLoadError: 0x05,
} as const

/** Asynchronous Event Information of SMART / Health events. */
export const AsyncEventSmart = {
  NvmSubsystemReliability: 0x00,
  TemperatureThreshold: 0x01,
  SpareBelowThreshold: 0x02,
} as const

/** Asynchronous Event Information of Notice events. */
export const AsyncEventNotice = {
  /** (Attached) Namespace Attribute Changed: read the Changed Namespace List (LID 04h). */
  NamespaceAttributeChanged: 0x00,
  FirmwareActivationStarting: 0x01,
  TelemetryLogChanged: 0x02,
  AsymmetricNamespaceAccessChange: 0x03,
  PredictableLatencyEventAggregateLogChange: 0x04,
  LbaStatusInformationAlert: 0x05,
  EnduranceGroupEventAggregateLogPageChange: 0x06,
  /** Zone Descriptor Changed (Zoned Namespace command set). */
  ZoneDescriptorChanged: 0xef,
  /** Discovery Log Page Change (Discovery controllers). */
  DiscoveryLogPageChange: 0xf0,
} as const

/** Asynchronous Event Information of Immediate events. */
export const AsyncEventImmediate = {
  /** The NVM subsystem started a normal shutdown (NSSD, or NVMe-MI); enabled by AEC NNSSHDN. */
  NvmSubsystemNormalShutdown: 0x00,
  /** Temperature Threshold Hysteresis Recovery (2.1). */
  TemperatureThresholdHysteresisRecovery: 0x01,
} as const

/** Asynchronous Event Information of I/O Command Set specific events (NVM command set). */
export const AsyncEventIoCommandSet = {
  ReservationLogPageAvailable: 0x00,
  SanitizeOperationCompleted: 0x01,
  SanitizeOperationCompletedWithUnexpectedDeallocation: 0x02,
} as const

export interface AsyncEventCompletion {
  /** AsyncEventType (3 bits). */
  type: number
  /** Asynchronous Event Information (8 bits). */
  info: number
  /** The log page to read to clear the event. */
  lid: number
}

/** DW0 of an Asynchronous Event Request completion. */
export function encodeAsyncEvent(e: Partial<AsyncEventCompletion>): number {
  return checkUint('type', e.type ?? 0, 7) | (checkUint('info', e.info ?? 0, 0xff) << 8) | (checkUint('lid', e.lid ?? 0, 0xff) << 16)
}

export function decodeAsyncEvent(dw0: number): AsyncEventCompletion {
  return { type: dw0 & 7, info: (dw0 >>> 8) & 0xff, lid: (dw0 >>> 16) & 0xff }
}
