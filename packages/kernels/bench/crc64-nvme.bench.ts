// CRC-64/NVME throughput: ipukit beside hash-wasm's CRC64 with the NVMe polynomial (WASM)
// and memcpy as the ceiling.
import { createCRC64 } from 'hash-wasm'
import { test } from 'vitest'
import { createKernelMemory, createKernelsSync } from '../src/index.js'
import { benchData, machine, memcpyCeiling, measure, median, method, printSize, ratio, save, SIZES, type SizeResult } from '@ipukit/bench-utils'

test('crc64 nvme throughput', async () => {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1 }), scratchSlots: 1 })
  const at = k.layout.end
  // hash-wasm takes the reflected polynomial
  const hw = await createCRC64('9a6c9329ac4bc9b5')
  const sizes: SizeResult[] = []
  for (const n of SIZES) {
    const data = benchData(n)
    k.bytes.set(data, at)
    const r = measure(n, [
      { name: 'ipukit crc64Nvme (kernel memory)', kind: 'ipukit', run: () => k.crc64NvmeAt(at, n), output: () => k.crc64NvmeAt(at, n) },
      { name: 'ipukit crc64Nvme (Uint8Array, staged)', kind: 'ipukit', run: () => k.crc64Nvme(data), output: () => k.crc64Nvme(data) },
      {
        name: "hash-wasm 4.13 createCRC64('9a6c9329ac4bc9b5')",
        kind: 'peer',
        run: () => {
          hw.init()
          hw.update(data)
          hw.digest('binary')
        },
        output: () => {
          hw.init()
          hw.update(data)
          return BigInt(`0x${hw.digest('hex')}`)
        },
      },
      memcpyCeiling(n),
    ])
    printSize('CRC-64/NVME', r)
    sizes.push(r)
  }
  const mib = sizes[sizes.length - 1]!
  const vsPeer = ratio(mib, 'ipukit crc64Nvme (Uint8Array, staged)', "hash-wasm 4.13 createCRC64('9a6c9329ac4bc9b5')")
  save({
    kernel: 'crc64-nvme',
    order: 3,
    title: 'CRC-64/NVME',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes,
    targets: [{ text: 'crc64Nvme ÷ hash-wasm at 1 MiB (staged Uint8Array)', value: vsPeer, goal: 1.3, met: vsPeer >= 1.3 }],
    notes: [`1 MiB in kernel memory: ${median(mib, 'ipukit crc64Nvme (kernel memory)').toFixed(0)} MB/s`],
  })
  k.close()
})
