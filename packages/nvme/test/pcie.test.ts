// BAR0 as the NVMe Base Specification 2.0 §3.1 lays it out: reset values, read-only bits,
// and the state machine (§3.5: enable, disable, shutdown, controller fatal status), each a
// named test, driven through the function's BAR as a host driver would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeCap, decodeCmbsz, Reg } from '../src/index.js'
import { fixture, type Fixture, tick } from './helpers.js'

let f: Fixture
let bar: ReturnType<Fixture['fabric']['ioremap']>
beforeAll(async () => {
  f = await fixture({ cmb: true })
  bar = f.fabric.ioremap(f.fn, 0)
})
afterAll(async () => {
  await f.close()
})

const r32 = (off: number) => bar.read(off, 4) >>> 0
const w32 = (off: number, v: number) => bar.write(off, 4, v >>> 0)
const csts = () => r32(Reg.CSTS)
async function until(pred: () => boolean, ms = 1000): Promise<void> {
  const end = performance.now() + ms
  while (!pred()) {
    if (performance.now() > end) throw new Error('timed out')
    await tick()
  }
}

/** A host's admin queue in host DRAM, page aligned, mapped for the function. */
let mapped = false
function adminQueues(): { asq: number; acq: number } {
  if (!mapped) f.iommu.map(f.fn.rid, 0x7000_0000, 0x10_0000, 0x3000, 3)
  mapped = true
  return { asq: 0x7000_0000, acq: 0x7000_1000 }
}

describe('controller registers at reset', () => {
  it('CAP: MQES, CQR, TO, DSTRD 0, NVM command set, MPSMIN 4 KiB, MPSMAX 64 KiB, CMBS with a CMB, no NSSR', () => {
    const cap = decodeCap(r32(Reg.CAP), r32(Reg.CAP + 4))
    expect(cap).toMatchObject({ mqes: 4095, cqr: true, to: 15, dstrd: 0, nssrs: false, mpsmin: 0, mpsmax: 4, cmbs: true, pmrs: false })
    expect(cap.css & 1).toBe(1)
    // 64-bit read gives the same
    expect(bar.read64(Reg.CAP)).toBe(BigInt(r32(Reg.CAP)) | (BigInt(r32(Reg.CAP + 4)) << 32n))
  })

  it('VS 2.0.0; CC, CSTS, AQA, ASQ, ACQ, INTMS zero', () => {
    expect(r32(Reg.VS)).toBe(0x0002_0000)
    for (const r of [Reg.CC, Reg.CSTS, Reg.AQA, Reg.ASQ, Reg.ASQ + 4, Reg.ACQ, Reg.ACQ + 4, Reg.INTMS, Reg.INTMC, Reg.NSSR]) expect(r32(r)).toBe(0)
  })

  it('read-only registers ignore writes: CAP, VS, CSTS (RDY, CFS, SHST), NSSR without NSSRS', () => {
    const cap = [r32(Reg.CAP), r32(Reg.CAP + 4)]
    w32(Reg.CAP, 0)
    w32(Reg.CAP + 4, 0xffffffff)
    w32(Reg.VS, 0x12345678)
    w32(Reg.CSTS, 0xffffffff)
    w32(Reg.NSSR, 0x4e564d65) // "NVMe": a subsystem reset, not supported here
    expect([r32(Reg.CAP), r32(Reg.CAP + 4)]).toEqual(cap)
    expect(r32(Reg.VS)).toBe(0x0002_0000)
    expect(csts()).toBe(0)
    expect(r32(Reg.NSSR)).toBe(0)
  })

  it('CC reserved bits read as 0; AQA keeps its 12-bit fields; ASQ and ACQ drop the page offset', () => {
    w32(Reg.CC, 0xfe00_000e) // reserved bits only
    expect(r32(Reg.CC)).toBe(0)
    w32(Reg.AQA, 0xffff_ffff)
    expect(r32(Reg.AQA)).toBe(0x0fff_0fff)
    bar.write64(Reg.ASQ, 0x1234_5678_9abcn)
    expect(bar.read64(Reg.ASQ)).toBe(0x1234_5678_9000n)
    w32(Reg.AQA, 0)
    bar.write64(Reg.ASQ, 0n)
  })

  it('INTMS sets and INTMC clears bits of the interrupt mask, both reading the mask', () => {
    w32(Reg.INTMS, 0b1010)
    expect([r32(Reg.INTMS), r32(Reg.INTMC)]).toEqual([0b1010, 0b1010])
    w32(Reg.INTMC, 0b0010)
    expect([r32(Reg.INTMS), r32(Reg.INTMC)]).toEqual([0b1000, 0b1000])
    w32(Reg.INTMC, 0xffffffff)
    expect(r32(Reg.INTMS)).toBe(0)
  })

  it('CMBLOC and CMBSZ read 0 until CMBMSC.CRE is set (NVMe 1.4 and later), then describe BAR 2', () => {
    expect([r32(Reg.CMBLOC), r32(Reg.CMBSZ)]).toEqual([0, 0])
    w32(Reg.CMBMSC, 1)
    expect(r32(Reg.CMBLOC) & 7).toBe(2)
    const sz = decodeCmbsz(r32(Reg.CMBSZ))
    expect(sz).toMatchObject({ sqs: true, cqs: false, lists: true, rds: true, wds: true, szu: 0 })
    expect(sz.sz * 4096).toBe(1 << 20)
    w32(Reg.CMBMSC, 0)
    expect([r32(Reg.CMBLOC), r32(Reg.CMBSZ)]).toEqual([0, 0])
  })

  it('doorbells are write-only, and ignored while the controller is disabled', () => {
    w32(0x1000, 5)
    expect(r32(0x1000)).toBe(0)
    expect(f.ctrl.counters.doorbellErrors).toBe(0)
  })
})

describe('controller state machine', () => {
  it('CC.EN 0 -> 1 with a valid admin queue: CSTS.RDY 1 (after the call, within CAP.TO); the admin queues exist', async () => {
    const { asq, acq } = adminQueues()
    w32(Reg.AQA, (31 << 16) | 31)
    bar.write64(Reg.ASQ, BigInt(asq))
    bar.write64(Reg.ACQ, BigInt(acq))
    w32(Reg.CC, (6 << 16) | (4 << 20) | 1)
    expect(csts() & 1).toBe(0) // not synchronously: the host polls
    await until(() => (csts() & 1) === 1)
    expect(csts()).toBe(1)
    expect(f.ctrl.queues().sq).toEqual([{ qid: 0, size: 32, head: 0, tail: 0, cqid: 0 }])
    // CC.CSS and CC.MPS cannot change while enabled; IOSQES and IOCQES can
    w32(Reg.CC, (6 << 16) | (4 << 20) | (1 << 7) | (7 << 4) | 1)
    expect((r32(Reg.CC) >>> 4) & 0x7f).toBe(0)
  })

  it('CC.SHN 01b: CSTS.SHST 01b (in progress), then 10b (complete); SHN 00b clears it', async () => {
    w32(Reg.CC, (r32(Reg.CC) & ~(3 << 14)) | (1 << 14))
    expect((csts() >>> 2) & 3).toBe(1)
    await until(() => ((csts() >>> 2) & 3) === 2)
    w32(Reg.CC, r32(Reg.CC) & ~(3 << 14))
    expect((csts() >>> 2) & 3).toBe(0)
  })

  it('a doorbell to a queue that does not exist, or a tail past the queue, is an error event and changes nothing', () => {
    const before = f.ctrl.counters.doorbellErrors
    w32(0x1000 + 8 * 3, 1) // SQ 3 tail: no such queue
    w32(0x1000, 40) // SQ 0 tail 40 of 32 entries
    w32(0x1000 + 8 * 0 + 4, 33) // CQ 0 head 33 of 32 entries
    expect(f.ctrl.counters.doorbellErrors - before).toBe(3)
    expect(f.ctrl.queues().sq[0]!.tail).toBe(0)
  })

  it('CC.EN 1 -> 0: a controller reset; CSTS.RDY goes to 0, the queues are gone', async () => {
    w32(Reg.CC, r32(Reg.CC) & ~1)
    await until(() => (csts() & 1) === 0)
    expect(csts()).toBe(0)
    expect(f.ctrl.queues()).toEqual({ sq: [], cq: [] })
  })

  const BASE_CC = (6 << 16) | (4 << 20) | 1
  for (const c of [
    { name: 'ASQ not aligned to the CC.MPS page (8 KiB pages, ASQ at a 4 KiB boundary)', aqa: (31 << 16) | 31, asq: 0x7000_1000, cc: BASE_CC | (1 << 7) },
    { name: 'an admin submission queue of one entry (AQA.ASQS 0)', aqa: 31 << 16, asq: 0x7000_0000, cc: BASE_CC },
    { name: 'CC.MPS above CAP.MPSMAX', aqa: (31 << 16) | 31, asq: 0x7000_0000, cc: BASE_CC | (5 << 7) },
    { name: 'CC.CSS a command set CAP.CSS does not have', aqa: (31 << 16) | 31, asq: 0x7000_0000, cc: BASE_CC | (3 << 4) },
  ]) {
    it(`CC.EN 0 -> 1 with ${c.name}: CSTS.CFS instead of RDY, until a reset`, async () => {
      adminQueues()
      w32(Reg.AQA, c.aqa)
      bar.write64(Reg.ASQ, BigInt(c.asq))
      bar.write64(Reg.ACQ, 0x7000_2000n)
      w32(Reg.CC, c.cc)
      await tick()
      expect(csts() & 3).toBe(2)
      expect(f.ctrl.fatalReason).not.toBe('')
      // the host resets: EN 0 clears CFS
      w32(Reg.CC, 0)
      await until(() => csts() === 0)
    })
  }

  it('recovers: a good setup after those enables the controller again', async () => {
    const { asq, acq } = adminQueues()
    w32(Reg.AQA, (31 << 16) | 31)
    bar.write64(Reg.ASQ, BigInt(asq))
    bar.write64(Reg.ACQ, BigInt(acq))
    w32(Reg.CC, (6 << 16) | (4 << 20) | 1)
    await until(() => (csts() & 1) === 1)
    expect(csts()).toBe(1)
    w32(Reg.CC, 0)
    await until(() => csts() === 0)
  })
})

describe('timing: CAP.TO bounds CSTS.RDY', () => {
  it('CC.EN 0 -> 1: RDY stays 0 for readyDelay, then reads 1, within CAP.TO; EN 1 -> 0: RDY 1 until the reset is done', async () => {
    const g = await fixture({ controller: { readyDelay: 40, readyTimeout: 2 } })
    try {
      const b = g.fabric.ioremap(g.fn, 0)
      const cap = decodeCap(b.read(Reg.CAP, 4), b.read(Reg.CAP + 4, 4))
      expect(cap.to).toBe(2) // 1 s
      g.iommu.map(g.fn.rid, 0x7000_0000, 0x10_0000, 0x2000, 3)
      b.write(Reg.AQA, 4, (31 << 16) | 31)
      b.write64(Reg.ASQ, 0x7000_0000n)
      b.write64(Reg.ACQ, 0x7000_1000n)
      const t0 = performance.now()
      b.write(Reg.CC, 4, (6 << 16) | (4 << 20) | 1)
      await tick()
      expect(b.read(Reg.CSTS, 4) & 1).toBe(0)
      while ((b.read(Reg.CSTS, 4) & 1) === 0) {
        expect(performance.now() - t0).toBeLessThan(cap.to * 500)
        await new Promise((r) => setTimeout(r, 2))
      }
      expect(performance.now() - t0).toBeGreaterThanOrEqual(39)
      const t1 = performance.now()
      b.write(Reg.CC, 4, 0)
      expect(b.read(Reg.CSTS, 4) & 1).toBe(1)
      while ((b.read(Reg.CSTS, 4) & 1) === 1) await new Promise((r) => setTimeout(r, 2))
      expect(performance.now() - t1).toBeGreaterThanOrEqual(39)
      expect(performance.now() - t1).toBeLessThan(cap.to * 500)
    } finally {
      await g.close()
    }
  })
})

describe('controller fatal status from the data path', () => {
  it('an admin SQ the IOMMU does not map for the function: the fetch fails, CSTS.CFS; a reset clears it', async () => {
    const g = await fixture()
    try {
      const b = g.fabric.ioremap(g.fn, 0)
      // ACQ mapped, ASQ not
      g.iommu.map(g.fn.rid, 0x7100_1000, 0x11_1000, 0x1000, 3)
      b.write(Reg.AQA, 4, (31 << 16) | 31)
      b.write64(Reg.ASQ, 0x7100_0000n)
      b.write64(Reg.ACQ, 0x7100_1000n)
      b.write(Reg.CC, 4, (6 << 16) | (4 << 20) | 1)
      for (let i = 0; i < 10 && (b.read(Reg.CSTS, 4) & 1) === 0; i++) await tick()
      expect(b.read(Reg.CSTS, 4)).toBe(1)
      b.write(0x1000, 4, 1) // the doorbell: fetch SQE 0
      await tick()
      expect(b.read(Reg.CSTS, 4) & 2).toBe(2)
      expect(g.ctrl.fatalReason).toMatch(/cannot read submission queue 0/)
      b.write(Reg.CC, 4, 0)
      for (let i = 0; i < 10 && b.read(Reg.CSTS, 4) !== 0; i++) await tick()
      expect(b.read(Reg.CSTS, 4)).toBe(0)
    } finally {
      await g.close()
    }
  })
})

describe('persistent memory region registers (NVMe Base §3.1.3.14-20)', () => {
  it('without a PMR: CAP.PMRS 0 and PMRCAP, PMRCTL, PMRSTS read 0 and ignore writes', () => {
    expect(decodeCap(r32(Reg.CAP), r32(Reg.CAP + 4)).pmrs).toBe(false)
    w32(Reg.PMRCTL, 1)
    expect([r32(Reg.PMRCAP), r32(Reg.PMRCTL), r32(Reg.PMRSTS)]).toEqual([0, 0, 0])
  })

  it('with a PMR in BAR 4: CAP.PMRS 1, PMRCAP (RDS, WDS, BIR 4, PMRTO) read-only, PMRSTS.NRDY follows PMRCTL.EN', async () => {
    const g = await fixture({ pmr: true })
    try {
      const b = g.fabric.ioremap(g.fn, 0)
      expect(decodeCap(b.read(Reg.CAP, 4), b.read(Reg.CAP + 4, 4)).pmrs).toBe(true)
      const cap = b.read(Reg.PMRCAP, 4)
      expect([(cap >>> 3) & 1, (cap >>> 4) & 1, (cap >>> 5) & 7, (cap >>> 16) & 0xff]).toEqual([1, 1, 4, 1])
      b.write(Reg.PMRCAP, 4, 0)
      expect(b.read(Reg.PMRCAP, 4)).toBe(cap)
      expect(b.read(Reg.PMRCTL, 4)).toBe(0)
      expect((b.read(Reg.PMRSTS, 4) >>> 8) & 1).toBe(1) // not ready while disabled
      b.write(Reg.PMRCTL, 4, 0xffff_ffff)
      expect(b.read(Reg.PMRCTL, 4)).toBe(1) // only EN is writable
      expect((b.read(Reg.PMRSTS, 4) >>> 8) & 1).toBe(0)
      b.write(Reg.PMRSTS, 4, 1 << 8)
      expect((b.read(Reg.PMRSTS, 4) >>> 8) & 1).toBe(0) // PMRSTS is read-only
      b.write(Reg.PMRCTL, 4, 0)
      expect((b.read(Reg.PMRSTS, 4) >>> 8) & 1).toBe(1)
      // the PMR is BAR 4's memory: bytes written through the BAR are there
      const pmr = g.fabric.ioremap(g.fn, 4)
      pmr.write(64, 4, 0xdead_beef)
      expect(pmr.read(64, 4)).toBe(0xdead_beef)
    } finally {
      await g.close()
    }
  })
})
