// Access control and the Connect command's checks (NVMe Base 2.0 §6.3 Connect, Figure
// "Connect Response" and the Fabrics status values SCT 1 80h-85h; §3.3.2 the dynamic
// controller model; §4.5 NQN syntax; NVMe/TCP 1.0 §3.3 a queue is one connection): the
// host allowlist (allow_any_host, addHost/removeHost at runtime, removal disconnects), a
// subsystem reached only through its own listeners, an unknown SUBNQN or malformed HOSTNQN
// (Connect Invalid Parameters with IATTR/IPO), an I/O queue attached only to the Connect
// data's own host's controller (CNTLID, HOSTNQN, HOSTID), before CC.EN, a QID beyond Number
// of Queues or in use, SQSIZE, RECFMT, and commands before Connect.
import { IoVecList } from '@ipukit/memory'
import { AdminOpcode, NvmOpcode, Reg } from '@ipukit/nvme'
import { afterEach, describe, expect, it } from 'vitest'
import { CONNECT_DATA_SIZE, encodeConnect, encodeConnectData, type NvmfHost } from '../src/index.js'
import { HOSTNQN, random, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'
import { RawHost, until } from './support/raw-host.js'

const OTHER = 'nqn.2026-12.io.ipukit:host2'
const THIRD = 'nqn.2026-12.io.ipukit:host3'

const fixtures: TargetFixture[] = []
const raws: RawHost[] = []
afterEach(async () => {
  for (const r of raws.splice(0)) await r.close()
  for (const f of fixtures.splice(0)) await f.close()
})

async function fixture(o: Parameters<typeof targetFixture>[0] = {}): Promise<TargetFixture> {
  const f = await targetFixture(o)
  fixtures.push(f)
  return f
}

async function raw(port: number): Promise<RawHost> {
  const r = await RawHost.open(port)
  raws.push(r)
  return r
}

/** Connect Invalid Parameters' DW0: IPO in bits 15:0, IATTR (1: in the Connect data) in bit 16. */
const ipo = (offset: number, inData: boolean) => offset | (inData ? 1 << 16 : 0)

async function rw(h: NvmfHost, write: boolean, lba: number, addr: number, len: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(0, write, 1, lba, len / 512, new IoVecList(1).push(addr, len), (_: null, c) => resolve(c.status), null)
    if (rc !== 0) reject(new Error(`rc ${rc}`))
  })
}

/** A write and a read back through `h`: true when the data came back. */
async function roundTrip(f: TargetFixture, h: NvmfHost, lba: number): Promise<boolean> {
  const buf = f.pm.ipuAllocator.alloc(4096)
  try {
    const data = random(4096, lba + 7)
    f.pm.bytes.set(data, buf)
    if ((await rw(h, true, lba, buf, 4096)) !== 0) return false
    f.pm.bytes.fill(0, buf, buf + 4096)
    if ((await rw(h, false, lba, buf, 4096)) !== 0) return false
    return Buffer.from(f.pm.bytes.subarray(buf, buf + 4096)).equals(Buffer.from(data))
  } finally {
    f.pm.ipuAllocator.free(buf)
  }
}

describe('the host allowlist', () => {
  it('refuses a host not on the allowlist with Connect Invalid Host (184h), and it gets nothing', async () => {
    const f = await fixture({ allowAnyHost: false, hosts: [HOSTNQN] })
    await expect(f.host({ hostnqn: OTHER })).rejects.toThrow(/status 184h/)
    const r = await raw(f.port)
    const c = await r.connect({ subnqn: SUBNQN, hostnqn: OTHER })
    expect(c.status).toBe(0x184)
    expect(c.cdw0).toBe(0)
    expect(f.subsystem.controllers.size).toBe(0)
    // no controller behind the queue: every other command is out of sequence
    expect((await r.propertyGet(Reg.CAP, 8)).status).toBe(0x00c)
    expect((await r.command((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 1, true)), { read: 4096 })).status).toBe(0x00c)
    expect((await r.command((v) => v.setUint8(0, AdminOpcode.KeepAlive))).status).toBe(0x00c)
    // the host on the list gets in
    const h = await f.host()
    expect(h.state).toBe('live')
    expect([...f.subsystem.controllers.values()].map((c) => c.hostnqn)).toEqual([HOSTNQN])
  })

  it('lets any host in with allowAnyHost, and stops when it is turned off', async () => {
    const f = await fixture({ allowAnyHost: true, hosts: [] })
    const a = await f.host({ hostnqn: OTHER })
    const b = await f.host({ hostnqn: THIRD })
    const c = await f.host({}) // the default hostnqn (uuid form)
    expect([a.state, b.state, c.state]).toEqual(['live', 'live', 'live'])
    expect(new Set([...f.subsystem.controllers.values()].map((x) => x.hostnqn))).toEqual(new Set([OTHER, THIRD, HOSTNQN]))
    expect(await roundTrip(f, b, 64)).toBe(true)
    f.subsystem.allowAnyHost = false
    const r = await raw(f.port)
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: OTHER })).status).toBe(0x184)
  })

  it('takes hosts added at runtime, and disconnects the controllers of a host removed', async () => {
    const f = await fixture({ allowAnyHost: false, hosts: [HOSTNQN] })
    const r = await raw(f.port)
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: OTHER })).status).toBe(0x184)
    f.subsystem.addHost(OTHER)
    // the same queue may try again once the host is allowed
    const ok = await r.connect({ subnqn: SUBNQN, hostnqn: OTHER })
    expect(ok.status).toBe(0)
    await r.enable()
    const a = await f.host()
    const b = await f.host({ hostnqn: OTHER, ioQueues: 2, reconnectDelayMs: 20, ctrlLossTimeoutMs: 400 })
    expect(await roundTrip(f, b, 128)).toBe(true)
    expect([...f.subsystem.controllers.values()].filter((c) => c.hostnqn === OTHER)).toHaveLength(2)
    f.subsystem.removeHost(OTHER)
    // every controller of OTHER goes, with its queues' connections; HOSTNQN's stays
    expect([...f.subsystem.controllers.values()].map((c) => c.hostnqn)).toEqual([HOSTNQN])
    await r.closed
    await until(() => b.state !== 'live', 2000, 'the removed host notices')
    // it cannot come back: its reconnects are refused until the loss timeout fails it
    await until(() => b.state === 'failed', 3000, 'the removed host fails')
    expect(b.lastError).toMatch(/184h/)
    expect(a.state).toBe('live')
    expect(await roundTrip(f, a, 256)).toBe(true)
    expect(() => f.subsystem.removeHost(OTHER)).toThrow(expect.objectContaining({ code: 'NVMF_NOT_FOUND' }))
    expect(() => f.subsystem.addHost('not an nqn')).toThrow(expect.objectContaining({ code: 'NVMF_BAD_ARGUMENT' }))
  })

  it('does not reach a subsystem through a listener it was not added to (Invalid Host)', async () => {
    const f = await fixture()
    const l2 = await f.tcp.listen('127.0.0.1', 0)
    const r = await raw(Number(l2.trsvcid))
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).status).toBe(0x184)
    await expect(f.host({ trsvcid: l2.trsvcid })).rejects.toThrow(/status 184h/)
    expect(f.subsystem.controllers.size).toBe(0)
    f.subsystem.addListener(l2.address)
    const h2 = await f.host({ trsvcid: l2.trsvcid })
    const h1 = await f.host()
    expect(await roundTrip(f, h2, 8)).toBe(true)
    // removing the listener from the subsystem disconnects the queues that came through it
    f.subsystem.removeListener(l2.address)
    await until(() => h2.state !== 'live', 2000, 'the host on the removed listener notices')
    expect([...f.subsystem.controllers.values()].map((c) => c.admin?.listenAddress)).toEqual([f.address])
    expect(h1.state).toBe('live')
    expect(await roundTrip(f, h1, 16)).toBe(true)
  })
})

describe('Connect Invalid Parameters (182h): IATTR and IPO', () => {
  it('an unknown SUBNQN: IPO 256 of the Connect data', async () => {
    const f = await fixture()
    const r = await raw(f.port)
    const c = await r.connect({ subnqn: 'nqn.2026-12.io.ipukit:nosuch', hostnqn: HOSTNQN })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(256, true))
    // a subsystem removed is unknown too; its hosts are disconnected
    const h = await f.host({ reconnectDelayMs: 20, ctrlLossTimeoutMs: 300 })
    f.target.removeSubsystem(SUBNQN)
    await until(() => h.state === 'failed', 3000, 'the host of a removed subsystem fails')
    expect(h.lastError).toMatch(/182h.*offset 256 of the Connect data/)
    const r2 = await raw(f.port)
    expect((await r2.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).cdw0).toBe(ipo(256, true))
  })

  it('a HOSTNQN that is not an NQN: IPO 512 of the Connect data', async () => {
    const f = await fixture()
    for (const bad of ['', 'host1', 'nqn.2026-13.io.ipukit:h', 'nqn.26-12.io.ipukit:h', `nqn.2026-12.io.ipukit:${'x'.repeat(230)}`]) {
      const r = await raw(f.port)
      const c = await r.connect({ subnqn: SUBNQN, hostnqn: bad })
      expect(c.status, bad).toBe(0x182)
      expect(c.cdw0, bad).toBe(ipo(512, true))
    }
    expect(f.subsystem.controllers.size).toBe(0)
    // the UUID form is an NQN
    const r = await raw(f.port)
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: 'nqn.2014-08.org.nvmexpress:uuid:0f8fad5b-d9cb-469f-a165-70867728950e' })).status).toBe(0)
  })

  it('an admin Connect with a CNTLID other than FFFFh (the dynamic model): IPO 16', async () => {
    const f = await fixture()
    const r = await raw(f.port)
    const c = await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, cntlid: 1 })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(16, true))
  })

  it("an I/O queue cannot join another host's controller: CNTLID, HOSTNQN and HOSTID must be the controller's", async () => {
    const f = await fixture({ allowAnyHost: false, hosts: [HOSTNQN, OTHER] })
    const a = await raw(f.port)
    const cntlid = await a.admin(SUBNQN, HOSTNQN)
    const b = await raw(f.port)
    const other = await b.admin(SUBNQN, OTHER)
    expect(other).not.toBe(cntlid)
    const io = async (o: { hostnqn: string; hostid: Uint8Array; cntlid: number }) => {
      const q = await raw(f.port)
      return q.connect({ subnqn: SUBNQN, qid: 1, sqsize: 31, ...o })
    }
    // host B names A's controller
    let c = await io({ hostnqn: OTHER, hostid: b.hostid, cntlid })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(512, true))
    // A's CNTLID and HOSTNQN, another HOSTID
    c = await io({ hostnqn: HOSTNQN, hostid: b.hostid, cntlid })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(0, true))
    // a CNTLID no controller has
    c = await io({ hostnqn: HOSTNQN, hostid: a.hostid, cntlid: 0x1234 })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(16, true))
    expect(f.subsystem.controllers.get(cntlid)!.io.size).toBe(0)
    expect(f.subsystem.controllers.get(other)!.io.size).toBe(0)
    // A's own identity: attached
    c = await io({ hostnqn: HOSTNQN, hostid: a.hostid, cntlid })
    expect(c.status).toBe(0)
    expect(c.cdw0 & 0xffff).toBe(cntlid)
    expect([...f.subsystem.controllers.get(cntlid)!.io.keys()]).toEqual([1])
    // a controller torn down takes no more queues
    await a.close()
    await until(() => !f.subsystem.controllers.has(cntlid), 1000, 'the controller goes with its admin queue')
    c = await io({ hostnqn: HOSTNQN, hostid: a.hostid, cntlid })
    expect(c.status).toBe(0x182)
    expect(c.cdw0).toBe(ipo(16, true))
  })

  it('an I/O queue Connect before CC.EN is a Command Sequence Error (00Ch)', async () => {
    const f = await fixture()
    const a = await raw(f.port)
    const c0 = await a.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })
    expect(c0.status).toBe(0)
    const cntlid = c0.cdw0 & 0xffff
    const q = await raw(f.port)
    const c = await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })
    expect(c.status).toBe(0x00c)
    await a.enable()
    const q2 = await raw(f.port)
    expect((await q2.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })).status).toBe(0)
  })

  it('a QID beyond the Number of Queues granted, or already connected: IPO 42 of the command', async () => {
    const f = await fixture()
    const a = await raw(f.port)
    const cntlid = await a.admin(SUBNQN, HOSTNQN)
    // Number of Queues: 2 submission and 2 completion queues (0's based)
    const nq = await a.command((v) => (v.setUint8(0, AdminOpcode.SetFeatures), v.setUint32(40, 0x07, true), v.setUint32(44, (1 << 16) | 1, true)))
    expect(nq.status).toBe(0)
    expect(nq.cdw0).toBe((1 << 16) | 1)
    const io = async (qid: number) => (await raw(f.port)).connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid })
    for (const qid of [3, 4, 0xffff]) {
      const c = await io(qid)
      expect(c.status, `qid ${qid}`).toBe(0x182)
      expect(c.cdw0, `qid ${qid}`).toBe(ipo(42, false))
    }
    expect((await io(2)).status).toBe(0)
    expect((await io(1)).status).toBe(0)
    const again = await io(2)
    expect(again.status).toBe(0x182)
    expect(again.cdw0).toBe(ipo(42, false))
    expect([...f.subsystem.controllers.get(cntlid)!.io.keys()].sort()).toEqual([1, 2])
  })

  it('SQSIZE 0 or beyond the queue depth: IPO 44 of the command', async () => {
    const f = await fixture({ transport: { maxQueueDepth: 64, maxAqDepth: 32 } })
    // the admin queue: 1 to maxAqDepth entries (0's based SQSIZE)
    for (const sqsize of [0, 32]) {
      const c = await (await raw(f.port)).connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, sqsize })
      expect(c.status, `admin sqsize ${sqsize}`).toBe(0x182)
      expect(c.cdw0, `admin sqsize ${sqsize}`).toBe(ipo(44, false))
    }
    const a = await raw(f.port)
    const cntlid = await a.admin(SUBNQN, HOSTNQN, { sqsize: 31 })
    const io = async (sqsize: number) => (await raw(f.port)).connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1, sqsize })
    for (const sqsize of [0, 64, 0xffff]) {
      const c = await io(sqsize)
      expect(c.status, `io sqsize ${sqsize}`).toBe(0x182)
      expect(c.cdw0, `io sqsize ${sqsize}`).toBe(ipo(44, false))
    }
    expect((await io(63)).status).toBe(0)
  })

  it('RECFMT other than 0 is Incompatible Format (180h)', async () => {
    const f = await fixture()
    const r = await raw(f.port)
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, recfmt: 1 })).status).toBe(0x180)
    expect(f.subsystem.controllers.size).toBe(0)
    const cntlid = await r.admin(SUBNQN, HOSTNQN)
    const q = await raw(f.port)
    expect((await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: r.hostid, cntlid, qid: 1, recfmt: 0xffff })).status).toBe(0x180)
  })
})

describe('commands before Connect', () => {
  it('any command but Connect on a new queue is a Command Sequence Error (00Ch); so is a second Connect', async () => {
    const f = await fixture()
    const r = await raw(f.port)
    const buf = new Uint8Array(512)
    const sent = [
      r.command((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 1, true)), { read: 4096 }),
      r.propertyGet(Reg.CAP, 8),
      r.propertySet(Reg.CC, 4, 1),
      r.command((v) => v.setUint8(0, AdminOpcode.KeepAlive)),
      r.command((v) => (v.setUint8(0, 0x7f), v.setUint8(4, 0x08))), // Disconnect
      r.command((v) => (v.setUint8(0, NvmOpcode.Read), v.setUint32(4, 1, true)), { read: 512 }),
      r.command((v) => (v.setUint8(0, NvmOpcode.Write), v.setUint32(4, 1, true)), { inCapsule: buf }),
    ]
    for (const c of await Promise.all(sent)) {
      expect(c.status).toBe(0x00c)
      expect(c.data.length).toBe(0)
    }
    expect(f.subsystem.controllers.size).toBe(0)
    // Connect still works on that queue, and only once
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).status).toBe(0)
    expect((await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).status).toBe(0x00c)
    expect(f.subsystem.controllers.size).toBe(1)
  })

  it('a Connect whose data is not in the capsule (R2T) is taken too', async () => {
    // Connect data by H2CData: allowed (SGL Transport Data Block), as Linux's nvmet does
    const f = await fixture()
    const r = await raw(f.port)
    const data = new Uint8Array(CONNECT_DATA_SIZE)
    encodeConnectData(data, { hostid: r.hostid, cntlid: 0xffff, subnqn: SUBNQN, hostnqn: HOSTNQN })
    const c = await r.command((v) => encodeConnect(v, { recfmt: 0, qid: 0, sqsize: 31, cattr: 0, kato: 0 }), { write: data })
    expect(c.status).toBe(0)
    expect(f.subsystem.controllers.get(c.cdw0 & 0xffff)?.hostnqn).toBe(HOSTNQN)
  })
})
