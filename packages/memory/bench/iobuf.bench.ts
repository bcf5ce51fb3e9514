// Buffer pool get + put (one pair per operation) from one thread's cache, beside a plain
// JS array used as a free list (no sharing, no ownership checks: the floor).
import { allocationPerCall, machine, measure, median, method, printSize, save } from '@ipukit/bench-utils'
import { test } from 'vitest'
import { createPhysicalMemory, IobufChannel } from '../src/index.js'

test('iobuf get and put', async () => {
  const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 32 << 20 })
  const ch = new IobufChannel(pm)
  const free: number[] = []
  for (let i = 0; i < 128; i++) free.push(pm.layout.iobuf.smallBase + i * 8192)
  const held = new Float64Array(8)
  const pair = () => {
    const a = ch.get(4096)
    ch.put(a)
  }
  // a few outstanding buffers, as a data path has
  const burst = () => {
    for (let i = 0; i < 8; i++) held[i] = ch.get(4096)
    for (let i = 0; i < 8; i++) ch.put(held[i]!)
  }
  const OPS = 1000
  const r = measure(OPS, [
    { name: 'ipukit IobufChannel get + put', kind: 'ipukit', run: () => { for (let i = 0; i < OPS; i++) pair() } },
    { name: 'ipukit, 8 outstanding (get x8, put x8)', kind: 'ipukit', run: () => { for (let i = 0; i < OPS / 8; i++) burst() } },
    {
      name: 'JS array free list pop + push',
      kind: 'ceiling',
      run: () => {
        for (let i = 0; i < OPS; i++) {
          const a = free.pop()!
          free.push(a)
        }
      },
    },
  ])
  r.label = '8 KiB buffers'
  printSize('iobuf', r, 'M ops/s')
  const rate = median(r, 'ipukit IobufChannel get + put')
  const bytes = await allocationPerCall(pair)
  console.log(`allocation per get + put: ${bytes} bytes`)
  save({
    kernel: 'iobuf',
    order: 2,
    unit: 'M ops/s',
    title: 'iobuf get + put',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes: [r],
    targets: [
      { text: 'get + put pairs per second, M', value: rate, goal: 10, met: rate >= 10 },
      { text: 'heap bytes allocated per get + put (steady state)', value: bytes, goal: 0, met: bytes === 0, atMost: true },
    ],
    notes: [],
  })
})
