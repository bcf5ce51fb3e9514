// Opcodes, data transfer directions, the status tables and the CQE Status field.
import * as bdev from '@ipukit/bdev'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AdminOpcode,
  adminOpcodeName,
  DataTransfer,
  fabricsCommandTypeName,
  FabricsCommandType,
  fabricsDirection,
  isVendorSpecificOpcode,
  NvmOpcode,
  nvmOpcodeName,
  opcodeDirection,
} from '../src/spec/opcodes.js'
import {
  AdminCommandStatus,
  cqeStatus,
  cqeStatusField,
  decodeCqeStatusField,
  FabricsCommandStatus,
  GenericStatus,
  MediaStatus,
  NvmCommandStatus,
  NvmeStatus,
  nvmeStatus,
  nvmeStatusName,
  PathStatus,
  StatusCodeType,
  statusName,
  statusSc,
  statusSct,
} from '../src/spec/status.js'

describe('opcodes', () => {
  it('has the admin opcodes of NVMe Base 2.0', () => {
    expect(AdminOpcode).toMatchObject({
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
      DoorbellBufferConfig: 0x7c,
      Fabrics: 0x7f,
      FormatNvm: 0x80,
      SecuritySend: 0x81,
      SecurityReceive: 0x82,
      Sanitize: 0x84,
      GetLbaStatus: 0x86,
    })
  })

  it('has the NVM and Fabrics opcodes', () => {
    expect(NvmOpcode).toEqual({
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
    })
    expect(FabricsCommandType).toEqual({
      PropertySet: 0x00,
      Connect: 0x01,
      PropertyGet: 0x04,
      AuthenticationSend: 0x05,
      AuthenticationReceive: 0x06,
      Disconnect: 0x08,
    })
  })

  it('reads the data direction from bits 1:0', () => {
    expect(opcodeDirection(NvmOpcode.Flush)).toBe(DataTransfer.None)
    expect(opcodeDirection(NvmOpcode.Write)).toBe(DataTransfer.HostToController)
    expect(opcodeDirection(NvmOpcode.Read)).toBe(DataTransfer.ControllerToHost)
    expect(opcodeDirection(NvmOpcode.Compare)).toBe(DataTransfer.HostToController)
    expect(opcodeDirection(NvmOpcode.DatasetManagement)).toBe(DataTransfer.HostToController)
    expect(opcodeDirection(NvmOpcode.WriteZeroes)).toBe(DataTransfer.None)
    expect(opcodeDirection(AdminOpcode.Identify)).toBe(DataTransfer.ControllerToHost)
    expect(opcodeDirection(AdminOpcode.GetLogPage)).toBe(DataTransfer.ControllerToHost)
    expect(opcodeDirection(AdminOpcode.SetFeatures)).toBe(DataTransfer.HostToController)
    expect(opcodeDirection(AdminOpcode.FirmwareImageDownload)).toBe(DataTransfer.HostToController)
    expect(opcodeDirection(AdminOpcode.SecurityReceive)).toBe(DataTransfer.ControllerToHost)
    expect(opcodeDirection(AdminOpcode.Fabrics)).toBe(DataTransfer.Bidirectional)
    // Linux's nvme_is_write(): fctype & 1 for Fabrics commands
    expect(fabricsDirection(FabricsCommandType.Connect)).toBe(DataTransfer.HostToController)
    expect(fabricsDirection(FabricsCommandType.AuthenticationReceive)).toBe(DataTransfer.ControllerToHost)
    expect(fabricsDirection(FabricsCommandType.PropertyGet)).toBe(DataTransfer.None)
  })

  it('names opcodes', () => {
    for (const [k, v] of Object.entries(AdminOpcode)) expect(adminOpcodeName(v)).toBe(k)
    for (const [k, v] of Object.entries(NvmOpcode)) expect(nvmOpcodeName(v)).toBe(k)
    for (const [k, v] of Object.entries(FabricsCommandType)) expect(fabricsCommandTypeName(v)).toBe(k)
    expect(adminOpcodeName(0x03)).toBe('admin opcode 0x03')
    expect(adminOpcodeName(0xc1)).toBe('vendor specific admin 0xc1')
    expect(nvmOpcodeName(0x7e)).toBe('I/O opcode 0x7e')
    expect(isVendorSpecificOpcode(0xc0)).toBe(true)
    expect(isVendorSpecificOpcode(0xbf)).toBe(false)
  })
})

describe('status tables', () => {
  it('re-exports @ipukit/bdev', () => {
    expect(NvmeStatus).toBe(bdev.NvmeStatus)
    expect(nvmeStatus).toBe(bdev.nvmeStatus)
    expect(nvmeStatusName).toBe(bdev.nvmeStatusName)
    expect(statusSct).toBe(bdev.statusSct)
    expect(statusSc).toBe(bdev.statusSc)
    expect(StatusCodeType).toBe(bdev.StatusCodeType)
  })

  it('encodes every code as (SCT << 8) | SC', () => {
    const expectSct = (t: Record<string, number>, sct: number): void => {
      for (const v of Object.values(t)) {
        expect(statusSct(v)).toBe(sct)
        expect(v).toBe(nvmeStatus(sct, statusSc(v)))
      }
    }
    expectSct(GenericStatus, StatusCodeType.Generic)
    expectSct(AdminCommandStatus, StatusCodeType.CommandSpecific)
    expectSct(NvmCommandStatus, StatusCodeType.CommandSpecific)
    expectSct(FabricsCommandStatus, StatusCodeType.CommandSpecific)
    expectSct(MediaStatus, StatusCodeType.Media)
    expectSct(PathStatus, StatusCodeType.Path)
    for (const v of Object.values(AdminCommandStatus)) expect(statusSc(v)).toBeLessThan(0x80)
    for (const v of Object.values(NvmCommandStatus)) expect(statusSc(v)).toBeGreaterThanOrEqual(0x80)
  })

  it('has the codes of the spec', () => {
    expect(AdminCommandStatus.CompletionQueueInvalid).toBe(nvmeStatus(1, 0x00))
    expect(AdminCommandStatus.InvalidQueueIdentifier).toBe(nvmeStatus(1, 0x01))
    expect(AdminCommandStatus.InvalidQueueSize).toBe(nvmeStatus(1, 0x02))
    expect(AdminCommandStatus.AsyncEventRequestLimitExceeded).toBe(nvmeStatus(1, 0x05))
    expect(AdminCommandStatus.InvalidLogPage).toBe(nvmeStatus(1, 0x09))
    expect(AdminCommandStatus.InvalidQueueDeletion).toBe(nvmeStatus(1, 0x0c))
    expect(AdminCommandStatus.FeatureNotNamespaceSpecific).toBe(nvmeStatus(1, 0x0f))
    expect(AdminCommandStatus.NamespaceInsufficientCapacity).toBe(nvmeStatus(1, 0x15))
    expect(AdminCommandStatus.NamespaceAlreadyAttached).toBe(nvmeStatus(1, 0x18))
    expect(AdminCommandStatus.ControllerListInvalid).toBe(nvmeStatus(1, 0x1c))
    expect(AdminCommandStatus.InvalidControllerIdentifier).toBe(nvmeStatus(1, 0x1f))
    expect(AdminCommandStatus.SanitizeProhibited).toBe(nvmeStatus(1, 0x23))
    expect(NvmCommandStatus).toEqual({
      ConflictingAttributes: 0x180,
      InvalidProtectionInformation: 0x181,
      AttemptedWriteToReadOnlyRange: 0x182,
      CommandSizeLimitExceeded: 0x183,
    })
    expect(FabricsCommandStatus).toEqual({
      IncompatibleFormat: 0x180,
      ControllerBusy: 0x181,
      ConnectInvalidParameters: 0x182,
      ConnectRestartDiscovery: 0x183,
      ConnectInvalidHost: 0x184,
      InvalidQueueType: 0x185,
      DiscoverRestart: 0x190,
      AuthenticationRequired: 0x191,
    })
    // Linux include/linux/nvme.h: NVME_SC_INTERNAL_PATH_ERROR 0x300 .. NVME_SC_HOST_ABORTED_CMD 0x371
    expect(PathStatus).toEqual({
      InternalPathError: 0x300,
      AsymmetricAccessPersistentLoss: 0x301,
      AsymmetricAccessInaccessible: 0x302,
      AsymmetricAccessTransition: 0x303,
      ControllerPathingError: 0x360,
      HostPathingError: 0x370,
      CommandAbortedByHost: 0x371,
    })
  })

  it('names statuses, resolving the shared command specific codes by context', () => {
    expect(statusName(0)).toBe('Success')
    expect(statusName(NvmeStatus.GuardCheckError)).toBe('GuardCheckError')
    expect(statusName(0x102)).toBe('InvalidQueueSize')
    expect(statusName(0x180)).toBe('ConflictingAttributes')
    expect(statusName(0x180, 'nvm')).toBe('ConflictingAttributes')
    expect(statusName(0x180, 'fabrics')).toBe('IncompatibleFormat')
    expect(statusName(0x182, 'fabrics')).toBe('ConnectInvalidParameters')
    expect(statusName(0x185)).toBe('InvalidQueueType')
    expect(statusName(0x191, 'nvm')).toBe('AuthenticationRequired')
    expect(statusName(0x371)).toBe('CommandAbortedByHost')
    expect(statusName(0x288)).toBe('StorageTagCheckError')
    expect(statusName(0x024)).toBe('AdminCommandMediaNotReady')
    expect(statusName(0x7ff)).toBe(nvmeStatusName(0x7ff))
    expect(statusName(0x7ff)).toBe('sct 7 sc 0xff')
  })
})

describe('CQE Status field', () => {
  it('matches the known value: DNR, SCT 2, SC 82h', () => {
    expect(cqeStatusField(nvmeStatus(2, 0x82), { dnr: true })).toBe(0x8504)
    expect(cqeStatusField(NvmeStatus.GuardCheckError, { dnr: true, phase: 1 })).toBe(0x8505)
    // Linux keeps the field shifted right by one: NVME_STATUS_DNR 0x4000, MORE 0x2000, CRD 0x1800
    const linux = cqeStatusField(NvmeStatus.GuardCheckError, { dnr: true, more: true, crd: 3 }) >> 1
    expect(linux & 0x4000).toBe(0x4000)
    expect(linux & 0x2000).toBe(0x2000)
    expect(linux & 0x1800).toBe(0x1800)
    expect(linux & 0x7ff).toBe(0x282)
  })

  it('puts each field at its bits', () => {
    const v = cqeStatusField(nvmeStatus(5, 0xa7), { phase: true, crd: 2, more: true })
    expect(v & 1).toBe(1)
    expect((v >> 1) & 0xff).toBe(0xa7)
    expect((v >> 9) & 7).toBe(5)
    expect((v >> 12) & 3).toBe(2)
    expect((v >> 14) & 1).toBe(1)
    expect(v >> 15).toBe(0)
    expect(cqeStatusField(0)).toBe(0)
    expect(cqeStatusField(0, { phase: 1 })).toBe(1)
    expect(cqeStatus(v)).toBe(0x5a7)
  })

  it('round-trips', () => {
    const status11 = fc.integer({ min: 0, max: 0x7ff })
    const phase01 = fc.constantFrom<0 | 1>(0, 1)
    fc.assert(
      fc.property(status11, phase01, fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(), (status, phase, crd, more, dnr) => {
        const v = cqeStatusField(status, { phase, crd, more, dnr })
        expect(v).toBeGreaterThanOrEqual(0)
        expect(v).toBeLessThanOrEqual(0xffff)
        expect(decodeCqeStatusField(v)).toEqual({ phase, status, crd, more, dnr })
      }),
      { numRuns: 300 },
    )
  })

  it('rejects a CRD that is not 0-3', () => {
    expect(() => cqeStatusField(0, { crd: 4 })).toThrow(RangeError)
    expect(() => cqeStatusField(0, { crd: 1.5 })).toThrow(RangeError)
  })
})
