// Protection information throughput: generate, verify, insert copy and strip copy over
// 1 MiB of data, beside the bare CRC kernel doing the same per-block guard CRCs (the floor:
// PI handling should add at most 10 %), and the same operations on iovecs split every 1000
// bytes (should keep at least 0.8 of unsplit). Everything lives in the kernels' memory, as
// on the data path.
import { benchData, type Candidate, machine, measure, memcpyCeiling, median, method, printSize, save, type SizeResult } from '@ipukit/bench-utils'
import { createKernelMemory, createKernelsSync } from '@ipukit/kernels'
import { test } from 'vitest'
import { createDifContext, type IoVec, type IoVecArrays, type PiFormat } from '../src/index.js'

const DATA = 1 << 20
const CASES: { dbs: number; md: number; format: PiFormat }[] = [
  { dbs: 512, md: 8, format: 16 },
  { dbs: 4096, md: 8, format: 16 },
  { dbs: 4096, md: 16, format: 64 },
]

/** The request as arrays of (address, length), the form the data path passes (no object per iovec). */
function splitEvery(base: number, len: number, every: number): IoVecArrays {
  const n = Math.ceil(len / every)
  const addr = new Float64Array(n)
  const lens = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    addr[i] = base + i * every
    lens[i] = Math.min(every, len - i * every)
  }
  return { addr, len: lens, count: n }
}

test('dif throughput', () => {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 8 << 20, scratchSlots: 1, keySlots: 0 }) })
  const sizes: SizeResult[] = []
  const targets: { text: string; value: number; goal: number; met: boolean }[] = []
  for (const c of CASES) {
    const ctx = createDifContext({ dataBlockSize: c.dbs, mdSize: c.md, type: 1, piFormat: c.format, initRefTag: 1, kernels: k })
    const n = DATA / c.dbs
    const ext = c.dbs + c.md
    const extAt = k.layout.end
    const dataAt = extAt + n * ext + 64
    const outAt = dataAt + DATA + 64
    const crcOut = outAt + DATA + 64
    const bytes = k.bytes
    bytes.set(benchData(n * ext), extAt)
    bytes.set(benchData(DATA), dataAt)
    const extended = splitEvery(extAt, n * ext, n * ext)
    const dataOnly = { base: dataAt, len: DATA }
    const out = { base: outAt, len: DATA }
    const split = splitEvery(extAt, n * ext, 1000)
    // checks before timing: generate split == unsplit; everything verifies
    ctx.generate(extended, n)
    const want = bytes.slice(extAt, extAt + n * ext)
    ctx.generate(split, n)
    if (!bytes.subarray(extAt, extAt + n * ext).every((b, i) => b === want[i])) throw new Error('split generate differs')
    for (const r of [ctx.verify(extended, n), ctx.verify(split, n)]) if (!r.ok) throw new Error(`verify failed: ${r.kind}`)
    ctx.generateCopy({ base: outAt, len: n * ext }, dataOnly, n)
    if (!ctx.verify({ base: outAt, len: n * ext }, n).ok) throw new Error('generateCopy output does not verify')
    ctx.generate(extended, n)
    const seed = 0n
    const candidates: Candidate[] = [
      { name: 'bare CRC kernel, per block', kind: 'ipukit', run: () => k.abi.crc_blocks(c.format, extAt, n, ext, c.dbs, seed, crcOut, k.kernelArea) },
      { name: 'generate', kind: 'ipukit', run: () => ctx.generate(extended, n) },
      { name: 'verify', kind: 'ipukit', run: () => void ctx.verify(extended, n) },
      { name: 'generateCopy (insert)', kind: 'ipukit', run: () => ctx.generateCopy({ base: outAt + DATA + 64, len: n * ext } as IoVec, dataOnly, n) },
      { name: 'verifyCopy (strip)', kind: 'ipukit', run: () => void ctx.verifyCopy(out, extended, n) },
      { name: 'generate, split every 1000 B', kind: 'ipukit', run: () => ctx.generate(split, n) },
      { name: 'verify, split every 1000 B', kind: 'ipukit', run: () => void ctx.verify(split, n) },
      memcpyCeiling(DATA),
    ]
    // the insert copy writes past `out`: keep its destination inside the memory
    if (outAt + DATA + 64 + n * ext > k.memory.buffer.byteLength) throw new Error('memory too small')
    const r = measure(DATA, candidates)
    r.label = `${c.dbs}+${c.md}, ${c.format}b guard`
    printSize('DIF', r)
    sizes.push(r)
    const bare = median(r, 'bare CRC kernel, per block')
    for (const op of ['generate', 'verify']) {
      const v = median(r, op) / bare
      targets.push({ text: `${r.label}: ${op} ÷ bare CRC`, value: v, goal: 0.9, met: v >= 0.9 })
      const s = median(r, `${op}, split every 1000 B`) / median(r, op)
      targets.push({ text: `${r.label}: ${op} split every 1000 B ÷ unsplit`, value: s, goal: 0.8, met: s >= 0.8 })
    }
  }
  save({ kernel: 'dif', order: 1, title: 'Protection information, 1 MiB of data per call', date: new Date().toISOString(), machine: machine(), method, sizes, targets, notes: [] })
  k.close()
})
