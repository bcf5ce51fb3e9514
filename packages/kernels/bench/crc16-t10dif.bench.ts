// CRC16 T10-DIF throughput: ipukit beside polycrc (the only T10-DIF CRC on npm, byte-wise
// JavaScript) and memcpy as the ceiling.
import polycrc from 'polycrc'
import { test } from 'vitest'
import { createKernelMemory, createKernelsSync } from '../src/index.js'
import { benchData, machine, memcpyCeiling, measure, median, method, printSize, ratio, save, SIZES, type SizeResult } from '@ipukit/bench-utils'

test('crc16 t10dif throughput', () => {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1 }), scratchSlots: 1 })
  const at = k.layout.end
  const pc = polycrc.crc(16, 0x8bb7, 0, 0, false)
  const sizes: SizeResult[] = []
  for (const n of SIZES) {
    const data = benchData(n)
    k.bytes.set(data, at)
    const r = measure(n, [
      { name: 'ipukit crc16T10Dif (kernel memory)', kind: 'ipukit', run: () => k.crc16T10DifAt(at, n), output: () => k.crc16T10DifAt(at, n) },
      { name: 'ipukit crc16T10Dif (Uint8Array, staged)', kind: 'ipukit', run: () => k.crc16T10Dif(data), output: () => k.crc16T10Dif(data) },
      { name: 'polycrc 1.1 crc(16, 0x8BB7, 0, 0, false)', kind: 'peer', run: () => pc(data), output: () => pc(data) },
      memcpyCeiling(n),
    ])
    printSize('CRC16 T10-DIF', r)
    sizes.push(r)
  }
  const mib = sizes[sizes.length - 1]!
  const staged = median(mib, 'ipukit crc16T10Dif (Uint8Array, staged)')
  const vsPeer = ratio(mib, 'ipukit crc16T10Dif (Uint8Array, staged)', 'polycrc 1.1 crc(16, 0x8BB7, 0, 0, false)')
  save({
    kernel: 'crc16-t10dif',
    order: 2,
    title: 'CRC16 T10-DIF',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes,
    targets: [
      { text: 'crc16T10Dif at 1 MiB, GB/s (staged Uint8Array)', value: staged / 1000, goal: 1.5, met: staged >= 1500 },
      { text: 'crc16T10Dif ÷ polycrc at 1 MiB', value: vsPeer, goal: 5, met: vsPeer >= 5 },
    ],
    notes: [`1 MiB in kernel memory: ${median(mib, 'ipukit crc16T10Dif (kernel memory)').toFixed(0)} MB/s`],
  })
  k.close()
})
