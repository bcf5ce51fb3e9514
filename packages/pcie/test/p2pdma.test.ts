// P2PDMA distances and map types, case by case against the Linux rules
// (drivers/pci/p2pdma.c: calc_map_type_and_dist, host_bridge_whitelist,
// cpu_supports_p2pdma, pci_p2pdma_distance_many, pci_p2pmem_find_many), then a property
// against an independent oracle on random trees, then p2pmem.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type AcsSpec, type CpuSpec, calcMapTypeAndDist, FIND_MANY_MAX_CANDIDATES, HOST_BRIDGE_ALLOWLIST, P2pdma, PcieError, type PciFabric, type PciFunction } from '../src/index.js'
import { ep, fabric, fuzzRuns, memoryFabric, NVME, thrownCode } from './helpers.js'

const INTEL = (deviceId: number) => ({ vendorId: 0x8086, deviceId })
const SKYLAKE_E = INTEL(0x2020)

interface SwitchTree {
  f: PciFabric
  rp0: PciFunction
  usp: PciFunction
  dsp0: PciFunction
  dsp1: PciFunction
  a: PciFunction
  b: PciFunction
}

/** hb0 ─ rp0 ═ sw0 ─┬─ dsp0 ═ a ; └─ dsp1 ═ b, with ACS where asked. */
function switchTree(opts: { cpu?: CpuSpec; hb?: { vendorId: number; deviceId: number }; acs?: Partial<Record<'rp0' | 'usp' | 'dsp0' | 'dsp1' | 'a' | 'b', AcsSpec>> } = {}): SwitchTree {
  const f = fabric(opts.cpu)
  const hb = f.addHostBridge({ name: 'hb0', ...(opts.hb ?? SKYLAKE_E) })
  const acs = opts.acs ?? {}
  const rp0 = hb.addRootPort({ name: 'rp0', ...(acs.rp0 && { acs: acs.rp0 }) })
  const sw = f.addSwitch(rp0, {
    name: 'sw0',
    ...(acs.usp && { acs: acs.usp }),
    downstreamPorts: [{ name: 'dsp0', ...(acs.dsp0 && { acs: acs.dsp0 }) }, { name: 'dsp1', ...(acs.dsp1 && { acs: acs.dsp1 }) }],
  })
  f.addEndpoint(sw.downstream[0]!, ep('a', acs.a ? { acs: acs.a } : {}))
  f.addEndpoint(sw.downstream[1]!, ep('b', acs.b ? { acs: acs.b } : {}))
  f.enumerate()
  return { f, rp0, usp: sw.upstream, dsp0: sw.downstream[0]!, dsp1: sw.downstream[1]!, a: f.get('a'), b: f.get('b') }
}

/** hb0 ─┬─ rp0 ═ a ; └─ rp1 ═ b */
function rootPortTree(hb: { vendorId: number; deviceId: number }, cpu?: CpuSpec) {
  const f = fabric(cpu)
  const h = f.addHostBridge({ name: 'hb0', ...hb })
  f.addEndpoint(h.addRootPort({ name: 'rp0' }), ep('a'))
  f.addEndpoint(h.addRootPort({ name: 'rp1' }), ep('b'))
  f.enumerate()
  return { f, a: f.get('a'), b: f.get('b') }
}

/** two host bridges, one endpoint below a root port of each */
function twoHostBridges(hb0: { vendorId: number; deviceId: number }, hb1: { vendorId: number; deviceId: number }, cpu?: CpuSpec) {
  const f = fabric(cpu)
  const h0 = f.addHostBridge({ name: 'hb0', ...hb0 })
  const h1 = f.addHostBridge({ name: 'hb1', ...hb1, bus: 0x80 })
  f.addEndpoint(h0.addRootPort({ name: 'rp0' }), ep('a'))
  f.addEndpoint(h1.addRootPort({ name: 'rp1' }), ep('b'))
  f.enumerate()
  return { f, a: f.get('a'), b: f.get('b') }
}

describe('calc_map_type_and_dist: the canonical topologies', () => {
  it('one function with itself: distance 0, BUS_ADDR', () => {
    const { f, a } = switchTree()
    expect(f.p2pdma.mapType(a, a)).toBe('BUS_ADDR')
    expect(f.p2pdma.distance(a, a)).toBe(0)
    expect(calcMapTypeAndDist(a, a).commonBridge).toBe(a)
  })

  it('two functions of one device: distance 2 (up to the port above them), BUS_ADDR', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    const rp = hb.addRootPort({ name: 'rp0' })
    f.addEndpoint(rp, ep('nic', {}, 2))
    f.enumerate()
    const [f0, f1] = [f.get('nic.0'), f.get('nic.1')]
    expect(f0.devfn).toBe(0)
    expect(f1.devfn).toBe(1)
    const p = calcMapTypeAndDist(f0, f1)
    expect(p).toMatchObject({ mapType: 'BUS_ADDR', distance: 2 })
    expect(p.commonBridge).toBe(rp)
  })

  it('two endpoints under one switch: distance 4 (A, DSP0, USP, DSP1, B), BUS_ADDR, common bridge the upstream port', () => {
    const t = switchTree()
    const p = calcMapTypeAndDist(t.a, t.b)
    expect(p).toMatchObject({ mapType: 'BUS_ADDR', distance: 4, warnings: [] })
    expect(p.commonBridge).toBe(t.usp)
  })

  it('an endpoint and the switch port above it: distance 1', () => {
    const t = switchTree()
    expect(calcMapTypeAndDist(t.dsp0, t.a)).toMatchObject({ mapType: 'BUS_ADDR', distance: 1 })
    expect(calcMapTypeAndDist(t.a, t.dsp0)).toMatchObject({ mapType: 'BUS_ADDR', distance: 1 })
  })

  it('different root ports of an allowlisted Intel host bridge (Skylake-E 8086:2020): THRU_HOST_BRIDGE, distance 4', () => {
    const { f, a, b } = rootPortTree(SKYLAKE_E)
    const p = calcMapTypeAndDist(a, b)
    expect(p).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 4, commonBridge: null })
    expect(f.p2pdma.distance(a, b)).toBe(4)
  })

  it.each([0x2030, 0x2031, 0x2032, 0x2033, 0x2020, 0x09a2])('every Intel entry without REQ_SAME_HOST_BRIDGE passes (8086:%s)', (id) => {
    const { f, a, b } = twoHostBridges(INTEL(id), INTEL(id))
    expect(f.p2pdma.mapType(a, b)).toBe('THRU_HOST_BRIDGE')
  })

  it.each([0x3c00, 0x3c01, 0x2f00, 0x2f01])('REQ_SAME_HOST_BRIDGE entries (8086:%s) pass below one host bridge and fail across two', (id) => {
    const one = rootPortTree(INTEL(id))
    expect(one.f.p2pdma.mapType(one.a, one.b)).toBe('THRU_HOST_BRIDGE')
    const two = twoHostBridges(INTEL(id), INTEL(id))
    expect(two.f.p2pdma.mapType(two.a, two.b)).toBe('NOT_SUPPORTED')
  })

  it('different root ports of a host bridge not on the allowlist: NOT_SUPPORTED, distance -1', () => {
    const { f, a, b } = rootPortTree(INTEL(0x1234))
    const p = calcMapTypeAndDist(a, b)
    expect(p.mapType).toBe('NOT_SUPPORTED')
    expect(p.distance).toBe(4) // Linux sets *dist; distance_many turns it into -1
    expect(f.p2pdma.distance(a, b)).toBe(-1)
    expect(f.p2pdma.distanceMany(a, [b])).toBe(-1)
    expect(p.warnings.at(-1)).toMatch(/do not share an upstream bridge or whitelisted host bridge/)
    // without an ACS redirect on the path, Linux does not name the host bridge
    expect(p.warnings.some((w) => /not in P2PDMA whitelist/.test(w))).toBe(false)
  })

  it('across two host bridges, both must be allowlisted', () => {
    const mixed = twoHostBridges(SKYLAKE_E, INTEL(0x1234))
    expect(mixed.f.p2pdma.mapType(mixed.a, mixed.b)).toBe('NOT_SUPPORTED')
    expect(mixed.f.p2pdma.mapType(mixed.b, mixed.a)).toBe('NOT_SUPPORTED')
    const t = twoHostBridges(SKYLAKE_E, INTEL(0x2030))
    expect(t.f.p2pdma.mapType(t.a, t.b)).toBe('THRU_HOST_BRIDGE')
  })

  it('an AMD Zen CPU (family 0x17 and later) lets any host bridge pass; older AMD and other vendors do not', () => {
    const amdHb = { vendorId: 0x1022, deviceId: 0x1480 }
    for (const family of [0x17, 0x19, 0x1a]) {
      const t = rootPortTree(amdHb, { vendor: 'amd', family })
      expect(t.f.p2pdma.mapType(t.a, t.b), `family ${family}`).toBe('THRU_HOST_BRIDGE')
      const two = twoHostBridges(amdHb, amdHb, { vendor: 'amd', family })
      expect(two.f.p2pdma.mapType(two.a, two.b)).toBe('THRU_HOST_BRIDGE')
    }
    const older = rootPortTree(amdHb, { vendor: 'amd', family: 0x16 })
    expect(older.f.p2pdma.mapType(older.a, older.b)).toBe('NOT_SUPPORTED')
    const intel = rootPortTree(amdHb, { vendor: 'intel', family: 0x17 })
    expect(intel.f.p2pdma.mapType(intel.a, intel.b)).toBe('NOT_SUPPORTED')
    const other = rootPortTree(amdHb, { vendor: 'other', family: 0x20 })
    expect(other.f.p2pdma.mapType(other.a, other.b)).toBe('NOT_SUPPORTED')
  })

  it('the host bridge device is the first device on the root bus, if it is 00.0 or a root port', () => {
    // no 00.0 device: the first root port (now at 00.0) stands for the host bridge
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x1234, noHostBridgeDevice: true })
    const rp0 = hb.addRootPort({ name: 'rp0', ...SKYLAKE_E })
    f.addEndpoint(rp0, ep('a'))
    f.addEndpoint(hb.addRootPort({ name: 'rp1' }), ep('b'))
    f.enumerate()
    expect(hb.hostBridgeDevice()).toBe(rp0)
    expect(f.p2pdma.mapType(f.get('a'), f.get('b'))).toBe('THRU_HOST_BRIDGE')

    // first device an integrated endpoint at 03.0: no host bridge device, so not allowlisted
    const g = fabric()
    const hb2 = g.addHostBridge({ name: 'hb0', ...SKYLAKE_E, noHostBridgeDevice: true })
    hb2.addEndpoint({ ...ep('rciep'), device: 3 })
    g.addEndpoint(hb2.addRootPort({ name: 'rp0', device: 4 }), ep('a'))
    g.addEndpoint(hb2.addRootPort({ name: 'rp1', device: 5 }), ep('b'))
    g.enumerate()
    expect(hb2.hostBridgeDevice()).toBeNull()
    expect(g.p2pdma.mapType(g.get('a'), g.get('b'))).toBe('NOT_SUPPORTED')
  })

  it('root-complex integrated endpoints have no upstream bridge: no common bridge, each chain counted whole', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    hb.addEndpoint(ep('x'))
    hb.addEndpoint(ep('y'))
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), ep('z'))
    f.enumerate()
    expect(calcMapTypeAndDist(f.get('x'), f.get('y'))).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 2 })
    expect(calcMapTypeAndDist(f.get('x'), f.get('z'))).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 3 })
  })
})

describe('ACS redirect', () => {
  it('ACS Request Redirect on a downstream port on the path: THRU_HOST_BRIDGE, with the warning Linux prints', () => {
    const t = switchTree({ acs: { dsp1: { requestRedirect: true } } })
    const p = calcMapTypeAndDist(t.a, t.b)
    expect(p).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 4 })
    expect(p.acsRedirects).toEqual([t.dsp1])
    expect(p.warnings[0]).toBe(`${t.b.bdf}: ACS redirect is set between the client and provider (${t.a.bdf})`)
    expect(p.warnings[1]).toBe(`${t.b.bdf}: to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=${t.dsp1.bdf}`)
  })

  it('lists every ACS device: the provider side (walked first) then the client side', () => {
    const t = switchTree({ acs: { dsp0: { completionRedirect: true }, dsp1: { egressControl: true }, a: { requestRedirect: true } } })
    const p = calcMapTypeAndDist(t.a, t.b)
    expect(p.acsRedirects).toEqual([t.a, t.dsp0, t.dsp1])
    expect(p.warnings[1]).toMatch(new RegExp(`disable_acs_redir=${t.a.bdf};${t.dsp0.bdf};${t.dsp1.bdf}$`))
  })

  it("the common upstream bridge's own ACS counts (it is checked before the search)", () => {
    const t = switchTree({ acs: { usp: { requestRedirect: true } } })
    expect(calcMapTypeAndDist(t.a, t.b)).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', acsRedirects: [t.usp] })
  })

  it('ACS above the common bridge does not count', () => {
    const t = switchTree({ acs: { rp0: { requestRedirect: true, completionRedirect: true, egressControl: true } } })
    expect(calcMapTypeAndDist(t.a, t.b)).toMatchObject({ mapType: 'BUS_ADDR', acsRedirects: [] })
  })

  it('only RR, CR and EC redirect: Source Validation and Upstream Forwarding do not', () => {
    const t = switchTree({ acs: { dsp0: { sourceValidation: true, upstreamForwarding: true } } })
    expect(t.f.p2pdma.mapType(t.a, t.b)).toBe('BUS_ADDR')
  })

  it("a function's own ACS redirect counts even toward itself (the provider is the first `a`)", () => {
    const t = switchTree({ acs: { a: { requestRedirect: true } } })
    expect(calcMapTypeAndDist(t.a, t.a)).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 0 })
  })

  it('ACS redirect below a host bridge not on the allowlist: NOT_SUPPORTED, and Linux names the host bridge', () => {
    const t = switchTree({ hb: INTEL(0x1234), acs: { dsp0: { requestRedirect: true } } })
    const p = calcMapTypeAndDist(t.a, t.b)
    expect(p.mapType).toBe('NOT_SUPPORTED')
    expect(p.warnings).toContain(`${t.f.hostBridges[0]!.hostBridgeDevice()!.bdf}: Host bridge not in P2PDMA whitelist: 8086:1234`)
  })

  it('setting ACS control at run time (a config write) changes the answer: the cache is dropped', () => {
    const t = switchTree({ acs: { dsp1: {} } })
    expect(t.f.p2pdma.mapType(t.a, t.b)).toBe('BUS_ADDR')
    expect(t.f.p2pdma.cacheStats.misses).toBe(1)
    t.f.p2pdma.mapType(t.a, t.b)
    expect(t.f.p2pdma.cacheStats.hits).toBe(1)
    t.dsp1.setAcs({ requestRedirect: true })
    expect(t.f.p2pdma.mapType(t.a, t.b)).toBe('THRU_HOST_BRIDGE')
    t.dsp1.setAcs({})
    expect(t.f.p2pdma.mapType(t.a, t.b)).toBe('BUS_ADDR')
    expect(() => t.dsp0.setAcs({ requestRedirect: true })).toThrow(PcieError)
  })
})

describe('deeper switch trees', () => {
  //  rp0 ═ swA ─┬─ dspA0 ═ swB ─┬─ dspB0 ═ swC ─┬─ dspC0 ═ e1
  //             │               │               └─ dspC1 ═ e2
  //             │               └─ dspB1 ═ e3
  //             └─ dspA1 ═ e4
  //  rp1 ═ e5
  function deep() {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    const a = f.addSwitch(hb.addRootPort({ name: 'rp0' }), { name: 'swA', downstreamPorts: ['dspA0', 'dspA1'] })
    const b = f.addSwitch(a.downstream[0]!, { name: 'swB', downstreamPorts: ['dspB0', 'dspB1'] })
    const c = f.addSwitch(b.downstream[0]!, { name: 'swC', downstreamPorts: ['dspC0', 'dspC1'] })
    f.addEndpoint(c.downstream[0]!, ep('e1'))
    f.addEndpoint(c.downstream[1]!, ep('e2'))
    f.addEndpoint(b.downstream[1]!, ep('e3'))
    f.addEndpoint(a.downstream[1]!, ep('e4'))
    f.addEndpoint(hb.addRootPort({ name: 'rp1' }), ep('e5'))
    return f.enumerate()
  }

  it.each([
    ['e1', 'e2', 4, 'BUS_ADDR'],
    ['e1', 'e3', 6, 'BUS_ADDR'],
    ['e1', 'e4', 8, 'BUS_ADDR'],
    ['e3', 'e4', 6, 'BUS_ADDR'],
    ['e2', 'e4', 8, 'BUS_ADDR'],
    // e1's chain: e1 dspC0 swC dspB0 swB dspA0 swA rp0 (8); e5's: e5 rp1 (2)
    ['e1', 'e5', 10, 'THRU_HOST_BRIDGE'],
    ['e4', 'e5', 6, 'THRU_HOST_BRIDGE'],
  ] as const)('%s to %s: distance %i, %s (and the same the other way)', (p, c, d, type) => {
    const f = deep()
    expect(calcMapTypeAndDist(f.get(p), f.get(c))).toMatchObject({ distance: d, mapType: type })
    expect(calcMapTypeAndDist(f.get(c), f.get(p))).toMatchObject({ distance: d, mapType: type })
  })

  it('bus numbers follow depth-first enumeration', () => {
    const f = deep()
    expect(f.render()).toBe(
      [
        '-[0000:00]-+-00.0  hb0 [8086:2020]',
        '           +-01.0-[01-0a]----00.0-[02-0a]--+-00.0-[03-09]----00.0-[04-09]--+-00.0-[05-08]----00.0-[06-08]--+-00.0-[07]----00.0  e1 [1b36:0010]',
        '           |                               |                               |                               \\-01.0-[08]----00.0  e2 [1b36:0010]',
        '           |                               |                               \\-01.0-[09]----00.0  e3 [1b36:0010]',
        '           |                               \\-01.0-[0a]----00.0  e4 [1b36:0010]',
        '           \\-02.0-[0b]----00.0  e5 [1b36:0010]',
      ].join('\n'),
    )
  })
})

describe('SR-IOV virtual functions', () => {
  it('a VF answers for its PF: PF to VF 2, VF to VF 2, VF to a peer under the switch 4', () => {
    const f = fabric()
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    const sw = f.addSwitch(hb.addRootPort({ name: 'rp0' }), { name: 'sw0', downstreamPorts: ['dsp0', 'dsp1'] })
    f.addEndpoint(sw.downstream[0]!, { name: 'nvme0', functions: [{ ...NVME, sriov: { totalVfs: 4, vfDeviceId: 0x0011 } }] })
    f.addEndpoint(sw.downstream[1]!, ep('nvme1'))
    f.enumerate()
    const pf = f.get('nvme0')
    pf.config.write(0x100 + 0x10, 2, 2) // NumVFs
    pf.config.write(0x100 + 0x08, 2, 1) // VF Enable
    expect(pf.numVfs).toBe(2)
    const [v0, v1] = [f.get('nvme0v0'), f.get('nvme0v1')]
    expect(v0.rid).toBe(pf.rid + 1)
    expect(v1.rid).toBe(pf.rid + 2)
    expect(v0.upstreamBridge()).toBe(sw.downstream[0])
    expect(calcMapTypeAndDist(pf, v0)).toMatchObject({ distance: 2, mapType: 'BUS_ADDR' })
    expect(calcMapTypeAndDist(v0, v1)).toMatchObject({ distance: 2, mapType: 'BUS_ADDR' })
    expect(calcMapTypeAndDist(v1, f.get('nvme1'))).toMatchObject({ distance: 4, mapType: 'BUS_ADDR' })
  })
})

// ---- property: against an oracle built from depths and the lowest common ancestor ----

interface TreeShape {
  /** per root port: a nested list of switches, each holding children or endpoints */
  ports: Node[]
}
type Node = { kind: 'ep'; fns: number } | { kind: 'sw'; down: Node[] }

const node: fc.Memo<Node> = fc.memo((n) =>
  n <= 1
    ? fc.record({ kind: fc.constant('ep' as const), fns: fc.integer({ min: 1, max: 3 }) })
    : fc.oneof(
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('ep' as const), fns: fc.integer({ min: 1, max: 3 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('sw' as const), down: fc.array(node(n - 1), { minLength: 1, maxLength: 3 }) }) },
      ),
)

function build(shape: TreeShape, acsEvery: number, hb: { vendorId: number; deviceId: number }): PciFabric {
  const f = fabric()
  const h = f.addHostBridge({ name: 'hb0', ...hb })
  let n = 0
  const acsNext = (): AcsSpec | undefined => (acsEvery > 0 && n++ % acsEvery === 0 ? { requestRedirect: true } : undefined)
  let names = 0
  const place = (port: PciFunction, nd: Node) => {
    if (nd.kind === 'ep') {
      const acs = acsNext()
      f.addEndpoint(port, { name: `e${names++}`, functions: Array.from({ length: nd.fns }, (_, i) => ({ ...NVME, name: `e${names}f${i}`, ...(acs && { acs }) })) })
      return
    }
    const sw = f.addSwitch(port, { name: `s${names++}`, downstreamPorts: nd.down.map(() => {
      const acs = acsNext()
      return { name: `p${names++}`, ...(acs && { acs }) }
    }) })
    nd.down.forEach((c, i) => place(sw.downstream[i]!, c))
  }
  shape.ports.forEach((nd, i) => place(h.addRootPort({ name: `rp${i}` }), nd))
  return f.enumerate()
}

/** The chain x, up(x), ... as a list. */
function chain(x: PciFunction): PciFunction[] {
  const out: PciFunction[] = []
  for (let y: PciFunction | null = x; y !== null; y = y.upstreamBridge()) out.push(y)
  return out
}

describe('property: random trees against an oracle', () => {
  it('distance = depth to the lowest common ancestor on both sides (or both chains); BUS_ADDR iff no ACS on the two half-paths; symmetric; cached = uncached', () => {
    fc.assert(
      fc.property(
        fc.record({ ports: fc.array(node(4), { minLength: 1, maxLength: 3 }) }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }),
        (shape, acsEvery, allowlisted, pairs) => {
          const f = build(shape, acsEvery, allowlisted ? SKYLAKE_E : INTEL(0x1234))
          const all = f.functions.filter((x) => x.kind !== 'host-bridge')
          for (const [i, j] of pairs) {
            const p = all[i % all.length]!
            const c = all[j % all.length]!
            const cp = chain(p)
            const cc = chain(c)
            const li = cp.findIndex((x) => cc.includes(x))
            let distance: number
            let acs: number
            if (li < 0) {
              distance = cp.length + cc.length
              acs = 0 // not consulted when there is no common bridge
            } else {
              const l = cp[li]!
              distance = li + cc.indexOf(l)
              acs = cp.slice(0, li + 1).filter((x) => x.hasAcsRedirect()).length + cc.slice(0, cc.indexOf(l)).filter((x) => x.hasAcsRedirect()).length
            }
            const expected = li >= 0 && acs === 0 ? 'BUS_ADDR' : allowlisted ? 'THRU_HOST_BRIDGE' : 'NOT_SUPPORTED'
            const got = calcMapTypeAndDist(p, c)
            expect(got.distance).toBe(distance)
            expect(got.mapType).toBe(expected)
            expect(calcMapTypeAndDist(c, p)).toMatchObject({ distance, mapType: expected })
            expect(f.p2pdma.mapType(p, c)).toBe(expected)
            expect(f.p2pdma.distance(p, c)).toBe(expected === 'NOT_SUPPORTED' ? -1 : distance)
            expect(f.p2pdma.distance(p, c)).toBe(expected === 'NOT_SUPPORTED' ? -1 : distance) // from the cache
          }
        },
      ),
      { numRuns: fuzzRuns(150) },
    )
  })
})

describe('pci_p2pdma_distance_many and pci_p2pmem_find_many', () => {
  function providers() {
    const { fabric: f, physical } = memoryFabric([
      { name: 'cmb0', size: 1 << 16 },
      { name: 'cmb1', size: 1 << 16 },
      { name: 'cmb2', size: 1 << 16 },
    ])
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    const sw = f.addSwitch(hb.addRootPort({ name: 'rp0' }), { name: 'sw0', downstreamPorts: ['d0', 'd1', 'd2'] })
    const withCmb = (name: string, region: string) => ({ name, functions: [{ ...NVME, bars: [{ index: 2, size: 1 << 16, kind: 'memory' as const, region }] }] })
    f.addEndpoint(sw.downstream[0]!, withCmb('n0', 'cmb0'))
    f.addEndpoint(sw.downstream[1]!, withCmb('n1', 'cmb1'))
    f.addEndpoint(sw.downstream[2]!, ep('n2'))
    f.addEndpoint(hb.addRootPort({ name: 'rp1' }), withCmb('far', 'cmb2'))
    f.enumerate()
    return { f, physical, n0: f.get('n0'), n1: f.get('n1'), n2: f.get('n2'), far: f.get('far') }
  }

  it('sums the distances; -1 with no clients or any NOT_SUPPORTED client', () => {
    const { f, n0, n1, n2, far } = providers()
    expect(f.p2pdma.distanceMany(n0, [n0, n1, n2])).toBe(0 + 4 + 4)
    expect(f.p2pdma.distanceMany(n0, [n1, far])).toBe(4 + 2 + 4) // far: n0 dsp usp rp0 | far rp1
    expect(f.p2pdma.distanceMany(n0, [])).toBe(-1)
  })

  it('verbose: reports every warning through warn, goes on past a failure, and still answers -1', () => {
    const warnings: string[] = []
    const t = switchTree({ hb: INTEL(0x1234), acs: { dsp1: { requestRedirect: true } } })
    const q = new P2pdma(t.f, { warn: (m) => warnings.push(m) })
    expect(q.distanceMany(t.a, [t.a, t.b], true)).toBe(-1)
    expect(q.distanceMany(t.a, [t.a, t.b])).toBe(-1)
    expect(q.distanceMany(t.a, [t.a, t.dsp0])).toBe(1)
    expect(warnings.map((w) => w.slice(w.indexOf(': ') + 2))).toEqual([
      expect.stringMatching(/^ACS redirect is set/),
      expect.stringMatching(/^to disable ACS redirect/),
      expect.stringMatching(/^Host bridge not in P2PDMA whitelist: 8086:1234/),
      expect.stringMatching(/^cannot be used for peer-to-peer DMA/),
    ])
  })

  it('find_many: the published provider closest to all clients; unpublished and unreachable ones never', () => {
    const { f, n0, n1, n2, far } = providers()
    const p = f.p2pdma
    expect(p.findMany([n2])).toBeNull() // nothing published
    for (const x of [n0, n1, far]) p.addResource(x, 2)
    expect(p.findMany([n2])).toBeNull() // added but not published
    p.publish(far, true)
    expect(p.findMany([n2])).toBe(far) // the only one: distance 3 + 3
    p.publish(n1, true)
    expect(p.findMany([n2])).toBe(n1) // 4 beats 6
    expect(p.findMany([n1, n2])).toBe(n1) // 0 + 4
    expect(p.hasP2pmem(n0)).toBe(false)
    expect(p.findMany([])).toBeNull()
  })

  it('find_many: ties are broken by the random source, among the first 512 equally close providers in bus order', () => {
    // 600 providers, all at distance 8 from a client on another root port: 3 leaf switches
    // of 25 ports, each port an 8-function endpoint with a 4 KiB memory BAR per function
    const regions = Array.from({ length: 600 }, (_, i) => ({ name: `m${i}`, size: 4096 }))
    const { fabric: f } = memoryFabric(regions, { hostSize: 1 << 16 })
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    const top = f.addSwitch(hb.addRootPort({ name: 'rp0' }), { name: 'top', downstreamPorts: ['t0', 't1', 't2'] })
    let m = 0
    top.downstream.forEach((port, s) => {
      const leaf = f.addSwitch(port, { name: `leaf${s}`, downstreamPorts: Array.from({ length: 25 }, (_, i) => `l${s}.${i}`) })
      leaf.downstream.forEach((dp, i) => {
        f.addEndpoint(dp, {
          name: `x${s}.${i}`,
          functions: Array.from({ length: 8 }, () => ({ ...NVME, name: `f${m}`, bars: [{ index: 0, size: 4096, kind: 'memory' as const, region: `m${m++}` }] })),
        })
      })
    })
    f.addEndpoint(hb.addRootPort({ name: 'rp1' }), ep('client'))
    f.enumerate()
    const client = f.get('client')
    const published = f.functionsInBusOrder().filter((x) => x.name.startsWith('f'))
    expect(published).toHaveLength(600)
    for (const x of published) {
      f.p2pdma.addResource(x, 0)
      f.p2pdma.publish(x, true)
      expect(f.p2pdma.distance(x, client)).toBe(8)
    }
    let r = 0
    const q = new P2pdma(f, { random: () => r })
    for (const x of published) {
      q.addResource(x, 0)
      q.publish(x, true)
    }
    r = 0
    expect(q.findMany([client])).toBe(published[0])
    r = 0.5
    expect(q.findMany([client])).toBe(published[256])
    r = 0.999999
    expect(q.findMany([client])).toBe(published[511]) // not published[599]: the 513th and later are not weighed
    // with a real random source, every pick is among the first 512
    const seen = new Set<PciFunction>()
    for (let i = 0; i < 3000; i++) seen.add(f.p2pdma.findMany([client])!)
    expect(Math.max(...[...seen].map((x) => published.indexOf(x)))).toBeLessThan(512)
    expect(seen.size).toBeGreaterThan(400)
  })
})

describe('p2pmem', () => {
  function one() {
    const { fabric: f, physical } = memoryFabric([{ name: 'cmb', size: 1 << 20 }])
    const hb = f.addHostBridge({ name: 'hb0', ...SKYLAKE_E })
    f.addEndpoint(hb.addRootPort({ name: 'rp0' }), {
      name: 'nvme0',
      functions: [{ ...NVME, bars: [{ index: 0, size: 16384, kind: 'registers' }, { index: 2, size: 1 << 20, kind: 'memory', region: 'cmb' }] }],
    })
    f.enumerate()
    return { f, physical, nvme0: f.get('nvme0') }
  }

  it('add_resource checks its BAR, offset and size like Linux (-EINVAL cases)', () => {
    const { f, nvme0 } = one()
    const p = f.p2pdma
    const code = thrownCode
    expect(code(() => p.addResource(nvme0, 4))).toBe('PCIE_P2PMEM') // no such BAR
    expect(code(() => p.addResource(nvme0, 0))).toBe('PCIE_P2PMEM') // a register BAR
    expect(code(() => p.addResource(nvme0, 2, 0, 1 << 20))).toBe('PCIE_P2PMEM') // offset >= len
    expect(code(() => p.addResource(nvme0, 2, 4096 * 200, 4096 * 100))).toBe('PCIE_P2PMEM') // past the end
    expect(code(() => p.addResource(nvme0, 2, 100))).toBe('PCIE_P2PMEM') // not page granular
    expect(p.info(nvme0)).toBeUndefined()
    p.addResource(nvme0, 2, 4096 * 16, 0) // the first 64 KiB
    p.addResource(nvme0, 2, 0, 4096 * 128) // the second half (size 0: the rest)
    expect(code(() => p.addResource(nvme0, 2, 4096, 4096 * 130))).toBe('PCIE_P2PMEM') // overlaps
    expect(p.info(nvme0)).toEqual({ size: 4096 * 16 + (1 << 19), available: 4096 * 16 + (1 << 19), published: false })
  })

  it('alloc and free whole pages, and translate to bus addresses', () => {
    const { f, physical, nvme0 } = one()
    const p = f.p2pdma
    expect(p.alloc(nvme0, 4096)).toBe(-1) // no p2pmem yet
    p.addResource(nvme0, 2)
    const cmb = physical.region('cmb')
    const bar = f.barAddress(nvme0, 2)
    const a = p.alloc(nvme0, 1)
    const b = p.alloc(nvme0, 4097)
    expect(a).toBe(cmb.base)
    expect(b).toBe(cmb.base + 4096)
    expect(p.info(nvme0)!.available).toBe((1 << 20) - 3 * 4096)
    expect(p.virtToBus(nvme0, b)).toBe(bar + 4096)
    expect(p.virtToBus(nvme0, b + 5)).toBe(bar + 4096 + 5)
    expect(() => p.free(nvme0, b, 4096)).toThrow(/freeing 4096 bytes of a 8192-byte allocation/)
    expect(() => p.free(nvme0, b + 4096, 4096)).toThrow(PcieError)
    expect(() => p.virtToBus(nvme0, physical.region('host').base)).toThrow(/not in nvme0's p2pmem/)
    p.free(nvme0, b, 4097)
    p.free(nvme0, a, 1)
    expect(p.info(nvme0)!.available).toBe(1 << 20)
    // exhaustion answers -1, like Linux's NULL
    expect(p.alloc(nvme0, 1 << 20)).toBe(cmb.base)
    expect(p.alloc(nvme0, 4096)).toBe(-1)
    // memory decoding off: the BAR has no bus address
    nvme0.config.write(0x04, 2, 0x4)
    expect(() => p.virtToBus(nvme0, cmb.base)).toThrow(/does not decode/)
  })
})

describe('the allowlist table', () => {
  it('is the table from drivers/pci/p2pdma.c', () => {
    expect(HOST_BRIDGE_ALLOWLIST.map((e) => [e.vendor, e.device, e.sameHostBridge])).toEqual([
      [0x8086, 0x3c00, true],
      [0x8086, 0x3c01, true],
      [0x8086, 0x2f00, true],
      [0x8086, 0x2f01, true],
      [0x8086, 0x2030, false],
      [0x8086, 0x2031, false],
      [0x8086, 0x2032, false],
      [0x8086, 0x2033, false],
      [0x8086, 0x2020, false],
      [0x8086, 0x09a2, false],
    ])
    expect(FIND_MANY_MAX_CANDIDATES).toBe(4096 / 8)
  })
})
