// Host resilience against a real target process: the target (test/support/target-process.mjs,
// a file-backed namespace) is killed with SIGKILL in the middle of a write workload and started
// again on the same file and port. The host must notice the loss, reconnect (a new controller
// of the same subsystem), send the commands that were in flight once more, complete them with
// success, and lose nothing: every write it acknowledged before the kill is on the namespace
// after the restart, and so is every write that was in flight (re-sent and acknowledged after).
// Reads and writes submitted while the target is down wait and complete after the reconnect.
// When the target never comes back, everything in flight or submitted fails with Host Pathing
// Error once ctrlLossTimeoutMs has passed, and the host ends 'failed'.
//
// Durability model: the file bdev completes a write when pwritev has returned, i.e. the data is
// in the kernel's page cache; a SIGKILL of the target process does not lose the page cache, so
// no flush is needed for this test. A power-loss model would need FUA or a Flush before a write
// counts as durable.
//
// The target runs in plain Node on the built packages (dist/): beforeAll builds @ipukit/nvmf and
// the workspace packages it depends on (tsc) where dist/ is missing or older than the sources,
// and fails with a clear message when that cannot be done.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPhysicalMemory, IoVecList, type PhysicalMemory } from '@ipukit/memory'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeICResp, HOST_PATH_ERROR, type HostCompletion, type HostState, ICRESP_SIZE, NvmfHost } from '../src/index.js'
import { type TargetFixture, targetFixture } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
const pkgRoot = join(here, '..')
const packagesDir = join(pkgRoot, '..')
const TARGET = join(here, 'support', 'target-process.mjs')
const NQN = 'nqn.2026-12.io.ipukit:resilience'
const BS = 4096
const BLOCKS = 2048
const NSID = 1
/** blocks per write at most (1: in the capsule, 2: by R2T, as IOCCSZ allows 4096 bytes) */
const MAX_WRITE_BLOCKS = 2

// ---- the built packages the target process runs on ----

function newestMtime(dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return t
}

const TSC_BUILD = 'tsc -p tsconfig.build.json'

/** @ipukit/* runtime dependencies of a package, transitively, dependencies first (the package itself last). */
function workspaceDeps(name: string, out: string[] = []): string[] {
  if (out.includes(name)) return out
  const pj = JSON.parse(readFileSync(join(packagesDir, name.replace('@ipukit/', ''), 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  for (const d of Object.keys(pj.dependencies ?? {})) if (d.startsWith('@ipukit/')) workspaceDeps(d, out)
  out.push(name)
  return out
}

/**
 * The target process runs on dist/ of @ipukit/nvmf and what it depends on: each missing or
 * older than its sources is built here (tsc, dependencies first) when its build is plain tsc;
 * otherwise a missing one is an error that says what to run, a stale one a warning.
 */
function ensureDist(): void {
  const tsc = join(dirname(createRequire(join(pkgRoot, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc')
  for (const name of workspaceDeps('@ipukit/nvmf')) {
    const dir = join(packagesDir, name.replace('@ipukit/', ''))
    const index = join(dir, 'dist', 'index.js')
    const missing = !existsSync(index)
    if (!missing && newestMtime(join(dir, 'src')) <= statSync(index).mtimeMs) continue
    const how = `\`npx turbo run build --filter=@ipukit/nvmf...\` (or \`pnpm --filter ${name} run build\`)`
    const build = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts?.build
    if (build !== TSC_BUILD) {
      if (missing) throw new Error(`the resilience test's target process runs on built packages, and ${name} has no dist/; run ${how} first`)
      console.warn(`resilience test: ${name}'s dist/ is older than its sources; the target process runs on the old build (${how} refreshes it)`)
      continue
    }
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8', timeout: 120_000 })
    if (r.status === 0) continue
    const why = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim()
    if (missing || !existsSync(index)) throw new Error(`the resilience test's target process needs ${name} built (dist/), and building it failed; run ${how}:\n${why}`)
    console.warn(`resilience test: ${name}'s dist/ is older than its sources and rebuilding it failed; the target process runs on what tsc emitted:\n${why}`)
  }
}

// ---- the target process ----

interface Target {
  child: ChildProcess
  /** ms from spawn to READY */
  startMs: number
  exited: Promise<void>
}

const children = new Set<ChildProcess>()

function startTarget(file: string, port: number): Promise<Target> {
  const t0 = performance.now()
  // stdin a pipe with --stdin-lifeline: the target exits by itself should this process die without killing it
  const child = spawn(process.execPath, [TARGET, '--file', file, '--port', String(port), '--nqn', NQN, '--blocks', String(BLOCKS), '--block-size', String(BS), '--stdin-lifeline'], { cwd: pkgRoot, stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  let err = ''
  const exited = new Promise<void>((r) => child.once('exit', () => (children.delete(child), r())))
  return new Promise<Target>((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`the target process did not print READY within 15 s: ${out}${err}`))), 15_000)
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      if (/^READY /m.test(out)) {
        clearTimeout(timer)
        resolve({ child, startMs: performance.now() - t0, exited })
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the target process ended (${code ?? signal}) before READY: ${err || out}`))
    })
  })
}

async function killTarget(t: Target): Promise<void> {
  if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill('SIGKILL')
  await t.exited
}

/** A port free now: bound to 0 by a throwaway server, then released, for both spawns of a target. */
async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r, j) => s.once('error', j).listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(5)
  }
}

// ---- data: each block of each write derived from (lba, seq) ----

/** Block `lba` as written by write `seq`: a header (lba, seq) then an xorshift stream seeded by both. */
function fillBlock(pm: PhysicalMemory, at: number, lba: number, seq: number): void {
  const v = new DataView(pm.memory.buffer, at, BS)
  v.setUint32(0, 0x1b10c4ed, true)
  v.setUint32(4, lba, true)
  v.setUint32(8, seq, true)
  let s = (Math.imul(lba + 1, 0x9e3779b1) ^ Math.imul(seq + 1, 0x85ebca6b)) >>> 0 || 1
  for (let k = 12; k < BS; k += 4) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    v.setUint32(k, s >>> 0, true)
  }
}

/** What block `lba` at `at` holds: 'zero', the seq of an intact write of this lba, or a description of the damage. */
function blockHolds(pm: PhysicalMemory, at: number, lba: number, scratch: number): number | 'zero' | string {
  const got = pm.bytes.subarray(at, at + BS)
  if (got.every((b) => b === 0)) return 'zero'
  const v = new DataView(pm.memory.buffer, at, BS)
  if (v.getUint32(0, true) !== 0x1b10c4ed) return 'garbage'
  if (v.getUint32(4, true) !== lba) return `the block of lba ${v.getUint32(4, true)}`
  const seq = v.getUint32(8, true)
  fillBlock(pm, scratch, lba, seq)
  return Buffer.compare(got, pm.bytes.subarray(scratch, scratch + BS)) === 0 ? seq : `write ${seq}, torn`
}

function rw(h: NvmfHost, queue: number, write: boolean, lba: number, blocks: number, at: number): Promise<HostCompletion> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(queue, write, NSID, lba, blocks, new IoVecList(1).push(at, blocks * BS), (_: null, c) => resolve(c), null)
    if (rc !== 0) reject(new Error(`rw: rc ${rc}`))
  })
}

// ---- the workload ----

interface Write {
  seq: number
  lba: number
  blocks: number
  buf: number
  status: number | null
  /** ms (performance.now) of its completion */
  doneAt: number
}

/**
 * Writes of 1 or 2 blocks at random LBAs, `qd` in flight over the host's I/O queues, never two
 * in flight on one block (so each block's latest acknowledged write is well defined). `latest`
 * is the seq of the latest write acknowledged per block (-1: never written: zeros).
 */
class Workload {
  running = false
  readonly latest = new Int32Array(BLOCKS).fill(-1)
  readonly busy = new Uint8Array(BLOCKS)
  readonly inflight = new Map<number, Write>()
  readonly failed: Write[] = []
  acked = 0
  seq = 0
  #rng = 0x2545f491
  readonly #bufs: number[] = []
  #drained: (() => void) | null = null

  constructor(
    readonly host: NvmfHost,
    readonly pm: PhysicalMemory,
    readonly qd: number,
  ) {
    // qd buffers for the workload, a few more for writes submitted by hand
    for (let i = 0; i < qd + 8; i++) this.#bufs.push(pm.ipuAllocator.alloc(MAX_WRITE_BLOCKS * BS))
  }

  rand(n: number): number {
    let s = this.#rng
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    this.#rng = s >>> 0
    return this.#rng % n
  }

  start(): void {
    this.running = true
    while (this.inflight.size < this.qd && this.submit() !== null);
  }

  /** One write at a random free place; null when none was found or no buffer is left. */
  submit(): Write | null {
    const buf = this.#bufs.pop()
    if (buf === undefined) return null
    for (let tries = 0; tries < 64; tries++) {
      const lba = this.rand(BLOCKS)
      let blocks = 1 + this.rand(MAX_WRITE_BLOCKS)
      if (lba + blocks > BLOCKS || this.busy[lba + 1] === 1) blocks = 1
      if (this.busy[lba] === 1) continue
      const w: Write = { seq: this.seq++, lba, blocks, buf, status: null, doneAt: 0 }
      for (let b = 0; b < blocks; b++) {
        this.busy[lba + b] = 1
        fillBlock(this.pm, buf + b * BS, lba + b, w.seq)
      }
      this.inflight.set(w.seq, w)
      const rc = this.host.rw(w.seq % this.host.ioQueues, true, NSID, lba, blocks, new IoVecList(1).push(buf, blocks * BS), (x: Write, c) => this.#done(x, c), w)
      if (rc !== 0) throw new Error(`rw: rc ${rc} with ${this.inflight.size} in flight`)
      return w
    }
    this.#bufs.push(buf)
    return null
  }

  #done(w: Write, c: HostCompletion): void {
    w.status = c.status
    w.doneAt = performance.now()
    this.inflight.delete(w.seq)
    this.#bufs.push(w.buf)
    for (let b = 0; b < w.blocks; b++) this.busy[w.lba + b] = 0
    if (c.status === 0) {
      this.acked++
      for (let b = 0; b < w.blocks; b++) this.latest[w.lba + b] = w.seq
    } else {
      this.failed.push(w)
      this.running = false
    }
    if (this.running) this.start()
    if (this.inflight.size === 0 && this.#drained !== null) {
      const d = this.#drained
      this.#drained = null
      d()
    }
  }

  /** Stops submitting; resolves once nothing is in flight. */
  drain(): Promise<void> {
    this.running = false
    if (this.inflight.size === 0) return Promise.resolve()
    return new Promise((r) => (this.#drained = r))
  }

  /** `n` blocks written (and acknowledged) before, with nothing in flight on them. */
  idleBlocks(n: number): number[] {
    const out: number[] = []
    while (out.length < n) {
      const lba = this.rand(BLOCKS)
      if (this.busy[lba] === 0 && this.latest[lba]! >= 0 && !out.includes(lba)) out.push(lba)
    }
    return out
  }
}

/** Reads the whole namespace back and lists the blocks that do not hold their latest acknowledged write. */
async function verifyAll(h: NvmfHost, pm: PhysicalMemory, latest: Int32Array): Promise<{ checked: number; written: number; bad: string[] }> {
  const CHUNK = 16
  const PARALLEL = 8
  const bufs = Array.from({ length: PARALLEL }, () => pm.ipuAllocator.alloc(CHUNK * BS))
  const scratch = pm.ipuAllocator.alloc(BS)
  const bad: string[] = []
  let written = 0
  try {
    for (let base = 0; base < BLOCKS; base += CHUNK * PARALLEL) {
      const lbas = bufs.map((_, i) => base + i * CHUNK).filter((l) => l < BLOCKS)
      const cs = await Promise.all(lbas.map((l, i) => rw(h, i % h.ioQueues, false, l, Math.min(CHUNK, BLOCKS - l), bufs[i]!)))
      for (let i = 0; i < lbas.length; i++) {
        if (cs[i]!.status !== 0) {
          bad.push(`read of ${lbas[i]}: status ${cs[i]!.status.toString(16)}h`)
          continue
        }
        for (let b = 0; b < Math.min(CHUNK, BLOCKS - lbas[i]!); b++) {
          const lba = lbas[i]! + b
          const want = latest[lba]! < 0 ? 'zero' : latest[lba]!
          const got = blockHolds(pm, bufs[i]! + b * BS, lba, scratch)
          if (want !== 'zero') written++
          if (got !== want) bad.push(`lba ${lba}: holds ${got}, the latest acknowledged write is ${want}`)
        }
      }
    }
  } finally {
    for (const b of bufs) pm.ipuAllocator.free(b)
    pm.ipuAllocator.free(scratch)
  }
  return { checked: BLOCKS, written, bad }
}

// ---- fixtures ----

let dir: string
const hosts: NvmfHost[] = []
const targets: Target[] = []

beforeAll(() => {
  ensureDist()
  // a directory on the repository's file system (not always the same as the system's tmp)
  mkdirSync(join(pkgRoot, '.tmp'), { recursive: true })
  dir = mkdtempSync(join(pkgRoot, '.tmp', 'resilience-'))
}, 120_000)

afterAll(async () => {
  // the children die no matter what happened above
  for (const c of children) c.kill('SIGKILL')
  await Promise.race([Promise.all(targets.map((t) => t.exited)), sleep(5000)])
  for (const h of hosts) await Promise.race([h.close(), sleep(2000)])
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function newHost(pm: PhysicalMemory, port: number, o: { ctrlLossTimeoutMs: number; ioQueues: number }): { host: NvmfHost; states: [HostState, number][] } {
  const host = new NvmfHost({ physical: pm, traddr: '127.0.0.1', trsvcid: port, subnqn: NQN, reconnectDelayMs: 100, ioTimeoutMs: 5000, kato: 2000, ...o })
  hosts.push(host)
  const states: [HostState, number][] = []
  host.onState((s) => states.push([s, performance.now()]))
  return { host, states }
}

describe('host resilience (a target process killed and restarted)', () => {
  it('reconnects after a SIGKILL and a restart; every acknowledged write survives, the in-flight ones complete after re-sending', async () => {
    const port = await freePort()
    const file = join(dir, 'ns.img')
    let t = await startTarget(file, port)
    targets.push(t)
    const firstStartMs = t.startMs
    const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 64 << 20 })
    const { host, states } = newHost(pm, port, { ctrlLossTimeoutMs: 20_000, ioQueues: 2 })
    await host.connect()
    expect(host.state).toBe('live')
    expect(host.ioQueues).toBe(2)
    expect(host.namespaces.get(NSID)).toMatchObject({ blocks: BLOCKS, blockSize: BS })

    const w = new Workload(host, pm, 16)
    // at the loss: what was acknowledged, what was in flight; and the workload stops submitting
    // (those in flight stay, waiting for the reconnect), so the namespace can be checked as the kill left it
    let lossAt = 0
    let ackedAtLoss = 0
    let inflightAtLoss: Write[] = []
    host.onState((s) => {
      if (s !== 'resetting' || lossAt !== 0) return
      lossAt = performance.now()
      ackedAtLoss = w.acked
      inflightAtLoss = [...w.inflight.values()]
      w.running = false
    })
    w.start()
    const t0 = performance.now()
    await until('1500 acknowledged writes', () => w.acked >= 1500 && performance.now() - t0 > 500, 15_000)
    expect(w.failed).toEqual([])

    // SIGKILL, mid-workload (16 writes in flight)
    const inflightAtKill = w.inflight.size
    const ackedAtKill = w.acked
    const killAt = performance.now()
    await killTarget(t)
    await until('the host to notice the loss', () => lossAt !== 0, 5000)
    expect(host.state).not.toBe('live')
    expect(inflightAtLoss.length).toBeGreaterThan(0)

    // submitted during the outage: reads of blocks whose latest write was acknowledged (held
    // busy so no write goes there meanwhile) and a few writes; they wait for the reconnect
    const readBlocks = w.idleBlocks(8)
    const expectRead = readBlocks.map((l) => w.latest[l]!)
    for (const l of readBlocks) w.busy[l] = 1
    const readBufs = readBlocks.map(() => pm.ipuAllocator.alloc(BS))
    let readsDone = 0
    const reads = readBlocks.map((l, i) => rw(host, i % 2, false, l, 1, readBufs[i]!).finally(() => readsDone++))
    const outageWrites = [0, 1, 2, 3].map(() => w.submit()!)
    expect(outageWrites.every((x) => x !== null)).toBe(true)
    await sleep(400)
    // nothing completes while the target is down
    expect(readsDone).toBe(0)
    expect(outageWrites.every((x) => x.status === null)).toBe(true)
    expect(inflightAtLoss.every((x) => x.status === null)).toBe(true)

    // the restart: same file, same port
    const restartAt = performance.now()
    t = await startTarget(file, port)
    targets.push(t)
    await until('the host to be live again', () => host.state === 'live', 15_000)
    const liveAt = states[states.length - 1]![1]
    expect(host.stats.reconnects).toBeGreaterThanOrEqual(1)
    // live, the loss, live again (and no 'failed' on the way)
    const seen = states.map((s) => s[0])
    expect(seen.slice(0, 3)).toEqual(['connecting', 'live', 'resetting'])
    expect(seen[seen.length - 1]).toBe('live')
    expect(seen).not.toContain('failed')

    // what was in flight completes, with success, after re-sending; so do the outage's commands
    await until('the in-flight writes to complete', () => inflightAtLoss.every((x) => x.status !== null) && outageWrites.every((x) => x.status !== null), 10_000)
    expect(inflightAtLoss.map((x) => x.status)).toEqual(inflightAtLoss.map(() => 0))
    expect(outageWrites.map((x) => x.status)).toEqual([0, 0, 0, 0])
    expect(Math.min(...inflightAtLoss.map((x) => x.doneAt))).toBeGreaterThanOrEqual(liveAt)
    expect(host.stats.retried).toBeGreaterThanOrEqual(inflightAtLoss.length + readBlocks.length + outageWrites.length)
    const cs = await Promise.all(reads)
    expect(cs.map((c) => c.status)).toEqual(readBlocks.map(() => 0))
    const scratch = pm.ipuAllocator.alloc(BS)
    expect(readBlocks.map((l, i) => blockHolds(pm, readBufs[i]!, l, scratch))).toEqual(expectRead)
    for (const l of readBlocks) w.busy[l] = 0
    await w.drain()
    expect(w.failed).toEqual([])

    // the namespace as the kill left it: each block holds its latest write acknowledged before
    // the kill, or the in-flight (or outage) write that went there after re-sending
    const afterRestart = await verifyAll(host, pm, w.latest)
    expect(afterRestart.bad.slice(0, 10)).toEqual([])

    // the workload goes on for a while on the new controller
    const ackedBefore = w.acked
    w.start()
    const t1 = performance.now()
    await until('1000 more writes', () => w.acked - ackedBefore >= 1000 && performance.now() - t1 > 500, 15_000)
    await w.drain()
    expect(w.failed).toEqual([])
    expect(host.state).toBe('live')
    const final = await verifyAll(host, pm, w.latest)
    expect(final.bad.slice(0, 10)).toEqual([])

    console.log(
      [
        `resilience: target start ${firstStartMs.toFixed(0)} ms, restart ${t.startMs.toFixed(0)} ms`,
        `acknowledged before the kill ${ackedAtKill} (by the loss ${ackedAtLoss}), in flight at the kill ${inflightAtKill} (at the loss ${inflightAtLoss.length}), submitted in the outage ${readBlocks.length} reads + ${outageWrites.length} writes`,
        `loss noticed ${(lossAt - killAt).toFixed(1)} ms after the SIGKILL; live again ${(liveAt - restartAt).toFixed(0)} ms after the restart began, ${(liveAt - lossAt).toFixed(0)} ms after the loss; reconnect attempts ${host.stats.reconnects}, commands re-sent ${host.stats.retried}`,
        `verified ${afterRestart.checked} blocks after the restart (${afterRestart.written} written), ${final.checked} at the end (${final.written} written); writes acknowledged in all ${w.acked}`,
      ].join('\n  '),
    )
    await host.close()
    expect(host.state).toBe('closed')
  })

  it('fails what is in flight and what comes after with Host Pathing Error once ctrlLossTimeoutMs has passed when the target never comes back', async () => {
    const LOSS_TMO = 1500
    const port = await freePort()
    const t = await startTarget(join(dir, 'gone.img'), port)
    targets.push(t)
    const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 64 << 20 })
    const { host, states } = newHost(pm, port, { ctrlLossTimeoutMs: LOSS_TMO, ioQueues: 1 })
    await host.connect()
    const w = new Workload(host, pm, 8)
    let lossAt = 0
    host.onState((s) => {
      if (s === 'resetting' && lossAt === 0) {
        lossAt = performance.now()
        w.running = false
      }
    })
    w.start()
    await until('200 acknowledged writes', () => w.acked >= 200, 10_000)
    await killTarget(t)
    await until('the host to notice the loss', () => lossAt !== 0, 5000)
    const inflight = [...w.inflight.values()]
    expect(inflight.length).toBeGreaterThan(0)

    // submitted while the host is trying to reconnect
    await sleep(200)
    const buf = pm.ipuAllocator.alloc(BS)
    const late = [rw(host, 0, false, 0, 1, buf), rw(host, 0, true, 1, 1, buf)].map((p) => p.then((c) => ({ c, at: performance.now() })))
    const lateWrite = w.submit()!
    await until('the in-flight writes to fail', () => inflight.every((x) => x.status !== null) && lateWrite.status !== null, LOSS_TMO + 5000)
    const lateDone = await Promise.race([Promise.all(late), sleep(2000).then(() => null)])
    expect(lateDone).not.toBeNull()
    expect(host.state).toBe('failed')
    expect(states.map((s) => s[0])).toEqual(['connecting', 'live', 'resetting', 'failed'])
    const all = [...inflight, lateWrite]
    expect(all.map((x) => x.status)).toEqual(all.map(() => HOST_PATH_ERROR))
    expect(lateDone!.map((x) => x.c.status)).toEqual([HOST_PATH_ERROR, HOST_PATH_ERROR])
    // about ctrlLossTimeoutMs after the loss: not before, and within one reconnect delay and an attempt after
    const times = [...all.map((x) => x.doneAt), ...lateDone!.map((x) => x.at)].map((x) => x - lossAt)
    expect(Math.min(...times)).toBeGreaterThanOrEqual(LOSS_TMO - 5)
    expect(Math.max(...times)).toBeLessThan(LOSS_TMO + 1000)
    const failedAt = states.find((s) => s[0] === 'failed')![1] - lossAt

    // once failed, a new command fails at once, and no reconnect attempt follows
    const attempts = host.stats.reconnects
    const t2 = performance.now()
    const c = await rw(host, 0, false, 0, 1, buf)
    expect(c.status).toBe(HOST_PATH_ERROR)
    expect(performance.now() - t2).toBeLessThan(50)
    await sleep(300)
    expect(host.stats.reconnects).toBe(attempts)
    const t3 = performance.now()
    await host.close()
    expect(performance.now() - t3).toBeLessThan(1000)
    expect(host.state).toBe('closed')
    console.log(`resilience (no target): ${inflight.length} in flight at the loss; failed ${failedAt.toFixed(0)} ms after the loss (ctrlLossTimeoutMs ${LOSS_TMO}), after ${attempts} reconnect attempts; last error: ${host.lastError}`)
  })
})

// ---- error recovery against a listener that is there but does not serve (an in-process target) ----

/** A listener on `port` that accepts connections and, when `icresp`, answers the ICReq; nothing more. */
async function silentListener(port: number, icresp: boolean): Promise<{ connections: () => number; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>()
  let n = 0
  const server = net.createServer((c) => {
    n++
    socks.add(c)
    c.on('error', () => {})
    c.on('close', () => socks.delete(c))
    if (icresp) {
      c.once('data', () => {
        const b = new Uint8Array(ICRESP_SIZE)
        encodeICResp(new DataView(b.buffer), 0, { pfv: 0, cpda: 0, hdgst: false, ddgst: false, maxh2cdata: 131072 })
        c.write(b)
      })
    }
  })
  await new Promise<void>((r, j) => server.once('error', j).listen(port, '127.0.0.1', () => r()))
  return {
    connections: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const c of socks) c.destroy()
        server.close(() => r())
      }),
  }
}

/** The fixture's listener goes away (its connections dropped), or comes back on the same port. */
async function listenerDown(f: TargetFixture): Promise<void> {
  await f.tcp.stopListen(f.address)
  for (const q of [...f.tcp.connections]) q.disconnect('the test took the listener down')
}
async function listenerUp(f: TargetFixture): Promise<void> {
  const l = await f.tcp.listen('127.0.0.1', f.port)
  f.subsystem.addListener(l.address)
}

describe('host error recovery against a listener that does not serve', () => {
  const fixtures: TargetFixture[] = []
  afterAll(async () => {
    for (const f of fixtures) await f.close()
  })

  it('bring-up commands that time out free their slots: the host reconnects once the target is back, and sends none of them again', async () => {
    const f = await targetFixture()
    fixtures.push(f)
    // 3 admin slots: without freeing them, three timed-out Connects fill the admin queue for good
    const h = await f.host({ adminDepth: 4, connectTimeoutMs: 50, reconnectDelayMs: 20, ctrlLossTimeoutMs: 20_000, kato: 0 })
    await listenerDown(f)
    const silent = await silentListener(f.port, true)
    await until('six attempts that time out in the Connect', () => silent.connections() >= 6, 5000)
    expect(h.lastError).toMatch(/no response within 50 ms/)
    await silent.close()
    await listenerUp(f)
    await until('the host to be live again', () => h.state === 'live', 5000)
    expect(h.stats.retried).toBe(0)
    const buf = f.pm.ipuAllocator.alloc(BS)
    const c = await new Promise<HostCompletion>((r) => h.rw(0, false, NSID, 0, 1, new IoVecList(1).push(buf, 512), (_: null, x) => r(x), null))
    expect(c.status).toBe(0)
    f.pm.ipuAllocator.free(buf)
  })

  it('close() during a reconnect attempt ends the recovery: the host stays closed and connects no more', async () => {
    const f = await targetFixture()
    fixtures.push(f)
    const h = await f.host({ connectTimeoutMs: 5000, reconnectDelayMs: 20, ctrlLossTimeoutMs: 20_000, kato: 0 })
    await listenerDown(f)
    // a listener that never answers the ICReq: the attempt waits for ICResp
    const silent = await silentListener(f.port, false)
    await until('an attempt to be waiting for ICResp', () => silent.connections() >= 1, 5000)
    await h.close()
    expect(h.state).toBe('closed')
    const attempts = h.stats.reconnects
    const n = silent.connections()
    await sleep(300)
    expect(h.state).toBe('closed')
    expect(h.stats.reconnects).toBe(attempts)
    expect(silent.connections()).toBe(n)
    await silent.close()
  })
})
