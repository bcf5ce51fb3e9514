// The link model: lane rates after line coding, TLP overhead, and the bottleneck estimate.
import { describe, expect, it } from 'vitest'
import { LANE_BYTES_PER_SECOND, linkBandwidth, TLP_OVERHEAD } from '../src/index.js'
import { ep, fabric, memoryFabric } from './helpers.js'

describe('link model', () => {
  it('lane rates: 8b/10b for Gen1-2, 128b/130b for Gen3-5, 242B/256B FLITs for Gen6', () => {
    expect(LANE_BYTES_PER_SECOND[1]).toBe(250e6)
    expect(LANE_BYTES_PER_SECOND[2]).toBe(500e6)
    expect(LANE_BYTES_PER_SECOND[3]).toBeCloseTo(984.615e6, -3)
    expect(LANE_BYTES_PER_SECOND[4]).toBeCloseTo(1969.23e6, -4)
    expect(LANE_BYTES_PER_SECOND[5]).toBeCloseTo(3938.46e6, -4)
    expect(LANE_BYTES_PER_SECOND[6]).toBeCloseTo(7562.5e6, -4)
  })

  it('a link carries width lanes less the TLP overhead per Max_Payload_Size', () => {
    expect(TLP_OVERHEAD).toBe(24)
    expect(linkBandwidth({ gen: 4, width: 16 })).toBeCloseTo(LANE_BYTES_PER_SECOND[4] * 16 * (256 / 280), 0)
    expect(linkBandwidth({ gen: 3, width: 4 }, 512)).toBeCloseTo(LANE_BYTES_PER_SECOND[3] * 4 * (512 / 536), 0)
    expect(linkBandwidth({ gen: 5, width: 4 }, 128)).toBeLessThan(linkBandwidth({ gen: 5, width: 4 }, 256))
    expect(() => linkBandwidth({ gen: 4, width: 4 }, 300)).toThrow(RangeError)
    expect(() => linkBandwidth({ gen: 9 as 1, width: 4 })).toThrow(RangeError)
  })

  it('estimates the time of the busiest link direction or memory, and names it', () => {
    const f = fabric(undefined, { defaultLink: { gen: 3, width: 8 } })
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), { ...ep('fast'), link: { gen: 5, width: 16 } })
    f.addEndpoint(hb.addRootPort({ name: 'rp1' }), ep('slow'))
    f.enumerate()
    const t = f.traffic
    expect(t.links.map((l) => [l.device.name, l.spec.gen, l.spec.width, l.specified])).toEqual([
      ['fast', 5, 16, true],
      ['slow', 3, 8, false],
    ])
    expect(t.estimate()).toEqual({ seconds: 0, bottleneck: 'idle', resources: [] })
    t.linkBytes[0] = 1e9 // fast, up
    t.linkBytes[3] = 1e9 // slow, down
    const e = t.estimate()
    expect(e.bottleneck).toBe('link slow down')
    expect(e.seconds).toBeCloseTo(1e9 / linkBandwidth({ gen: 3, width: 8 }), 9)
    expect(e.resources.map((r) => r.name)).toEqual(['link slow down', 'link fast up'])
    // a memory with a bandwidth joins the candidates (here: none, the fabric has no memory)
    expect(t.estimate({ memoryBandwidth: { host: 1 } }).bottleneck).toBe('link slow down')
    t.reset()
    expect(t.report().dmas).toBe(0)
    expect(t.linkBytes.every((b) => b === 0)).toBe(true)
  })

  it('counts memory by region and kind; host DRAM bandwidth can be the bottleneck', () => {
    const { fabric: f, physical } = memoryFabric([{ name: 'cmb', size: 1 << 16 }])
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), { ...ep('n'), link: { gen: 5, width: 16 } })
    f.enumerate()
    const t = f.traffic
    const hostSlot = f.regionSlot(physical.region('host').base)
    t.chargeMemory(hostSlot, 1, 3e9)
    t.chargeMemory(hostSlot, 2, 1e9)
    t.chargeMemory(f.regionSlot(physical.region('cmb').base + 10), 2, 5)
    t.linkBytes[0] = 1e9
    const r = t.report()
    expect(r.hostDram).toEqual({ read: 3e9, write: 1e9 })
    expect(r.memory.cmb).toEqual({ kind: 'device', read: 0, write: 5 })
    expect(t.estimate().bottleneck).toBe('link n up')
    const e = t.estimate({ memoryBandwidth: { host: 20e9 } })
    expect(e.bottleneck).toBe('memory host')
    expect(e.seconds).toBeCloseTo(4e9 / 20e9, 9)
  })
})
