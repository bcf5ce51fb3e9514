// Host driver <-> controller over RAM namespaces: random reads and writes of mixed sizes
// (one block to MDTS, log-uniform), at random buffer offsets (dword aligned, NVMe Base
// §4.1.1: PRP1 may start anywhere in a page on a dword boundary), split into scattered
// segments, through PRPs and SGLs on two I/O queues at queue depth 32 each, every read
// checked against a model of the namespace. Commands in flight never overlap (a busy map),
// so the model is exact. CI runs fuzzRuns(60 000) commands; scripts/fuzz.sh runs 1 M and
// more (the README records the long run).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Completion, HostBuffer, NvmeHostDriver } from '../src/index.js'
import { fixture, type Fixture, fuzzRuns, host, random } from './helpers.js'

const COMMANDS = fuzzRuns(60_000)
const BLOCK = 512
const BLOCKS = 32_768 // 16 MiB
const MAX_BLOCKS = 256 // 128 KiB: MDTS 5 at 4 KiB pages
const DEPTH = 32
const QUEUES = 2

let f: Fixture
let d: NvmeHostDriver
beforeAll(async () => {
  f = await fixture({ namespaces: [{ blocks: BLOCKS, blockSize: BLOCK }] })
  d = await host(f, { ioQueues: QUEUES, queueDepth: 64, mode: 'poll' })
})
afterAll(async () => {
  d.stop()
  await f.close()
})

/** xorshift32: the run is reproducible from its seed */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x1_0000_0000
  }
}

interface Slot {
  buf: HostBuffer
  q: number
  write: boolean
  lba: number
  blocks: number
  off: number
  segs: [number, number][]
}

describe('random I/O, verified', () => {
  it(`${COMMANDS} random reads and writes of 1 to ${MAX_BLOCKS} blocks, PRPs and SGLs, data checked against a model`, async () => {
    const seed = Number(process.env.IPUKIT_SEED ?? 0x5eed)
    const r = rng(seed)
    const model = new Uint8Array(BLOCKS * BLOCK)
    const busy = new Uint8Array(BLOCKS)
    const pool = random(1 << 20, seed ^ 0xabcdef)
    const tally = { reads: 0, writes: 0, bytes: 0, prp: 0, sgl: 0, maxBlocks: 0, minBlocks: Infinity, mismatches: 0, errors: [] as string[] }
    let issued = 0
    let done = 0

    const slots: Slot[] = Array.from({ length: DEPTH * QUEUES }, (_, i) => ({
      // room for the largest transfer at any offset within a page
      buf: d.allocBuffer(MAX_BLOCKS * BLOCK + 4096),
      q: i % QUEUES,
      write: false,
      lba: 0,
      blocks: 0,
      off: 0,
      segs: [],
    }))

    await new Promise<void>((resolve) => {
      const finish = (s: Slot, c: Completion) => {
        done++
        if (c.status !== 0) tally.errors.push(`${s.write ? 'write' : 'read'} lba ${s.lba} x${s.blocks}: status ${c.status.toString(16)}`)
        else if (s.write) model.set(s.buf.bytes.subarray(s.off, s.off + s.blocks * BLOCK), s.lba * BLOCK)
        else {
          const got = s.buf.bytes.subarray(s.off, s.off + s.blocks * BLOCK)
          const want = model.subarray(s.lba * BLOCK, (s.lba + s.blocks) * BLOCK)
          if (!Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))) {
            tally.mismatches++
            if (tally.errors.length < 10) tally.errors.push(`read lba ${s.lba} x${s.blocks}: data differs from the model`)
          }
        }
        busy.fill(0, s.lba, s.lba + s.blocks)
        if (issued < COMMANDS) start(s)
        else if (done === COMMANDS) resolve()
      }
      const start = (s: Slot) => {
        // log-uniform size in [1, MAX_BLOCKS]; a free range of the namespace
        let blocks = 0
        let lba = 0
        for (let tries = 0; ; tries++) {
          blocks = Math.min(MAX_BLOCKS, Math.max(1, Math.floor(Math.exp(r() * Math.log(MAX_BLOCKS + 1)))))
          lba = Math.floor(r() * (BLOCKS - blocks + 1))
          if (busy.subarray(lba, lba + blocks).indexOf(1) < 0) break
          if (tries > 100) throw new Error('no free range') // cannot happen: 64 commands of 128 KiB in 16 MiB
        }
        busy.fill(1, lba, lba + blocks)
        const bytes = blocks * BLOCK
        const off = Math.floor(r() * 1024) * 4
        s.write = r() < 0.5
        s.lba = lba
        s.blocks = blocks
        s.off = off
        // SGLs for a third of the commands, split into up to 4 data blocks; PRPs need whole
        // pages between the first and last entry, so they get the buffer as one range
        d.useSgl = r() < 1 / 3
        s.segs.length = 0
        if (d.useSgl && bytes >= 4 * BLOCK) {
          let at = 0
          const cuts = 1 + Math.floor(r() * 4)
          for (let i = 0; i < cuts; i++) {
            const n = i === cuts - 1 ? bytes - at : Math.max(4, Math.floor((r() * (bytes - at)) / 4) * 4)
            if (n <= 0) break
            s.segs.push([s.buf.iova + off + at, n])
            at += n
            if (at >= bytes) break
          }
        } else s.segs.push([s.buf.iova + off, bytes])
        if (d.useSgl) tally.sgl++
        else tally.prp++
        if (s.write) {
          const from = Math.floor(r() * (pool.length - bytes))
          s.buf.bytes.set(pool.subarray(from, from + bytes), off)
          tally.writes++
        } else {
          s.buf.bytes.fill(0xee, off, off + bytes)
          tally.reads++
        }
        tally.bytes += bytes
        tally.maxBlocks = Math.max(tally.maxBlocks, blocks)
        tally.minBlocks = Math.min(tally.minBlocks, blocks)
        issued++
        const rc = d.rw(s.q, s.write, 1, lba, blocks, s.segs, finish, s)
        if (rc !== 0) throw new Error(`submit: ${rc}`)
      }
      for (const s of slots) if (issued < COMMANDS) start(s)
    })

    expect(tally.errors).toEqual([])
    expect(tally.mismatches).toBe(0)
    expect(tally.reads + tally.writes).toBe(COMMANDS)
    // the mix really was mixed
    expect(tally.reads).toBeGreaterThan(COMMANDS * 0.4)
    expect(tally.sgl).toBeGreaterThan(COMMANDS * 0.2)
    expect(tally.minBlocks).toBe(1)
    if (COMMANDS >= 10_000) expect(tally.maxBlocks).toBe(MAX_BLOCKS)
    // the model and the namespace agree at the end, read through the bdev directly
    const all = d.allocBuffer(MAX_BLOCKS * BLOCK)
    for (let lba = 0; lba < BLOCKS; lba += MAX_BLOCKS) {
      const c = await d.read(1, lba, MAX_BLOCKS, all)
      expect(c.status).toBe(0)
      expect(Buffer.from(all.bytes).equals(Buffer.from(model.subarray(lba * BLOCK, (lba + MAX_BLOCKS) * BLOCK)))).toBe(true)
    }
    console.log(`random I/O: ${COMMANDS} commands (${tally.reads} reads, ${tally.writes} writes; ${tally.prp} PRP, ${tally.sgl} SGL), ${(tally.bytes / 2 ** 30).toFixed(2)} GiB, seed ${seed}`)
  }, 600_000)
})
