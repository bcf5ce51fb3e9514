// A fabrics controller as a host sees it (NVMe Base 2.0 §3.1.3 the properties CAP, VS, CC,
// CSTS; §3.3.2.3 controller reset and shutdown over fabrics; §3.9 keep alive and KATO; §5.2
// Asynchronous Events, Namespace Attribute Changed; §5.15.2.1 Identify Controller's fabrics
// fields IOCCSZ, IORCSZ, ICDOFF, MSDBD, SGLS, MDTS, KAS; §5.27.1.5 Number of Queues; §6.4
// Disconnect; §6.5 Property Get, §6.6 Property Set; NVMe/TCP 1.0 §3.3.1 SQ flow control and
// C2HData SUCCESS, §3.3.3 the SGL descriptors of a capsule, §3.4 PDU FLAGS): properties and
// CC transitions, Identify over fabrics, keep-alive teardown, Disconnect, Number of Queues,
// SQHD and C2HData SUCCESS, many hosts and queues at once, namespace change AERs, and
// capsules with SGLs a controller must refuse.
import { IoVecList } from '@ipukit/memory'
import { AdminOpcode, decodeIdentifyController, NvmOpcode, Reg } from '@ipukit/nvme'
import { createMallocBdev } from '@ipukit/bdev'
import { afterEach, describe, expect, it } from 'vitest'
import { type HostCompletion, type NvmfHost, PduFlag, PduType } from '../src/index.js'
import { HOSTNQN, random, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'
import { RawHost, until } from './support/raw-host.js'

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

async function raw(f: TargetFixture): Promise<RawHost> {
  const r = await RawHost.open(f.port)
  raws.push(r)
  return r
}

/** An admin queue (enabled) and `n` I/O queues of one controller, raw. */
async function rawController(f: TargetFixture, n = 1, o: { cattr?: number; sqsize?: number; kato?: number } = {}): Promise<{ admin: RawHost; io: RawHost[]; cntlid: number }> {
  const admin = await raw(f)
  const cntlid = await admin.admin(SUBNQN, HOSTNQN, o.kato !== undefined ? { kato: o.kato } : {})
  const io: RawHost[] = []
  for (let qid = 1; qid <= n; qid++) {
    const q = await raw(f)
    const c = await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: admin.hostid, cntlid, qid, sqsize: o.sqsize ?? 31, cattr: o.cattr ?? 0 })
    if (c.status !== 0) throw new Error(`I/O Connect: ${c.status.toString(16)}h`)
    io.push(q)
  }
  return { admin, io, cntlid }
}

const CC_EN = (6 << 16) | (4 << 20) | 1
const fab = (fctype: number) => (v: DataView) => (v.setUint8(0, 0x7f), v.setUint8(4, fctype))
const rwCmd = (op: number, lba: number, blocks: number) => (v: DataView) => {
  v.setUint8(0, op)
  v.setUint32(4, 1, true)
  v.setUint32(40, lba, true)
  v.setUint32(48, blocks - 1, true)
}

function hostRw(h: NvmfHost, queue: number, write: boolean, lba: number, blocks: number, addr: number): Promise<HostCompletion> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(queue, write, 1, lba, blocks, new IoVecList(1).push(addr, blocks * 512), (_: null, c) => resolve(c), null)
    if (rc !== 0) reject(new Error(`rc ${rc}`))
  })
}

describe('Property Get and Property Set', () => {
  it('reports CAP, VS, CC and CSTS, and CC.EN, EN 0 (a reset) and SHN do what §3 says', async () => {
    const f = await fixture()
    const a = await raw(f)
    const c = await a.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })
    const cntlid = c.cdw0 & 0xffff
    const cap = await a.propertyGet(Reg.CAP, 8)
    expect(cap.status).toBe(0)
    expect(cap.cdw0 & 0xffff).toBe(127) // MQES: maxQueueDepth 128, 0's based
    expect((cap.cdw0 >>> 16) & 1).toBe(1) // CQR
    expect(cap.cdw0 >>> 24).toBeGreaterThan(0) // TO
    expect(cap.cdw1 & (1 << 5)).toBe(1 << 5) // CSS bit 37: NVM command set
    expect((cap.cdw1 >>> 16) & 0xf).toBe(0) // MPSMIN 4 KiB
    expect((await a.propertyGet(Reg.VS, 4)).cdw0).toBe(0x0002_0000)
    expect((await a.propertyGet(Reg.CC, 4)).cdw0).toBe(0)
    expect((await a.propertyGet(Reg.CSTS, 4)).cdw0).toBe(0)
    // EN: ready at once
    expect((await a.propertySet(Reg.CC, 4, CC_EN)).status).toBe(0)
    expect((await a.propertyGet(Reg.CC, 4)).cdw0).toBe(CC_EN)
    expect((await a.propertyGet(Reg.CSTS, 4)).cdw0 & 3).toBe(1)
    const q = await raw(f)
    expect((await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })).status).toBe(0)
    const ctrl = f.subsystem.controllers.get(cntlid)!
    expect(ctrl.io.size).toBe(1)
    // EN 0: a controller reset; the I/O queues are gone, the admin queue stays
    expect((await a.propertySet(Reg.CC, 4, CC_EN & ~1)).status).toBe(0)
    await q.closed
    expect(ctrl.io.size).toBe(0)
    expect((await a.propertyGet(Reg.CSTS, 4)).cdw0 & 1).toBe(0)
    expect(a.isClosed).toBe(false)
    const q2 = await raw(f)
    expect((await q2.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })).status).toBe(0x00c)
    // enabled again, queues may come back
    await a.enable()
    const q3 = await raw(f)
    expect((await q3.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: a.hostid, cntlid, qid: 1 })).status).toBe(0)
    // SHN 01b (normal shutdown): SHST 10b, shutdown complete
    expect((await a.propertySet(Reg.CC, 4, CC_EN | (1 << 14))).status).toBe(0)
    expect(((await a.propertyGet(Reg.CSTS, 4)).cdw0 >>> 2) & 3).toBe(2)
    expect(((await a.propertyGet(Reg.CC, 4)).cdw0 >>> 14) & 3).toBe(1)
    // SHN back to 0: SHST 00b
    expect((await a.propertySet(Reg.CC, 4, CC_EN)).status).toBe(0)
    expect(((await a.propertyGet(Reg.CSTS, 4)).cdw0 >>> 2) & 3).toBe(0)
    // SHN 10b (abrupt) too
    expect((await a.propertySet(Reg.CC, 4, CC_EN | (2 << 14))).status).toBe(0)
    expect(((await a.propertyGet(Reg.CSTS, 4)).cdw0 >>> 2) & 3).toBe(2)
  })

  it('sets CSTS.CFS for an unsupported CC.CSS or CC.MPS', async () => {
    const f = await fixture()
    const a = await raw(f)
    expect((await a.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).status).toBe(0)
    expect((await a.propertySet(Reg.CC, 4, CC_EN | (1 << 4))).status).toBe(0) // CSS 001b: reserved
    const csts = (await a.propertyGet(Reg.CSTS, 4)).cdw0
    expect(csts & 2).toBe(2)
    expect(csts & 1).toBe(0)
  })

  it('answers Invalid Field (002h) for offsets that are not properties, wrong sizes and read-only properties', async () => {
    const f = await fixture()
    const a = await raw(f)
    expect((await a.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })).status).toBe(0)
    const gets: [number, 4 | 8][] = [
      [Reg.CAP, 4],
      [Reg.VS, 8],
      [Reg.CC, 8],
      [Reg.CSTS, 8],
      [0x28, 8], // ASQ: not a fabrics property
      [0x30, 8], // ACQ
      [0x1000, 4], // a doorbell
      [0x15, 4], // unaligned
      [0xffff_fff0, 4],
    ]
    for (const [off, size] of gets) expect((await a.propertyGet(off, size)).status, `get ${off.toString(16)}h/${size}`).toBe(0x002)
    const sets: [number, 4 | 8][] = [
      [Reg.CAP, 8],
      [Reg.VS, 4],
      [Reg.CSTS, 4],
      [Reg.CC, 8],
      [0x28, 8],
      [0x1000, 4],
    ]
    for (const [off, size] of sets) expect((await a.propertySet(off, size, 1)).status, `set ${off.toString(16)}h/${size}`).toBe(0x002)
    // ATTRIB with a reserved size (bits 2:0 = 2)
    expect((await a.command((v) => (fab(0x04)(v), v.setUint8(40, 2), v.setUint32(44, Reg.CSTS, true)))).status).toBe(0x002)
    // nothing of the failed sets took: CC is still 0
    expect((await a.propertyGet(Reg.CC, 4)).cdw0).toBe(0)
    expect((await a.propertyGet(Reg.CSTS, 4)).cdw0).toBe(0)
  })
})

describe('Identify Controller over fabrics', () => {
  for (const t of [{}, { inCapsuleDataSize: 8192, maxIoSize: 65536 }, { inCapsuleDataSize: 0, maxIoSize: 131072 }]) {
    it(`has IOCCSZ, IORCSZ, ICDOFF, MSDBD, SGLS, CNTLID, SUBNQN, MDTS and KAS of the transport ${JSON.stringify(t)}`, async () => {
      const f = await fixture({ transport: t })
      const h = await f.host()
      const id = decodeIdentifyController(h.identify)
      const icd = t.inCapsuleDataSize ?? 4096
      expect(id.ioccsz).toBe((64 + icd) / 16)
      expect(h.icd).toBe(icd)
      expect(id.iorcsz).toBe(1)
      expect(id.icdoff).toBe(0)
      expect(id.msdbd).toBe(1)
      // SGLS: bit 0 SGLs supported, bit 20 offset addressing of in-capsule data; no keyed SGL (bit 2, RDMA's)
      expect(id.sgls & 1).toBe(1)
      expect(id.sgls & (1 << 20)).toBe(1 << 20)
      expect(id.sgls & (1 << 2)).toBe(0)
      expect(id.cntlid).toBe(h.cntlid)
      expect(f.subsystem.controllers.get(h.cntlid)?.hostnqn).toBe(HOSTNQN)
      expect(id.subnqn).toBe(SUBNQN)
      expect(id.cntrltype).toBe(1)
      expect(4096 * 2 ** id.mdts).toBe(t.maxIoSize ?? 131072)
      expect(h.maxTransfer).toBe(t.maxIoSize ?? 131072)
      expect(id.kas).toBe(10)
    })
  }

  it('gives every controller its own CNTLID, the one its Connect response carried', async () => {
    const f = await fixture()
    const r = await raw(f)
    const c = await r.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN })
    await r.enable()
    const idr = await r.command((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 1, true)), { read: 4096 })
    expect(idr.status).toBe(0)
    const h = await f.host()
    expect(decodeIdentifyController(idr.data).cntlid).toBe(c.cdw0 & 0xffff)
    expect(h.cntlid).not.toBe(c.cdw0 & 0xffff)
    expect(decodeIdentifyController(h.identify).cntlid).toBe(h.cntlid)
  })
})

describe('keep alive', () => {
  it('tears down a controller whose host goes silent after KATO, and keeps one that sends Keep Alive', async () => {
    const f = await fixture()
    // silent: KATO 500 ms (KAS 10: rounded up to 1 s), then nothing
    const { admin: silent, io: silentIo, cntlid } = await rawController(f, 1, { kato: 500 })
    const kato = await silent.command((v) => (v.setUint8(0, AdminOpcode.GetFeatures), v.setUint32(40, 0x0f, true)))
    expect(kato.cdw0).toBe(1000)
    const t0 = performance.now()
    // a raw host that sends Keep Alive every 300 ms, one with KATO 0, and an NvmfHost with KATO 500
    const { admin: beating, cntlid: beatId } = await rawController(f, 0, { kato: 500 })
    const beat = setInterval(() => void beating.command((v) => v.setUint8(0, AdminOpcode.KeepAlive)).catch(() => {}), 300)
    const { admin: noKato, cntlid: noKatoId } = await rawController(f, 0, { kato: 0 })
    const h = await f.host({ kato: 500, ioQueues: 2 })
    const sentBefore = h.stats.commands
    try {
      await Promise.all([silent.closed, silentIo[0]!.closed])
      const gone = performance.now() - t0
      expect(gone).toBeGreaterThanOrEqual(900)
      expect(gone).toBeLessThan(2500)
      expect(f.subsystem.controllers.has(cntlid)).toBe(false)
      // the others live on well past KATO
      await new Promise((r) => setTimeout(r, 2600 - (performance.now() - t0)))
    } finally {
      clearInterval(beat)
    }
    expect(beating.isClosed).toBe(false)
    expect(noKato.isClosed).toBe(false)
    expect(h.state).toBe('live')
    expect(h.stats.commands - sentBefore).toBeGreaterThanOrEqual(4) // its keep-alives
    expect(f.subsystem.controllers.has(beatId)).toBe(true)
    expect(f.subsystem.controllers.has(noKatoId)).toBe(true)
    expect(f.subsystem.controllers.has(h.cntlid)).toBe(true)
    expect([...f.subsystem.controllers.keys()].sort()).toEqual([beatId, noKatoId, h.cntlid].sort())
    const buf = f.pm.ipuAllocator.alloc(4096)
    expect((await hostRw(h, 1, true, 0, 8, buf)).status).toBe(0)
    f.pm.ipuAllocator.free(buf)
  })
})

describe('Disconnect', () => {
  it('closes an I/O queue; on the admin queue it is Invalid Queue Type (185h)', async () => {
    const f = await fixture()
    const { admin, io, cntlid } = await rawController(f, 2)
    const ctrl = f.subsystem.controllers.get(cntlid)!
    const d = await io[0]!.command(fab(0x08))
    expect(d.status).toBe(0)
    await io[0]!.closed
    expect([...ctrl.io.keys()]).toEqual([2])
    // the other I/O queue still works
    const w = await io[1]!.command(rwCmd(NvmOpcode.Write, 0, 1), { inCapsule: random(512, 1) })
    expect(w.status).toBe(0)
    const a = await admin.command(fab(0x08))
    expect(a.status).toBe(0x185)
    expect(admin.isClosed).toBe(false)
    expect((await admin.propertyGet(Reg.CSTS, 4)).cdw0 & 1).toBe(1)
    expect(f.subsystem.controllers.has(cntlid)).toBe(true)
    // the admin queue's connection closing takes the controller (and its I/O queues) with it
    await admin.close()
    await io[1]!.closed
    expect(f.subsystem.controllers.has(cntlid)).toBe(false)
  })
})

describe('Number of Queues', () => {
  it('grants at most the transport allows, and I/O queues beyond it are refused', async () => {
    const f = await fixture({ transport: { maxQpairsPerCtrlr: 5 } })
    const { admin, cntlid } = await rawController(f, 0)
    const getNq = () => admin.command((v) => (v.setUint8(0, AdminOpcode.GetFeatures), v.setUint32(40, 0x07, true)))
    const setNq = (nsqr: number, ncqr: number) => admin.command((v) => (v.setUint8(0, AdminOpcode.SetFeatures), v.setUint32(40, 0x07, true), v.setUint32(44, ((ncqr << 16) | nsqr) >>> 0, true)))
    expect((await getNq()).cdw0).toBe((3 << 16) | 3)
    const s = await setNq(99, 1)
    expect(s.status).toBe(0)
    expect(s.cdw0).toBe((1 << 16) | 3) // NCQA 1, NSQA 3 (0's based)
    expect((await getNq()).cdw0).toBe((1 << 16) | 3)
    expect((await setNq(0xffff, 0)).status).toBe(0x002)
    const io = async (qid: number) => (await raw(f)).connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: admin.hostid, cntlid, qid })
    expect((await io(3)).cdw0).toBe(42)
    expect((await io(2)).status).toBe(0)
    // once I/O queues exist the count cannot change (§5.27.1.5): Command Sequence Error
    expect((await setNq(0, 0)).status).toBe(0x00c)
    expect((await getNq()).cdw0).toBe((1 << 16) | 3)
    // an NvmfHost asking for more gets what was granted
    const h = await f.host({ ioQueues: 8 })
    expect(h.ioQueues).toBe(4)
  })
})

describe('SQ flow control and C2HData SUCCESS', () => {
  it('with SQ flow control disabled (CATTR bit 2): reads end in C2HData with SUCCESS alone, CQEs carry SQHD FFFFh', async () => {
    const f = await fixture()
    const { io } = await rawController(f, 1, { cattr: 0x04 })
    const q = io[0]!
    const data = random(4096, 3)
    const w = await q.command(rwCmd(NvmOpcode.Write, 100, 8), { inCapsule: data })
    expect(w.status).toBe(0)
    expect(w.sqhd).toBe(0xffff)
    const before = q.received.filter((t) => t === PduType.CapsuleResp).length
    for (let i = 0; i < 3; i++) {
      const r = await q.command(rwCmd(NvmOpcode.Read, 100, 8), { read: 4096 })
      expect(r.bySuccess).toBe(true)
      expect(r.c2hFlags).toEqual([PduFlag.LAST_PDU | PduFlag.SUCCESS])
      expect(Buffer.from(r.data).equals(Buffer.from(data))).toBe(true)
    }
    // a failed read still gets a CapsuleResp (LBA out of range), with SQHD FFFFh
    const bad = await q.command(rwCmd(NvmOpcode.Read, 8191, 8), { read: 4096 })
    expect(bad.bySuccess).toBe(false)
    expect(bad.status).toBe(0x080)
    expect(bad.sqhd).toBe(0xffff)
    // no CapsuleResp came for the successful reads
    await new Promise((r) => setTimeout(r, 20))
    expect(q.received.filter((t) => t === PduType.CapsuleResp).length - before).toBe(1)
  })

  it('with SQ flow control on: C2HData without SUCCESS and a CapsuleResp whose SQHD moves (and wraps)', async () => {
    const f = await fixture()
    // SQSIZE 3: four entries; the Connect response's SQHD is 1
    const admin = await raw(f)
    const cntlid = await admin.admin(SUBNQN, HOSTNQN)
    const q = await raw(f)
    const c = await q.connect({ subnqn: SUBNQN, hostnqn: HOSTNQN, hostid: admin.hostid, cntlid, qid: 1, sqsize: 3 })
    expect(c.status).toBe(0)
    expect(c.sqhd).toBe(1)
    const data = random(512, 9)
    expect((await q.command(rwCmd(NvmOpcode.Write, 7, 1), { inCapsule: data })).sqhd).toBe(2)
    const heads: number[] = []
    for (let i = 0; i < 6; i++) {
      const r = await q.command(rwCmd(NvmOpcode.Read, 7, 1), { read: 512 })
      expect(r.status).toBe(0)
      expect(r.bySuccess).toBe(false)
      expect(r.c2hFlags).toEqual([PduFlag.LAST_PDU])
      expect(Buffer.from(r.data).equals(Buffer.from(data))).toBe(true)
      heads.push(r.sqhd)
      expect(r.sqid).toBe(1)
    }
    expect(heads).toEqual([3, 0, 1, 2, 3, 0])
  })

  it('sends no SUCCESS when the transport is configured without it, even with SQ flow control disabled', async () => {
    const f = await fixture({ transport: { c2hSuccess: false } })
    const { io } = await rawController(f, 1, { cattr: 0x04 })
    const r = await io[0]!.command(rwCmd(NvmOpcode.Read, 0, 1), { read: 512 })
    expect(r.bySuccess).toBe(false)
    expect(r.c2hFlags).toEqual([PduFlag.LAST_PDU])
    expect(r.sqhd).toBe(0xffff)
  })

  it('an NvmfHost that disables SQ flow control reads and writes correctly', async () => {
    const f = await fixture()
    const h = await f.host({ disableSqFlowControl: true })
    const buf = f.pm.ipuAllocator.alloc(65536)
    const data = random(65536, 77)
    f.pm.bytes.set(data, buf)
    expect((await hostRw(h, 0, true, 300, 128, buf)).status).toBe(0)
    f.pm.bytes.fill(0, buf, buf + 65536)
    expect((await hostRw(h, 0, false, 300, 128, buf)).status).toBe(0)
    expect(Buffer.from(f.pm.bytes.subarray(buf, buf + 65536)).equals(Buffer.from(data))).toBe(true)
    f.pm.ipuAllocator.free(buf)
  })
})

describe('many hosts and queues', () => {
  it('8 hosts x 4 I/O queues: concurrent random reads and writes on separate ranges, all data correct', async () => {
    const f = await fixture({ blocks: 8192 })
    const hosts = await Promise.all(Array.from({ length: 8 }, (_, i) => f.host({ hostnqn: `nqn.2026-12.io.ipukit:many${i}`, ioQueues: 4 })))
    expect(hosts.every((h) => h.ioQueues === 4)).toBe(true)
    expect(f.subsystem.controllers.size).toBe(8)
    expect(f.tcp.connections.size).toBe(8 * 5)
    // 32 queues x 2 chains: 64 ranges of 128 blocks, each with a model of what it holds
    const RANGE = 128
    let seed = 1
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return (seed >>> 8) % n
    }
    const chain = async (h: NvmfHost, queue: number, base: number) => {
      const model = new Uint8Array(RANGE * 512)
      const buf = f.pm.ipuAllocator.alloc(64 * 512)
      let checked = 0
      try {
        for (let op = 0; op < 16; op++) {
          const blocks = 1 + rnd(64)
          const at = rnd(RANGE - blocks + 1)
          const len = blocks * 512
          if (op % 2 === 0) {
            const data = random(len, base * 131 + op + 1)
            f.pm.bytes.set(data, buf)
            const c = await hostRw(h, queue, true, base + at, blocks, buf)
            expect(c.status).toBe(0)
            model.set(data, at * 512)
          } else {
            f.pm.bytes.fill(0xee, buf, buf + len)
            const c = await hostRw(h, queue, false, base + at, blocks, buf)
            expect(c.status).toBe(0)
            expect(Buffer.from(f.pm.bytes.subarray(buf, buf + len)).equals(Buffer.from(model.subarray(at * 512, at * 512 + len)))).toBe(true)
            checked++
          }
        }
        // the whole range at the end
        for (let at = 0; at < RANGE; at += 64) {
          const c = await hostRw(h, queue, false, base + at, 64, buf)
          expect(c.status).toBe(0)
          expect(Buffer.from(f.pm.bytes.subarray(buf, buf + 64 * 512)).equals(Buffer.from(model.subarray(at * 512, (at + 64) * 512)))).toBe(true)
          checked++
        }
      } finally {
        f.pm.ipuAllocator.free(buf)
      }
      return checked
    }
    const chains: Promise<number>[] = []
    let r = 0
    for (const h of hosts) for (let q = 0; q < 4; q++) for (let k = 0; k < 2; k++) chains.push(chain(h, q, RANGE * r++))
    const checked = await Promise.all(chains)
    expect(checked.reduce((a, b) => a + b, 0)).toBe(64 * 10)
    const stats = [...f.tcp.connections].reduce((s, q) => ({ r2ts: s.r2ts + q.stats.r2ts, termReqs: s.termReqs + q.stats.termReqs }), { r2ts: 0, termReqs: 0 })
    expect(stats.termReqs).toBe(0)
    expect(stats.r2ts).toBeGreaterThan(0)
    expect(hosts.every((h) => h.state === 'live' && h.stats.reconnects === 0)).toBe(true)
  })
})

describe('namespaces at runtime', () => {
  it('adding and removing a namespace completes a posted AER with Namespace Attribute Changed', async () => {
    const f = await fixture()
    const h = await f.host()
    const quiet = await f.host({ hostnqn: 'nqn.2026-12.io.ipukit:quiet' })
    const buf = f.pm.ipuAllocator.alloc(4096)
    const list = new IoVecList(1).push(buf, 4096)
    // Asynchronous Event Configuration: Namespace Attribute Notices (bit 8)
    expect((await h.admin((v) => (v.setUint8(0, AdminOpcode.SetFeatures), v.setUint32(40, 0x0b, true), v.setUint32(44, 1 << 8, true)))).status).toBe(0)
    const aer = () => {
      let done: HostCompletion | null = null
      const p = h.admin((v) => v.setUint8(0, AdminOpcode.AsyncEventRequest)).then((c) => (done = c))
      return { p, done: () => done }
    }
    const changedList = async () => {
      const c = await h.admin((v) => (v.setUint8(0, AdminOpcode.GetLogPage), v.setUint32(40, 0x04 | (1023 << 16), true)), list, true)
      expect(c.status).toBe(0)
      const dv = new DataView(f.pm.memory.buffer, buf, 4096)
      const out: number[] = []
      for (let i = 0; i < 1024 && dv.getUint32(4 * i, true) !== 0; i++) out.push(dv.getUint32(4 * i, true))
      return out
    }
    const activeList = async () => {
      const c = await h.admin((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 2, true)), list, true)
      expect(c.status).toBe(0)
      const dv = new DataView(f.pm.memory.buffer, buf, 4096)
      const out: number[] = []
      for (let i = 0; i < 1024 && dv.getUint32(4 * i, true) !== 0; i++) out.push(dv.getUint32(4 * i, true))
      return out
    }
    // the other host posts one too, without asking for namespace notices: it stays outstanding
    let quietDone = false
    void quiet.admin((v) => v.setUint8(0, AdminOpcode.AsyncEventRequest)).then(() => (quietDone = true))
    const a1 = aer()
    await new Promise((r) => setTimeout(r, 30))
    expect(a1.done()).toBeNull()
    createMallocBdev(f.bdevs, { name: 'ram1', blockCount: 2048, blockSize: 512 })
    const nsid = f.subsystem.addNamespace({ bdev: 'ram1' })
    expect(nsid).toBe(2)
    const c1 = await a1.p
    expect(c1.status).toBe(0)
    // type 2 (notice), information 00h (namespace attribute changed), log page 04h
    expect(c1.cdw0 & 7).toBe(2)
    expect((c1.cdw0 >>> 8) & 0xff).toBe(0)
    expect((c1.cdw0 >>> 16) & 0xff).toBe(0x04)
    expect(await changedList()).toEqual([2])
    expect(await activeList()).toEqual([1, 2])
    // the new namespace takes I/O
    const idn = await h.admin((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(4, 2, true)), list, true)
    expect(idn.status).toBe(0)
    expect(new DataView(f.pm.memory.buffer).getBigUint64(buf, true)).toBe(2048n)
    const a2 = aer()
    await new Promise((r) => setTimeout(r, 30))
    expect(a2.done()).toBeNull()
    f.subsystem.removeNamespace(2)
    const c2 = await a2.p
    expect(c2.status).toBe(0)
    expect(c2.cdw0 & 0xff_ff_07).toBe(0x04_00_02)
    expect(await changedList()).toEqual([2])
    expect(await activeList()).toEqual([1])
    // a namespace removed is gone for I/O on this controller
    const gone = await new Promise<HostCompletion>((resolve) => h.rw(0, false, 2, 0, 1, new IoVecList(1).push(buf, 512), (_: null, c) => resolve(c), null))
    expect(gone.status).toBe(0x00b) // Invalid Namespace or Format
    expect(quietDone).toBe(false)
    f.pm.ipuAllocator.free(buf)
  })
})

describe('SGL descriptors a capsule may not carry', () => {
  it('refuses wrong SGL types, lengths, offsets and PSDT, and the queue goes on', async () => {
    const f = await fixture()
    const { admin, io } = await rawController(f, 1)
    const q = io[0]!
    const d512 = random(512, 5)
    const before = random(1024, 6)
    expect((await q.command(rwCmd(NvmOpcode.Write, 0, 2), { inCapsule: before })).status).toBe(0)
    const cases: [string, Promise<{ status: number; data: Uint8Array }>, number][] = [
      // a read with the in-capsule SGL (Data Block, Offset) or a keyed one (RDMA's)
      ['read, in-capsule SGL', q.command((v) => (rwCmd(NvmOpcode.Read, 0, 1)(v), v.setUint8(39, 0x01))), 0x011],
      ['read, well formed (the control)', q.command(rwCmd(NvmOpcode.Read, 0, 1), { read: 512 }), -1],
      ['read, Data Block address SGL', q.command((v) => (rwCmd(NvmOpcode.Read, 0, 1)(v), v.setUint8(39, 0x00)), { read: 512 }), 0x011],
      ['write, keyed SGL', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint8(39, 0x40)), { write: d512 }), 0x011],
      ['write in the capsule, Data Block address SGL', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint8(39, 0x00)), { inCapsule: d512 }), 0x011],
      // lengths: the SGL's against the command's, and the capsule's against the SGL's
      ['write in the capsule, 2 blocks, SGL and data 512', q.command(rwCmd(NvmOpcode.Write, 0, 2), { inCapsule: d512 }), 0x00f],
      ['write in the capsule, SGL 1024, data 512', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint32(32, 1024, true)), { inCapsule: d512 }), 0x00f],
      ['read, SGL 1024 for 1 block', q.command((v) => (rwCmd(NvmOpcode.Read, 0, 1)(v), v.setUint32(32, 1024, true)), { read: 512 }), 0x00f],
      ['write by R2T, SGL 256 for 1 block', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint32(32, 256, true)), { write: d512.subarray(0, 256) }), 0x00f],
      // in-capsule data at an offset (ICDOFF 0: none is valid)
      ['write in the capsule at offset 16', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint32(24, 16, true)), { inCapsule: d512 }), 0x016],
      // PSDT 00b (PRPs) and 10b: fabrics commands use SGLs
      ['read, PSDT 00b', q.command((v) => (rwCmd(NvmOpcode.Read, 0, 1)(v), v.setUint8(1, 0x00)), { read: 512 }), 0x002],
      ['write, PSDT 00b', q.command((v) => (rwCmd(NvmOpcode.Write, 0, 1)(v), v.setUint8(1, 0x00)), { inCapsule: d512 }), 0x002],
      ['read, PSDT 10b', q.command((v) => (rwCmd(NvmOpcode.Read, 0, 1)(v), v.setUint8(1, 0x80)), { read: 512 }), 0x002],
      ['Identify on the admin queue, in-capsule SGL', admin.command((v) => (v.setUint8(0, AdminOpcode.Identify), v.setUint32(40, 1, true), v.setUint8(39, 0x01))), 0x011],
    ]
    for (const [what, p, want] of cases) {
      const r = await p
      if (want < 0) {
        expect(r.status, what).toBe(0) // the well-formed control
        continue
      }
      expect(r.status, what).toBe(want)
      expect(r.data.length, what).toBe(0)
    }
    // nothing was fatal; a good write and read still work, and the refused writes wrote nothing
    expect(q.termReqs).toEqual([])
    expect(q.isClosed).toBe(false)
    const kept = await q.command(rwCmd(NvmOpcode.Read, 0, 2), { read: 1024 })
    expect(Buffer.from(kept.data).equals(Buffer.from(before))).toBe(true)
    expect((await q.command(rwCmd(NvmOpcode.Write, 0, 1), { inCapsule: d512 })).status).toBe(0)
    const back = await q.command(rwCmd(NvmOpcode.Read, 0, 1), { read: 512 })
    expect(Buffer.from(back.data).equals(Buffer.from(d512))).toBe(true)
  })
})
