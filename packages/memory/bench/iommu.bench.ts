// IOMMU translation rate: random 4 KiB IOVAs over a hot table (4096 mapped pages), one
// translation per DMA into a reused iovec list. Beside it, the same lookups in a JS Map
// (the obvious page table) and a flat typed-array lookup (the least work possible).
import { allocationPerCall, machine, measure, median, method, printSize, save } from '@ipukit/bench-utils'
import { test } from 'vitest'
import { Access, createPhysicalMemory, Iommu, IoVecList } from '../src/index.js'

test('iommu translate', async () => {
  const pm = createPhysicalMemory({ hostSize: 32 << 20, ipuSize: 2 << 20, iobuf: { smallCount: 8, largeCount: 2 } })
  const iommu = new Iommu(pm)
  const rid = 0x0100
  const PAGES = 4096
  const base = 0x7f00_0000_0000 // a high IOVA, as a real driver's
  const map = new Map<number, number>()
  const flat = new Int32Array(PAGES)
  for (let i = 0; i < PAGES; i++) {
    const hp = (i * 2654435761) % PAGES
    iommu.map(rid, base + i * 4096, hp * 4096, 4096, Access.Read | Access.Write)
    map.set(base / 4096 + i, hp * 4 + 3)
    flat[i] = hp * 4 + 3
  }
  const N = 4096
  const iovas = new Float64Array(N)
  for (let i = 0; i < N; i++) iovas[i] = base + ((i * 7919) % PAGES) * 4096 + ((i * 13) % 64) * 64
  const out = new IoVecList(4)
  const hostBase = pm.region('host').base
  let k = 0
  const one = () => {
    out.clear()
    iommu.translate(rid, iovas[k++ & (N - 1)]!, 512, Access.Read, out)
  }
  const OPS = 1000
  const r = measure(OPS, [
    { name: 'ipukit Iommu.translate (512 B DMA)', kind: 'ipukit', run: () => { for (let i = 0; i < OPS; i++) one() } },
    {
      name: 'JS Map page table, same lookups',
      kind: 'peer',
      run: () => {
        for (let i = 0; i < OPS; i++) {
          const iova = iovas[k++ & (N - 1)]!
          const leaf = map.get(Math.floor(iova / 4096))!
          out.clear().push(hostBase + Math.floor(leaf / 4) * 4096 + (iova % 4096), 512)
        }
      },
    },
    {
      name: 'flat Int32Array lookup (no checks)',
      kind: 'ceiling',
      run: () => {
        for (let i = 0; i < OPS; i++) {
          const iova = iovas[k++ & (N - 1)]!
          const leaf = flat[((iova - base) / 4096) | 0]!
          out.clear().push(hostBase + (leaf >> 2) * 4096 + (iova % 4096), 512)
        }
      },
    },
  ])
  r.label = 'random 4 KiB pages, hot table'
  printSize('IOMMU translations', r, 'M ops/s')
  const rate = median(r, 'ipukit Iommu.translate (512 B DMA)')
  const bytes = await allocationPerCall(one)
  console.log(`allocation per translate: ${bytes} bytes`)
  save({
    kernel: 'iommu',
    order: 1,
    unit: 'M ops/s',
    title: 'IOMMU translate',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes: [r],
    targets: [
      { text: 'translations per second, M', value: rate, goal: 5, met: rate >= 5 },
      { text: 'heap bytes allocated per translate (steady state)', value: bytes, goal: 0, met: bytes === 0, atMost: true },
    ],
    notes: [],
  })
})
