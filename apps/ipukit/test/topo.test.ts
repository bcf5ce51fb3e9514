// ipukit topo, as a user runs it: the built command in a child process. The default topology
// (the one `ipukit run` builds), its JSON, the P2PDMA table, and topology documents: a valid
// one (the @ipukit/pcie README's example) and invalid ones, which are usage errors (exit 2)
// naming the path of the bad value.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { linkBandwidth } from '@ipukit/pcie'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TopoReport } from '../src/commands/topo.js'
import { ensureBuilt, errorLines, runCli, STACK_LINE } from './support/cli.js'

/** The JSON example of packages/pcie/README.md ("As a JSON document"). */
const DOCUMENT = {
  cpu: { vendor: 'intel', family: 6 },
  hostMemory: '64 MiB',
  hostBridges: [
    {
      name: 'hb0',
      vendorId: '0x8086',
      deviceId: '0x2020',
      rootPorts: [
        {
          name: 'rp0',
          link: { gen: 4, width: 16 },
          switch: {
            name: 'sw0',
            downstreamPorts: [
              {
                name: 'dsp0',
                acs: { requestRedirect: false },
                endpoint: {
                  name: 'nvme0',
                  link: { gen: 4, width: 4 },
                  functions: [
                    {
                      vendorId: '0x1b36',
                      deviceId: '0x0010',
                      classCode: '0x010802',
                      bars: [
                        { index: 0, size: '16 KiB', kind: 'registers' },
                        { index: 2, size: '64 MiB', kind: 'memory', region: 'nvme0-cmb' },
                      ],
                      msix: { vectors: 65, bar: 0, tableOffset: 8192, pbaOffset: 12288 },
                    },
                  ],
                },
              },
              { name: 'dsp1', endpoint: { name: 'nvme1', functions: [{ vendorId: '0x1b36', deviceId: '0x0010' }] } },
            ],
          },
        },
      ],
      endpoints: [],
    },
  ],
}

let dir: string
const doc = (name: string, d: unknown): string => {
  const p = join(dir, name)
  writeFileSync(p, typeof d === 'string' ? d : JSON.stringify(d, null, 2))
  return p
}

beforeAll(() => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), 'ipukit-topo-'))
}, 240_000)

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function expectUsageError(r: { code: number | null; stdout: string; stderr: string }, message: RegExp): void {
  expect(r.code).toBe(2)
  expect(r.stdout).toBe('')
  expect(r.stderr).not.toMatch(STACK_LINE)
  const lines = errorLines(r.stderr)
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(message)
}

describe('ipukit topo: the topology of ipukit run', () => {
  it('shows the tree and the IPU’s three functions with their BDFs, BARs, MSI-X and link', async () => {
    const r = await runCli(['topo'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = r.stdout
    // the lspci -tv tree: the host bridge, the root port and the multi-function IPU below it
    expect(out).toContain('-[0000:00]-+-00.0  hb0 [8086:2020]')
    expect(out).toMatch(/\\-01\.0-\[01\]--\+-00\.0 {2}nvme \[8086:1453\]/)
    expect(out).toMatch(/\+-00\.1 {2}dma \[8086:1454\]/)
    expect(out).toMatch(/\\-00\.2 {2}nic \[8086:1452\]/)
    expect(out).toMatch(/^0000:01:00\.0 {2}nvme {2}\[8086:1453\] {2}class 010802 Non-Volatile memory controller \(NVM Express\)$/m)
    expect(out).toMatch(/^0000:01:00\.1 {2}dma {2}\[8086:1454\] {2}class 080100 DMA controller$/m)
    expect(out).toMatch(/^0000:01:00\.2 {2}nic {2}\[8086:1452\] {2}class 020000 Ethernet controller$/m)
    expect(out).toMatch(/^ {4}BAR0 {2}16 KiB {2}registers {2}0x[0-9a-f]+$/m)
    expect(out).toMatch(/^ {2}MSI-X: {2}65 vectors$/m)
    expect(out).toMatch(/^ {2}link: {3}gen4 x16 below rp0 \(0000:00:01\.0\), 28\.81 GB\/s per direction/m)
    expect(out).not.toContain('P2PDMA')
  })

  it('--json: the same report as JSON', async () => {
    const r = await runCli(['topo', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout) as TopoReport
    expect(j.source).toBe('ipukit run')
    expect(j.tree).toContain('nvme [8086:1453]')
    expect(j.functions.map((f) => [f.bdf, f.name, f.classCode])).toEqual([
      ['0000:01:00.0', 'nvme', '0x010802'],
      ['0000:01:00.1', 'dma', '0x080100'],
      ['0000:01:00.2', 'nic', '0x020000'],
    ])
    const nvme = j.functions[0]!
    expect(nvme).toMatchObject({ vendorId: '0x8086', deviceId: '0x1453', msixVectors: 65 })
    expect(nvme.bars).toHaveLength(1)
    expect(nvme.bars[0]).toMatchObject({ index: 0, size: 16384, kind: 'registers', prefetchable: false, conflict: false })
    expect(nvme.bars[0]!.address).toBeGreaterThanOrEqual(2 ** 38)
    for (const f of j.functions) expect(f.link).toEqual({ port: 'rp0', portBdf: '0000:00:01.0', gen: 4, width: 16, bytesPerSecond: linkBandwidth({ gen: 4, width: 16 }), maxPayload: 256, specified: true })
    expect(j.p2p).toBeUndefined()
  })

  it('--p2p: every pair of the IPU’s functions is two steps apart, by bus address', async () => {
    const [text, json] = await Promise.all([runCli(['topo', '--p2p']), runCli(['topo', '--p2p', '--json'])])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^ {2}provider +client +distance +map type$/m)
    expect(text.stdout).toMatch(/^ {2}0000:01:00\.0 nvme +0000:01:00\.2 nic +2 +BUS_ADDR$/m)
    const j = JSON.parse(json.stdout) as TopoReport
    expect(j.p2p).toHaveLength(6)
    for (const p of j.p2p!) expect([p.distance, p.mapType]).toEqual([2, 'BUS_ADDR'])
    expect(j.p2p!.map((p) => `${p.providerName}>${p.clientName}`)).toEqual(['nvme>dma', 'nvme>nic', 'dma>nvme', 'dma>nic', 'nic>nvme', 'nic>dma'])
  })
})

describe('ipukit topo --file: a topology document', () => {
  it('shows a valid document: two NVMe endpoints under a switch', async () => {
    const path = doc('fabric.json', DOCUMENT)
    const [text, json] = await Promise.all([runCli(['topo', '--file', path, '--p2p']), runCli(['topo', '-f', path, '--p2p', '--json'])])
    expect(text.stderr).toBe('')
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('-[0000:00]-+-00.0  hb0 [8086:2020]')
    expect(text.stdout).toContain('+-00.0-[03]----00.0  nvme0 [1b36:0010]')
    expect(text.stdout).toContain('\\-01.0-[04]----00.0  nvme1 [1b36:0010]')
    expect(text.stdout).toMatch(/^ {4}BAR2 {2}64 MiB {2}memory, prefetchable \(nvme0-cmb\) {2}0x[0-9a-f]+$/m)
    expect(text.stdout).toMatch(/gen4 x4 below dsp0 \(0000:02:00\.0\)/)
    expect(json.code).toBe(0)
    const j = JSON.parse(json.stdout) as TopoReport
    expect(j.source).toBe(path)
    expect(j.functions.map((f) => [f.bdf, f.name])).toEqual([
      ['0000:03:00.0', 'nvme0'],
      ['0000:04:00.0', 'nvme1'],
    ])
    expect(j.functions[0]!.bars.map((b) => [b.index, b.size, b.kind, b.region])).toEqual([
      [0, 16384, 'registers', null],
      [2, 64 << 20, 'memory', 'nvme0-cmb'],
    ])
    // nvme1 names no link: the fabric's default applies
    expect(j.functions[1]!.link).toMatchObject({ port: 'dsp1', specified: false })
    // A, DSP0, USP, DSP1, B: distance 4 through the switch
    expect(j.p2p!.map((p) => [p.providerName, p.clientName, p.distance, p.mapType])).toEqual([
      ['nvme0', 'nvme1', 4, 'BUS_ADDR'],
      ['nvme1', 'nvme0', 4, 'BUS_ADDR'],
    ])
  })

  it('shows ACS redirect and an unsupported host bridge in the P2PDMA table', async () => {
    const acs = structuredClone(DOCUMENT)
    acs.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.acs = { requestRedirect: true }
    const none = structuredClone(acs)
    none.cpu.vendor = 'other'
    none.hostBridges[0]!.deviceId = '0x1234'
    const [thru, notSupported] = await Promise.all([runCli(['topo', '-f', doc('acs.json', acs), '--p2p', '--json']), runCli(['topo', '-f', doc('none.json', none), '--p2p'])])
    expect((JSON.parse(thru.stdout) as TopoReport).p2p!.map((p) => [p.distance, p.mapType])).toEqual([
      [4, 'THRU_HOST_BRIDGE'],
      [4, 'THRU_HOST_BRIDGE'],
    ])
    expect(notSupported.code).toBe(0)
    expect(notSupported.stdout).toMatch(/^ {2}0000:03:00\.0 nvme0 +0000:04:00\.0 nvme1 +- +NOT_SUPPORTED$/m)
  })

  it('an invalid document is a usage error (exit 2) naming the path of the bad value', async () => {
    const badBar = structuredClone(DOCUMENT)
    const fn0 = badBar.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.endpoint.functions[0]! as { bars: { size: string | number }[] }
    fn0.bars[0]!.size = 12288
    const badLink = structuredClone(DOCUMENT)
    ;(badLink.hostBridges[0]!.rootPorts[0]!.link as { gen: number }).gen = 7
    const typo = { ...DOCUMENT, hostBridges: [{ ...DOCUMENT.hostBridges[0]!, rootPort: [] }] }
    const paths = { badBar: doc('bad-bar.json', badBar), badLink: doc('bad-link.json', badLink), typo: doc('typo.json', typo), notJson: doc('not.json', '{ "cpu": ') }
    const [bar, link, key, notJson, missing] = await Promise.all([
      runCli(['topo', '--file', paths.badBar]),
      runCli(['topo', '--file', paths.badLink, '--json']),
      runCli(['topo', '--file', paths.typo]),
      runCli(['topo', '--file', paths.notJson]),
      runCli(['topo', '--file', join(dir, 'missing.json')]),
    ])
    const at = (p: string) => p.replace(/[.[\]]/g, '\\$&')
    expectUsageError(bar, new RegExp(`^ipukit: topo: --file ${at(paths.badBar)}: hostBridges\\[0\\]\\.rootPorts\\[0\\]\\.switch\\.downstreamPorts\\[0\\]\\.endpoint: nvme0: BAR 0 size 12288 is not a power of two$`))
    expectUsageError(link, new RegExp(`^ipukit: topo: --file ${at(paths.badLink)}: hostBridges\\[0\\]\\.rootPorts\\[0\\]\\.link\\.gen: must be a PCIe generation, 1 to 6$`))
    expectUsageError(key, /: hostBridges\[0\]: Unrecognized key: "rootPort"$/)
    expectUsageError(notJson, /^ipukit: topo: --file .*not\.json: not JSON: /)
    expectUsageError(missing, /^ipukit: topo: --file .*missing\.json: no such file$/)
  })

  it('answers bad flags with exit code 2 and one line', async () => {
    const [unknown, noPath, extra] = await Promise.all([runCli(['topo', '--bogus']), runCli(['topo', '--file']), runCli(['topo', 'extra'])])
    expectUsageError(unknown, /unknown option '--bogus'/)
    expectUsageError(noPath, /option '-f, --file <path>' argument missing/)
    expectUsageError(extra, /too many arguments for 'topo'/)
  })
})
