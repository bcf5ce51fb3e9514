// The PI engine's low-level job (what @ipukit/dif builds on; its semantics are tested
// there in full): batching through NeedInput, state save and restore, and crc_blocks.
import { describe, expect, it } from 'vitest'
import {
  crc16T10Dif,
  crc32c,
  crc64Nvme,
  createKernelMemory,
  createKernelsSync,
  DIF_LIST_CAPACITY,
  DIF_STATE_WORDS,
  DifJob,
  DifJobFlag,
  type DifJobParams,
  DifOp,
  DifStatus,
} from '../src/index.js'
import { randomBytes } from './support/reference.js'

const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 4 << 20, scratchSlots: 1, keySlots: 0 }) })
const base = k.layout.end
const params = (over: Partial<DifJobParams>): DifJobParams => ({
  op: DifOp.Generate,
  dataBlockSize: 512,
  mdSize: 8,
  piOffset: 0,
  piSize: 8,
  format: 16,
  type: 1,
  flags: DifJobFlag.Guard | DifJobFlag.AppTag | DifJobFlag.RefTag | DifJobFlag.CoverMetadata,
  appTag: 0x4242,
  appTagMask: 0xffff,
  refBase: 10,
  remapBase: 0,
  guardSeed: 0,
  blocks: 4,
  ...over,
})

describe('DifJob', () => {
  it('generates, then verifies, a request fed one iovec at a time (NeedInput between)', () => {
    const job = new DifJob(k)
    const n = 4
    const bytes = k.bytes
    bytes.set(randomBytes(n * 520, 1), base)
    job.start(params({}))
    job.useList(0, base, 0) // an empty list: the engine asks for input
    expect(job.run()).toBe(DifStatus.NeedInput)
    // pieces of 300 bytes, one list per call
    for (let off = 0; off < n * 520; off += 300) {
      const area = job.listArea(0)
      area[0] = base + off
      area[1] = Math.min(300, n * 520 - off)
      job.useListArea(0, 1)
      const s = job.run()
      expect(s).toBe(off + 300 >= n * 520 ? DifStatus.Done : DifStatus.NeedInput)
    }
    expect(job.block).toBe(n)
    for (let b = 0; b < n; b++) {
      const at = base + b * 520
      expect(bytes[at + 512]! * 256 + bytes[at + 513]!).toBe(crc16T10Dif(bytes.subarray(at, at + 512)))
      expect(Buffer.from(bytes.subarray(at + 514, at + 520)).toString('hex')).toBe(`4242${(10 + b).toString(16).padStart(8, '0')}`)
    }
    job.start(params({ op: DifOp.Verify }))
    const area = job.listArea(0)
    area[0] = base
    area[1] = n * 520
    job.useListArea(0, 1)
    expect(job.run()).toBe(DifStatus.Done)
    bytes[base + 520 + 3]! ^= 1
    job.start(params({ op: DifOp.Verify }))
    job.useListArea(0, 1)
    expect(job.run()).toBe(DifStatus.Error)
    expect(job.error()).toMatchObject({ kind: 1, block: 1 })
  })

  it('carries a stream across calls through saveState and restoreState', () => {
    const job = new DifJob(k)
    const state = new Uint32Array(DIF_STATE_WORDS)
    k.bytes.set(randomBytes(3 * 520, 2), base)
    const want = (() => {
      job.start(params({ blocks: 3 }))
      job.useList(0, listAt(base, 3 * 520), 1)
      expect(job.run()).toBe(DifStatus.Done)
      return k.bytes.slice(base, base + 3 * 520)
    })()
    k.bytes.set(randomBytes(3 * 520, 2), base)
    for (const [off, len] of [
      [0, 700],
      [700, 333],
      [1033, 527],
    ] as const) {
      job.start(params({ blocks: 3 }))
      job.restoreState(state)
      job.useList(0, listAt(base + off, len), 1)
      job.run()
      job.saveState(state)
      job.start(params({ op: DifOp.Verify })) // something else runs in between
    }
    expect(Buffer.from(k.bytes.subarray(base, base + 3 * 520)).equals(Buffer.from(want))).toBe(true)
    expect(DIF_LIST_CAPACITY).toBe(256)
  })

  it('crc_blocks computes every block guard as the CRC functions do', () => {
    k.bytes.set(randomBytes(3 * 4112, 3), base)
    const out = base + (3 << 20)
    const view = (i: number) => k.bytes.subarray(base + i * 4112, base + i * 4112 + 4096)
    const u64 = (i: number) => new DataView(k.memory.buffer).getBigUint64(out + 8 * i, true)
    k.abi.crc_blocks(16, base, 3, 4112, 4096, 0n, out, k.kernelArea)
    for (let i = 0; i < 3; i++) expect(u64(i)).toBe(BigInt(crc16T10Dif(view(i))))
    k.abi.crc_blocks(32, base, 3, 4112, 4096, 0n, out, k.kernelArea)
    for (let i = 0; i < 3; i++) expect(u64(i)).toBe(BigInt(crc32c(view(i))))
    k.abi.crc_blocks(64, base, 3, 4112, 4096, 0n, out, k.kernelArea)
    for (let i = 0; i < 3; i++) expect(u64(i)).toBe(crc64Nvme(view(i)))
  })
})

/** Writes one (address, length) pair just below the caller's area and returns its address. */
function listAt(address: number, length: number): number {
  const at = k.layout.end + (4 << 20) - 64
  const w = new Uint32Array(k.memory.buffer, at, 2)
  w[0] = address
  w[1] = length
  return at
}
