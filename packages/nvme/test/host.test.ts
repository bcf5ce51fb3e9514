// The host driver and the controller together: Linux's bring-up, reads and writes of every
// size through PRPs and SGLs, interrupts and polling, and random I/O verified against a model.
import { afterAll, describe, expect, it } from 'vitest'
import { fixture, type Fixture, host, random, same } from './helpers.js'

const open: Fixture[] = []
afterAll(async () => {
  for (const f of open) await f.close()
})

describe('host driver and controller', () => {
  it('brings the controller up as Linux does, then writes and reads', async () => {
    const f = await fixture({ namespaces: [{ blocks: 4096, blockSize: 512 }] })
    open.push(f)
    const d = await host(f, { ioQueues: 2 })
    expect(d.ioQueues).toBe(2)
    expect(d.namespaces.get(1)).toMatchObject({ nsid: 1, blocks: 4096, blockSize: 512, mdSize: 0, piType: 0 })
    const buf = d.allocBuffer(8192)
    buf.bytes.set(random(8192, 3))
    const w = await d.write(1, 100, 16, buf)
    expect(w.status).toBe(0)
    const back = d.allocBuffer(8192)
    const r = await d.read(1, 100, 16, back, 1)
    expect(r.status).toBe(0)
    expect(same(back.bytes, buf.bytes)).toBe(true)
    d.stop()
  })
})

describe('queues in the controller memory buffer', () => {
  it('I/O submission queues in the CMB (CMBSZ.SQS, CMBMSC.CMSE): SQEs written across the link, fetched locally, data verified', async () => {
    const f = await fixture({ cmb: true, namespaces: [{ blocks: 4096, blockSize: 512 }] })
    open.push(f)
    const d = await host(f, { ioQueues: 2, cmbSq: true, mode: 'poll' })
    expect(d.cmbSqs).toBe(true)
    const before = f.fabric.traffic.dmas
    const buf = d.allocBuffer(65536)
    buf.bytes.set(random(65536, 9))
    for (let q = 0; q < 2; q++) expect((await d.write(1, 128 * q, 128, buf, q)).status).toBe(0)
    const back = d.allocBuffer(65536)
    for (let q = 0; q < 2; q++) {
      back.bytes.fill(0)
      expect((await d.read(1, 128 * q, 128, back, 1 - q)).status).toBe(0)
      expect(same(back.bytes, buf.bytes)).toBe(true)
    }
    expect(f.fabric.traffic.dmas).toBeGreaterThan(before)
    // CMBMSC reads back what the driver set: the BAR's bus address, CMSE and CRE
    const bar = f.fabric.ioremap(f.fn, 2)
    expect(Number(d.bar.read64(0x50))).toBe(bar.base + 3)
    d.stop()
  })

  it('a completion queue in the CMB (CMBSZ.CQS 0), or an SQ there with CMSE clear: Invalid Use of Controller Memory Buffer', async () => {
    const f = await fixture({ cmb: true, namespaces: [{ blocks: 1024 }] })
    open.push(f)
    const d = await host(f, { ioQueues: 2, mode: 'poll' })
    const bar = f.fabric.ioremap(f.fn, 2)
    // free queue pair 2's identifiers: Delete I/O SQ 2, then CQ 2
    for (const op of [0x00, 0x04]) {
      const del = await d.admin((w) => {
        w.opcode(op)
        w.u32(40, 2)
      })
      expect(del.status).toBe(0)
    }
    // CQ 2 in the CMB
    let c = await d.admin((w) => {
      w.opcode(0x05)
      w.u64(24, bar.base)
      w.u32(40, (15 << 16) | 2)
      w.u32(44, 1)
    })
    expect(c.status).toBe(0x012)
    // CRE only (CMSE clear): an SQ in the CMB is refused
    d.bar.write(0x50, 4, 1)
    c = await d.admin((w) => {
      w.opcode(0x01)
      w.u64(24, bar.base)
      w.u32(40, (15 << 16) | 2)
      w.u32(44, (1 << 16) | 1)
    })
    expect(c.status).toBe(0x012)
    // with CMSE set (the bus address in CBA), the same SQ is created
    d.bar.write(0x54, 4, Math.floor(bar.base / 2 ** 32))
    d.bar.write(0x50, 4, (bar.base % 2 ** 32) | 3)
    c = await d.admin((w) => {
      w.opcode(0x01)
      w.u64(24, bar.base)
      w.u32(40, (15 << 16) | 2)
      w.u32(44, (1 << 16) | 1)
    })
    expect(c.status).toBe(0)
    d.stop()
  })
})

describe('reset with commands in flight', () => {
  it('commands reaped while the controller is being disabled complete once; the outstanding count stays right, so polling goes on after the reset', async () => {
    const f = await fixture({ controller: { readyDelay: 5 }, namespaces: [{ blocks: 1024 }] })
    open.push(f)
    const d = await host(f, { ioQueues: 1, mode: 'poll' })
    const buf = d.allocBuffer(4096)
    const seen: number[] = []
    for (let i = 0; i < 8; i++) expect(d.rw(0, false, 1, 8 * i, 8, [[buf.iova, 4096]], (n: number, c) => seen.push(n, c.status), i)).toBe(0)
    // let the controller run them and post their CQEs (microtasks), before the poller (a later turn) reaps them
    for (let i = 0; i < 50; i++) await Promise.resolve()
    await d.reset('test')
    // each of the 8 completed exactly once (with success, or Command Abort Requested)
    expect(seen.length).toBe(16)
    expect(new Set(seen.filter((_, k) => k % 2 === 0)).size).toBe(8)
    expect(d.outstanding).toBe(0)
    // after the reset a command that needs the poller still completes
    const c = await d.read(1, 0, 8, buf)
    expect(c.status).toBe(0)
    d.stop()
  })
})
