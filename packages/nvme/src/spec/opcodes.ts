// Command opcodes: the Admin command set (NVMe Base 2.0 §5, Figure "Opcodes for Admin
// Commands"), the NVM command set's I/O commands (NVM Command Set 1.0 §3, Figure "Opcodes for
// NVM Commands") and the Fabrics command types that ride in opcode 7Fh (NVMe Base 2.0 §6).
//
// An opcode is not an arbitrary number: its two low bits say which way the data moves, so a
// controller knows whether to pull a command's buffer from the host before it runs or push it
// after, without a per-opcode table:
//
//   bit  7          6         2 1          0
//        | generic/ |  function | data       |
//        | specific |           | transfer   |     00b none, 01b host to controller,
//                                                  10b controller to host, 11b both
//
// Bit 7 set marks a command specific to an I/O command set (Format NVM, Sanitize, ... in the
// admin set). Vendor specific opcodes are C0h-FFh in both sets. The Fabrics command types
// follow the same bits 1:0 convention in FCTYPE (NVMe Base 2.0 §6, Figure "Fabrics Command
// Type"), which is why Linux tests `fctype & 1` for a write.

/** Admin command opcodes (NVMe Base 2.0 §5). */
export const AdminOpcode = {
  DeleteIoSq: 0x00,
  CreateIoSq: 0x01,
  GetLogPage: 0x02,
  DeleteIoCq: 0x04,
  CreateIoCq: 0x05,
  Identify: 0x06,
  Abort: 0x08,
  SetFeatures: 0x09,
  GetFeatures: 0x0a,
  AsyncEventRequest: 0x0c,
  NamespaceManagement: 0x0d,
  FirmwareCommit: 0x10,
  FirmwareImageDownload: 0x11,
  DeviceSelfTest: 0x14,
  NamespaceAttachment: 0x15,
  KeepAlive: 0x18,
  DirectiveSend: 0x19,
  DirectiveReceive: 0x1a,
  VirtualizationManagement: 0x1c,
  NvmeMiSend: 0x1d,
  NvmeMiReceive: 0x1e,
  /** Capacity Management (2.0). */
  CapacityManagement: 0x20,
  /** Lockdown (2.0). */
  Lockdown: 0x24,
  DoorbellBufferConfig: 0x7c,
  /** Every Fabrics command: the command type is FCTYPE, byte 4 of the SQE. */
  Fabrics: 0x7f,
  FormatNvm: 0x80,
  SecuritySend: 0x81,
  SecurityReceive: 0x82,
  Sanitize: 0x84,
  /** Get LBA Status (NVM Command Set specific admin command). */
  GetLbaStatus: 0x86,
} as const
export type AdminOpcodeValue = (typeof AdminOpcode)[keyof typeof AdminOpcode]

/** I/O command opcodes of the NVM command set (NVM Command Set 1.0 §3). */
export const NvmOpcode = {
  Flush: 0x00,
  Write: 0x01,
  Read: 0x02,
  WriteUncorrectable: 0x04,
  Compare: 0x05,
  WriteZeroes: 0x08,
  DatasetManagement: 0x09,
  Verify: 0x0c,
  ReservationRegister: 0x0d,
  ReservationReport: 0x0e,
  ReservationAcquire: 0x11,
  ReservationRelease: 0x15,
  Copy: 0x19,
} as const
export type NvmOpcodeValue = (typeof NvmOpcode)[keyof typeof NvmOpcode]

/** Fabrics command types, FCTYPE of an opcode 7Fh command (NVMe Base 2.0 §6). */
export const FabricsCommandType = {
  PropertySet: 0x00,
  Connect: 0x01,
  PropertyGet: 0x04,
  AuthenticationSend: 0x05,
  AuthenticationReceive: 0x06,
  Disconnect: 0x08,
} as const
export type FabricsCommandTypeValue = (typeof FabricsCommandType)[keyof typeof FabricsCommandType]

/** Data transfer direction, opcode (or FCTYPE) bits 1:0. */
export const DataTransfer = {
  None: 0,
  HostToController: 1,
  ControllerToHost: 2,
  Bidirectional: 3,
} as const
export type DataTransferValue = (typeof DataTransfer)[keyof typeof DataTransfer]

/** The data transfer direction an opcode encodes (bits 1:0): a DataTransfer value. */
export function opcodeDirection(opc: number): DataTransferValue {
  return (opc & 3) as DataTransferValue
}

/** The data transfer direction of a Fabrics command type (FCTYPE bits 1:0 follow the opcode rule). */
export function fabricsDirection(fctype: number): DataTransferValue {
  return (fctype & 3) as DataTransferValue
}

/** Vendor specific opcodes are C0h-FFh in the admin and the NVM command sets. */
export function isVendorSpecificOpcode(opc: number): boolean {
  return (opc & 0xff) >= 0xc0
}

function reverse(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([k, v]) => [v, k]))
}

const ADMIN_NAMES = reverse(AdminOpcode)
const NVM_NAMES = reverse(NvmOpcode)
const FABRICS_NAMES = reverse(FabricsCommandType)

function hex2(v: number): string {
  return `0x${(v & 0xff).toString(16).padStart(2, '0')}`
}

/** An admin opcode's name for logs ('Identify', 'GetLogPage', …), or the opcode in hex. */
export function adminOpcodeName(opc: number): string {
  return ADMIN_NAMES.get(opc) ?? (isVendorSpecificOpcode(opc) ? `vendor specific admin ${hex2(opc)}` : `admin opcode ${hex2(opc)}`)
}

/** An NVM command set opcode's name for logs ('Read', 'WriteZeroes', …), or the opcode in hex. */
export function nvmOpcodeName(opc: number): string {
  return NVM_NAMES.get(opc) ?? (isVendorSpecificOpcode(opc) ? `vendor specific I/O ${hex2(opc)}` : `I/O opcode ${hex2(opc)}`)
}

/** A Fabrics command type's name for logs ('Connect', 'PropertyGet', …), or the type in hex. */
export function fabricsCommandTypeName(fctype: number): string {
  return FABRICS_NAMES.get(fctype) ?? `fabrics type ${hex2(fctype)}`
}
