// The discovery subsystem (NVMe Base 2.0 §3.1.3.3 discovery controllers, §5.16.1.23 the
// Discovery Log Page, LID 70h, its header GENCTR/NUMREC/RECFMT and entries TRTYPE, ADRFAM,
// SUBTYPE, TREQ, PORTID, CNTLID, ASQSZ, TRSVCID, SUBNQN, TRADDR; §6.3 Connect; NVMe/TCP 1.0
// §4 the TCP transport's TRTYPE 3 and TSAS): NvmfHost.discover() sees one entry per
// listener of every subsystem the host may reach and the current discovery subsystem's own
// (SUBTYPE 3); a host off an allowlist does not see that subsystem; GENCTR moves on every
// change of subsystems, listeners and hosts; the discovery controller identifies as
// CNTRLTYPE 2 with the well-known NQN and takes no I/O queues.
import { IoVecList } from '@ipukit/memory'
import { AdminOpcode, decodeIdentifyController } from '@ipukit/nvme'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeDiscoveryLog, DISCOVERY_NQN, type DiscoveryLogEntry, NvmfHost, SubsystemType, TransportRequirement, TransportType, AddressFamily } from '../src/index.js'
import { HOSTNQN, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'
import { RawHost } from './support/raw-host.js'

const SUB2 = 'nqn.2026-12.io.ipukit:second'
const OTHER = 'nqn.2026-12.io.ipukit:host2'

const fixtures: TargetFixture[] = []
const raws: RawHost[] = []
afterEach(async () => {
  for (const r of raws.splice(0)) await r.close()
  for (const f of fixtures.splice(0)) await f.close()
})

async function fixture(): Promise<TargetFixture> {
  // SUBNQN: HOSTNQN only
  const f = await targetFixture({ allowAnyHost: false, hosts: [HOSTNQN] })
  fixtures.push(f)
  return f
}

function discover(f: TargetFixture, hostnqn: string, trsvcid: string | number = f.port): Promise<DiscoveryLogEntry[]> {
  return NvmfHost.discover({ physical: f.pm, traddr: '127.0.0.1', trsvcid, hostnqn })
}

/** The whole log page (header too) through a discovery controller of our own. */
async function logPage(f: TargetFixture, hostnqn: string): Promise<ReturnType<typeof decodeDiscoveryLog>> {
  const h = new NvmfHost({ physical: f.pm, traddr: '127.0.0.1', trsvcid: f.port, subnqn: DISCOVERY_NQN, hostnqn, ioQueues: 0, kato: 0 })
  await h.connect()
  const buf = f.pm.ipuAllocator.alloc(16384)
  try {
    const numd = 16384 / 4 - 1
    const c = await h.admin((v) => {
      v.setUint8(0, AdminOpcode.GetLogPage)
      v.setUint32(40, 0x70 | (numd << 16), true)
    }, new IoVecList(1).push(buf, 16384), true)
    expect(c.status).toBe(0)
    return decodeDiscoveryLog(f.pm.bytes.slice(buf, buf + 16384))
  } finally {
    f.pm.ipuAllocator.free(buf)
    await h.close()
  }
}

const key = (e: DiscoveryLogEntry) => `${e.subnqn} ${e.traddr}:${e.trsvcid}`

describe('the discovery log page', () => {
  it('has one entry per listener of each subsystem the host may reach, and the discovery subsystem (SUBTYPE 3)', async () => {
    const f = await fixture()
    const l1 = f.target.listeners().find((l) => l.address === f.address)!
    const l2 = await f.tcp.listen('127.0.0.1', 0, { sqFlowControlDisable: false })
    const s2 = f.target.createSubsystem({ nqn: SUB2, allowAnyHost: true })
    s2.addNamespace({ bdev: 'ram0' })
    s2.addListener(f.address)
    s2.addListener(l2.address)
    const entries = await discover(f, HOSTNQN)
    expect(entries.map(key).sort()).toEqual(
      [`${DISCOVERY_NQN} 127.0.0.1:${f.port}`, `${SUBNQN} 127.0.0.1:${f.port}`, `${SUB2} 127.0.0.1:${f.port}`, `${SUB2} 127.0.0.1:${l2.trsvcid}`].sort(),
    )
    for (const e of entries) {
      expect(e.trtype).toBe(TransportType.TCP)
      expect(e.trtype).toBe(3)
      expect(e.adrfam).toBe(AddressFamily.IPv4)
      expect(e.adrfam).toBe(1)
      expect(e.traddr).toBe('127.0.0.1')
      expect(e.cntlid).toBe(0xffff)
      expect(e.sectype).toBe(0)
      expect(e.asqsz).toBeGreaterThanOrEqual(32)
      expect(e.subtype).toBe(e.subnqn === DISCOVERY_NQN ? SubsystemType.CurrentDiscovery : SubsystemType.Nvme)
      const l = e.trsvcid === l2.trsvcid ? l2 : l1
      expect(e.trsvcid).toBe(l.trsvcid)
      expect(e.portid).toBe(l.portid)
      // secure channel not required; SQ flow control disable as the listener allows it
      expect(e.treq).toBe(TransportRequirement.SecureChannelNotRequired | (l === l1 ? TransportRequirement.SqFlowControlDisableSupported : 0))
    }
    expect(entries.find((e) => e.subnqn === DISCOVERY_NQN)!.subtype).toBe(3)
    expect(l1.portid).not.toBe(l2.portid)
    // the entries lead somewhere: a host connects by one of them
    const e = entries.find((x) => x.subnqn === SUB2 && x.trsvcid === l2.trsvcid)!
    const h = await f.host({ subnqn: e.subnqn, trsvcid: e.trsvcid })
    expect(h.state).toBe('live')
  })

  it('does not show a subsystem to a host its allowlist leaves out', async () => {
    const f = await fixture()
    const s2 = f.target.createSubsystem({ nqn: SUB2, allowAnyHost: true })
    s2.addListener(f.address)
    expect((await discover(f, HOSTNQN)).map((e) => e.subnqn).sort()).toEqual([DISCOVERY_NQN, SUB2, SUBNQN].sort())
    expect((await discover(f, OTHER)).map((e) => e.subnqn).sort()).toEqual([DISCOVERY_NQN, SUB2].sort())
    f.subsystem.addHost(OTHER)
    expect((await discover(f, OTHER)).map((e) => e.subnqn)).toContain(SUBNQN)
    f.subsystem.removeHost(OTHER)
    expect((await discover(f, OTHER)).map((e) => e.subnqn)).not.toContain(SUBNQN)
    // a subsystem without listeners has no entries at all
    f.target.createSubsystem({ nqn: 'nqn.2026-12.io.ipukit:unlistened', allowAnyHost: true })
    expect((await discover(f, OTHER)).map((e) => e.subnqn)).not.toContain('nqn.2026-12.io.ipukit:unlistened')
  })

  it('moves GENCTR whenever a subsystem, a listener or a host changes, and only then', async () => {
    const f = await fixture()
    const g = async () => {
      const p = await logPage(f, HOSTNQN)
      expect(p.recfmt).toBe(0)
      expect(p.numrec).toBe(p.entries.length)
      expect(p.genctr).toBe(f.target.generation)
      return p.genctr
    }
    const steps: [string, () => unknown][] = [
      ['createSubsystem', () => f.target.createSubsystem({ nqn: SUB2, allowAnyHost: false })],
      ['addListener', () => f.target.subsystem(SUB2).addListener(f.address)],
      ['addHost', () => f.target.subsystem(SUB2).addHost(HOSTNQN)],
      ['removeHost', () => f.target.subsystem(SUB2).removeHost(HOSTNQN)],
      ['listen', () => f.tcp.listen('127.0.0.1', 0)],
      ['removeListener', () => f.target.subsystem(SUB2).removeListener(f.address)],
      ['removeSubsystem', () => f.target.removeSubsystem(SUB2)],
    ]
    let prev = await g()
    // reading it (and connecting hosts) changes nothing
    await f.host()
    expect(await g()).toBe(prev)
    for (const [what, step] of steps) {
      await step()
      const now = await g()
      expect(now, what).not.toBe(prev)
      prev = now
    }
    const l = f.target.listeners().find((x) => x.address !== f.address)!
    await f.tcp.stopListen(l.address)
    expect(await g()).not.toBe(prev)
  })

  it('reads in parts (LPO) and the header alone gives NUMREC', async () => {
    const f = await fixture()
    const whole = await logPage(f, HOSTNQN)
    expect(whole.numrec).toBe(2)
    const h = new NvmfHost({ physical: f.pm, traddr: '127.0.0.1', trsvcid: f.port, subnqn: DISCOVERY_NQN, hostnqn: HOSTNQN, ioQueues: 0, kato: 0 })
    await h.connect()
    const buf = f.pm.ipuAllocator.alloc(1024)
    try {
      // the second entry alone: LPO 2048, 1024 bytes
      const c = await h.admin((v) => {
        v.setUint8(0, AdminOpcode.GetLogPage)
        v.setUint32(40, 0x70 | (255 << 16), true)
        v.setUint32(48, 2048, true)
      }, new IoVecList(1).push(buf, 1024), true)
      expect(c.status).toBe(0)
      const subnqn = Buffer.from(f.pm.bytes.subarray(buf + 256, buf + 512)).toString('utf8').replace(/\0+$/, '')
      expect(subnqn).toBe(whole.entries[1]!.subnqn)
    } finally {
      f.pm.ipuAllocator.free(buf)
      await h.close()
    }
  })
})

describe('the discovery controller', () => {
  it('identifies as a discovery controller (CNTRLTYPE 2) of nqn.2014-08.org.nvmexpress.discovery, with no namespaces', async () => {
    const f = await fixture()
    const h = new NvmfHost({ physical: f.pm, traddr: '127.0.0.1', trsvcid: f.port, subnqn: DISCOVERY_NQN, hostnqn: OTHER, ioQueues: 0, kato: 0 })
    try {
      await h.connect()
      const id = decodeIdentifyController(h.identify)
      expect(id.cntrltype).toBe(2)
      expect(id.subnqn).toBe(DISCOVERY_NQN)
      expect(id.cntlid).toBe(h.cntlid)
      expect(f.target.discovery.controllers.get(h.cntlid)?.hostnqn).toBe(OTHER)
      // a discovery controller exposes no namespaces (Identify active namespace list is empty)
      const buf = f.pm.ipuAllocator.alloc(4096)
      const c = await h.admin((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 2, true)), new IoVecList(1).push(buf, 4096), true)
      expect(c.status === 0 ? new DataView(f.pm.memory.buffer).getUint32(buf, true) : 0).toBe(0)
      f.pm.ipuAllocator.free(buf)
    } finally {
      await h.close()
    }
  })

  it('refuses I/O queues: Connect Invalid Parameters, IPO 42 (QID)', async () => {
    const f = await fixture()
    const a = await RawHost.open(f.port)
    raws.push(a)
    const cntlid = await a.admin(DISCOVERY_NQN, HOSTNQN)
    const q = await RawHost.open(f.port)
    raws.push(q)
    const c = await q.connect({ subnqn: DISCOVERY_NQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(42)
    expect(f.target.discovery.controllers.get(cntlid)!.io.size).toBe(0)
    // and an NvmfHost asking for I/O queues of it gets just the admin queue
    const h = await f.host({ subnqn: DISCOVERY_NQN, ioQueues: 4, kato: 0 })
    expect(h.ioQueues).toBe(0)
  })
})
