// CRC-32C throughput: ipukit (in the kernels' memory, and on an ordinary Uint8Array, which
// is staged) beside hash-wasm (the fastest portable CRC32C on npm, WASM compiled from C)
// and memcpy (TypedArray.prototype.set) as the ceiling.
import { createCRC32 } from 'hash-wasm'
import { test } from 'vitest'
import { createKernelMemory, createKernelsSync } from '../src/index.js'
import { benchData, machine, memcpyCeiling, measure, median, method, printSize, ratio, save, SIZES, type SizeResult } from '@ipukit/bench-utils'

test('crc32c throughput', async () => {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1 }), scratchSlots: 1 })
  const at = k.layout.end
  const hw = await createCRC32(0x82f63b78)
  const sizes: SizeResult[] = []
  for (const n of SIZES) {
    const data = benchData(n)
    k.bytes.set(data, at)
    const r = measure(n, [
      { name: 'ipukit crc32c (kernel memory)', kind: 'ipukit', run: () => k.crc32cAt(at, n), output: () => k.crc32cAt(at, n) },
      { name: 'ipukit crc32c (Uint8Array, staged)', kind: 'ipukit', run: () => k.crc32c(data), output: () => k.crc32c(data) },
      {
        name: 'hash-wasm 4.13 createCRC32(0x82F63B78)',
        kind: 'peer',
        run: () => {
          hw.init()
          hw.update(data)
          hw.digest('binary')
        },
        output: () => {
          hw.init()
          hw.update(data)
          return Number.parseInt(hw.digest('hex'), 16)
        },
      },
      memcpyCeiling(n),
    ])
    printSize('CRC-32C', r)
    sizes.push(r)
  }
  const mib = sizes[sizes.length - 1]!
  const vsPeer = ratio(mib, 'ipukit crc32c (Uint8Array, staged)', 'hash-wasm 4.13 createCRC32(0x82F63B78)')
  save({
    kernel: 'crc32c',
    order: 1,
    title: 'CRC-32C',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes,
    targets: [{ text: 'crc32c ÷ hash-wasm at 1 MiB (staged Uint8Array)', value: vsPeer, goal: 1.3, met: vsPeer >= 1.3 }],
    notes: [
      `1 MiB in kernel memory: ${median(mib, 'ipukit crc32c (kernel memory)').toFixed(0)} MB/s`,
    ],
  })
  k.close()
})
