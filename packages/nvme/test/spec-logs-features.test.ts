// Log pages, Get Log Page dwords, feature values and the AER completion.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AsyncEventConfigBit,
  AsyncEventNotice,
  AsyncEventType,
  decodeArbitration,
  decodeAsyncEvent,
  decodeAsyncEventConfiguration,
  decodeErrorRecovery,
  decodeGetFeatures,
  decodeHostBehaviorSupport,
  decodeInterruptCoalescing,
  decodeInterruptVectorConfiguration,
  decodeNumberOfQueues,
  decodePowerManagement,
  decodeSetFeatures,
  decodeTemperatureThreshold,
  decodeTimestamp,
  decodeVolatileWriteCache,
  encodeArbitration,
  encodeAsyncEvent,
  encodeAsyncEventConfiguration,
  encodeErrorRecovery,
  encodeGetFeatures,
  encodeHostBehaviorSupport,
  encodeInterruptCoalescing,
  encodeInterruptVectorConfiguration,
  encodeIoCommandSetProfile,
  encodeKeepAliveTimer,
  encodeNumberOfQueues,
  encodePowerManagement,
  encodeReservationNotificationMask,
  encodeSetFeatures,
  encodeTemperatureThreshold,
  encodeTimestamp,
  encodeVolatileWriteCache,
  FeatureId,
  featureName,
  FeatureSelect,
  ThresholdType,
} from '../src/spec/features.js'
import {
  bytesOfNumd,
  CHANGED_NAMESPACE_LIST_SIZE,
  COMMAND_EFFECTS_LOG_SIZE,
  decodeAfi,
  decodeChangedNamespaceList,
  decodeCommandEffects,
  decodeCommandEffectsLog,
  decodeErrorLogEntry,
  decodeFirmwareSlotLog,
  decodeGetLogPage,
  decodeParameterErrorLocation,
  decodeSmartLog,
  encodeAfi,
  encodeChangedNamespaceList,
  encodeCommandEffects,
  encodeCommandEffectsLog,
  encodeErrorLogEntry,
  encodeFirmwareSlotLog,
  encodeGetLogPage,
  encodeSmartLog,
  ERROR_LOG_ENTRY_SIZE,
  FIRMWARE_SLOT_LOG_SIZE,
  LogPageId,
  numdOfBytes,
  parameterErrorLocation,
  SMART_LOG_SIZE,
  type ErrorInformationEntry,
  type GetLogPageFields,
  type SmartLog,
} from '../src/spec/log-pages.js'
import { cqeStatusField, NvmeStatus } from '../src/spec/status.js'
import { encodeSqe } from '../src/spec/sqe.js'

const u8 = fc.integer({ min: 0, max: 0xff })
const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const u128 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })
const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })

describe('Get Log Page', () => {
  it('has the log identifiers', () => {
    expect(LogPageId).toMatchObject({
      ErrorInformation: 0x01,
      SmartHealth: 0x02,
      FirmwareSlot: 0x03,
      ChangedNamespaceList: 0x04,
      CommandsSupportedAndEffects: 0x05,
      DeviceSelfTest: 0x06,
      TelemetryHostInitiated: 0x07,
      TelemetryControllerInitiated: 0x08,
      PersistentEventLog: 0x0d,
      Discovery: 0x70,
      ReservationNotification: 0x80,
      SanitizeStatus: 0x81,
    })
  })

  it('places the fields where Linux struct nvme_get_log_page_command has them', () => {
    const f: GetLogPageFields = { lid: 0x02, lsp: 0x55, rae: true, numd: 0x1_2345, lsi: 0xbeef, offset: 2 ** 32 + 0x200, csi: 2, ot: true, uuidIndex: 0x11 }
    const v = new DataView(new ArrayBuffer(64))
    encodeSqe(v, 0, { opcode: 0x02, nsid: 0xffffffff, ...encodeGetLogPage(f) })
    expect(v.getUint8(40)).toBe(0x02) // lid
    expect(v.getUint8(41)).toBe(0x55 | 0x80) // lsp, RAE is CDW10 bit 15
    expect(v.getUint16(42, true)).toBe(0x2345) // numdl
    expect(v.getUint16(44, true)).toBe(0x0001) // numdu
    expect(v.getUint16(46, true)).toBe(0xbeef) // lsi
    expect(v.getUint32(48, true)).toBe(0x200) // lpol
    expect(v.getUint32(52, true)).toBe(1) // lpou
    expect(v.getUint8(59)).toBe(2) // csi, CDW14 bits 31:24
    expect(v.getUint32(56, true) & 0x7f).toBe(0x11) // UUID index
    expect((v.getUint32(56, true) >>> 23) & 1).toBe(1) // OT
    expect(decodeGetLogPage(encodeGetLogPage(f))).toEqual(f)
  })

  it('converts lengths to 0-based dword counts', () => {
    expect(numdOfBytes(4)).toBe(0)
    expect(numdOfBytes(512)).toBe(127)
    expect(numdOfBytes(4096)).toBe(1023)
    expect(bytesOfNumd(1023)).toBe(4096)
    expect(() => numdOfBytes(6)).toThrow(RangeError)
    expect(() => numdOfBytes(0)).toThrow(RangeError)
  })

  it('round-trips', () => {
    const fields = fc.record({
      lid: u8,
      lsp: fc.integer({ min: 0, max: 0x7f }),
      rae: fc.boolean(),
      numd: u32,
      lsi: u16,
      offset: safe,
      csi: u8,
      ot: fc.boolean(),
      uuidIndex: fc.integer({ min: 0, max: 0x7f }),
    })
    fc.assert(
      fc.property(fields, (f) => {
        const c = encodeGetLogPage(f)
        for (const d of Object.values(c)) expect(d >>> 0).toBe(d)
        expect(decodeGetLogPage(c)).toEqual(f)
      }),
      { numRuns: 200 },
    )
    expect(() => encodeGetLogPage({ lsp: 0x80 })).toThrow(RangeError)
    expect(() => encodeGetLogPage({ offset: -4 })).toThrow(RangeError)
  })
})

describe('Error Information log entry', () => {
  it('is 64 bytes, with each field at its offset', () => {
    expect(ERROR_LOG_ENTRY_SIZE).toBe(64)
    const buf = new Uint8Array(192).fill(0xee)
    const e: ErrorInformationEntry = {
      errorCount: 2 ** 40 + 1,
      sqid: 1,
      cid: 0x1234,
      statusField: cqeStatusField(NvmeStatus.LbaOutOfRange, { dnr: true, phase: 1 }),
      parameterErrorLocation: parameterErrorLocation(40, 3),
      lba: 0x1_0000_0000,
      nsid: 1,
      vendorSpecific: 0xc0,
      trtype: 3,
      commandSpecific: 0xfedc_ba98_7654_3210n,
      transportSpecific: 0xabcd,
    }
    encodeErrorLogEntry(e, buf, 64)
    const dv = new DataView(buf.buffer)
    expect(dv.getBigUint64(64, true)).toBe(2n ** 40n + 1n)
    expect(dv.getUint16(72, true)).toBe(1)
    expect(dv.getUint16(74, true)).toBe(0x1234)
    expect(dv.getUint16(76, true)).toBe(0x8101) // DNR, SC 80h, phase
    expect(dv.getUint16(78, true)).toBe(0x0328) // byte 40 in 7:0, bit 3 in 10:8
    expect(dv.getBigUint64(80, true)).toBe(0x1_0000_0000n)
    expect(dv.getUint32(88, true)).toBe(1)
    expect(buf[92]).toBe(0xc0)
    expect(buf[93]).toBe(3)
    expect([buf[94], buf[95]]).toEqual([0, 0])
    expect(dv.getBigUint64(96, true)).toBe(0xfedc_ba98_7654_3210n)
    expect(dv.getUint16(104, true)).toBe(0xabcd)
    expect(buf.subarray(106, 128).every((b) => b === 0)).toBe(true)
    expect(buf[63]).toBe(0xee) // neighbours untouched
    expect(buf[128]).toBe(0xee)
    expect(decodeErrorLogEntry(buf, 64)).toEqual(e)
    expect(decodeParameterErrorLocation(0x0328)).toEqual({ byte: 40, bit: 3 })
  })

  it('round-trips', () => {
    const entry = fc.record({
      errorCount: safe,
      sqid: u16,
      cid: u16,
      statusField: u16,
      parameterErrorLocation: u16,
      lba: safe,
      nsid: u32,
      vendorSpecific: u8,
      trtype: u8,
      commandSpecific: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      transportSpecific: u16,
    })
    const buf = new Uint8Array(64)
    fc.assert(
      fc.property(entry, (e) => {
        encodeErrorLogEntry(e, buf)
        expect(decodeErrorLogEntry(buf)).toEqual(e)
      }),
      { numRuns: 100 },
    )
    expect(() => encodeErrorLogEntry({}, new Uint8Array(100), 40)).toThrow(RangeError)
    expect(() => parameterErrorLocation(0, 8)).toThrow(RangeError)
  })
})

describe('SMART / Health log', () => {
  it('is 512 bytes, with each field at its offset', () => {
    expect(SMART_LOG_SIZE).toBe(512)
    const buf = new Uint8Array(512)
    encodeSmartLog(
      {
        criticalWarning: 0x1f,
        compositeTemperature: 323,
        availableSpare: 100,
        availableSpareThreshold: 10,
        percentageUsed: 3,
        enduranceGroupCriticalWarningSummary: 0x0d,
        dataUnitsRead: (1n << 64n) + 5n,
        dataUnitsWritten: 0x30n,
        hostReadCommands: 0x40n,
        hostWriteCommands: 0x50n,
        controllerBusyTime: 0x60n,
        powerCycles: 0x70n,
        powerOnHours: 0x80n,
        unsafeShutdowns: 0x90n,
        mediaErrors: 0xa0n,
        errorLogEntries: 0xb0n,
        warningTemperatureTime: 0x11223344,
        criticalTemperatureTime: 0x55667788,
        temperatureSensors: [300, 301, 302],
        thermalTransitionCount1: 1,
        thermalTransitionCount2: 2,
        thermalTotalTime1: 3,
        thermalTotalTime2: 4,
      },
      buf,
    )
    const dv = new DataView(buf.buffer)
    expect(buf[0]).toBe(0x1f)
    expect(buf[1]! | (buf[2]! << 8)).toBe(323) // unaligned
    expect([buf[3], buf[4], buf[5], buf[6]]).toEqual([100, 10, 3, 0x0d])
    expect(buf.subarray(7, 32).every((b) => b === 0)).toBe(true)
    expect(dv.getBigUint64(32, true)).toBe(5n)
    expect(dv.getBigUint64(40, true)).toBe(1n)
    for (let i = 1; i < 10; i++) expect(dv.getBigUint64(32 + 16 * i, true), `counter ${i}`).toBe(BigInt(0x20 + 0x10 * i))
    expect(dv.getUint32(192, true)).toBe(0x11223344)
    expect(dv.getUint32(196, true)).toBe(0x55667788)
    expect([0, 1, 2, 3].map((i) => dv.getUint16(200 + 2 * i, true))).toEqual([300, 301, 302, 0])
    expect([216, 220, 224, 228].map((o) => dv.getUint32(o, true))).toEqual([1, 2, 3, 4])
    expect(buf.subarray(232).every((b) => b === 0)).toBe(true)
    expect(decodeSmartLog(buf).dataUnitsRead).toBe((1n << 64n) + 5n)
  })

  it('round-trips', () => {
    const smart: fc.Arbitrary<SmartLog> = fc.record({
      criticalWarning: u8,
      compositeTemperature: u16,
      availableSpare: u8,
      availableSpareThreshold: u8,
      percentageUsed: u8,
      enduranceGroupCriticalWarningSummary: u8,
      dataUnitsRead: u128,
      dataUnitsWritten: u128,
      hostReadCommands: u128,
      hostWriteCommands: u128,
      controllerBusyTime: u128,
      powerCycles: u128,
      powerOnHours: u128,
      unsafeShutdowns: u128,
      mediaErrors: u128,
      errorLogEntries: u128,
      warningTemperatureTime: u32,
      criticalTemperatureTime: u32,
      temperatureSensors: fc.array(u16, { minLength: 8, maxLength: 8 }),
      thermalTransitionCount1: u32,
      thermalTransitionCount2: u32,
      thermalTotalTime1: u32,
      thermalTotalTime2: u32,
    })
    const buf = new Uint8Array(512)
    fc.assert(
      fc.property(smart, (s) => {
        encodeSmartLog(s, buf)
        expect(decodeSmartLog(buf)).toEqual(s)
      }),
      { numRuns: 100 },
    )
    expect(() => encodeSmartLog({ temperatureSensors: new Array<number>(9).fill(0) }, buf)).toThrow(RangeError)
    expect(() => encodeSmartLog({ powerOnHours: -1n }, buf)).toThrow(RangeError)
  })
})

describe('Firmware Slot log', () => {
  it('lays out AFI and the slot revisions', () => {
    expect(FIRMWARE_SLOT_LOG_SIZE).toBe(512)
    const buf = new Uint8Array(512).fill(0xff)
    encodeFirmwareSlotLog({ afi: encodeAfi(1, 2), frs: ['1.0', '', '20240101'] }, buf)
    expect(buf[0]).toBe(0x21)
    expect(String.fromCharCode(...buf.subarray(8, 16))).toBe('1.0     ')
    expect(buf.subarray(16, 24).every((b) => b === 0)).toBe(true)
    expect(String.fromCharCode(...buf.subarray(24, 32))).toBe('20240101')
    expect(buf.subarray(32).every((b) => b === 0)).toBe(true)
    expect(decodeFirmwareSlotLog(buf)).toEqual({ afi: 0x21, frs: ['1.0', '', '20240101', '', '', '', ''] })
    expect(decodeAfi(0x21)).toEqual({ activeSlot: 1, nextResetSlot: 2 })
    expect(() => encodeFirmwareSlotLog({ frs: ['123456789'] }, buf)).toThrow(RangeError)
    expect(() => encodeFirmwareSlotLog({ frs: new Array<string>(8).fill('') }, buf)).toThrow(RangeError)
  })
})

describe('Changed Namespace List', () => {
  it('lists up to 1024 NSIDs, sorted', () => {
    expect(CHANGED_NAMESPACE_LIST_SIZE).toBe(4096)
    const buf = new Uint8Array(4096).fill(0xee)
    encodeChangedNamespaceList([5, 2, 5, 9], buf)
    const dv = new DataView(buf.buffer)
    expect([0, 1, 2, 3].map((i) => dv.getUint32(4 * i, true))).toEqual([2, 5, 9, 0])
    expect(buf.subarray(12).every((b) => b === 0)).toBe(true)
    expect(decodeChangedNamespaceList(buf)).toEqual({ overflow: false, nsids: [2, 5, 9] })
  })

  it('marks more than 1024 with FFFFFFFFh in the first entry', () => {
    const buf = new Uint8Array(4096)
    encodeChangedNamespaceList(
      Array.from({ length: 1025 }, (_, i) => i + 1),
      buf,
    )
    expect(new DataView(buf.buffer).getUint32(0, true)).toBe(0xffffffff)
    expect(buf.subarray(4).every((b) => b === 0)).toBe(true)
    expect(decodeChangedNamespaceList(buf)).toEqual({ overflow: true, nsids: [] })
    expect(() => encodeChangedNamespaceList([0], buf)).toThrow(RangeError)
    expect(() => encodeChangedNamespaceList([0xffffffff], buf)).toThrow(RangeError)
  })
})

describe('Commands Supported and Effects log', () => {
  it('puts admin entries at 0 and I/O entries at 1024, with Linux NVME_CMD_EFFECTS_* bits', () => {
    expect(COMMAND_EFFECTS_LOG_SIZE).toBe(4096)
    const effects = encodeCommandEffects({ csupp: true, lbcc: true, ncc: true, nic: true, ccc: true, cse: 2, uss: true, csp: 0x801 })
    // Linux: CSUPP 1<<0, LBCC 1<<1, NCC 1<<2, NIC 1<<3, CCC 1<<4, CSE GENMASK(18,16), UUID_SEL 1<<19, SCOPE GENMASK(31,20)
    expect(effects).toBe(0x801 * 2 ** 20 + (1 << 19) + (2 << 16) + 0x1f)
    expect(decodeCommandEffects(effects)).toEqual({ csupp: true, lbcc: true, ncc: true, nic: true, ccc: true, cse: 2, uss: true, csp: 0x801 })
    const admin: number[] = []
    admin[0x06] = encodeCommandEffects({ csupp: true })
    const io: number[] = []
    io[0x01] = encodeCommandEffects({ csupp: true, lbcc: true })
    const buf = new Uint8Array(4096)
    encodeCommandEffectsLog({ admin, io }, buf)
    const dv = new DataView(buf.buffer)
    expect(dv.getUint32(0x06 * 4, true)).toBe(1)
    expect(dv.getUint32(1024 + 0x01 * 4, true)).toBe(3)
    const log = decodeCommandEffectsLog(buf)
    expect(log.admin).toHaveLength(256)
    expect(log.admin[6]).toBe(1)
    expect(log.io[1]).toBe(3)
    expect(log.io.filter((x) => x !== 0)).toHaveLength(1)
    expect(() => encodeCommandEffects({ cse: 8 })).toThrow(RangeError)
    expect(() => encodeCommandEffectsLog({ io: new Array<number>(257).fill(0) }, buf)).toThrow(RangeError)
  })
})

describe('features', () => {
  it('has the feature identifiers', () => {
    expect(FeatureId).toMatchObject({
      Arbitration: 0x01,
      PowerManagement: 0x02,
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
      HostBehaviorSupport: 0x16,
      SoftwareProgressMarker: 0x80,
      HostIdentifier: 0x81,
      ReservationNotificationMask: 0x82,
      ReservationPersistence: 0x83,
    })
    expect(featureName(0x07)).toBe('NumberOfQueues')
    expect(featureName(0xc0)).toBe('feature 0xc0')
  })

  it('encodes the Get / Set Features dwords', () => {
    expect(encodeGetFeatures({ fid: FeatureId.NumberOfQueues, sel: FeatureSelect.SupportedCapabilities })).toEqual({ cdw10: 0x307, cdw14: 0 })
    expect(encodeSetFeatures({ fid: FeatureId.VolatileWriteCache, sv: true })).toEqual({ cdw10: 0x80000006, cdw14: 0 })
    expect(decodeGetFeatures({ cdw10: 0x20b, cdw14: 5 })).toEqual({ fid: 0x0b, sel: 2, uuidIndex: 5 })
    expect(decodeSetFeatures({ cdw10: 0x80000081, cdw14: 0 })).toEqual({ fid: 0x81, sv: true, uuidIndex: 0 })
    expect(() => encodeGetFeatures({ sel: 8 })).toThrow(RangeError)
  })

  it('encodes the values to the bits Linux and QEMU use', () => {
    expect(encodeArbitration({ ab: 3, lpw: 0x10, mpw: 0x20, hpw: 0x30 })).toBe(0x30201003)
    expect(encodePowerManagement({ ps: 4, wh: 2 })).toBe(0x44)
    // Linux nvme_set_queue_count(): q_count = (count - 1) | ((count - 1) << 16)
    expect(encodeNumberOfQueues({ nsq: 63, ncq: 31 })).toBe(0x001f003f)
    expect(decodeNumberOfQueues(0xffff0000 + 0x7fff)).toEqual({ nsq: 0x7fff, ncq: 0xffff })
    expect(encodeInterruptCoalescing({ thr: 7, time: 10 })).toBe(0x0a07)
    expect(encodeInterruptVectorConfiguration({ iv: 5, cd: true })).toBe(0x10005)
    // Linux NVME_AEN_CFG_NS_ATTR 1<<8, FW_ACT 1<<9, ANA_CHANGE 1<<11, DISC_CHANGE 1<<31
    expect(encodeAsyncEventConfiguration({ smartCriticalWarnings: 0xff, nan: true, fan: true, anacn: true, dlpcn: true })).toBe(0x80000bff)
    expect(AsyncEventConfigBit).toMatchObject({ nan: 8, fan: 9, tln: 10, anacn: 11, plealcn: 12, lsin: 13, egealcn: 14, nnsshdn: 15, zdcn: 27, dlpcn: 31 })
    // Linux NVME_TEMP_THRESH_TYPE_UNDER 0x100000, SELECT_SHIFT 16
    expect(encodeTemperatureThreshold({ tmpth: 343, tmpsel: 1, thsel: ThresholdType.UnderTemperature })).toBe(0x110157)
    expect(encodeErrorRecovery({ tler: 100, dulbe: true })).toBe(0x10064)
    expect(encodeVolatileWriteCache({ wce: true })).toBe(1)
    expect(encodeKeepAliveTimer(120_000)).toBe(120_000)
    expect(encodeReservationNotificationMask({ regpre: true, respre: true })).toBe(0b1010)
    expect(encodeIoCommandSetProfile(511)).toBe(0x1ff)
    expect(() => encodePowerManagement({ ps: 32 })).toThrow(RangeError)
    expect(() => encodeNumberOfQueues({ nsq: 0xffff })).toThrow(RangeError)
    expect(() => encodeIoCommandSetProfile(512)).toThrow(RangeError)
  })

  it('round-trips the values', () => {
    const b = fc.boolean()
    const cases: Array<[fc.Arbitrary<Record<string, unknown>>, (x: never) => number, (v: number) => unknown]> = [
      [fc.record({ ab: fc.integer({ min: 0, max: 7 }), lpw: u8, mpw: u8, hpw: u8 }), encodeArbitration, decodeArbitration],
      [fc.record({ ps: fc.integer({ min: 0, max: 31 }), wh: fc.integer({ min: 0, max: 7 }) }), encodePowerManagement, decodePowerManagement],
      [
        fc.record({ tmpth: u16, tmpsel: fc.integer({ min: 0, max: 15 }), thsel: fc.integer({ min: 0, max: 3 }) }),
        encodeTemperatureThreshold,
        decodeTemperatureThreshold,
      ],
      [fc.record({ tler: u16, dulbe: b }), encodeErrorRecovery, decodeErrorRecovery],
      [fc.record({ wce: b }), encodeVolatileWriteCache, decodeVolatileWriteCache],
      [fc.record({ nsq: fc.integer({ min: 0, max: 0xfffe }), ncq: fc.integer({ min: 0, max: 0xfffe }) }), encodeNumberOfQueues, decodeNumberOfQueues],
      [fc.record({ thr: u8, time: u8 }), encodeInterruptCoalescing, decodeInterruptCoalescing],
      [fc.record({ iv: u16, cd: b }), encodeInterruptVectorConfiguration, decodeInterruptVectorConfiguration],
      [
        fc.record({ smartCriticalWarnings: u8, nan: b, fan: b, tln: b, anacn: b, plealcn: b, lsin: b, egealcn: b, nnsshdn: b, zdcn: b, dlpcn: b }),
        encodeAsyncEventConfiguration,
        decodeAsyncEventConfiguration,
      ],
    ]
    for (const [arb, enc, dec] of cases) {
      fc.assert(
        fc.property(arb, (f) => {
          const v = enc(f as never)
          expect(v >>> 0).toBe(v)
          expect(dec(v)).toEqual(f)
        }),
        { numRuns: 60 },
      )
    }
  })

  it('encodes the Timestamp and Host Behavior Support buffers', () => {
    const buf = new Uint8Array(16)
    encodeTimestamp({ timestamp: 0x1234_5678_9abc, synch: true, origin: 1 }, buf, 8)
    expect(Array.from(buf.subarray(8, 16))).toEqual([0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0b011, 0])
    expect(decodeTimestamp(buf, 8)).toEqual({ timestamp: 0x1234_5678_9abc, synch: true, origin: 1 })
    expect(() => encodeTimestamp({ timestamp: 2 ** 48 }, buf)).toThrow(RangeError)
    const hbs = new Uint8Array(512).fill(0xff)
    encodeHostBehaviorSupport({ acre: true, lbafee: true }, hbs)
    expect(Array.from(hbs.subarray(0, 4))).toEqual([1, 0, 1, 0])
    expect(decodeHostBehaviorSupport(hbs)).toEqual({ acre: true, etdas: false, lbafee: true })
  })
})

describe('Asynchronous Event Request completion', () => {
  it('packs type, information and log page as nvmet does', () => {
    // Linux nvmet_add_async_event(): type | (info << 8) | (log_page << 16)
    const dw0 = encodeAsyncEvent({ type: AsyncEventType.Notice, info: AsyncEventNotice.NamespaceAttributeChanged, lid: LogPageId.ChangedNamespaceList })
    expect(dw0).toBe(0x040002)
    expect(decodeAsyncEvent(0x0c0302)).toEqual({ type: 2, info: AsyncEventNotice.AsymmetricNamespaceAccessChange, lid: LogPageId.AsymmetricNamespaceAccess })
    expect(AsyncEventNotice.DiscoveryLogPageChange).toBe(0xf0)
    expect(AsyncEventType).toEqual({ Error: 0, SmartHealth: 1, Notice: 2, Immediate: 3, OneShot: 4, IoCommandSetSpecific: 6, VendorSpecific: 7 })
    expect(() => encodeAsyncEvent({ type: 8 })).toThrow(RangeError)
    fc.assert(
      fc.property(fc.record({ type: fc.integer({ min: 0, max: 7 }), info: u8, lid: u8 }), (e) => {
        expect(decodeAsyncEvent(encodeAsyncEvent(e))).toEqual(e)
      }),
      { numRuns: 50 },
    )
  })
})
