// One subsystem, two transports: the memory-based PCIe front end of @ipukit/nvme as a static
// controller of an NVMe-oF subsystem, beside TCP hosts' dynamic controllers. Both see the same
// namespaces (the same bdevs); what one writes the other reads; CNTLIDs are distinct; a
// namespace added later reaches both.
import { createMallocBdev } from '@ipukit/bdev'
import { Iommu, IoVecList } from '@ipukit/memory'
import { NvmeHostDriver, nvmeFunctionSpec } from '@ipukit/nvme'
import { PciFabric } from '@ipukit/pcie'
import { afterAll, describe, expect, it } from 'vitest'
import { random, type TargetFixture, targetFixture } from './helpers.js'

const open: TargetFixture[] = []
afterAll(async () => {
  for (const f of open) await f.close()
})

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

describe('a subsystem served over PCIe and TCP at once', () => {
  it('a PCIe host and a TCP host share the namespace, each through its own controller of the subsystem', async () => {
    const f = await targetFixture({ blocks: 4096 })
    open.push(f)
    const iommu = new Iommu(f.pm)
    const fabric = new PciFabric({ physical: f.pm, iommu })
    const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link: { gen: 4, width: 8 } }), { name: 'nvme0', link: { gen: 4, width: 8 }, functions: [nvmeFunctionSpec({ vectors: 5 })] })
    fabric.enumerate()
    const fn = fabric.get('nvme0')
    const pcie = f.subsystem.attachPcie({ fabric, fn, ch: f.target.ch, maxIoQueues: 4 })
    const ph = new NvmeHostDriver({ fabric, fn, iommu, mode: 'poll' })
    await ph.init()
    const th = await f.host()
    // the same subsystem: its NQN, serial and model in both Identify Controllers; distinct CNTLIDs
    const pid = new DataView(ph.identify.buffer)
    const tid = new DataView(th.identify.buffer)
    expect(pid.getUint16(78, true)).toBe(pcie.core.cntlid)
    expect(tid.getUint16(78, true)).toBe(th.cntlid)
    expect(pcie.core.cntlid).not.toBe(th.cntlid)
    const text = (b: Uint8Array, at: number, n: number) => Buffer.from(b.subarray(at, at + n)).toString('latin1').replace(/[\0 ]+$/, '')
    expect(text(ph.identify, 768, 256)).toBe(f.subsystem.nqn)
    expect(text(th.identify, 768, 256)).toBe(f.subsystem.nqn)
    expect(text(ph.identify, 4, 20)).toBe(text(th.identify, 4, 20))
    // PCIe writes, TCP reads
    const hb1 = ph.allocBuffer(8192)
    const data = random(8192, 3)
    hb1.bytes.set(data)
    expect((await ph.write(1, 64, 16, hb1)).status).toBe(0)
    const local = f.pm.ipuAllocator.alloc(8192)
    const st = await new Promise<number>((r) => th.rw(0, false, 1, 64, 16, new IoVecList(1).push(local, 8192), (_: null, c) => r(c.status), null))
    expect(st).toBe(0)
    expect(same(f.pm.bytes.subarray(local, local + 8192), data)).toBe(true)
    // TCP writes, PCIe reads
    const d2 = random(8192, 4)
    f.pm.bytes.set(d2, local)
    expect(await new Promise<number>((r) => th.rw(0, true, 1, 128, 16, new IoVecList(1).push(local, 8192), (_: null, c) => r(c.status), null))).toBe(0)
    const hb2 = ph.allocBuffer(8192)
    expect((await ph.read(1, 128, 16, hb2)).status).toBe(0)
    expect(same(hb2.bytes, d2)).toBe(true)
    // a namespace added to the subsystem reaches the PCIe controller too
    createMallocBdev(f.bdevs, { name: 'ram1', blockCount: 1024, blockSize: 4096 })
    const nsid = f.subsystem.addNamespace({ bdev: 'ram1' })
    expect(nsid).toBe(2)
    expect(pcie.core.namespaces.has(2)).toBe(true)
    expect([...f.subsystem.controllers.values()].every((c) => c.core.namespaces.has(2))).toBe(true)
    f.subsystem.removeNamespace(2)
    expect(pcie.core.namespaces.has(2)).toBe(false)
    ph.stop()
    f.subsystem.detachPcie(pcie)
    f.pm.ipuAllocator.free(local)
  })
})
