// Malicious and malformed data pointers, end to end: raw SQEs from the host driver, with
// PRP1/PRP2, PRP list pages and SGL segments written by hand into host memory, through the
// PCIe front end, the IOMMU and the controller core. Every command must complete (no throw,
// no hang: each waits at most 2 s) with the status the NVMe Base Specification 2.0 gives it
// ("Physical Region Page Entry and List" and "Scatter Gather List (SGL)", §4.3.1 and §4.3.2 in
// 2.1's numbering as src/internal cites them; the codes are the Generic Command Status values,
// §3.3.3.2.1, Figure "Generic Command Status Values"):
//
//   04h Data Transfer Error           a pointer into an IOVA the IOMMU refuses (unmapped, or
//                                     mapped read-only / write-only and used the other way)
//   02h Invalid Field in Command      a transfer beyond MDTS, PSDT 11b, SGLs on an admin command
//   13h PRP Offset Invalid            a PRP entry that must be page aligned is not, PRP1 not
//                                     dword aligned, a PRP list pointer not qword aligned
//   0Dh Invalid SGL Segment Descriptor, 0Eh Invalid Number of SGL Descriptors, 0Fh Data SGL
//   Length Invalid, 11h SGL Descriptor Type Invalid (keyed / transport data blocks, reserved
//   types and sub types)
//   12h Invalid Use of Controller Memory Buffer   CMB and host memory in one command's data
//
// Loops: a PRP list that links back to itself, and SGL segments that point at themselves or
// at each other, must end in bounded time (by the transfer length, the descriptor budget, or
// at once for a segment that adds no data). Sizes: MDTS exactly is fine, one block more is
// Invalid Field. The CMB (BAR 2) carries data and PRP lists of its own.
//
// (16h SGL Offset Invalid is for fabrics' in-capsule data: on PCIe the Offset sub type is
// reserved, 11h; 10h Metadata SGL Length Invalid cannot arise: the controller only has
// extended-LBA formats, so MPTR never carries metadata.)
//
// After every test (each sends several such commands) a hook checks that the controller still serves a normal write and
// read (data verified), that the namespace holds what the successful commands wrote and
// nothing of the failed ones, and that an arena of host memory (every list page, segment and
// data page of the tests, with a guard buffer before and after it) is unchanged but for the
// bytes a successful read was meant to write.
import { Access } from '@ipukit/memory'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type Completion, type HostBuffer, type NvmeHostDriver, NvmeStatus, Reg, type SqeWriter } from '../src/index.js'
import { fixture, type Fixture, host, random, same } from './helpers.js'

const PAGE = 4096
const BS = 512
const TWO32 = 0x1_0000_0000
const WRITE = 0x01
const READ = 0x02
/** an IOVA nothing maps (the driver's own mappings are at HPA + 2^32, HPA < 64 MiB) */
const UNMAPPED = 0x7_0000_0000
/** read-only and write-only aliases of arena pages (see RO_FIRST, WO_FIRST) */
const RO_IOVA = 0x8_0000_0000
const WO_IOVA = 0x9_0000_0000
const ARENA_PAGES = 96
const RO_FIRST = 64
const WO_FIRST = 72
const ALIAS_PAGES = 8
/** LBAs [0, MODEL_BLOCKS) are the tests' target, tracked by a model */
const MODEL_BLOCKS = 512
/** the health check writes and reads here */
const HEALTH_LBA = 1024

/** SGL descriptor identifiers (byte 15: type << 4 | sub type), NVMe Base, "Scatter Gather List (SGL)", Figure "SGL Descriptor Type" */
const T = { data: 0x00, bitBucket: 0x10, segment: 0x20, last: 0x30, keyed: 0x40, transport: 0x50 } as const

const S = NvmeStatus

interface Env {
  f: Fixture
  d: NvmeHostDriver
  arena: Arena
  model: Uint8Array
  health: HostBuffer
  back: HostBuffer
  big: HostBuffer
  bigBack: HostBuffer
  seed: number
}

/**
 * Host memory the tests build their commands in: pages with a known pattern, and what they
 * must hold after the command (`want`): the bytes the test wrote itself, and those a read
 * was expected to bring. `loose` ranges may hold anything (a failed read's destination).
 */
class Arena {
  readonly buf: HostBuffer
  readonly guards: HostBuffer[]
  want = new Uint8Array(0)
  loose: [number, number][] = []
  readonly unmapped = new Set<number>()
  constructor(
    readonly f: Fixture,
    d: NvmeHostDriver,
  ) {
    const before = d.allocBuffer(2 * PAGE)
    this.buf = d.allocBuffer(ARENA_PAGES * PAGE)
    const after = d.allocBuffer(2 * PAGE)
    this.guards = [before, after]
    // aliases: pages [RO_FIRST, +8) read-only at RO_IOVA, [WO_FIRST, +8) write-only at WO_IOVA
    f.iommu.map(f.fn.rid, RO_IOVA, this.buf.hpa + RO_FIRST * PAGE, ALIAS_PAGES * PAGE, Access.Read)
    f.iommu.map(f.fn.rid, WO_IOVA, this.buf.hpa + WO_FIRST * PAGE, ALIAS_PAGES * PAGE, Access.Write)
  }

  /** the IOVA of byte `off` of page `p` */
  iova(p: number, off = 0): number {
    return this.buf.iova + p * PAGE + off
  }

  bytes(p: number, off = 0, len = PAGE - off): Uint8Array {
    return this.buf.bytes.subarray(p * PAGE + off, p * PAGE + off + len)
  }

  reset(seed: number): void {
    this.buf.bytes.set(random(this.buf.length, seed))
    for (const [i, g] of this.guards.entries()) g.bytes.set(random(g.length, seed + 100 + i))
    this.want = new Uint8Array(this.buf.bytes)
    this.loose = []
  }

  /** Writes `b` at page `p`, offset `off`, as part of the command being built. */
  put(p: number, off: number, b: Uint8Array): void {
    this.buf.bytes.set(b, p * PAGE + off)
    this.want.set(b, p * PAGE + off)
  }

  /** Writes 64-bit entries (a PRP list) at page `p`, offset `off`. */
  prps(p: number, off: number, entries: number[]): void {
    const b = new Uint8Array(8 * entries.length)
    const v = new DataView(b.buffer)
    entries.forEach((e, i) => {
      v.setUint32(8 * i, e % TWO32, true)
      v.setUint32(8 * i + 4, Math.floor(e / TWO32), true)
    })
    this.put(p, off, b)
  }

  /** Writes 16-byte SGL descriptors (address, length, identifier) at page `p`, offset `off`. */
  sgl(p: number, off: number, descs: [number, number, number][]): void {
    this.put(p, off, sglBytes(descs))
  }

  /** The bytes a successful read should have brought to page `p`, offset `off`. */
  expect(p: number, off: number, b: Uint8Array): void {
    this.want.set(b, p * PAGE + off)
  }

  /** A failed read may have written any of [page p + off, + len). */
  allow(p: number, off: number, len: number): void {
    this.loose.push([p * PAGE + off, p * PAGE + off + len])
  }

  /** Unmaps page `p` until the end of the test. */
  hole(p: number): void {
    this.f.iommu.unmap(this.f.fn.rid, this.iova(p), PAGE)
    this.unmapped.add(p)
  }

  remap(): void {
    for (const p of this.unmapped) this.f.iommu.map(this.f.fn.rid, this.iova(p), this.buf.hpa + p * PAGE, PAGE, Access.Read | Access.Write)
    this.unmapped.clear()
  }

  /** The first byte that differs from what it should be (outside the loose ranges), or -1. */
  firstChange(): number {
    const have = this.buf.bytes
    for (let i = 0; i < have.length; i++) {
      if (have[i] === this.want[i]) continue
      if (this.loose.some(([a, b]) => i >= a && i < b)) continue
      return i
    }
    return -1
  }

  guardsIntact(seed: number): boolean {
    return this.guards.every((g, i) => same(g.bytes, random(g.length, seed + 100 + i)))
  }
}

function sglBytes(descs: [number, number, number][]): Uint8Array {
  const b = new Uint8Array(16 * descs.length)
  const v = new DataView(b.buffer)
  descs.forEach(([addr, len, id], i) => {
    v.setUint32(16 * i, addr % TWO32, true)
    v.setUint32(16 * i + 4, Math.floor(addr / TWO32), true)
    v.setUint32(16 * i + 8, len, true)
    v.setUint8(16 * i + 15, id)
  })
  return b
}

/** Waits for a completion, failing the test if none comes within `ms` (a hang). */
function within<T>(p: Promise<T>, ms = 2000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no completion within ${ms} ms: the controller hung`)), ms)
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(t)
        reject(e instanceof Error ? e : new Error(String(e)))
      },
    )
  })
}

function io(d: NvmeHostDriver, build: (w: SqeWriter) => void): Promise<Completion> {
  return within(
    new Promise<Completion>((resolve, reject) => {
      const rc = d.io(0, build, (_: null, c) => resolve(c), null)
      if (rc !== 0) reject(new Error(`the I/O queue is full (${rc})`))
    }),
  )
}

function admin(d: NvmeHostDriver, build: (w: SqeWriter) => void): Promise<Completion> {
  return within(d.admin(build))
}

interface Rw {
  op: number
  slba: number
  nlb: number
  prp1?: number
  prp2?: number
  /** SGL1: address, length, identifier (PSDT 01b unless psdt says otherwise) */
  sgl?: [number, number, number]
  psdt?: number
}

function rwCmd(o: Rw): (w: SqeWriter) => void {
  return (w) => {
    w.opcode(o.op)
    w.u32(4, 1)
    w.u64(40, o.slba)
    w.u32(48, o.nlb - 1)
    const psdt = o.psdt ?? (o.sgl !== undefined ? 1 : 0)
    if (psdt !== 0) w.flags(psdt << 6)
    if (o.sgl !== undefined) {
      const [addr, len, id] = o.sgl
      w.u32(24, addr % TWO32)
      w.u32(28, Math.floor(addr / TWO32))
      w.u32(32, len)
      w.u32(36, id << 24)
    } else {
      w.u64(24, o.prp1 ?? 0)
      w.u64(32, o.prp2 ?? 0)
    }
  }
}

/** Sets up a fixture, its driver, the arena, and a namespace whose LBAs [0, 512) are known. */
function environment(o: Parameters<typeof fixture>[0] = {}): Env {
  const env = {} as Env
  beforeAll(async () => {
    env.f = await fixture({ namespaces: [{ blocks: 16384, blockSize: BS }], ...o })
    env.d = await host(env.f, { ioQueues: 1 })
    env.arena = new Arena(env.f, env.d)
    env.health = env.d.allocBuffer(8 * BS)
    env.back = env.d.allocBuffer(8 * BS)
    env.big = env.d.allocBuffer(128 << 10)
    env.bigBack = env.d.allocBuffer(128 << 10)
    env.model = random(MODEL_BLOCKS * BS, 77)
    for (let lba = 0; lba < MODEL_BLOCKS; lba += 256) {
      env.big.bytes.set(env.model.subarray(lba * BS, (lba + 256) * BS))
      expect((await env.d.write(1, lba, 256, env.big)).status).toBe(0)
    }
    env.seed = 1
  })
  afterAll(async () => {
    env.d.stop()
    await env.f.close()
  })
  beforeEach(() => {
    env.seed += 1000
    env.arena.reset(env.seed)
  })
  afterEach(async () => {
    const { d, arena } = env
    arena.remap()
    // host memory: nothing outside what the command was allowed to write
    expect(arena.firstChange(), 'arena byte changed').toBe(-1)
    expect(arena.guardsIntact(env.seed), 'guard buffers').toBe(true)
    // the namespace: what the successful writes put there, nothing of the failed ones
    for (let lba = 0; lba < MODEL_BLOCKS; lba += 256) {
      env.bigBack.bytes.fill(0)
      expect((await within(d.read(1, lba, 256, env.bigBack))).status).toBe(0)
      expect(same(env.bigBack.bytes, env.model.subarray(lba * BS, (lba + 256) * BS)), `namespace LBAs ${lba}..${lba + 255}`).toBe(true)
    }
    // and the controller still serves a normal round trip
    const data = random(8 * BS, env.seed)
    env.health.bytes.set(data)
    expect((await within(d.write(1, HEALTH_LBA, 8, env.health))).status).toBe(0)
    env.back.bytes.fill(0)
    expect((await within(d.read(1, HEALTH_LBA, 8, env.back))).status).toBe(0)
    expect(same(env.back.bytes, data)).toBe(true)
    expect(env.f.ctrl.counters.fatal).toBe(0)
  })
  return env
}

/** The namespace model after a successful write of `data` at `slba`. */
function wrote(env: Env, slba: number, data: Uint8Array): void {
  env.model.set(data, slba * BS)
}

/** Reads LBAs with a normal command (PRPs the driver builds) into a fresh copy. */
async function readNs(env: Env, slba: number, nlb: number): Promise<Uint8Array> {
  env.bigBack.bytes.fill(0)
  const c = await within(env.d.read(1, slba, nlb, env.bigBack))
  expect(c.status).toBe(0)
  return new Uint8Array(env.bigBack.bytes.subarray(0, nlb * BS))
}

describe('data pointers on a controller with MDTS 5, SGLs and a CMB', () => {
  const env = environment({ cmb: true })

  describe('PRP entries the IOMMU refuses ("Physical Region Page Entry and List"; a DMA fault is Data Transfer Error)', () => {
    it('PRP1 into an unmapped IOVA: a write (the controller reads it) and a read (it writes it) end in Data Transfer Error', async () => {
      const { d } = env
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, prp1: UNMAPPED }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, prp1: UNMAPPED }))).status).toBe(S.DataTransferError)
      // an unmapped page at the start of a mapped buffer (PRP1 mid-page, PRP2 mapped)
      const { arena } = env
      arena.hole(2)
      arena.put(3, 0, random(PAGE, 5))
      expect((await io(d, rwCmd({ op: WRITE, slba: 16, nlb: 8, prp1: arena.iova(2, 2048), prp2: arena.iova(3) }))).status).toBe(S.DataTransferError)
    })

    it('PRP2 (the second page) unmapped, or zero: Data Transfer Error; the first page of a failed write reaches nothing', async () => {
      const { d, arena } = env
      arena.put(1, 0, random(PAGE, 6))
      expect((await io(d, rwCmd({ op: WRITE, slba: 8, nlb: 16, prp1: arena.iova(1), prp2: UNMAPPED }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: WRITE, slba: 8, nlb: 16, prp1: arena.iova(1), prp2: 0 }))).status).toBe(S.DataTransferError)
      arena.allow(1, 0, PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 8, nlb: 16, prp1: arena.iova(1), prp2: UNMAPPED }))).status).toBe(S.DataTransferError)
      // PRP2 into a hole in the middle of the arena (pages around it mapped)
      arena.hole(5)
      arena.allow(4, 0, PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 8, nlb: 16, prp1: arena.iova(4), prp2: arena.iova(5) }))).status).toBe(S.DataTransferError)
    })

    it('a PRP list page that is unmapped, or an entry of it that is: Data Transfer Error, for writes and reads', async () => {
      const { d, arena } = env
      // 16 KiB: PRP2 is a list of 3 entries
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: UNMAPPED }))).status).toBe(S.DataTransferError)
      arena.prps(10, 0, [arena.iova(2), UNMAPPED, arena.iova(3)])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: arena.iova(10) }))).status).toBe(S.DataTransferError)
      for (const p of [1, 2, 3]) arena.allow(p, 0, PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: arena.iova(10) }))).status).toBe(S.DataTransferError)
      // the last entry unmapped
      arena.prps(11, 0, [arena.iova(2), arena.iova(3), UNMAPPED + PAGE])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: arena.iova(11) }))).status).toBe(S.DataTransferError)
    })

    it('IOMMU permissions: a read-only mapping as a read destination, a write-only one as a write source or a PRP list, fail; the right way round they work', async () => {
      const { d, arena } = env
      const ro = (i: number) => RO_IOVA + i * PAGE
      const wo = (i: number) => WO_IOVA + i * PAGE
      // a write sources from a write-only mapping: the controller may not read it
      expect((await io(d, rwCmd({ op: WRITE, slba: 24, nlb: 8, prp1: wo(0) }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: WRITE, slba: 24, nlb: 16, prp1: arena.iova(1), prp2: wo(1) }))).status).toBe(S.DataTransferError)
      // a read lands in a read-only mapping: refused, and nothing is written there
      expect((await io(d, rwCmd({ op: READ, slba: 24, nlb: 8, prp1: ro(0) }))).status).toBe(S.DataTransferError)
      arena.allow(1, 0, PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 24, nlb: 16, prp1: arena.iova(1), prp2: ro(1) }))).status).toBe(S.DataTransferError)
      // a PRP list the controller may only write, not read
      arena.prps(WO_FIRST + 2, 0, [arena.iova(2), arena.iova(3)])
      expect((await io(d, rwCmd({ op: WRITE, slba: 24, nlb: 24, prp1: arena.iova(1), prp2: wo(2) }))).status).toBe(S.DataTransferError)
      // the right way round: a write from a read-only mapping, a read into a write-only one
      const data = random(2 * PAGE, 8)
      arena.put(RO_FIRST + 3, 0, data.subarray(0, PAGE))
      arena.put(RO_FIRST + 4, 0, data.subarray(PAGE))
      expect((await io(d, rwCmd({ op: WRITE, slba: 24, nlb: 16, prp1: ro(3), prp2: ro(4) }))).status).toBe(0)
      wrote(env, 24, data)
      expect((await io(d, rwCmd({ op: READ, slba: 24, nlb: 16, prp1: wo(5), prp2: wo(6) }))).status).toBe(0)
      arena.expect(WO_FIRST + 5, 0, data.subarray(0, PAGE))
      arena.expect(WO_FIRST + 6, 0, data.subarray(PAGE))
    })
  })

  describe('PRP offsets ("PRP Entry": PRP1 dword aligned; every other entry page aligned; a list pointer qword aligned)', () => {
    it('PRP2 as the second page with a non-zero offset: PRP Offset Invalid (13h), with no data moved', async () => {
      const { d, arena } = env
      for (const off of [0x200, 0x4, 0x8, PAGE - 8]) {
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 16, prp1: arena.iova(1), prp2: arena.iova(2, off) }))).status).toBe(S.PrpOffsetInvalid)
        expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 16, prp1: arena.iova(1), prp2: arena.iova(2, off) }))).status).toBe(S.PrpOffsetInvalid)
      }
    })

    it('a PRP list entry with a non-zero offset, first, middle or last: PRP Offset Invalid', async () => {
      const { d, arena } = env
      const good = [arena.iova(2), arena.iova(3), arena.iova(4)]
      for (let i = 0; i < 3; i++) {
        const list = [...good]
        list[i] = list[i]! + (i === 1 ? 4 : 0x800)
        arena.prps(10 + i, 0, list)
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: arena.iova(10 + i) }))).status).toBe(S.PrpOffsetInvalid)
        expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 32, prp1: arena.iova(1), prp2: arena.iova(10 + i) }))).status).toBe(S.PrpOffsetInvalid)
      }
    })

    it('PRP1 not dword aligned: PRP Offset Invalid (the controller "may report an error of PRP Offset Invalid"); dword aligned offsets work', async () => {
      const { d, arena } = env
      for (const off of [1, 2, 3, 0x202]) {
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, prp1: arena.iova(1, off), prp2: arena.iova(2) }))).status).toBe(S.PrpOffsetInvalid)
        expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, prp1: arena.iova(1, off), prp2: arena.iova(2) }))).status).toBe(S.PrpOffsetInvalid)
      }
      // data that fits in PRP1's page: PRP2 is not used, whatever it holds
      const one = random(2048, 14)
      arena.put(1, 0x400, one)
      expect((await io(d, rwCmd({ op: WRITE, slba: 44, nlb: 4, prp1: arena.iova(1, 0x400), prp2: 0xdead_beef_0003 }))).status).toBe(0)
      wrote(env, 44, one)
      // PRP1 at offset 0x204 of its page: 4 KiB spans two pages, PRP2 the second
      const data = random(PAGE, 9)
      arena.put(1, 0x204, data.subarray(0, PAGE - 0x204))
      arena.put(2, 0, data.subarray(PAGE - 0x204))
      expect((await io(d, rwCmd({ op: WRITE, slba: 40, nlb: 8, prp1: arena.iova(1, 0x204), prp2: arena.iova(2) }))).status).toBe(0)
      wrote(env, 40, data)
      expect((await io(d, rwCmd({ op: READ, slba: 40, nlb: 8, prp1: arena.iova(3, 0xffc), prp2: arena.iova(4) }))).status).toBe(0)
      arena.expect(3, 0xffc, data.subarray(0, 4))
      arena.expect(4, 0, data.subarray(4))
    })

    it('a PRP list pointer not qword aligned: PRP Offset Invalid; one at a qword-aligned offset in its page is valid', async () => {
      const { d, arena } = env
      const data = random(3 * PAGE, 10)
      for (let i = 0; i < 3; i++) arena.put(2 + i, 0, data.subarray(i * PAGE, (i + 1) * PAGE))
      arena.prps(10, 0x808, [arena.iova(3), arena.iova(4)])
      for (const off of [0x804, 0x80c, 0x809]) {
        expect((await io(d, rwCmd({ op: WRITE, slba: 48, nlb: 24, prp1: arena.iova(2), prp2: arena.iova(10, off) }))).status).toBe(S.PrpOffsetInvalid)
      }
      expect((await io(d, rwCmd({ op: WRITE, slba: 48, nlb: 24, prp1: arena.iova(2), prp2: arena.iova(10, 0x808) }))).status).toBe(0)
      wrote(env, 48, data)
      expect(same(await readNs(env, 48, 24), data)).toBe(true)
    })

    it('the list reads only the entries the length needs: a short list at the end of a page before an unmapped one works (Linux\'s 256-byte PRP pool)', async () => {
      const { d, arena } = env
      const data = random(3 * PAGE, 11)
      for (let i = 0; i < 3; i++) arena.put(2 + i, 0, data.subarray(i * PAGE, (i + 1) * PAGE))
      arena.prps(10, PAGE - 16, [arena.iova(3), arena.iova(4)])
      arena.hole(11)
      expect((await io(d, rwCmd({ op: WRITE, slba: 72, nlb: 24, prp1: arena.iova(2), prp2: arena.iova(10, PAGE - 16) }))).status).toBe(0)
      wrote(env, 72, data)
      // a list in the last qword of its page: that entry is the link to the next list page,
      // never the page after it; a link into an unmapped page is a Data Transfer Error
      arena.prps(12, PAGE - 8, [arena.iova(13)])
      arena.hole(13)
      expect((await io(d, rwCmd({ op: WRITE, slba: 72, nlb: 24, prp1: arena.iova(2), prp2: arena.iova(12, PAGE - 8) }))).status).toBe(S.DataTransferError)
    })
  })

  describe('PRP list chains ("PRP List": the last entry of a full list page points to the next list page, page aligned)', () => {
    it('a chain through a second list page works; a link with a non-zero offset is PRP Offset Invalid', async () => {
      const { d, arena } = env
      // 16 KiB: PRP1, then 3 entries; the first list page has room for 2 (16 bytes before the page end)
      const data = random(4 * PAGE, 12)
      for (let i = 0; i < 4; i++) arena.put(2 + i, 0, data.subarray(i * PAGE, (i + 1) * PAGE))
      arena.prps(10, PAGE - 16, [arena.iova(3), arena.iova(20)])
      arena.prps(20, 0, [arena.iova(4), arena.iova(5)])
      expect((await io(d, rwCmd({ op: WRITE, slba: 96, nlb: 32, prp1: arena.iova(2), prp2: arena.iova(10, PAGE - 16) }))).status).toBe(0)
      wrote(env, 96, data)
      expect(same(await readNs(env, 96, 32), data)).toBe(true)
      for (const off of [8, 0x800, 4]) {
        arena.prps(11, PAGE - 16, [arena.iova(3), arena.iova(20, off)])
        expect((await io(d, rwCmd({ op: WRITE, slba: 96, nlb: 32, prp1: arena.iova(2), prp2: arena.iova(11, PAGE - 16) }))).status).toBe(S.PrpOffsetInvalid)
      }
      // the next list page unmapped
      arena.prps(12, PAGE - 16, [arena.iova(3), UNMAPPED])
      expect((await io(d, rwCmd({ op: WRITE, slba: 96, nlb: 32, prp1: arena.iova(2), prp2: arena.iova(12, PAGE - 16) }))).status).toBe(S.DataTransferError)
    })

    it('a list whose last entry links back to its own page: the walk follows it and stops when the length is covered (the spec does not forbid it; QEMU\'s nvme_map_prp does the same)', async () => {
      const { d, arena } = env
      // PRP2 is the last qword of page 10 (one entry: the link); the link goes back to the start of page 10
      const data = random(4 * PAGE, 13)
      arena.put(2, 0, data.subarray(0, PAGE))
      const list = [arena.iova(3), arena.iova(4), arena.iova(5)]
      for (let i = 0; i < 3; i++) arena.put(3 + i, 0, data.subarray((i + 1) * PAGE, (i + 2) * PAGE))
      arena.prps(10, 0, list)
      arena.prps(10, PAGE - 8, [arena.iova(10)])
      const t0 = performance.now()
      expect((await io(d, rwCmd({ op: WRITE, slba: 128, nlb: 32, prp1: arena.iova(2), prp2: arena.iova(10, PAGE - 8) }))).status).toBe(0)
      expect(performance.now() - t0).toBeLessThan(1000)
      wrote(env, 128, data)
      // the same for a read, into other pages
      arena.prps(11, 0, [arena.iova(13), arena.iova(14), arena.iova(15)])
      arena.prps(11, PAGE - 8, [arena.iova(11)])
      expect((await io(d, rwCmd({ op: READ, slba: 128, nlb: 32, prp1: arena.iova(12), prp2: arena.iova(11, PAGE - 8) }))).status).toBe(0)
      for (let i = 0; i < 4; i++) arena.expect(12 + i, 0, data.subarray(i * PAGE, (i + 1) * PAGE))
      // a link back to the page with an offset: PRP Offset Invalid
      arena.prps(16, PAGE - 8, [arena.iova(16, 8)])
      expect((await io(d, rwCmd({ op: WRITE, slba: 128, nlb: 32, prp1: arena.iova(2), prp2: arena.iova(16, PAGE - 8) }))).status).toBe(S.PrpOffsetInvalid)
    })
  })

  describe('SGLs ("Scatter Gather List (SGL)"; Identify SGLS: byte granularity, Bit Buckets, SGLs longer than the data allowed)', () => {
    it('Identify SGLS says what the tests rely on: bits 1:0 01b, bit 16 (Bit Bucket) set, bit 18 (longer SGLs) set', () => {
      const sgls = new DataView(env.d.identify.buffer).getUint32(536, true)
      expect(sgls & 3).toBe(1)
      expect((sgls >>> 16) & 1).toBe(1)
      expect((sgls >>> 18) & 1).toBe(1)
    })

    it('a single Data Block, and a Last Segment of byte-granular blocks (1, 511, 3584 bytes), round trip', async () => {
      const { d, arena } = env
      const data = random(PAGE, 20)
      arena.put(2, 0, data)
      expect((await io(d, rwCmd({ op: WRITE, slba: 160, nlb: 8, sgl: [arena.iova(2), PAGE, T.data] }))).status).toBe(0)
      wrote(env, 160, data)
      // read back in three odd pieces at odd addresses
      arena.sgl(10, 0, [
        [arena.iova(3, 7), 1, T.data],
        [arena.iova(4, 1), 511, T.data],
        [arena.iova(5, 3), 3584, T.data],
      ])
      expect((await io(d, rwCmd({ op: READ, slba: 160, nlb: 8, sgl: [arena.iova(10), 48, T.last] }))).status).toBe(0)
      arena.expect(3, 7, data.subarray(0, 1))
      arena.expect(4, 1, data.subarray(1, 512))
      arena.expect(5, 3, data.subarray(512))
    })

    it('Bit Buckets (SGLS bit 16): a read discards their bytes and writes the rest where the data blocks say; in a write they have no effect', async () => {
      const { d, arena } = env
      const data = random(PAGE, 21)
      arena.put(2, 0, data)
      expect((await io(d, rwCmd({ op: WRITE, slba: 240, nlb: 8, sgl: [arena.iova(2), PAGE, T.data] }))).status).toBe(0)
      wrote(env, 240, data)
      // read: 100 bytes kept, 412 discarded, 1000 kept, 2584 discarded (the rest of the 4 KiB)
      arena.sgl(10, 0, [
        [arena.iova(3, 4), 100, T.data],
        [0, 412, T.bitBucket],
        [arena.iova(4, 12), 1000, T.data],
        [0xdead_0000, 2584, T.bitBucket],
      ])
      expect((await io(d, rwCmd({ op: READ, slba: 240, nlb: 8, sgl: [arena.iova(10), 64, T.last] }))).status).toBe(0)
      arena.expect(3, 4, data.subarray(0, 100))
      arena.expect(4, 12, data.subarray(512, 1512))
      // the transfer length counts the buckets: 100 + 1000 bytes of data blocks alone fall short
      arena.sgl(11, 0, [
        [arena.iova(3, 4), 100, T.data],
        [arena.iova(4, 12), 1000, T.data],
      ])
      expect((await io(d, rwCmd({ op: READ, slba: 240, nlb: 8, sgl: [arena.iova(11), 32, T.last] }))).status).toBe(S.DataSglLengthInvalid)
      // a write: the bucket counts for nothing, the data blocks carry the 4 KiB
      const next = random(PAGE, 22)
      arena.put(5, 0, next)
      arena.sgl(12, 0, [
        [0, 777, T.bitBucket],
        [arena.iova(5), 2048, T.data],
        [0, 5, T.bitBucket],
        [arena.iova(5, 2048), 2048, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 248, nlb: 8, sgl: [arena.iova(12), 64, T.last] }))).status).toBe(0)
      wrote(env, 248, next)
      expect(same(await readNs(env, 248, 8), next)).toBe(true)
      // a bucketed read whose kept bytes land in unmapped memory: Data Transfer Error
      arena.sgl(13, 0, [
        [0, 512, T.bitBucket],
        [UNMAPPED, 3584, T.data],
      ])
      expect((await io(d, rwCmd({ op: READ, slba: 240, nlb: 8, sgl: [arena.iova(13), 32, T.last] }))).status).toBe(S.DataTransferError)
    })

    it('a Data Block or a segment in unmapped memory, or in memory mapped the wrong way: Data Transfer Error', async () => {
      const { d, arena } = env
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [UNMAPPED, PAGE, T.data] }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [UNMAPPED, PAGE, T.data] }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [UNMAPPED, 32, T.last] }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [UNMAPPED, 32, T.segment] }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [RO_IOVA, PAGE, T.data] }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [WO_IOVA, PAGE, T.data] }))).status).toBe(S.DataTransferError)
      // a segment the controller may not read
      arena.sgl(WO_FIRST, 0, [[arena.iova(2), PAGE, T.data]])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [WO_IOVA, 16, T.last] }))).status).toBe(S.DataTransferError)
      // the second of two data blocks unmapped
      arena.sgl(10, 0, [
        [arena.iova(2), 2048, T.data],
        [UNMAPPED, 2048, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(10), 32, T.last] }))).status).toBe(S.DataTransferError)
      arena.allow(2, 0, 2048)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(10), 32, T.last] }))).status).toBe(S.DataTransferError)
    })

    it('a Segment descriptor pointing at its own segment, and a chain of two segments pointing at each other, adding no data: Invalid SGL Segment Descriptor, at once', async () => {
      const { d, arena } = env
      arena.sgl(10, 0, [[arena.iova(10), 16, T.segment]])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(10), 16, T.segment] }))).status).toBe(S.InvalidSglSegmentDescriptor)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(10), 16, T.segment] }))).status).toBe(S.InvalidSglSegmentDescriptor)
      arena.sgl(11, 0, [[arena.iova(12), 16, T.segment]])
      arena.sgl(12, 0, [[arena.iova(11), 16, T.segment]])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(11), 16, T.segment] }))).status).toBe(S.InvalidSglSegmentDescriptor)
    })

    it('a looping chain that adds data each time round is bounded: by the transfer length, else by the descriptor budget (Invalid Number of SGL Descriptors)', async () => {
      const { d, arena } = env
      // segment 10: 512 bytes of page 2, then a link back to itself: a 4 KiB write repeats them 8 times
      const block = random(BS, 21)
      arena.put(2, 0, block)
      arena.sgl(10, 0, [
        [arena.iova(2), BS, T.data],
        [arena.iova(10), 32, T.segment],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 176, nlb: 8, sgl: [arena.iova(10), 32, T.segment] }))).status).toBe(0)
      const eight = new Uint8Array(PAGE)
      for (let i = 0; i < 8; i++) eight.set(block, i * BS)
      wrote(env, 176, eight)
      // segments 11 and 12: one byte each, linking to each other: 128 KiB would take 131072
      // descriptors; the controller takes 256 fragments per command, then stops
      arena.sgl(11, 0, [
        [arena.iova(3), 1, T.data],
        [arena.iova(12), 32, T.segment],
      ])
      arena.sgl(12, 0, [
        [arena.iova(3, 2), 1, T.data],
        [arena.iova(11), 32, T.segment],
      ])
      const t0 = performance.now()
      expect((await io(d, rwCmd({ op: WRITE, slba: 256, nlb: 256, sgl: [arena.iova(11), 32, T.segment] }))).status).toBe(S.InvalidSglDescriptorCount)
      arena.allow(3, 0, 3)
      expect((await io(d, rwCmd({ op: READ, slba: 256, nlb: 256, sgl: [arena.iova(11), 32, T.segment] }))).status).toBe(S.InvalidSglDescriptorCount)
      expect(performance.now() - t0).toBeLessThan(1000)
    })

    it('a Last Segment whose segment holds another (Last) Segment descriptor: Invalid SGL Segment Descriptor; a Segment descriptor not last in its segment: Invalid Number of SGL Descriptors', async () => {
      const { d, arena } = env
      // SGL validation (2.1 §4.3.2; Figure "SGL Validation Error Conditions" in 2.2)
      arena.sgl(11, 0, [[arena.iova(3), 3584, T.data]])
      for (const link of [T.segment, T.last]) {
        arena.sgl(10, 0, [
          [arena.iova(2), 512, T.data],
          [arena.iova(11), 16, link],
        ])
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(10), 32, T.last] }))).status).toBe(S.InvalidSglSegmentDescriptor)
      }
      arena.sgl(12, 0, [
        [arena.iova(11), 16, T.last],
        [arena.iova(2), 512, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(12), 32, T.segment] }))).status).toBe(S.InvalidSglDescriptorCount)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(12), 32, T.segment] }))).status).toBe(S.InvalidSglDescriptorCount)
      // the valid form: data, then the Last Segment descriptor last
      const data = random(PAGE, 22)
      arena.put(2, 0, data.subarray(0, 512))
      arena.put(3, 0, data.subarray(512))
      arena.sgl(13, 0, [
        [arena.iova(2), 512, T.data],
        [arena.iova(11), 16, T.last],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 184, nlb: 8, sgl: [arena.iova(13), 32, T.segment] }))).status).toBe(0)
      wrote(env, 184, data)
    })

    it('(Last) Segment descriptors: length 0 or not a multiple of 16, an address not qword aligned: Invalid SGL Segment Descriptor; a qword-aligned one works', async () => {
      const { d, arena } = env
      const data = random(PAGE, 23)
      arena.put(2, 0, data)
      arena.sgl(10, 8, [[arena.iova(2), PAGE, T.data]])
      for (const [addr, len] of [
        [arena.iova(10, 8), 0],
        [arena.iova(10, 8), 8],
        [arena.iova(10, 8), 24],
        [arena.iova(10, 4), 16],
        [arena.iova(10, 9), 16],
      ] as const) {
        for (const id of [T.last, T.segment]) expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [addr, len, id] }))).status).toBe(S.InvalidSglSegmentDescriptor)
      }
      expect((await io(d, rwCmd({ op: WRITE, slba: 192, nlb: 8, sgl: [arena.iova(10, 8), 16, T.last] }))).status).toBe(0)
      wrote(env, 192, data)
    })

    it('Data Blocks of length 0: alone, Data SGL Length Invalid; among others they add nothing and are fine', async () => {
      const { d, arena } = env
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(2), 0, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(2), 0, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      const data = random(PAGE, 24)
      arena.put(2, 0, data)
      arena.sgl(10, 0, [
        [UNMAPPED, 0, T.data],
        [arena.iova(2), 2048, T.data],
        [arena.iova(3), 0, T.data],
        [arena.iova(2, 2048), 2048, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 200, nlb: 8, sgl: [arena.iova(10), 64, T.last] }))).status).toBe(0)
      wrote(env, 200, data)
    })

    it('descriptor types PCIe does not have (keyed, transport, reserved, vendor specific), sub types other than Address and a Bit Bucket with a sub type: SGL Descriptor Type Invalid', async () => {
      const { d, arena } = env
      // Figure "SGL Descriptor Type": Keyed Data Block needs a transport with keys (RDMA);
      // Transport Data Block a transport that defines it; 6h-Eh reserved; an unsupported type
      // "shall be processed as having an SGL Descriptor Type error"
      const bad = [T.keyed, T.transport, 0x60, 0x70, 0xe0, 0xf0, 0x01, 0x0a, T.bitBucket | 1]
      for (const id of bad) {
        for (const op of [WRITE, READ]) {
          expect((await io(d, rwCmd({ op, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE, id] }))).status, `SGL1 id ${id.toString(16)}`).toBe(S.SglDescriptorTypeInvalid)
          arena.sgl(10, 0, [
            [arena.iova(2), 2048, T.data],
            [arena.iova(2, 2048), 2048, id],
          ])
          arena.allow(2, 0, 2048)
          expect((await io(d, rwCmd({ op, slba: 0, nlb: 8, sgl: [arena.iova(10), 32, T.last] }))).status, `segment id ${id.toString(16)}`).toBe(S.SglDescriptorTypeInvalid)
        }
      }
      // The Offset sub type (1h) is reserved on PCIe: a Descriptor Type error, not SGL Offset
      // Invalid (16h, for fabrics' in-capsule data); the same for a (Last) Segment descriptor
      for (const id of [T.segment | 1, T.last | 1, T.last | 0xf]) {
        arena.sgl(11, 0, [[arena.iova(2), PAGE, T.data]])
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(11), 16, id] }))).status).toBe(S.SglDescriptorTypeInvalid)
      }
    })

    it('an SGL shorter than the transfer: Data SGL Length Invalid; longer: allowed (SGLS bit 18), only the transfer length moves', async () => {
      const { d, arena } = env
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE - 1, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      arena.allow(2, 0, PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE - 1, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      // a Last Segment of blocks 1 byte short
      arena.sgl(10, 0, [
        [arena.iova(3), 2048, T.data],
        [arena.iova(4), 2047, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(10), 32, T.last] }))).status).toBe(S.DataSglLengthInvalid)
      // a Segment (not Last) whose segment ends in a data block: the SGL ends there, short
      arena.sgl(11, 0, [[arena.iova(3), 2048, T.data]])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(11), 16, T.segment] }))).status).toBe(S.DataSglLengthInvalid)
      // longer: 8 KiB described, 4 KiB transferred; a read leaves the rest of the block alone
      const data = random(PAGE, 25)
      arena.put(5, 0, data)
      expect((await io(d, rwCmd({ op: WRITE, slba: 208, nlb: 8, sgl: [arena.iova(5), 2 * PAGE, T.data] }))).status).toBe(0)
      wrote(env, 208, data)
      expect((await io(d, rwCmd({ op: READ, slba: 208, nlb: 8, sgl: [arena.iova(7, 100), 2 * PAGE, T.data] }))).status).toBe(0)
      arena.expect(7, 100, data)
      // and descriptors beyond the length are not examined ("The controller is not required to examine for errors any SGL descriptor that is not used for data transfer"): a garbage one after it
      arena.sgl(12, 0, [
        [arena.iova(7, 100), PAGE, T.data],
        [UNMAPPED, 0xffffffff, 0xf0],
      ])
      expect((await io(d, rwCmd({ op: READ, slba: 208, nlb: 8, sgl: [arena.iova(12), 32, T.last] }))).status).toBe(0)
    })

    it('a Data Block or segment whose address + length passes 2^64: Data SGL Length Invalid', async () => {
      const { d, arena } = env
      const top = 2 ** 64 - PAGE
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [top, 2 * PAGE, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [top, 2 * PAGE, T.data] }))).status).toBe(S.DataSglLengthInvalid)
      arena.sgl(10, 0, [[top, 2 * PAGE, T.data]])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(10), 16, T.last] }))).status).toBe(S.DataSglLengthInvalid)
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [top, 2 * PAGE, T.last] }))).status).toBe(S.DataSglLengthInvalid)
      // just below the top is merely unmapped
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [top, PAGE, T.data] }))).status).toBe(S.DataTransferError)
    })

    it('PSDT 11b (reserved): Invalid Field in Command; PSDT 10b (MPTR an SGL, unused without separate metadata) carries data as 01b does', async () => {
      const { d, arena } = env
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE, T.data], psdt: 3 }))).status).toBe(S.InvalidField)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE, T.data], psdt: 3 }))).status).toBe(S.InvalidField)
      const data = random(PAGE, 26)
      arena.put(2, 0, data)
      expect((await io(d, rwCmd({ op: WRITE, slba: 216, nlb: 8, sgl: [arena.iova(2), PAGE, T.data], psdt: 2 }))).status).toBe(0)
      wrote(env, 216, data)
    })

    it('SGLs on admin commands (CDW0 PSDT: "PRPs shall be used for all Admin commands for NVMe over PCIe"): Invalid Field in Command, with data or without', async () => {
      const { d, arena } = env
      // Identify Controller into an SGL Data Block
      const identify = (psdt: number) => (w: SqeWriter) => {
        w.opcode(0x06)
        w.flags(psdt << 6)
        w.u64(24, arena.iova(2))
        w.u32(32, PAGE)
        w.u32(40, 1)
      }
      for (const psdt of [1, 2, 3]) expect((await admin(d, identify(psdt))).status).toBe(S.InvalidField)
      // Get Features, Number of Queues: no data, PSDT 01b (QEMU's nvme_admin_cmd refuses any PSDT but 00b)
      const nq = (psdt: number) => (w: SqeWriter) => {
        w.opcode(0x0a)
        w.flags(psdt << 6)
        w.u32(40, 0x07)
      }
      expect((await admin(d, nq(1))).status).toBe(S.InvalidField)
      expect((await admin(d, nq(0))).status).toBe(0)
      // and Identify with PRPs works (the data lands in page 2)
      arena.allow(2, 0, PAGE)
      expect((await admin(d, identify(0))).status).toBe(0)
    })
  })

  describe('other commands\' data pointers', () => {
    it('Compare and Dataset Management read their data through the same walk: an unmapped or misaligned pointer fails as for a write', async () => {
      const { d, arena } = env
      const compare = (prp1: number) => rwCmd({ op: 0x05, slba: 0, nlb: 8, prp1 })
      expect((await io(d, compare(UNMAPPED))).status).toBe(S.DataTransferError)
      expect((await io(d, compare(arena.iova(2, 2)))).status).toBe(S.PrpOffsetInvalid)
      // the same data compares equal
      arena.put(2, 0, env.model.subarray(0, PAGE))
      expect((await io(d, compare(arena.iova(2)))).status).toBe(0)
      // Dataset Management, one range, Deallocate (CDW11 bit 2): the range list is unreadable
      const dsm = (prp1: number) => (w: SqeWriter) => {
        w.opcode(0x09)
        w.u32(4, 1)
        w.u64(24, prp1)
        w.u32(40, 0)
        w.u32(44, 1 << 2)
      }
      expect((await io(d, dsm(UNMAPPED))).status).toBe(S.DataTransferError)
      expect((await io(d, dsm(WO_IOVA))).status).toBe(S.DataTransferError)
    })

    it('commands that move no data ignore the data pointer: Flush and Write Zeroes with garbage PRPs succeed', async () => {
      const { d } = env
      const garbage = (w: SqeWriter) => {
        w.u64(24, 0xdead_beef_0001)
        w.u64(32, 0x3)
      }
      expect(
        (
          await io(d, (w) => {
            w.opcode(0x00)
            w.u32(4, 1)
            garbage(w)
          })
        ).status,
      ).toBe(0)
      expect(
        (
          await io(d, (w) => {
            w.opcode(0x08)
            w.u32(4, 1)
            garbage(w)
            w.u64(40, 232)
            w.u32(48, 7)
          })
        ).status,
      ).toBe(0)
      wrote(env, 232, new Uint8Array(PAGE))
    })
  })

  describe('transfer size against MDTS (Identify Controller MDTS 5: 128 KiB at CAP.MPSMIN 4 KiB; larger is Invalid Field in Command)', () => {
    it('Identify reports MDTS 5; a 128 KiB write and read through a 31-entry PRP list, and through one SGL Data Block, succeed', async () => {
      const { d } = env
      expect(d.identify[77]).toBe(5)
      expect(d.maxTransfer).toBe(128 << 10)
      const data = random(128 << 10, 30)
      env.big.bytes.set(data)
      expect((await within(d.write(1, 256, 256, env.big))).status).toBe(0)
      wrote(env, 256, data)
      expect(same(await readNs(env, 256, 256), data)).toBe(true)
      env.bigBack.bytes.fill(0)
      expect((await io(d, rwCmd({ op: READ, slba: 256, nlb: 256, sgl: [env.bigBack.iova, 128 << 10, T.data] }))).status).toBe(0)
      expect(same(env.bigBack.bytes, data)).toBe(true)
    })

    it('one block more than MDTS: Invalid Field in Command before any data moves, for PRPs and SGLs; Get Log Page beyond MDTS too', async () => {
      const { d, arena } = env
      // a 132 KiB buffer: 33 pages, PRP list at page 40
      const list: number[] = []
      for (let i = 1; i < 33; i++) list.push(arena.iova(2 + i))
      arena.prps(40, 0, list)
      for (const op of [WRITE, READ]) {
        expect((await io(d, rwCmd({ op, slba: 0, nlb: 257, prp1: arena.iova(2), prp2: arena.iova(40) }))).status).toBe(S.InvalidField)
        expect((await io(d, rwCmd({ op, slba: 0, nlb: 257, sgl: [arena.iova(2), 257 * BS, T.data] }))).status).toBe(S.InvalidField)
        // NLB 65536, the most the field holds
        expect((await io(d, rwCmd({ op, slba: 0, nlb: 65536, prp1: UNMAPPED, prp2: UNMAPPED }))).status).toBe(S.InvalidField)
      }
      // Get Log Page, SMART, NUMD for 128 KiB + 4 bytes
      const numd = (128 << 10) / 4
      const c = await admin(d, (w) => {
        w.opcode(0x02)
        w.u64(24, arena.iova(2))
        w.u64(32, arena.iova(40))
        w.u32(40, 0x02 | ((numd & 0xffff) << 16))
        w.u32(44, numd >>> 16)
      })
      expect(c.status).toBe(S.InvalidField)
    })
  })

  describe('data in the Controller Memory Buffer (BAR 2, CMBLOC BIR 2, CMBSZ RDS/WDS/LISTS; CMBLOC.CDPMLS 0: no mixing with host memory)', () => {
    let cmb: number
    let cmbBytes: Uint8Array
    beforeAll(() => {
      const { f } = env
      const bar = f.fabric.ioremap(f.fn, 0)
      cmb = f.fabric.barAddress(f.fn, 2)
      expect(cmb).toBeGreaterThan(0)
      // CMBMSC (offset 50h): CRE and CMSE, CBA the BAR's address
      bar.write64(Reg.CMBMSC, BigInt(cmb) | 3n)
      expect(bar.read(Reg.CMBLOC, 4) & 7).toBe(2)
      const r = f.pm.region('cmb')
      cmbBytes = f.pm.bytes.subarray(r.base, r.base + (1 << 20))
    })

    it('a write from the CMB and a read into it (PRP1, PRP2 and a PRP list all in the CMB) work', async () => {
      const { d } = env
      const data = random(4 * PAGE, 40)
      cmbBytes.set(data, 0)
      // a PRP list in the CMB too (CMBSZ.LISTS)
      const list = new DataView(cmbBytes.buffer, cmbBytes.byteOffset + 16 * PAGE, 24)
      for (let i = 0; i < 3; i++) {
        list.setUint32(8 * i, (cmb + (i + 1) * PAGE) % TWO32, true)
        list.setUint32(8 * i + 4, Math.floor((cmb + (i + 1) * PAGE) / TWO32), true)
      }
      expect((await io(d, rwCmd({ op: WRITE, slba: 224, nlb: 32, prp1: cmb, prp2: cmb + 16 * PAGE }))).status).toBe(0)
      wrote(env, 224, data)
      cmbBytes.fill(0, 32 * PAGE, 36 * PAGE)
      expect((await io(d, rwCmd({ op: READ, slba: 224, nlb: 16, prp1: cmb + 32 * PAGE, prp2: cmb + 33 * PAGE }))).status).toBe(0)
      expect(same(cmbBytes.subarray(32 * PAGE, 34 * PAGE), data.subarray(0, 2 * PAGE))).toBe(true)
      // and through an SGL Data Block
      expect((await io(d, rwCmd({ op: READ, slba: 224, nlb: 8, sgl: [cmb + 40 * PAGE + 3, PAGE, T.data] }))).status).toBe(0)
      expect(same(cmbBytes.subarray(40 * PAGE + 3, 41 * PAGE + 3), data.subarray(0, PAGE))).toBe(true)
    })

    it('data in the CMB while CMBMSC.CMSE is clear (the controller memory space disabled): Invalid Use of Controller Memory Buffer', async () => {
      const { d, f } = env
      const bar = f.fabric.ioremap(f.fn, 0)
      bar.write64(Reg.CMBMSC, 1n) // CRE only
      try {
        expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, prp1: cmb }))).status).toBe(S.InvalidControllerMemoryBufferUse)
        expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [cmb, PAGE, T.data] }))).status).toBe(S.InvalidControllerMemoryBufferUse)
      } finally {
        bar.write64(Reg.CMBMSC, BigInt(cmb) | 3n)
      }
    })

    it('past the end of the CMB: Data Transfer Error', async () => {
      const { d } = env
      const end = cmb + (1 << 20)
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 16, prp1: end - PAGE, prp2: end }))).status).toBe(S.DataTransferError)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [end - 2048, PAGE, T.data] }))).status).toBe(S.DataTransferError)
    })

    it('CMB and host memory in one command\'s data: Invalid Use of Controller Memory Buffer (CDPMLS 0; QEMU\'s nvme_map_addr)', async () => {
      const { d, arena } = env
      arena.put(2, 0, random(PAGE, 41))
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 16, prp1: arena.iova(2), prp2: cmb }))).status).toBe(S.InvalidControllerMemoryBufferUse)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 16, prp1: cmb, prp2: arena.iova(2) }))).status).toBe(S.InvalidControllerMemoryBufferUse)
      // a PRP list in host memory mixing the two
      arena.prps(10, 0, [cmb + PAGE, arena.iova(3)])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 24, prp1: arena.iova(2), prp2: arena.iova(10) }))).status).toBe(S.InvalidControllerMemoryBufferUse)
      // SGL data blocks mixing the two
      arena.sgl(11, 0, [
        [arena.iova(2), 2048, T.data],
        [cmb, 2048, T.data],
      ])
      expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(11), 32, T.last] }))).status).toBe(S.InvalidControllerMemoryBufferUse)
      expect((await io(d, rwCmd({ op: READ, slba: 0, nlb: 8, sgl: [arena.iova(11), 32, T.last] }))).status).toBe(S.InvalidControllerMemoryBufferUse)
    })
  })
})

describe('PRP list loops on a controller without a transfer limit (MDTS 0)', () => {
  const env = environment({ controller: { mdts: 0 } })

  it('a list page that links to itself, with contiguous entries: followed until the length is covered (a real controller\'s DMA; no more list reads than the length needs)', async () => {
    const { d, f } = env
    // page A: 511 entries for the pages of a 2 MiB region, entry 511 linking back to A. A
    // 4100 KiB write (1025 pages) takes PRP1 + 1024 entries: A is read 3 times.
    const region = d.allocBuffer(511 * PAGE)
    region.bytes.set(random(region.length, 50))
    const first = d.allocBuffer(PAGE)
    first.bytes.set(random(PAGE, 51))
    const a = d.allocBuffer(PAGE)
    const v = new DataView(a.bytes.buffer, a.bytes.byteOffset, PAGE)
    for (let i = 0; i < 511; i++) {
      v.setUint32(8 * i, (region.iova + i * PAGE) % TWO32, true)
      v.setUint32(8 * i + 4, Math.floor((region.iova + i * PAGE) / TWO32), true)
    }
    v.setUint32(8 * 511, a.iova % TWO32, true)
    v.setUint32(8 * 511 + 4, Math.floor(a.iova / TWO32), true)
    const dmas = f.fabric.traffic.dmas
    const t0 = performance.now()
    expect((await io(d, rwCmd({ op: WRITE, slba: MODEL_BLOCKS, nlb: 1025 * 8, prp1: first.iova, prp2: a.iova }))).status).toBe(0)
    expect(performance.now() - t0).toBeLessThan(2000)
    // DMAs: the SQE, the list page 3 times, the data, the CQE
    expect(f.fabric.traffic.dmas - dmas).toBeLessThanOrEqual(6)
    // the namespace holds the first page, then the region over and over
    const back = d.allocBuffer(512 * BS)
    expect((await within(d.read(1, MODEL_BLOCKS + 8 * 512, 512, back))).status).toBe(0)
    // transfer page k >= 1 is region page (k - 1) % 511: page 512 (LBA 512 + 8 * 512) is region page 0
    expect(same(back.bytes, region.bytes.subarray(0, 512 * BS))).toBe(true)
    for (const b of [region, first, a, back]) d.freeBuffer(b)
  })

  it('a list page that links to itself with scattered entries: the walk stops when the command\'s fragments run out (256), bounded, with an error', async () => {
    const { d } = env
    const data = d.allocBuffer(2 * PAGE)
    const a = d.allocBuffer(PAGE)
    const v = new DataView(a.bytes.buffer, a.bytes.byteOffset, PAGE)
    // every entry the same page: nothing merges
    for (let i = 0; i < 511; i++) {
      v.setUint32(8 * i, data.iova % TWO32, true)
      v.setUint32(8 * i + 4, Math.floor(data.iova / TWO32), true)
    }
    v.setUint32(8 * 511, a.iova % TWO32, true)
    v.setUint32(8 * 511 + 4, Math.floor(a.iova / TWO32), true)
    const t0 = performance.now()
    const c = await io(d, rwCmd({ op: READ, slba: 0, nlb: 65536, prp1: data.iova + PAGE, prp2: a.iova }))
    expect(performance.now() - t0).toBeLessThan(2000)
    // the PCIe front end walks into a list of 256 fragments: Internal Error (06h) for more
    expect(c.status).toBe(S.InternalError)
    expect(same(data.bytes, new Uint8Array(2 * PAGE))).toBe(true)
    for (const b of [data, a]) d.freeBuffer(b)
  })
})

describe('a controller built without SGL support', () => {
  const env = environment({ controller: { sgl: false } })

  it('Identify SGLS is 0 and an SGL command is Invalid Field in Command; PRPs work', async () => {
    const { d, arena } = env
    const sgls = new DataView(d.identify.buffer).getUint32(536, true)
    expect(sgls).toBe(0)
    expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, sgl: [arena.iova(2), PAGE, T.data] }))).status).toBe(S.InvalidField)
    const data = random(PAGE, 60)
    arena.put(2, 0, data)
    expect((await io(d, rwCmd({ op: WRITE, slba: 0, nlb: 8, prp1: arena.iova(2) }))).status).toBe(0)
    wrote(env, 0, data)
  })
})
