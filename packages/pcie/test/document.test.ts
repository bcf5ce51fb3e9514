// Topology documents: a valid one builds the fabric it says; a bad one gets an error that
// names the path of the offending value.
import { describe, expect, it } from 'vitest'
import { loadTopology, PcieError, parseTopology } from '../src/index.js'

const doc = () => ({
  cpu: { vendor: 'intel', family: 6 },
  hostMemory: '4 MiB',
  hostBridges: [
    {
      name: 'hb0',
      vendorId: '0x8086',
      deviceId: '0x2020',
      endpoints: [{ name: 'ioat', device: 4, functions: [{ vendorId: '0x8086', deviceId: '0x0b00', classCode: '0x088000' }] }],
      rootPorts: [
        {
          name: 'rp0',
          link: { gen: 4, width: 16 },
          switch: {
            name: 'sw0',
            link: { gen: 4, width: 16 },
            downstreamPorts: [
              {
                name: 'dsp0',
                acs: { requestRedirect: true },
                endpoint: {
                  name: 'nvme0',
                  link: { gen: 4, width: 4 },
                  functions: [
                    {
                      vendorId: '0x1b36',
                      deviceId: 16,
                      classCode: '0x010802',
                      bars: [
                        { index: 0, size: '16 KiB', kind: 'registers' },
                        { index: 2, size: '2MiB', kind: 'memory', region: 'nvme0-cmb' },
                      ],
                      msix: { vectors: 65, bar: 0, tableOffset: 8192, pbaOffset: 12288 },
                      sriov: { totalVfs: 4, vfDeviceId: '0x0011' },
                    },
                  ],
                },
              },
              { name: 'dsp1' },
            ],
          },
        },
      ],
    },
  ],
})

const error = (input: unknown): string => {
  try {
    loadTopology(input)
  } catch (e) {
    expect(e).toBeInstanceOf(PcieError)
    expect((e as PcieError).code).toBe('PCIE_BAD_TOPOLOGY')
    return (e as Error).message
  }
  return 'loaded'
}

describe('topology documents', () => {
  it('builds and enumerates what the document describes, with memory for its memory BARs', () => {
    const f = loadTopology(JSON.stringify(doc()))
    expect(f.render()).toBe(
      [
        '-[0000:00]-+-00.0  hb0 [8086:2020]',
        '           +-01.0-[01-04]----00.0-[02-04]--+-00.0-[03]----00.0  nvme0 [1b36:0010]',
        '           |                               \\-01.0-[04]--',
        '           \\-04.0  ioat [8086:0b00]',
      ].join('\n'),
    )
    const nvme0 = f.get('nvme0')
    expect(nvme0.bars.map((b) => [b.index, b.size, b.kind])).toEqual([
      [0, 16384, 'registers'],
      [2, 2 ** 21, 'memory'],
    ])
    expect(f.physical!.region('nvme0-cmb').size).toBe(2 ** 21)
    expect(f.physical!.region('host').size).toBe(4 * 2 ** 20)
    expect(nvme0.msix!.vectors).toBe(65)
    expect(f.get('dsp0').hasAcsRedirect()).toBe(true)
    expect(f.links.map((l) => `${l.device.name} gen${l.spec.gen} x${l.spec.width}`)).toEqual(['sw0 gen4 x16', 'nvme0 gen4 x4'])
    // a register BAR's model is attached from code
    nvme0.setRegisterHandler(0, { read: () => 0x1234, write: () => {} })
    expect(f.mmioRead(f.barAddress(nvme0, 0), 4)).toBe(0x1234)
  })

  it.each([
    ['not JSON', '{', /^not JSON/],
    ['no host bridges', { hostBridges: [] }, /^hostBridges: /],
    ['an unknown key (a typo)', (() => { const d = doc(); (d.hostBridges[0]!.rootPorts[0] as Record<string, unknown>).lnk = {}; return d })(), /^hostBridges\[0\]\.rootPorts\[0\]: .*lnk/],
    ['a bad hex ID', (() => { const d = doc(); d.hostBridges[0]!.vendorId = '8086'; return d })(), /^hostBridges\[0\]\.vendorId: /],
    ['an ID out of range', (() => { const d = doc(); (d.hostBridges[0] as Record<string, unknown>).deviceId = 0x10000; return d })(), /^hostBridges\[0\]\.deviceId: /],
    ['a link of gen 7', (() => { const d = doc(); (d.hostBridges[0]!.rootPorts[0]!.link as Record<string, unknown>).gen = 7; return d })(), /^hostBridges\[0\]\.rootPorts\[0\]\.link\.gen: /],
    ['a size with a bad unit', (() => { const d = doc(); d.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.endpoint!.functions[0]!.bars[1]!.size = '2 MB'; return d })(),
      /^hostBridges\[0\]\.rootPorts\[0\]\.switch\.downstreamPorts\[0\]\.endpoint\.functions\[0\]\.bars\[1\]\.size: must be a byte count/],
    ['a BAR size not a power of two (found by the builder)', (() => { const d = doc(); d.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.endpoint!.functions[0]!.bars[0]!.size = '12 KiB'; return d })(),
      /^hostBridges\[0\]\.rootPorts\[0\]\.switch\.downstreamPorts\[0\]\.endpoint: nvme0: BAR 0 size 12288 is not a power of two/],
    ['a port with both a switch and an endpoint', (() => { const d = doc(); (d.hostBridges[0]!.rootPorts[0] as Record<string, unknown>).endpoint = { name: 'x', functions: [{ vendorId: 1, deviceId: 1 }] }; return d })(), /^hostBridges\[0\]\.rootPorts\[0\]: a port has a switch or an endpoint/],
    ['a name used twice', (() => { const d = doc(); d.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[1]!.name = 'dsp0'; return d })(), /^hostBridges\[0\]\.rootPorts\[0\]\.switch: name 'dsp0' is used twice/],
    ['MSI-X past its BAR', (() => { const d = doc(); d.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.endpoint!.functions[0]!.msix!.pbaOffset = 16376; return d })(), /endpoint: msix: the PBA at 16376 runs past/],
    ['a misaligned MSI-X offset', (() => { const d = doc(); d.hostBridges[0]!.rootPorts[0]!.switch.downstreamPorts[0]!.endpoint!.functions[0]!.msix!.pbaOffset = 12290; return d })(), /endpoint: msix: the table and PBA offsets must be multiples of 8/],
    ['a cpu vendor we do not know', (() => { const d = doc(); (d.cpu as Record<string, unknown>).vendor = 'via'; return d })(), /^cpu\.vendor: /],
  ] as const)('rejects %s, naming the path', (_name, input, message) => {
    expect(error(input)).toMatch(message)
  })

  it('parses sizes with units and IDs as numbers or hex strings', () => {
    const d = parseTopology({ hostMemory: '1 GiB', hostBridges: [{ name: 'h', vendorId: 32902, deviceId: '0x2020' }] })
    expect(d.hostMemory).toBe(2 ** 30)
    expect(d.hostBridges[0]!.vendorId).toBe(0x8086)
    expect(d.hostBridges[0]!.deviceId).toBe(0x2020)
  })
})
