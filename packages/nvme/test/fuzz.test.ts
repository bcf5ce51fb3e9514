// The acceptance fuzzer: "A command fuzzer sends millions of random and mutated SQEs, and
// random register writes. None of them throws, hangs, or corrupts memory outside the
// command's mapped buffers. Every command completes with a status, and the controller
// stays usable."
//
// Commands. On the host driver's first I/O queue and on the admin queue, SQEs that are
//   - fully random 64 bytes (the CID is the driver's), or random bytes under a valid opcode;
//   - valid commands (Read, Write, Compare, Verify, Flush, Write Zeroes, Dataset Management;
//     Identify, Get Log Page, Get / Set Features, Asynchronous Event Request, Abort,
//     Create / Delete I/O SQ and CQ, Format NVM, Keep Alive) whose data pointers really
//     describe host memory: PRP1/PRP2, PRP lists (chained across list pages) and SGLs (one
//     data block, or segments of byte-granular data blocks and bit buckets, chained),
//     built in a fuzz arena of host memory; then 0 to 3 mutations (a bit flip anywhere,
//     a random opcode, NSID, PRP or SGL pointer, PSDT/FUSE byte, NLB, SLBA, CNS/LID/FID,
//     a whole command dword, an SGL identifier or length, a qword of the arena a list may
//     be read from).
// Data pointers go mostly into the arena, otherwise into read-only and write-only aliases
// of it, the CMB (BAR 2), unmapped IOVAs, or anywhere: one such zone per command, now and
// then another for one pointer, so that a command of hundreds of descriptors or list
// entries still moves data (per-pointer choices made every long SGL fail before any data
// moved, and hid a bug). Namespaces: 1 (10 MiB, fuzzed), 2 (the health check's), 3 (PI
// type 1 in 8 bytes of metadata, fuzzed with PRACT and PRCHK). The harness neutralises only what
// would break itself, not the controller: I/O never addresses namespace 2 (the health
// check's), Format NVM never formats it, Delete I/O SQ / CQ never deletes queue 1 (the
// fuzzer's own; queue 2 is the driver's spare and may go and come back), and no pointer
// lands in the driver's own memory (its queues and list pages, the canary).
//
// Every command must complete (a watchdog fails with the SQE in hex if one has not after
// WATCHDOG_MS), with any status, but for Asynchronous Event Requests, which legitimately
// wait for an event: they are counted apart and aborted at the end (Abort, SQID 0, every
// CID), and must then all have completed. Throughout: no exception escapes (process
// 'uncaughtException' / 'unhandledRejection' listeners, and vitest's own), the controller
// never reports CSTS.CFS because of commands (counters.fatal), the guard pages either side
// of the arena (unmapped: only a controller that writes past what the IOMMU translated
// could touch them) and a canary buffer (mapped read-write, never pointed at) keep their
// bytes, every HEALTH_EVERY commands a health check writes random blocks to namespace 2
// and reads them back, namespace 2 holds exactly what the health checks wrote, and the
// controller's pools (iobuf buffers, accel tasks and sequences, bdev I/Os) are whole again
// at the end. The same runs on a controller without a transfer limit (MDTS 0), whose
// commands go up to 16 MiB.
//
// Registers. Random 1/2/4/8-byte writes (aligned, as the fabric requires; the MSI-X table
// and PBA take 4 and 8) anywhere in BAR0: the controller registers (biased toward CC, AQA,
// ASQ, ACQ, CMBMSC, INTMS/INTMC, with values near the current ones so that EN and SHN
// really toggle), the doorbells (of queues that exist, and not), the MSI-X table and PBA,
// interleaved with random reads and with fuzz commands. None may throw; CAP and VS never
// change. After each burst the driver resets the controller (d.reset(): disable, rebuild
// the queues) and the health check must pass. Not written: the SQ tail doorbells of the
// admin queue and of I/O queue 1, whose rings hold the driver's earlier commands (the init
// sequence's Identify into a buffer freed since, the health writes): replaying them is the
// host's doing, not a controller bug.
//
// A fast-check property sends short sequences of template + mutation commands (shrunk on
// failure) and checks the same invariants; a fixed seed (IPUKIT_SEED) makes every run
// reproducible. CI counts are fuzzRuns(...): IPUKIT_FUZZ_SCALE=100 (scripts/fuzz.sh) runs
// a hundred times as many. At the end, a regression test for each bug the fuzzer found.
import { Access } from '@ipukit/memory'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Completion, type HostBuffer, type NvmeHostDriver, Reg, type SqeWriter } from '../src/index.js'
import { fixture, type Fixture, fuzzRuns, host, random, same } from './helpers.js'

const PAGE = 4096
const BS = 512
const TWO32 = 0x1_0000_0000
const WATCHDOG_MS = 5000

const IO_COMMANDS = fuzzRuns(120_000)
const ADMIN_COMMANDS = fuzzRuns(60_000)
const REG_WRITES = fuzzRuns(50_000)
const PROPERTY_RUNS = fuzzRuns(60)
const NO_MDTS_COMMANDS = fuzzRuns(15_000)
const HEALTH_EVERY = 2000
/** per test: a minute per unit of IPUKIT_FUZZ_SCALE (CI takes seconds) */
const TIMEOUT = Math.max(120_000, fuzzRuns(60_000))
const BURST = 100

// ---- the IOVA layout (IOVAs are below 2^48) ----
/** the driver maps its allocations at HPA + this: a high dword (0xFFFF) and a low one (2^31 + HPA) no structure in the arena holds */
const DRV_IOVA = 0xffff_8000_0000
const DRV_HI = 0xffff
const DRV_LO = 0x8000_0000
const DRV_LO_END = DRV_LO + (64 << 20)
/** the arena, only there (its driver mapping is removed), and aliases of its first pages */
const ARENA_IOVA = 0x7a5c_0000_0000
const RO_IOVA = 0x7a5d_0000_0000
const WO_IOVA = 0x7a5e_0000_0000
const UNMAPPED = 0x7a5f_0000_0000
const ARENA_PAGES = 128
const ARENA_BYTES = ARENA_PAGES * PAGE
const ALIAS_PAGES = 16
const CMB_SIZE = 1 << 20
/** MDTS 5 at 4 KiB pages; without an MDTS the generator goes up to 16 MiB (past what 64 staging buffers hold) */
const MDTS_BYTES = 128 << 10
const NO_MDTS_BYTES = 16 << 20

// ---- namespaces ----
const NS_FUZZ = 1
const NS_HEALTH = 2
const NS_PI = 3
/** namespace 1 is large (10 MiB): Verify and Write Zeroes are not bound by MDTS, nor its staging by one buffer */
const BLOCKS: Record<number, number> = { [NS_FUZZ]: 20480, [NS_HEALTH]: 1024, [NS_PI]: 1024 }

const Op = { Flush: 0x00, Write: 0x01, Read: 0x02, Compare: 0x05, WriteZeroes: 0x08, Dsm: 0x09, Verify: 0x0c } as const
const Adm = { DeleteSq: 0x00, CreateSq: 0x01, GetLog: 0x02, DeleteCq: 0x04, CreateCq: 0x05, Identify: 0x06, Abort: 0x08, SetFeatures: 0x09, GetFeatures: 0x0a, Aer: 0x0c, KeepAlive: 0x18, Format: 0x80 } as const

/** xorshift32: everything is reproducible from the seed */
class Rng {
  s: number
  constructor(seed: number) {
    this.s = seed >>> 0 || 1
  }
  u32(): number {
    let s = this.s
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    this.s = s
    return s
  }
  /** [0, n), n up to 2^32 */
  int(n: number): number {
    return Math.floor((this.u32() / TWO32) * n)
  }
  chance(p: number): boolean {
    return this.u32() < p * TWO32
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!
  }
  /** log-uniform in [1, max] */
  log(max: number): number {
    return Math.max(1, Math.min(max, Math.floor(Math.exp((this.u32() / TWO32) * Math.log(max + 1)))))
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').replace(/(.{8})/g, '$1 ').trim()

/** Waits for `p`, failing after `ms` (a hang). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms (hung)`)), ms)
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

const turn = () => new Promise<void>((r) => setImmediate(r))

interface Env {
  f: Fixture
  d: NvmeHostDriver
  arena: HostBuffer
  av: DataView
  guards: { buf: HostBuffer; want: Uint8Array }[]
  canary: { buf: HostBuffer; want: Uint8Array }
  cmb: number
  health: HostBuffer
  back: HostBuffer
  /** namespace 2 as the health checks wrote it */
  model: Uint8Array
  /** exceptions that escaped */
  errors: string[]
  /** health checks run */
  checks: number
  seed: number
  r: Rng
  /** the largest transfer the generator builds valid commands for (MDTS) */
  maxBytes: number
}

/** A fixture: namespaces 1 (fuzzed), 2 (health) and 3 (PI type 1, fuzzed), a CMB, the driver, the arena, guards and canary. */
function environment(o: { mdts?: number } = {}): Env {
  const env = { errors: [], checks: 0, maxBytes: o.mdts === 0 ? NO_MDTS_BYTES : MDTS_BYTES } as unknown as Env
  const onError = (e: unknown) => {
    env.errors.push(e instanceof Error ? (e.stack ?? e.message) : String(e))
  }
  beforeAll(async () => {
    process.on('uncaughtException', onError)
    process.on('unhandledRejection', onError)
    env.seed = Number(process.env.IPUKIT_SEED ?? 0xf022)
    env.r = new Rng(env.seed)
    env.f = await fixture({ namespaces: [{ blocks: BLOCKS[1]! }, { blocks: BLOCKS[2]! }, { blocks: BLOCKS[3]!, mdSize: 8, pi: { type: 1 } }], cmb: true, ...(o.mdts !== undefined && { controller: { mdts: o.mdts } }) })
    env.d = await host(env.f, { ioQueues: 2, iovaOffset: DRV_IOVA, timeoutMs: 1e9 })
    env.d.stop() // the fuzzer's own watchdog judges hangs
    const { f, d } = env
    const rid = f.fn.rid
    const before = d.allocBuffer(2 * PAGE)
    env.arena = d.allocBuffer(ARENA_BYTES)
    const after = d.allocBuffer(2 * PAGE)
    // the guards touch the arena in host physical memory: an overrun past a translated page lands in them
    expect(env.arena.hpa).toBe(before.hpa + 2 * PAGE)
    expect(after.hpa).toBe(env.arena.hpa + ARENA_BYTES)
    for (const b of [before, env.arena, after]) f.iommu.unmap(rid, b.iova, Math.ceil(b.length / PAGE) * PAGE)
    f.iommu.map(rid, ARENA_IOVA, env.arena.hpa, ARENA_BYTES, Access.Read | Access.Write)
    f.iommu.map(rid, RO_IOVA, env.arena.hpa, ALIAS_PAGES * PAGE, Access.Read)
    f.iommu.map(rid, WO_IOVA, env.arena.hpa + ALIAS_PAGES * PAGE, ALIAS_PAGES * PAGE, Access.Write)
    env.av = new DataView(env.arena.bytes.buffer, env.arena.bytes.byteOffset, ARENA_BYTES)
    env.arena.bytes.set(random(ARENA_BYTES, env.seed ^ 0x1234))
    sanitizeArena(env)
    env.guards = [before, after].map((buf, i) => {
      const want = random(buf.length, env.seed + 7 + i)
      buf.bytes.set(want)
      return { buf, want }
    })
    const canary = d.allocBuffer(16 * PAGE)
    env.canary = { buf: canary, want: random(canary.length, env.seed + 9) }
    canary.bytes.set(env.canary.want)
    env.health = d.allocBuffer(16 * BS)
    env.back = d.allocBuffer(16 * BS)
    env.cmb = f.fabric.barAddress(f.fn, 2)
    expect(env.cmb).toBeGreaterThan(0)
    enableCmb(env)
    // namespace 2: known bytes throughout
    env.model = random(BLOCKS[NS_HEALTH]! * BS, env.seed + 11)
    const big = d.allocBuffer(256 * BS)
    for (let lba = 0; lba < BLOCKS[NS_HEALTH]!; lba += 256) {
      big.bytes.set(env.model.subarray(lba * BS, (lba + 256) * BS))
      expect((await d.write(NS_HEALTH, lba, 256, big)).status).toBe(0)
    }
    d.freeBuffer(big)
  })
  afterAll(async () => {
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onError)
    env.d?.stop()
    await env.f?.close()
  })
  return env
}

/** CMBMSC: CRE and CMSE, the controller memory space at BAR 2's address (data and lists may be there) */
function enableCmb(env: Env): void {
  env.f.fabric.ioremap(env.f.fn, 0).write64(Reg.CMBMSC, BigInt(env.cmb) | 3n)
}

/** No qword of the arena names the driver's memory (random bytes could, once in 2^38). */
function sanitizeArena(env: Env): void {
  const v = env.av
  for (let o = 0; o < ARENA_BYTES; o += 8) {
    if (v.getUint32(o + 4, true) === DRV_HI) v.setUint32(o + 4, 0, true)
  }
}

function sub(b: HostBuffer, length: number): HostBuffer {
  return { hpa: b.hpa, iova: b.iova, length, bytes: b.bytes.subarray(0, length) }
}

/** A write and read back of random blocks of namespace 2; and the memory the fuzz never references. */
async function health(env: Env, what: string): Promise<void> {
  const { d, r } = env
  env.checks++
  const n = 1 + r.int(16)
  const lba = r.int(BLOCKS[NS_HEALTH]! - n + 1)
  const data = random(n * BS, r.u32())
  env.health.bytes.set(data)
  const w = await within(d.write(NS_HEALTH, lba, n, sub(env.health, n * BS)), WATCHDOG_MS, `${what}: health write`)
  expect(w.status, `${what}: health write of namespace ${NS_HEALTH} LBA ${lba} x${n}`).toBe(0)
  env.model.set(data, lba * BS)
  env.back.bytes.fill(0)
  const c = await within(d.read(NS_HEALTH, lba, n, sub(env.back, n * BS)), WATCHDOG_MS, `${what}: health read`)
  expect(c.status, `${what}: health read`).toBe(0)
  expect(same(env.back.bytes.subarray(0, n * BS), data), `${what}: health read data`).toBe(true)
  checkMemory(env, what)
  // fresh random bytes in a few arena pages, and nothing naming the driver's memory
  for (let i = 0; i < 4; i++) {
    const p = r.int(ARENA_PAGES)
    env.arena.bytes.set(random(PAGE, r.u32()), p * PAGE)
  }
  sanitizeArena(env)
}

/** The controller's pools (its channel's iobuf buffers, accel tasks and sequences, bdev I/Os): a leak would starve it into endless retries. */
function resources(env: Env): string {
  const ch = env.f.ch
  const [cs, cl] = ch.accel.iobuf.cached
  const [ss, sl] = ch.accel.iobuf.sharedFree
  return `iobuf small ${cs + ss} large ${cl + sl}, accel tasks ${ch.accel.freeTasks} sequences ${ch.accel.freeSequences}, bdev I/Os ${ch.freeIos}`
}

function checkMemory(env: Env, what: string): void {
  for (const [i, g] of env.guards.entries()) expect(same(g.buf.bytes, g.want), `${what}: guard ${i === 0 ? 'before' : 'after'} the arena changed`).toBe(true)
  expect(same(env.canary.buf.bytes, env.canary.want), `${what}: the canary changed`).toBe(true)
}

/** Namespace 2 holds exactly what the health checks wrote. */
async function checkHealthNamespace(env: Env): Promise<void> {
  const big = env.d.allocBuffer(256 * BS)
  try {
    for (let lba = 0; lba < BLOCKS[NS_HEALTH]!; lba += 256) {
      const c = await within(env.d.read(NS_HEALTH, lba, 256, big), WATCHDOG_MS, 'namespace 2 read')
      expect(c.status).toBe(0)
      expect(same(big.bytes, env.model.subarray(lba * BS, (lba + 256) * BS)), `namespace ${NS_HEALTH} LBAs ${lba}..${lba + 255}`).toBe(true)
    }
  } finally {
    env.d.freeBuffer(big)
  }
}

// ---- SQE generation ----

type Mutation = { kind: 'flip'; dword: number; bit: number } | { kind: 'dword'; dword: number; value: number } | { kind: 'byte'; at: number; value: number }

class Gen {
  s = new Uint8Array(64)
  v = new DataView(this.s.buffer)
  r: Rng
  constructor(
    readonly env: Env,
    r: Rng,
  ) {
    this.r = r
  }

  #fresh(): void {
    this.s = new Uint8Array(64)
    this.v = new DataView(this.s.buffer)
  }

  u32(off: number, x: number): void {
    this.v.setUint32(off, x >>> 0, true)
  }

  u64(off: number, x: number): void {
    this.v.setUint32(off, x % TWO32, true)
    this.v.setUint32(off + 4, Math.floor(x / TWO32) >>> 0, true)
  }

  /** a qword of the arena, at byte offset `o` */
  a64(o: number, x: number): void {
    this.env.av.setUint32(o, x % TWO32, true)
    this.env.av.setUint32(o + 4, Math.floor(x / TWO32) >>> 0, true)
  }

  /** an SGL descriptor at `o` of view `v` */
  desc(v: DataView, o: number, addr: number, len: number, id: number): void {
    v.setUint32(o, addr % TWO32, true)
    v.setUint32(o + 4, Math.floor(addr / TWO32) >>> 0, true)
    v.setUint32(o + 8, len >>> 0, true)
    v.setUint32(o + 12, (id & 0xff) << 24, true)
  }

  /** an offset in [0, size - len], a multiple of align */
  #off(size: number, len: number, align: number): number {
    const room = Math.max(0, size - len)
    return this.r.int(Math.floor(room / align) + 1) * align
  }

  /**
   * Where this command's data pointers go (one zone per command, so that a command with
   * hundreds of descriptors or list entries still moves data): the arena mostly, else its
   * read-only or write-only alias, the CMB, unmapped IOVAs, or each pointer anywhere.
   */
  zone = 0
  #zone(): void {
    const k = this.r.int(100)
    this.zone = k < 82 ? 0 : k < 85 ? 1 : k < 88 ? 2 : k < 92 ? 3 : k < 95 ? 4 : 5
  }

  /** An IOVA for `len` bytes of data aligned to `align`, in the command's zone (now and then another). */
  data(len: number, align: number): number {
    const r = this.r
    const z = this.zone === 5 || r.chance(0.005) ? r.int(6) : this.zone
    switch (z) {
      case 0:
        return ARENA_IOVA + this.#off(ARENA_BYTES, len, align)
      case 1:
        return RO_IOVA + this.#off(ALIAS_PAGES * PAGE, len, align)
      case 2:
        return WO_IOVA + this.#off(ALIAS_PAGES * PAGE, len, align)
      case 3:
        return this.env.cmb + (r.chance(0.9) ? this.#off(CMB_SIZE, len, align) : CMB_SIZE - align * (1 + r.int(8)))
      case 4:
        return UNMAPPED + this.#off(1 << 20, 0, align)
      default:
        return this.wild(align)
    }
  }

  /** Anywhere (below 2^53: the raw-dword mutations reach the rest). */
  wild(align = 1): number {
    const r = this.r
    let x: number
    switch (r.int(7)) {
      case 0:
        x = 0
        break
      case 1:
        x = r.u32()
        break
      case 2:
        x = 2 ** 48 - PAGE * (1 + r.int(4))
        break
      case 3:
        x = r.int(2 ** 21) * TWO32 + r.u32()
        break
      case 4:
        x = ARENA_IOVA + ARENA_BYTES - PAGE + r.int(PAGE) // straddling the arena's end
        break
      case 5:
        x = this.env.cmb - PAGE + r.int(2 * PAGE) // straddling the CMB's start
        break
      default:
        x = 2 ** 53 - PAGE
    }
    return x - (x % align)
  }

  /** PRP1/PRP2 (and a PRP list in the arena) for `bytes`. */
  prp(bytes: number): void {
    const r = this.r
    const align = r.chance(0.5) ? PAGE : r.chance(0.97) ? 4 : 1
    const p1 = this.data(bytes, align)
    this.u64(24, p1)
    const left = bytes - (PAGE - (p1 % PAGE))
    if (left <= 0) {
      this.u64(32, r.chance(0.7) ? 0 : this.wild())
      return
    }
    const contiguous = r.chance(0.6)
    const base = p1 - (p1 % PAGE) + PAGE
    const page = (i: number) => (contiguous ? base + i * PAGE : this.data(PAGE, r.chance(0.98) ? PAGE : 8))
    if (left <= PAGE) {
      this.u64(32, page(0))
      return
    }
    this.u64(32, this.list(Math.ceil(left / PAGE), page))
  }

  /** A PRP list of n entries in the arena, chained across list pages; its IOVA. */
  list(n: number, page: (i: number) => number): number {
    const r = this.r
    if (r.chance(0.04)) {
      const x = r.pick([UNMAPPED, RO_IOVA + r.int(ALIAS_PAGES) * PAGE, WO_IOVA, ARENA_IOVA + r.int(ARENA_PAGES) * PAGE, this.wild(8)])
      return x // a list that is not one, or whatever the arena holds
    }
    let lp = r.int(ARENA_PAGES)
    let q = r.chance(0.5) ? 0 : r.chance(0.5) ? PAGE - 8 * (1 + r.int(4)) : 8 * r.int(PAGE / 8)
    const head = ARENA_IOVA + lp * PAGE + q
    let i = 0
    for (;;) {
      const avail = (PAGE - q) / 8
      if (n - i <= avail) {
        for (let k = 0; i < n; k++) this.a64(lp * PAGE + q + 8 * k, page(i++))
        return head
      }
      for (let k = 0; k < avail - 1; k++) this.a64(lp * PAGE + q + 8 * k, page(i++))
      const next = r.int(ARENA_PAGES)
      this.a64(lp * PAGE + PAGE - 8, ARENA_IOVA + next * PAGE)
      lp = next
      q = 0
    }
  }

  /** An SGL for `bytes` (PSDT 01b, sometimes 10b): one data block, or segments in the arena. */
  sgl(bytes: number, read: boolean): void {
    const r = this.r
    this.s[1] = (this.s[1]! & 0x3f) | ((r.chance(0.9) ? 1 : 2) << 6)
    if (r.chance(0.4)) {
      const len = r.chance(0.85) ? bytes : r.chance(0.5) ? bytes + 1 + r.int(PAGE) : r.int(bytes)
      this.desc(this.v, 24, this.data(len, 1), len, r.chance(0.97) ? 0x00 : r.u32())
      return
    }
    const many = r.chance(0.15)
    const k = Math.min(bytes, many ? 64 + r.int(320) : 1 + r.int(16))
    const descs: [number, number, number][] = []
    let left = bytes
    for (let j = 0; j < k; j++) {
      const rest = k - 1 - j
      const len = rest === 0 ? left : Math.max(1, Math.min(left - rest, 1 + r.int(Math.max(1, Math.floor((2 * left) / (k - j))))))
      left -= len
      if (read && r.chance(0.1)) descs.push([r.chance(0.9) ? 0 : r.u32(), len, 0x10])
      else descs.push([this.data(len, 1), len, 0x00])
    }
    if (r.chance(0.03)) descs.splice(r.int(descs.length + 1), 0, [this.data(PAGE, 1), r.u32(), r.u32() & 0xff])
    if (r.chance(0.03)) descs.push([this.data(PAGE, 1), PAGE, 0x00])
    const g = Math.min(descs.length, r.chance(0.6) ? 1 : 2 + r.int(3))
    const per = Math.ceil(descs.length / g)
    let next: [number, number, number] | null = null
    for (let j = g - 1; j >= 0; j--) {
      const group = descs.slice(j * per, (j + 1) * per)
      if (group.length === 0) continue
      const entries: [number, number, number][] = next === null ? group : [...group, next]
      const segBytes: number = 16 * entries.length
      const at: number = 16 * r.int(Math.floor((ARENA_BYTES - segBytes) / 16) + 1)
      for (const [i, [a, n, id]] of entries.entries()) this.desc(this.env.av, at + 16 * i, a, n, id)
      const id: number = next === null ? (r.chance(0.9) ? 0x30 : 0x20) : r.chance(0.9) ? 0x20 : 0x30
      next = [ARENA_IOVA + at, segBytes, id]
    }
    const [a, n, id] = next!
    this.desc(this.v, 24, a, n, id)
  }

  // ---- I/O commands ----

  io(): Uint8Array {
    this.#fresh()
    this.#zone()
    const r = this.r
    if (r.chance(0.12)) return this.#random(false)
    const ns = r.chance(0.75) ? NS_FUZZ : NS_PI
    const op = r.pick([Op.Read, Op.Read, Op.Read, Op.Write, Op.Write, Op.Write, Op.Compare, Op.Verify, Op.Flush, Op.WriteZeroes, Op.Dsm])
    this.s[0] = op
    this.u32(4, ns)
    const blocks = BLOCKS[ns]!
    switch (op) {
      case Op.Flush:
        if (r.chance(0.2)) this.u32(4, 0xffffffff)
        if (r.chance(0.3)) this.prp(PAGE) // ignored
        break
      case Op.Dsm: {
        const nr = r.log(256)
        this.u32(40, nr - 1)
        this.u32(44, (r.chance(0.85) ? 1 << 2 : 0) | r.int(4))
        const bytes = 16 * nr
        if (r.chance(0.85)) {
          const at = 4 * r.int((ARENA_BYTES - bytes) / 4 + 1)
          for (let i = 0; i < nr; i++) {
            const nlb = r.chance(0.9) ? r.int(64) : r.u32()
            const slba = r.chance(0.95) ? r.int(Math.max(1, blocks - (nlb >>> 0) + 1)) : r.u32() * (r.chance(0.5) ? 1 : TWO32)
            this.env.av.setUint32(at + 16 * i, r.chance(0.9) ? 0 : r.u32(), true)
            this.env.av.setUint32(at + 16 * i + 4, nlb >>> 0, true)
            this.a64(at + 16 * i + 8, slba)
          }
          this.u64(24, ARENA_IOVA + at)
          if ((at % PAGE) + bytes > PAGE) this.u64(32, ARENA_IOVA + (Math.floor(at / PAGE) + 1) * PAGE)
        } else this.prp(bytes)
        break
      }
      default: {
        const maxNlb = this.env.maxBytes / BS
        const nlb = op === Op.Verify || (op === Op.WriteZeroes && r.chance(0.05)) ? r.log(65536) : r.chance(0.95) ? r.log(maxNlb) : r.chance(0.5) ? maxNlb + 1 : 65536
        const slba = r.chance(0.93) ? r.int(Math.max(1, blocks - nlb + 1)) : r.pick([blocks - nlb + 1, blocks, blocks - 1, TWO32 + r.int(16), 2 ** 53 - 1])
        this.u64(40, slba)
        let cdw12 = (nlb - 1) & 0xffff
        if (r.chance(0.2)) cdw12 |= 1 << 30 // FUA
        if (op === Op.WriteZeroes && r.chance(0.5)) cdw12 |= 1 << 25 // DEAC
        let pract = 0
        if (ns === NS_PI && r.chance(0.6)) {
          pract = r.int(2)
          const prchk = r.int(8)
          cdw12 |= (pract << 29) | (prchk << 26)
          this.u32(56, r.chance(0.8) ? slba % TWO32 : r.u32()) // the expected initial reference tag
          if (r.chance(0.3)) this.u32(60, r.u32())
        }
        if (r.chance(0.03)) cdw12 |= r.u32() & 0x83ff_0000 // reserved, LR, STC, DTYPE bits
        this.u32(48, cdw12)
        if (op === Op.WriteZeroes || op === Op.Verify) {
          if (r.chance(0.3)) this.prp(PAGE) // no data: ignored
          break
        }
        const blen = ns === NS_PI && pract === 0 ? BS + 8 : BS
        const bytes = nlb * blen
        if (bytes > this.env.maxBytes) {
          this.u64(24, this.data(PAGE, PAGE))
          this.u64(32, this.data(PAGE, PAGE))
        } else if (r.chance(0.3)) this.sgl(bytes, op === Op.Read)
        else this.prp(bytes)
      }
    }
    this.mutate(false)
    return this.finish(false)
  }

  // ---- admin commands ----

  admin(): Uint8Array {
    this.#fresh()
    this.#zone()
    const r = this.r
    if (r.chance(0.1)) return this.#random(true)
    const k = r.int(1000)
    const op = k < 200 ? Adm.Identify : k < 360 ? Adm.GetLog : k < 480 ? Adm.GetFeatures : k < 610 ? Adm.SetFeatures : k < 640 ? Adm.Aer : k < 700 ? Adm.Abort : k < 760 ? Adm.CreateCq : k < 820 ? Adm.CreateSq : k < 860 ? Adm.DeleteSq : k < 890 ? Adm.DeleteCq : k < 930 ? Adm.KeepAlive : k < 932 ? Adm.Format : r.u32() & 0xff
    this.s[0] = op
    const nsid = () => r.pick([0, 0, 1, 2, 3, 4, 1024, 1025, 0xffffffff, 0xfffffffe, r.u32()])
    switch (op) {
      case Adm.Identify:
        this.u32(4, nsid())
        this.u32(40, r.pick([0, 1, 2, 3, 5, 6, 7, 8, 0x1c, 0x10, 0x12, r.u32() & 0xff]) | (r.chance(0.1) ? r.u32() & 0xffff0000 : 0))
        if (r.chance(0.3)) this.u32(44, r.chance(0.5) ? 0 : r.u32() & 0xff000000)
        this.prp(PAGE)
        break
      case Adm.GetLog: {
        const lid = r.pick([0x01, 0x02, 0x03, 0x04, 0x05, 0x05, 0x02, r.u32() & 0xff])
        const max = this.env.maxBytes
        const bytes = r.chance(0.6) ? r.pick([4, 64, 512, 4096, 4096 + 4, 8192]) : r.chance(0.9) ? 4 * r.log(max / 4) : r.pick([max + 4, 4 * 0xffff * 0x10000])
        const numd = bytes / 4 - 1
        this.u32(4, r.chance(0.7) ? 0xffffffff : nsid())
        this.u32(40, lid | (r.chance(0.05) ? (r.u32() & 0x7f) << 8 : 0) | (r.chance(0.3) ? 1 << 15 : 0) | ((numd & 0xffff) << 16))
        this.u32(44, (numd >>> 16) | (r.chance(0.05) ? r.u32() & 0xffff0000 : 0))
        if (r.chance(0.2)) this.u64(48, r.chance(0.8) ? 4 * r.int(1200) : r.chance(0.5) ? r.u32() : r.u32() * TWO32 + r.u32())
        if (bytes <= max) this.prp(bytes)
        else this.u64(24, this.data(PAGE, PAGE))
        break
      }
      case Adm.GetFeatures:
      case Adm.SetFeatures: {
        const fid = r.pick([0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x0e, 0x0f, 0x03, 0x0c, 0x0d, 0x10, 0x80, r.u32() & 0xff])
        if (r.chance(0.1)) this.u32(4, nsid())
        if (op === Adm.GetFeatures) this.u32(40, fid | ((r.chance(0.8) ? 0 : r.int(8)) << 8))
        else this.u32(40, fid | (r.chance(0.05) ? 1 << 31 : 0))
        const v = r.chance(0.5) ? r.u32() & r.pick([0xff, 0xffff, 0x1_01ff, 0xffffffff]) : r.pick([0, 1, 0x100, 0x0f000f, 0xffff_ffff, 0x0001_0000])
        this.u32(44, v)
        if (fid === 0x0e || r.chance(0.2)) this.prp(8)
        break
      }
      case Adm.Abort:
        this.u32(40, r.pick([0, 0, 1, 2, 3, r.u32() & 0xffff]) | ((r.chance(0.8) ? r.int(32) : r.u32()) << 16))
        break
      case Adm.CreateCq:
      case Adm.CreateSq: {
        const qid = r.pick([2, 2, 2, 3, 1, 0, 16, r.u32() & 0xffff])
        const qsize = r.chance(0.8) ? 1 + r.int(64) : r.pick([0, 4095, 4096, 0xffff])
        this.u32(40, qid | (qsize << 16))
        this.u64(24, r.chance(0.85) ? ARENA_IOVA + r.int(ARENA_PAGES) * PAGE : r.chance(0.5) ? this.data(PAGE, PAGE) : this.wild(r.chance(0.5) ? PAGE : 4))
        if (op === Adm.CreateCq) this.u32(44, (r.chance(0.9) ? 1 : 0) | (r.chance(0.5) ? 2 : 0) | ((r.chance(0.9) ? r.int(17) : r.u32() & 0xffff) << 16))
        else this.u32(44, (r.chance(0.9) ? 1 : 0) | (r.int(4) << 1) | (r.pick([1, 2, 2, 3, 0, r.u32() & 0xffff]) << 16))
        break
      }
      case Adm.DeleteSq:
      case Adm.DeleteCq:
        this.u32(40, r.pick([2, 2, 3, 0, 16, r.u32() & 0xffff]))
        break
      case Adm.Format:
        this.u32(4, r.pick([NS_FUZZ, NS_PI, 0, 4]))
        this.u32(40, r.chance(0.8) ? (r.chance(0.5) ? 0 : 1 << 4 | 1 << 5) : r.u32() & 0x3fff)
        break
      case Adm.Aer:
      case Adm.KeepAlive:
      default:
        if (r.chance(0.3)) this.u32(40, r.u32())
        if (r.chance(0.3)) this.prp(PAGE)
    }
    this.mutate(true)
    return this.finish(true)
  }

  /** Random bytes; half of the time under a valid opcode. */
  #random(admin: boolean): Uint8Array {
    const r = this.r
    for (let i = 0; i < 64; i += 4) this.v.setUint32(i, r.u32(), true)
    if (r.chance(0.5)) this.s[0] = admin ? r.pick([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c, 0x18]) : r.pick([0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x0c])
    if (r.chance(0.5)) this.s[1] = this.s[1]! & 0xc0 // no FUSE, so that more reach the command
    if (r.chance(0.5)) this.u32(4, r.pick([1, 3, 0xffffffff]))
    return this.finish(admin)
  }

  /** the template alone (fast-check applies its own mutations, the ones it shrinks) */
  templateOnly = false

  /** 0 to 3 random mutations. */
  mutate(admin: boolean): void {
    const r = this.r
    const n = this.templateOnly || r.chance(0.3) ? 0 : 1 + r.int(3)
    for (let i = 0; i < n; i++) {
      switch (r.int(13)) {
        case 0:
        case 1: {
          const d = r.int(16)
          this.u32(4 * d, this.v.getUint32(4 * d, true) ^ (1 << r.int(32)))
          break
        }
        case 2:
          this.s[0] = r.chance(0.5) ? r.u32() & 0xff : admin ? r.pick([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c, 0x18, 0x80]) : r.pick([0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x0c])
          break
        case 3:
          this.u32(4, r.pick([0, 1, 2, 3, 4, 1024, 0xffffffff, r.u32()]))
          break
        case 4:
          this.u64(24, r.chance(0.5) ? this.data(PAGE, r.pick([1, 4, PAGE])) : this.wild())
          break
        case 5:
          if (r.chance(0.5)) this.u64(32, r.chance(0.5) ? this.data(PAGE, r.pick([1, 4, 8, PAGE])) : this.wild())
          else {
            this.u32(24 + 8 * r.int(2), r.u32())
            this.u32(28 + 8 * r.int(2), r.u32())
          }
          break
        case 6:
          this.s[1] = r.chance(0.5) ? r.u32() & 0xff : (this.s[1]! & 0x3f) | (r.int(4) << 6)
          break
        case 7:
          this.v.setUint16(48, r.chance(0.5) ? r.u32() & 0xffff : this.v.getUint16(48, true) + r.pick([1, -1, 256, 0xffff]), true)
          break
        case 8:
          this.u32(40, r.u32())
          if (r.chance(0.5)) this.u32(44, r.u32())
          break
        case 9:
          this.u32(40 + 4 * r.int(6), r.u32())
          break
        case 10:
          this.s[40] = r.u32() & 0xff // CNS, LID, FID, NR
          break
        case 11:
          if (r.chance(0.5)) this.s[39] = r.u32() & 0xff
          else this.u32(32, r.chance(0.5) ? r.u32() : this.v.getUint32(32, true) + r.pick([1, -1, 16, -16, 4096]))
          break
        default: {
          // a qword of the arena (a list entry, an SGL descriptor, a DSM range)
          const o = 8 * r.int(ARENA_BYTES / 8)
          if (r.chance(0.5)) this.env.av.setUint32(o + 4 * r.int(2), this.env.av.getUint32(o, true) ^ (1 << r.int(32)), true)
          else this.a64(o, r.chance(0.5) ? this.data(PAGE, r.pick([1, 8, 16, PAGE])) : this.wild())
        }
      }
    }
  }

  applyMutation(m: Mutation): void {
    if (m.kind === 'flip') this.u32(4 * m.dword, this.v.getUint32(4 * m.dword, true) ^ (1 << m.bit))
    else if (m.kind === 'dword') this.u32(4 * m.dword, m.value)
    else this.s[m.at] = m.value
  }

  /** What the harness itself needs (see the module comment); returns the SQE. */
  finish(admin: boolean): Uint8Array {
    const v = this.v
    const op = this.s[0]!
    const nsid = v.getUint32(4, true)
    if (!admin && nsid === NS_HEALTH) v.setUint32(4, NS_FUZZ, true)
    if (admin && op === Adm.Format && (nsid === NS_HEALTH || nsid === 0xffffffff)) v.setUint32(4, NS_FUZZ, true)
    if (admin && (op === Adm.DeleteSq || op === Adm.DeleteCq) && v.getUint16(40, true) === 1) v.setUint16(40, 2, true)
    // no pointer into the driver's memory (MPTR, PRP1 or SGL address, PRP2)
    for (const o of [16, 24, 32]) {
      const lo = v.getUint32(o, true)
      if (v.getUint32(o + 4, true) === DRV_HI && lo >= DRV_LO && lo < DRV_LO_END) v.setUint32(o + 4, UNMAPPED / TWO32, true)
    }
    return this.s
  }
}

// ---- the engine: submission, completion, watchdog ----

interface Rec {
  sqe: Uint8Array
  t0: number
  admin: boolean
  aer: boolean
}

class Fuzz {
  readonly recs = new Map<number, Rec>()
  #next = 0
  io = 0
  admin = 0
  aers = 0
  sent = 0
  done = 0
  aerSent = 0
  aerDone = 0
  readonly hist = new Map<number, number>()
  /** successes by queue and opcode */
  readonly ok = new Map<string, number>()
  readonly recent: Uint8Array[] = []
  #lastCheck = 0
  readonly t0 = performance.now()
  constructor(readonly env: Env) {}

  send(admin: boolean, sqe: Uint8Array): boolean {
    const d = this.env.d
    const id = this.#next++
    const v = new DataView(sqe.buffer, sqe.byteOffset, 64)
    const build = (w: SqeWriter) => {
      for (let i = 0; i < 64; i += 4) w.u32(i, v.getUint32(i, true))
    }
    const rec: Rec = { sqe, t0: performance.now(), admin, aer: admin && sqe[0] === Adm.Aer }
    if (admin) {
      this.recs.set(id, rec)
      void d.admin(build).then((c) => this.#done(id, c))
    } else {
      if (d.io(0, build, this.#onIo, id) !== 0) return false
      this.recs.set(id, rec)
    }
    if (admin) this.admin++
    else this.io++
    if (rec.aer) {
      this.aers++
      this.aerSent++
    }
    this.sent++
    this.recent.push(sqe)
    if (this.recent.length > 32) this.recent.shift()
    return true
  }

  readonly #onIo = (id: number, c: Completion) => this.#done(id, c)

  #done(id: number, c: Completion): void {
    const rec = this.recs.get(id)
    if (rec === undefined) {
      this.env.errors.push(`a completion for command ${id}, which is not outstanding (completed twice?)`)
      return
    }
    this.recs.delete(id)
    this.done++
    if (rec.admin) this.admin--
    else this.io--
    if (rec.aer) {
      this.aers--
      this.aerDone++
    }
    this.hist.set(c.status, (this.hist.get(c.status) ?? 0) + 1)
    // a status the CQE can carry: SCT 0 generic, 1 command specific, 2 media, 3 path (NVMe Base, "Status Code Type")
    if (((c.status >> 8) & 7) > 3) this.env.errors.push(`status ${c.status.toString(16)} (SCT ${(c.status >> 8) & 7}) for ${hex(rec.sqe)}`)
    if (c.status === 0) {
      const key = `${rec.admin ? 'admin' : 'io'}:${rec.sqe[0]!.toString(16)}${rec.admin || ((rec.sqe[1]! >> 6) & 3) === 0 ? '' : ':sgl'}`
      this.ok.set(key, (this.ok.get(key) ?? 0) + 1)
    }
  }

  /** Throws on an escaped exception, or a command older than the watchdog (AERs wait legitimately). */
  check(force = false): void {
    const env = this.env
    if (env.errors.length > 0) {
      const errors = env.errors.splice(0)
      const waiting = [...this.recs.values()].filter((x) => !x.aer).slice(0, 24)
      throw new Error(`${errors.length} error(s) escaped:\n${errors.slice(0, 4).join('\n')}\nthe commands in flight, oldest first (the culprit never completes):\n${waiting.map((x) => `${x.admin ? 'admin' : 'I/O'} ${hex(x.sqe)}`).join('\n')}\nthe last commands submitted:\n${this.recent.slice(-8).map(hex).join('\n')}`)
    }
    const now = performance.now()
    if (!force && now - this.#lastCheck < 100) return
    this.#lastCheck = now
    for (const rec of this.recs.values()) {
      if (rec.aer) continue
      if (now - rec.t0 > WATCHDOG_MS) throw new Error(`no completion after ${WATCHDOG_MS} ms on the ${rec.admin ? 'admin' : 'I/O'} queue for the SQE ${hex(rec.sqe)}`)
      break // the oldest that can hang is on time: so are the rest
    }
  }

  /** Until every command but the AERs has completed. */
  async drain(): Promise<void> {
    while (this.recs.size > this.aers) {
      await turn()
      this.env.d.poll()
      this.check()
    }
    this.check(true)
  }

  summary(what: string, extra = ''): string {
    const top = [...this.hist.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([s, n]) => `${s.toString(16).padStart(3, '0')}:${n}`)
      .join(' ')
    return `[fuzz] ${what}: ${this.sent} commands (${this.aerSent} AERs), ${this.done} completed, in ${Math.round(performance.now() - this.t0)} ms; statuses ${top}${extra}; seed ${this.env.seed}`
  }
}

/** Sends `io` I/O and `admin` admin commands, keeping some in flight; health checks on the way. */
async function pump(env: Env, fz: Fuzz, g: Gen, o: { io: number; admin: number; ioDepth: number; adminDepth: number }): Promise<void> {
  const { d, f } = env
  const fatal = f.ctrl.counters.fatal
  let io = o.io
  let admin = o.admin
  let nextHealth = fz.sent + HEALTH_EVERY
  while (io > 0 || admin > 0) {
    while (io > 0 && fz.io < o.ioDepth) {
      if (!fz.send(false, g.io())) break
      io--
    }
    // 31 admin slots: room for up to 4 AERs outstanding (AERL 3) and the health check's neighbours
    while (admin > 0 && fz.admin - fz.aers < o.adminDepth && fz.admin < 24) {
      fz.send(true, g.admin())
      admin--
    }
    await turn()
    d.poll()
    fz.check()
    if (fz.sent >= nextHealth) {
      nextHealth += HEALTH_EVERY
      await health(env, `after ${fz.sent} commands`)
      expect(f.ctrl.counters.fatal, `CSTS.CFS (${f.ctrl.fatalReason}) from commands, after ${fz.sent}`).toBe(fatal)
    }
  }
  await fz.drain()
  expect(f.ctrl.counters.fatal, `CSTS.CFS (${f.ctrl.fatalReason}) from commands`).toBe(fatal)
}

/** Aborts every outstanding AER (Abort, SQID 0, each CID of the admin queue); they must all complete. */
async function abortAers(env: Env, fz: Fuzz): Promise<void> {
  for (let cid = 0; cid < 31 && fz.aers > 0; cid++) {
    const c = await within(
      env.d.admin((w) => {
        w.opcode(Adm.Abort)
        w.u32(40, cid << 16)
      }),
      WATCHDOG_MS,
      `Abort of CID ${cid}`,
    )
    expect(c.status).toBe(0)
  }
  for (let i = 0; i < 10; i++) await turn()
  env.d.poll()
  expect(fz.aers, 'AERs still outstanding after aborting every CID').toBe(0)
}

// ---- registers ----

/** Doorbells the register fuzzer leaves alone: the SQ tails of the admin queue and of I/O queue 1 (see the module comment). */
function protectedDoorbell(off: number, size: number): boolean {
  if (size < 4) return false
  const end = off + size
  return (off < 0x1004 && end > 0x1000) || (off < 0x100c && end > 0x1008)
}

const MSIX_END = 0x2000 + 16 * 17
const PBA_END = 0x3008

function inMsix(off: number, size: number): boolean {
  return (off < MSIX_END && off + size > 0x2000) || (off < PBA_END && off + size > 0x3000)
}

const CTRL_REGS = [Reg.CAP, Reg.CAP + 4, Reg.VS, Reg.INTMS, Reg.INTMC, Reg.CC, Reg.CC, Reg.CC, Reg.CC, Reg.CSTS, Reg.NSSR, Reg.AQA, Reg.ASQ, Reg.ASQ + 4, Reg.ACQ, Reg.ACQ + 4, Reg.CMBLOC, Reg.CMBSZ, Reg.BPINFO, Reg.BPRSEL, Reg.BPMBL, Reg.CMBMSC, Reg.CMBMSC + 4, Reg.CMBSTS, Reg.CRTO, Reg.PMRCAP, Reg.PMRCTL, Reg.PMRSTS, Reg.PMRSWTP, Reg.PMRMSCL]

interface RegAccess {
  off: number
  size: 1 | 2 | 4 | 8
}

function regTarget(r: Rng): RegAccess {
  for (;;) {
    const k = r.int(100)
    let off: number
    let size = r.pick([1, 2, 4, 4, 4, 8] as const)
    if (k < 45) off = r.chance(0.8) ? r.pick(CTRL_REGS) + (r.chance(0.8) ? 0 : r.int(4)) : r.int(0x1000)
    else if (k < 75) {
      // doorbells: of queues 0..4 (existing or not), or anywhere in the page
      off = r.chance(0.7) ? 0x1000 + 4 * r.int(10) : 0x1000 + r.int(0x1000)
    } else if (k < 90) {
      off = r.chance(0.8) ? 0x2000 + r.int(16 * 17) : 0x3000 + r.int(8)
      size = r.pick([4, 8] as const)
    } else off = r.int(0x4000)
    off -= off % size
    if (off + size > 0x4000) continue
    if (inMsix(off, size) && size < 4) continue // the table and PBA take dword and qword accesses (PcieError otherwise: the fabric's contract)
    if (inMsix(off, size) && !(off >= 0x2000 && off + size <= MSIX_END) && !(off >= 0x3000 && off + size <= PBA_END)) continue // straddling their edge
    if (protectedDoorbell(off, size)) continue
    return { off, size }
  }
}

function regValue(r: Rng, cur: number, size: number): number {
  const bits = size >= 4 ? 32 : size * 8
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1
  switch (r.int(8)) {
    case 0:
      return 0
    case 1:
      return mask >>> 0
    case 2:
      return (1 << r.int(bits)) >>> 0
    case 3:
    case 4:
      return ((cur ^ (1 << r.int(bits))) & mask) >>> 0
    case 5:
      return ((cur ^ 1) & mask) >>> 0 // CC.EN, AQA, CMBMSC.CRE, vector mask...
    case 6:
      return r.int(64) // a small value: a doorbell index
    default:
      return (r.u32() & mask) >>> 0
  }
}

// ---- the tests ----

describe('NVMe command fuzzer', () => {
  const env = environment()

  it(`I/O queue: ${IO_COMMANDS} random and mutated SQEs complete with a status; no exception, hang, CFS or stray write; the controller serves I/O`, async () => {
    const pools = resources(env)
    const fz = new Fuzz(env)
    const g = new Gen(env, new Rng(env.seed ^ 0x10))
    await pump(env, fz, g, { io: IO_COMMANDS, admin: 0, ioDepth: 48, adminDepth: 0 })
    await health(env, 'after the I/O fuzz')
    expect(resources(env), 'the pools after the I/O fuzz').toBe(pools)
    await checkHealthNamespace(env)
    expect(fz.done).toBe(fz.sent)
    expect(fz.recs.size).toBe(0)
    // the generator moves data: reads, writes (PRPs and SGLs), compares and the rest succeed
    for (const k of ['io:1', 'io:2', 'io:1:sgl', 'io:2:sgl', 'io:5', 'io:8', 'io:9', 'io:c', 'io:0']) expect(fz.ok.get(k) ?? 0, `successful ${k}`).toBeGreaterThan(IO_COMMANDS / 2000)
    expect((fz.ok.get('io:1') ?? 0) + (fz.ok.get('io:2') ?? 0), 'successful reads and writes').toBeGreaterThan(IO_COMMANDS * 0.05)
    console.log(fz.summary('I/O queue', `; ${env.checks} health checks`))
  }, TIMEOUT)

  it(`admin queue: ${ADMIN_COMMANDS} random and mutated SQEs complete (AERs once aborted); no exception, hang or CFS; the controller serves I/O`, async () => {
    const pools = resources(env)
    const fz = new Fuzz(env)
    const g = new Gen(env, new Rng(env.seed ^ 0x20))
    await pump(env, fz, g, { io: 0, admin: ADMIN_COMMANDS, ioDepth: 0, adminDepth: 12 })
    const waiting = fz.aers
    await abortAers(env, fz)
    await health(env, 'after the admin fuzz')
    expect(resources(env), 'the pools after the admin fuzz').toBe(pools)
    await checkHealthNamespace(env)
    expect(fz.done).toBe(fz.sent)
    expect(fz.recs.size).toBe(0)
    for (const k of ['admin:6', 'admin:2', 'admin:a', 'admin:9', 'admin:8', 'admin:18', 'admin:5', 'admin:1', 'admin:0', 'admin:4']) expect(fz.ok.get(k) ?? 0, `successful ${k}`).toBeGreaterThan(0)
    console.log(fz.summary('admin queue', `; ${waiting} AERs outstanding at the end, aborted; ${env.checks} health checks`))
  }, TIMEOUT)

  it(`both queues at once, then fast-check: ${PROPERTY_RUNS} sequences of up to 24 template + mutation SQEs (shrunk on failure)`, async () => {
    const pools = resources(env)
    const fz = new Fuzz(env)
    const g = new Gen(env, new Rng(env.seed ^ 0x30))
    await pump(env, fz, g, { io: fuzzRuns(10_000), admin: fuzzRuns(5000), ioDepth: 32, adminDepth: 8 })
    await abortAers(env, fz)
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), dword: fc.integer({ min: 0, max: 15 }), bit: fc.integer({ min: 0, max: 31 }) }),
      fc.record({ kind: fc.constant('dword' as const), dword: fc.integer({ min: 0, max: 15 }), value: fc.integer({ min: 0, max: 0xffffffff }) }),
      fc.record({ kind: fc.constant('byte' as const), at: fc.integer({ min: 0, max: 63 }), value: fc.integer({ min: 0, max: 255 }) }),
    )
    const command = fc.record({ admin: fc.boolean(), template: fc.integer({ min: 1, max: 0x7fffffff }), mutations: fc.array(mutation, { maxLength: 4 }) })
    const pf = new Fuzz(env)
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 24 }), async (cmds) => {
        const fatal = env.f.ctrl.counters.fatal
        for (const c of cmds) {
          const cg = new Gen(env, new Rng(c.template))
          cg.templateOnly = true
          if (c.admin) cg.admin()
          else cg.io()
          for (const m of c.mutations) cg.applyMutation(m)
          if (!pf.send(c.admin, cg.finish(c.admin))) throw new Error('the I/O queue is full')
        }
        await pf.drain()
        await abortAers(env, pf)
        await health(env, 'fast-check')
        expect(env.f.ctrl.counters.fatal).toBe(fatal)
        return true
      }),
      { numRuns: PROPERTY_RUNS, seed: env.seed, endOnFailure: false },
    )
    expect(pf.done).toBe(pf.sent)
    await checkHealthNamespace(env)
    expect(resources(env), 'the pools after both queues and fast-check').toBe(pools)
    console.log(fz.summary('both queues', `; fast-check: ${pf.sent} commands in ${PROPERTY_RUNS} runs`))
  }, TIMEOUT)
})

describe('NVMe command fuzzer, a controller without a transfer limit (MDTS 0: transfers up to 16 MiB)', () => {
  const env = environment({ mdts: 0 })

  it(`${NO_MDTS_COMMANDS} random and mutated SQEs on both queues complete; no exception, hang or CFS; the pools are whole; the controller serves I/O`, async () => {
    const pools = resources(env)
    const fz = new Fuzz(env)
    const g = new Gen(env, new Rng(env.seed ^ 0x60))
    await pump(env, fz, g, { io: Math.round((NO_MDTS_COMMANDS * 2) / 3), admin: Math.round(NO_MDTS_COMMANDS / 3), ioDepth: 16, adminDepth: 8 })
    await abortAers(env, fz)
    await health(env, 'after the MDTS 0 fuzz')
    await checkHealthNamespace(env)
    expect(fz.done).toBe(fz.sent)
    expect(resources(env), 'the pools after the MDTS 0 fuzz').toBe(pools)
    for (const k of ['io:1', 'io:2', 'admin:2', 'admin:6']) expect(fz.ok.get(k) ?? 0, `successful ${k}`).toBeGreaterThan(0)
    console.log(fz.summary('MDTS 0', `; ${env.checks} health checks`))
  }, TIMEOUT)
})

describe('NVMe register fuzzer', () => {
  const env = environment()

  it(`${REG_WRITES} random aligned 1/2/4/8-byte BAR0 writes among commands: none throws, CAP and VS never change, and after each burst a reset brings the controller back serving I/O`, async () => {
    const { f } = env
    const bar = f.fabric.ioremap(f.fn, 0)
    const cap = [bar.read(0, 4), bar.read(4, 4)]
    const vs = bar.read(Reg.VS, 4)
    const r = new Rng(env.seed ^ 0x40)
    const pools = resources(env)
    const fz = new Fuzz(env)
    const g = new Gen(env, new Rng(env.seed ^ 0x50))
    const t0 = performance.now()
    let writes = 0
    let reads = 0
    let resets = 0
    let fatalBursts = 0
    const hits = { ctrl: 0, doorbell: 0, msix: 0 }
    const last: string[] = []
    while (writes < REG_WRITES) {
      const fatal = f.ctrl.counters.fatal
      for (let i = 0; i < BURST && writes < REG_WRITES; i++) {
        const { off, size } = regTarget(r)
        const cur = off < 0x1000 || inMsix(off, 4) ? bar.read(off - (off % 4), 4) >>> (8 * (off % 4)) : 0
        const value = regValue(r, cur, size)
        try {
          if (size === 8) bar.write64(off, (BigInt(regValue(r, 0, 4)) << 32n) | BigInt(value >>> 0))
          else bar.write(off, size, value)
        } catch (e) {
          throw new Error(`a ${size}-byte write of ${value.toString(16)} at BAR0 offset ${off.toString(16)} threw: ${(e as Error).stack ?? String(e)}`)
        }
        writes++
        last.push(`${size}@${off.toString(16)}=${size === 8 ? '(64)' : ''}${value.toString(16)}`)
        if (last.length > 40) last.shift()
        if (off < 0x1000) hits.ctrl++
        else if (inMsix(off, size)) hits.msix++
        else hits.doorbell++
        if (r.chance(0.3)) {
          // any read of any register (aligned; dwords and qwords in the MSI-X structures)
          const t = regTarget(r)
          if (t.size === 8) bar.read64(t.off)
          else bar.read(t.off, t.size)
          reads++
        }
        // CAP and VS are read-only
        if (bar.read(0, 4) !== cap[0] || bar.read(4, 4) !== cap[1] || bar.read(Reg.VS, 4) !== vs) throw new Error(`CAP or VS changed after a ${size}-byte write of ${value.toString(16)} at ${off.toString(16)}: CAP ${bar.read(4, 4).toString(16)}:${bar.read(0, 4).toString(16)} VS ${bar.read(Reg.VS, 4).toString(16)}`)
        if (i % 8 === 7) {
          // commands in between (the queues may be broken by now: they wait for the reset)
          for (let k = 0; k < 3 && fz.io < 32; k++) fz.send(false, g.io())
          if (fz.admin < 16) fz.send(true, g.admin())
          await turn()
          env.d.poll()
          fz.check()
        }
      }
      if (f.ctrl.counters.fatal !== fatal) fatalBursts++
      for (let i = 0; i < 3; i++) await turn()
      // the driver's reset: disable, wait for not ready, the queues again; the commands in flight fail
      try {
        await within(env.d.reset('register fuzz'), 10_000, `reset after ${writes} register writes`)
      } catch (e) {
        throw new Error(`the reset after ${writes} register writes failed (${(e as Error).message}); CSTS.CFS because: ${f.ctrl.fatalReason}; the last writes (size@offset=value): ${last.join(' ')}`)
      }
      env.d.stop()
      resets++
      enableCmb(env)
      await turn()
      fz.check(true)
      expect(fz.recs.size, 'commands neither completed nor failed by the reset').toBe(0)
      expect(f.fabric.ioremap(f.fn, 0).read(Reg.CSTS, 4) & 3, 'CSTS after the reset: RDY, no CFS').toBe(1)
      await health(env, `after ${writes} register writes`)
    }
    // and commands alone again: no CFS, the controller serves them
    await pump(env, fz, g, { io: fuzzRuns(4000), admin: fuzzRuns(1000), ioDepth: 32, adminDepth: 8 })
    await abortAers(env, fz)
    await health(env, 'after the register fuzz')
    await checkHealthNamespace(env)
    expect(fz.done).toBe(fz.sent)
    expect(resources(env), 'the pools after the register fuzz').toBe(pools)
    expect(hits.ctrl).toBeGreaterThan(REG_WRITES / 4)
    expect(hits.doorbell).toBeGreaterThan(REG_WRITES / 5)
    expect(hits.msix).toBeGreaterThan(REG_WRITES / 20)
    console.log(`[fuzz] registers: ${writes} writes (${hits.ctrl} controller registers, ${hits.doorbell} doorbells, ${hits.msix} MSI-X), ${reads} reads, ${resets} resets, ${fatalBursts} bursts ended in CFS, ${Math.round(performance.now() - t0)} ms; seed ${env.seed}`)
    console.log(fz.summary('commands among the register writes'))
  }, TIMEOUT)
})

// ---- regressions: what the fuzzer found (each hung, threw or misbehaved before its fix) ----

describe('regressions found by the fuzzer', () => {
  let errors: string[] = []
  const onError = (e: unknown) => {
    errors.push(e instanceof Error ? (e.stack ?? e.message) : String(e))
  }
  beforeAll(() => {
    process.on('uncaughtException', onError)
  })
  afterAll(() => {
    process.off('uncaughtException', onError)
  })

  /** a fixture and an interrupt-driven driver for one test */
  async function rig(o: Parameters<typeof fixture>[0] = {}): Promise<{ f: Fixture; d: NvmeHostDriver; done: () => Promise<void> }> {
    errors = []
    const f = await fixture(o)
    const d = await host(f, { ioQueues: 1 })
    return {
      f,
      d,
      async done() {
        expect(errors, 'exceptions that escaped').toEqual([])
        d.stop()
        await f.close()
      },
    }
  }

  /** a raw I/O command; fails if it has not completed within 3 s */
  function raw(d: NvmeHostDriver, build: (w: SqeWriter) => void): Promise<Completion> {
    return within(
      new Promise<Completion>((resolve, reject) => {
        if (d.io(0, build, (_: null, c) => resolve(c), null) !== 0) reject(new Error('the I/O queue is full'))
      }),
      3000,
      'the command',
    )
  }

  const S = { InvalidField: 0x002 } as const

  it('Interrupt Coalescing with a threshold and Aggregation Time 0 ("no delay"): the interrupt is sent at once (it never was: an interrupt-driven host hung)', async () => {
    const { d, done } = await rig()
    const buf = d.allocBuffer(8 * BS)
    // THR 5 (6 entries), TIME 0; then THR 5 with TIME 10 (1 ms): the timer sends it
    for (const cdw11 of [5, (10 << 8) | 5]) {
      expect((await d.admin((w) => (w.opcode(Adm.SetFeatures), w.u32(40, 0x08), w.u32(44, cdw11)))).status).toBe(0)
      const c = await within(d.read(NS_FUZZ, 0, 8, buf), 2000, `a read with coalescing ${cdw11.toString(16)} (no polling: the interrupt reaps it)`)
      expect(c.status).toBe(0)
    }
    await done()
  })

  it('an 8-byte BAR0 write over INTMC and CC (offset 10h) disables and enables the controller as a dword write to CC does; one over VS and INTMS (08h) keeps INTMS\'s write-1-to-set', async () => {
    const { f, d, done } = await rig()
    const bar = f.fabric.ioremap(f.fn, 0)
    // INTMS: writing 0 sets nothing (the mask stays); writing 1 to INTMC clears
    bar.write(Reg.INTMS, 4, 1)
    bar.write64(Reg.VS, 0n)
    expect(bar.read(Reg.INTMS, 4), 'INTMS after a qword write of 0 at 08h').toBe(1)
    bar.write64(Reg.INTMC, (BigInt(bar.read(Reg.CC, 4)) << 32n) | 1n)
    expect(bar.read(Reg.INTMS, 4), 'INTMS after a qword write of 1 to INTMC').toBe(0)
    // CC.EN 1 -> 0 through the qword: a controller reset (CSTS.RDY clears); 0 -> 1: ready again
    const cc = bar.read(Reg.CC, 4)
    bar.write64(Reg.INTMC, BigInt((cc & ~1) >>> 0) << 32n)
    for (let i = 0; i < 100 && (bar.read(Reg.CSTS, 4) & 1) !== 0; i++) await turn()
    expect(bar.read(Reg.CSTS, 4) & 3, 'CSTS after CC.EN 1 -> 0 in a qword write').toBe(0)
    bar.write64(Reg.INTMC, BigInt(cc >>> 0) << 32n)
    for (let i = 0; i < 100 && (bar.read(Reg.CSTS, 4) & 1) === 0; i++) await turn()
    expect(bar.read(Reg.CSTS, 4) & 3, 'CSTS after CC.EN 0 -> 1 in a qword write').toBe(1)
    await d.reset()
    d.stop()
    const buf = d.allocBuffer(8 * BS)
    expect((await within(d.read(NS_FUZZ, 0, 8, buf), 2000, 'a read after the reset')).status).toBe(0)
    await done()
  })

  it('an SGL read with a bit bucket whose data blocks are more than 64 host ranges: it completes with the kept bytes (the bounce copy threw MemoryError "iovec list is full", and the command never completed)', async () => {
    const { d, done } = await rig()
    const data = random(8 * BS, 91)
    const src = d.allocBuffer(8 * BS)
    src.bytes.set(data)
    expect((await d.write(NS_FUZZ, 0, 8, src)).status).toBe(0)
    // 100 data blocks of 40 bytes, one per page, then a bit bucket for the last 96 bytes of the 4 KiB
    const n = 100
    const dst = d.allocBuffer(n * PAGE)
    const seg = d.allocBuffer(PAGE)
    const v = new DataView(seg.bytes.buffer, seg.bytes.byteOffset, PAGE)
    const g = new Gen({} as Env, new Rng(1))
    for (let i = 0; i < n; i++) g.desc(v, 16 * i, dst.iova + i * PAGE + 8, 40, 0x00)
    g.desc(v, 16 * n, 0, 8 * BS - 40 * n, 0x10)
    const c = await raw(d, (w) => {
      w.opcode(Op.Read)
      w.flags(1 << 6)
      w.u32(4, NS_FUZZ)
      w.u64(24, seg.iova)
      w.u32(32, 16 * (n + 1))
      w.u32(36, 0x30 << 24)
      w.u32(48, 7)
    })
    expect(c.status).toBe(0)
    for (let i = 0; i < n; i++) expect(same(dst.bytes.subarray(i * PAGE + 8, i * PAGE + 48), data.subarray(40 * i, 40 * i + 40)), `data block ${i}`).toBe(true)
    await done()
  })

  it('Verify beyond the Verify Size Limit (Identify NVM VSL = MDTS): Invalid Field in Command (a Verify of more than 64 large buffers threw MemoryError, one beyond the pool retried for ever)', async () => {
    const { d, done } = await rig({ namespaces: [{ blocks: 65536 }] })
    const verify = (nlb: number) => raw(d, (w) => (w.opcode(Op.Verify), w.u32(4, NS_FUZZ), w.u32(48, nlb - 1)))
    expect((await verify(256)).status, 'Verify of MDTS (128 KiB)').toBe(0)
    for (const nlb of [257, 17_000, 32_768, 65_536]) {
      const c = await verify(nlb)
      expect(c.status, `Verify of ${nlb} blocks`).toBe(S.InvalidField)
      expect(c.dnr).toBe(true)
    }
    await done()
  })

  it('without an MDTS: what is staged in one buffer (a log page, PRACT\'s PI insertion or strip) or in the local buffers (Compare, Verify) fails beyond them with Invalid Field in Command (they retried for ever, or threw)', async () => {
    const { d, done } = await rig({ namespaces: [{ blocks: 32_768 }, { blocks: 1024, mdSize: 8, pi: { type: 1 } }], controller: { mdts: 0 } })
    const big = d.allocBuffer(16 << 20)
    const list = d.allocBuffer(2 * PAGE)
    const lv = new DataView(list.bytes.buffer, list.bytes.byteOffset, 2 * PAGE)
    /** PRP1 and a PRP list (one list page: up to 2 MiB) for `bytes` of `big` */
    const prps = (w: SqeWriter, bytes: number) => {
      const pages = Math.ceil(bytes / PAGE)
      for (let i = 1; i < pages && i <= 512; i++) {
        lv.setUint32(8 * (i - 1), (big.iova + i * PAGE) % TWO32, true)
        lv.setUint32(8 * (i - 1) + 4, Math.floor((big.iova + i * PAGE) / TWO32), true)
      }
      w.u64(24, big.iova)
      w.u64(32, pages === 2 ? big.iova + PAGE : list.iova)
    }
    /** one SGL Data Block: `bytes` of `big` */
    const sgl = (w: SqeWriter, bytes: number) => {
      w.flags(1 << 6)
      w.u64(24, big.iova)
      w.u32(32, bytes)
    }
    // Get Log Page, SMART, 256 KiB: more than one iobuf buffer (132 KiB); 128 KiB is fine
    for (const [bytes, want] of [
      [128 << 10, 0],
      [256 << 10, S.InvalidField],
    ] as const) {
      const numd = bytes / 4 - 1
      const c = await within(
        d.admin((w) => {
          w.opcode(Adm.GetLog)
          w.u32(4, 0xffffffff)
          w.u32(40, 0x02 | ((numd & 0xffff) << 16))
          w.u32(44, numd >>> 16)
          prps(w, bytes)
        }),
        3000,
        `Get Log Page of ${bytes} bytes`,
      )
      expect(c.status, `Get Log Page of ${bytes} bytes`).toBe(want)
    }
    // PRACT on the PI namespace (8-byte PI-only metadata: the host moves 512 bytes a block): 260 blocks of 520 are past 132 KiB
    for (const op of [Op.Write, Op.Read]) {
      for (const [nlb, want] of [
        [256, 0],
        [260, S.InvalidField],
      ] as const) {
        const c = await raw(d, (w) => {
          w.opcode(op)
          w.u32(4, 2)
          w.u64(40, 0)
          w.u32(48, (nlb - 1) | (1 << 29) | (7 << 26))
          w.u32(56, 0)
          sgl(w, nlb * BS)
        })
        expect(c.status, `${op === Op.Write ? 'write' : 'read'} of ${nlb} blocks with PRACT`).toBe(want)
      }
    }
    // Compare of 17 000 blocks (8.3 MiB: more than 64 large buffers); 8192 (4 MiB) works (beyond 32
    // buffers the accel compare, 32 iovecs a side, fails it with Internal Error: a status, in bounded time)
    big.bytes.fill(0) // as namespace 1, never written
    for (const [nlb, want] of [
      [8192, 0],
      [17_000, S.InvalidField],
    ] as const) {
      const c = await raw(d, (w) => {
        w.opcode(Op.Compare)
        w.u32(4, NS_FUZZ)
        w.u32(48, nlb - 1)
        sgl(w, nlb * BS)
      })
      // the namespace and the buffer are zeros: equal
      expect(c.status, `Compare of ${nlb} blocks`).toBe(want)
    }
    const verify = (nlb: number) => raw(d, (w) => (w.opcode(Op.Verify), w.u32(4, NS_FUZZ), w.u32(48, nlb - 1)))
    expect((await verify(16_384)).status, 'Verify of 8 MiB').toBe(0)
    expect((await verify(17_000)).status, 'Verify of 8.3 MiB').toBe(S.InvalidField)
    await done()
  })

  it('the host driver\'s reset programs the MSI-X message data it has (it allocated new ones each time: after 1361 resets the interrupt controller had none and reset threw)', async () => {
    const { f, d, done } = await rig()
    const ic = f.fabric.interrupts
    const a = ic.allocate(1)
    for (let i = 0; i < 3; i++) await d.reset()
    d.stop()
    expect(ic.allocate(1) - a, 'message data values the resets took').toBe(1)
    const buf = d.allocBuffer(8 * BS)
    expect((await within(d.read(NS_FUZZ, 0, 8, buf), 2000, 'an interrupt-driven read after the resets')).status).toBe(0)
    await done()
  })
})
