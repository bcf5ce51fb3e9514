// P2PDMA distance queries on a 1015-endpoint fabric (5 PCI domains, 7 root ports each, a
// 29-port switch below every root port, an NVMe endpoint below every switch port). A
// query set of 64 providers x 1015 clients is answered once (filling the cache), then
// timed: P2pdma.distance() with the cache, calcMapTypeAndDist() without it (the walk
// Linux's pci_p2pdma_distance_many does on every call), and a Map lookup of a precomputed
// answer (the ceiling: the cache's bare data structure).
import { machine, measure, median, method, printSize, save } from '@ipukit/bench-utils'
import { test } from 'vitest'
import { calcMapTypeAndDist, PciFabric, type PciFunction } from '../src/index.js'

test('p2pdma distance', () => {
  const f = new PciFabric()
  const eps: PciFunction[] = []
  for (let d = 0; d < 5; d++) {
    const hb = f.addHostBridge({ name: `hb${d}`, vendorId: 0x8086, deviceId: 0x2020, domain: d })
    for (let r = 0; r < 7; r++) {
      const sw = f.addSwitch(hb.addRootPort({ name: `rp${d}.${r}` }), { name: `sw${d}.${r}`, downstreamPorts: Array.from({ length: 29 }, (_, k) => `dsp${d}.${r}.${k}`) })
      sw.downstream.forEach((p, k) => f.addEndpoint(p, { name: `nvme${d}.${r}.${k}`, functions: [{ vendorId: 0x1b36, deviceId: 0x0010 }] }))
    }
  }
  f.enumerate()
  for (const x of f.functions) if (x.name.startsWith('nvme')) eps.push(x)
  console.log(`${eps.length} endpoints, ${f.functions.length} functions`)
  const providers = Array.from({ length: 64 }, (_, i) => eps[(i * 977) % eps.length]!)
  const N = 1 << 16
  const pi = new Int32Array(N)
  const ci = new Int32Array(N)
  for (let i = 0; i < N; i++) {
    pi[i] = (i * 2654435761) & 63
    ci[i] = (i * 40503) % eps.length
  }
  const exact = new Map<number, number>()
  for (let i = 0; i < N; i++) {
    const d = f.p2pdma.distance(providers[pi[i]!]!, eps[ci[i]!]!)
    exact.set(pi[i]! * 65536 + ci[i]!, d)
  }
  const OPS = 1000
  let k = 0
  let sink = 0
  const r = measure(OPS, [
    {
      name: 'ipukit P2pdma.distance (cached)',
      kind: 'ipukit',
      run: () => {
        for (let i = 0; i < OPS; i++, k++) sink += f.p2pdma.distance(providers[pi[k & (N - 1)]!]!, eps[ci[k & (N - 1)]!]!)
      },
    },
    {
      name: 'calcMapTypeAndDist (the walk, uncached)',
      kind: 'peer',
      run: () => {
        for (let i = 0; i < OPS; i++, k++) sink += calcMapTypeAndDist(providers[pi[k & (N - 1)]!]!, eps[ci[k & (N - 1)]!]!).distance
      },
    },
    {
      name: 'Map.get of a precomputed answer',
      kind: 'ceiling',
      run: () => {
        for (let i = 0; i < OPS; i++, k++) sink += exact.get(pi[k & (N - 1)]! * 65536 + ci[k & (N - 1)]!)!
      },
    },
  ])
  r.label = '64 providers x 1015 clients'
  printSize('P2PDMA distance queries', r, 'M ops/s')
  const rate = median(r, 'ipukit P2pdma.distance (cached)')
  console.log(`(checksum ${sink})`)
  save({
    kernel: 'p2pdma',
    order: 2,
    unit: 'M ops/s',
    title: 'P2PDMA distance queries (1015 endpoints)',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes: [r],
    targets: [{ text: 'cached distance queries per second, M', value: rate, goal: 1, met: rate >= 1 }],
    notes: [],
  })
})
