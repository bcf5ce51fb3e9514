// `ipukit perf`, run as the real CLI against `ipukit target` in child processes: write then
// read with JSON results (to a file and to stdout), the mix of randrw, digests and several
// I/O queues; a target that refuses this host (exit 3, Connect Invalid Host, and the same
// host allowed with --hostnqn), a port nobody listens on and a target that never answers
// (exit 3); flags that are wrong (exit 2, one line, no stack); Ctrl-C (the summary of what
// was measured, exit 130). And the latency histogram against exact percentiles.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LatencyHistogram, parseMetadata } from '../src/index.js'
import { BIN, type CliTarget, ensureBuilt, expectUsageShape, runCli, startCliTarget } from './support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'ipukit-perf-test-'))
const HOST = 'nqn.2026-12.io.ipukit:perf-host'
let open: CliTarget
let guarded: CliTarget
beforeAll(async () => {
  ensureBuilt()
  // a RAM namespace of 4 KiB blocks with 16 bytes of metadata and Type 3 PI, 32b guard (CRC32C), PI first; and one that admits one host only
  ;[open, guarded] = await Promise.all([
    startCliTarget(['--listen', '127.0.0.1:0', '--size', '16M', '--md-size', '16', '--pi', 'type3', '--pi-format', '32', '--pi-location', 'first', '--nqn', 'nqn.2026-12.io.ipukit:perf']),
    startCliTarget(['--listen', '127.0.0.1:0', '--size', '4M', '--nqn', 'nqn.2026-12.io.ipukit:guarded', '--allow-host', HOST]),
  ])
}, 180_000)
afterAll(async () => {
  for (const t of [open, guarded]) {
    if (t === undefined) continue
    t.child.kill('SIGTERM')
    await t.exited
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('ipukit perf', () => {
  it('write, then read, with the JSON result in a file; randrw with digests on two I/O queues to stdout', async () => {
    const wj = join(dir, 'write.json')
    const w = await runCli(['perf', '-r', open.url, '-w', 'write', '-o', '16k', '-q', '16', '-t', '0.5', '--json', wj])
    expect(w.code, w.stderr).toBe(0)
    // the summary on stdout, spdk_nvme_perf-like
    expect(w.stdout).toMatch(/^connected to nvme\+tcp:\/\/127\.0\.0\.1:\d+\/nqn\.2026-12\.io\.ipukit:perf \(controller \d+, 1 I\/O queue\)/)
    expect(w.stdout).toMatch(/\nop\s+IOPS\s+MiB\/s\s+Average\s+min\s+max\s+p50\s+p99\s+p99\.9\s+I\/Os\n/)
    expect(w.stdout).toMatch(/\nwrite\s+[\d.]+\s+[\d.]+/)
    expect(w.stdout).toMatch(/\ntotal\s+[\d.]+/)
    const wr = JSON.parse(readFileSync(wj, 'utf8'))
    expect(wr).toMatchObject({ tool: 'ipukit perf', failed: 0, firstFailure: null, interrupted: null, namespace: { blocks: 4096, blockSize: 4096, mdSize: 16, pi: { type: 3, format: 32, location: 'first' } }, options: { workload: 'write', ioSize: 16384, queueDepth: 16, metadata: 'PRACT=1,PRCHK=GUARD' } })
    expect(wr.write.ios).toBeGreaterThan(0)
    expect(wr.read.ios).toBe(0)
    expect(wr.total.ios).toBe(wr.write.ios)
    expect(wr.write.bytes).toBe(wr.write.ios * 16384)
    const lat = wr.write.latencyUs
    expect(lat.min).toBeGreaterThan(0)
    expect(lat.min).toBeLessThanOrEqual(lat.p50)
    expect(lat.p50).toBeLessThanOrEqual(lat.p99)
    expect(lat.p99).toBeLessThanOrEqual(lat.p999)
    expect(lat.p999).toBeLessThanOrEqual(lat.max)
    expect(Math.abs(wr.write.iops - wr.write.ios / wr.seconds) / wr.write.iops).toBeLessThan(1e-4)

    // reads of what was written: the controller checks each block's CRC32C guard
    const r = await runCli(['perf', '-r', open.url, '-w', 'read', '-o', '16k', '-t', '0.5', '--json', '-'])
    expect(r.code, r.stderr).toBe(0)
    const rr = JSON.parse(r.stdout)
    expect(rr.read.ios).toBeGreaterThan(0)
    expect(rr.write.ios).toBe(0)
    expect(rr.failed).toBe(0)
    expect(r.stderr).toMatch(/\nread\s+[\d.]+/) // the summary moved to stderr

    const m = await runCli(['perf', '-r', open.url, '-w', 'randrw', '-M', '70', '-t', '0.5', '--io-queues', '2', '--hdgst', '--ddgst', '--json', '-'])
    expect(m.code, m.stderr).toBe(0)
    const mr = JSON.parse(m.stdout)
    expect(mr.options).toMatchObject({ ioQueues: 2, hdgst: true, ddgst: true, readPercent: 70 })
    expect(mr.failed).toBe(0)
    expect(mr.total.ios).toBe(mr.read.ios + mr.write.ios)
    // the fixed-seed coin: about 70 % reads
    expect(mr.read.ios / mr.total.ios).toBeGreaterThan(0.6)
    expect(mr.read.ios / mr.total.ios).toBeLessThan(0.8)
  })

  it('a host the target does not allow: exit 3, Connect Invalid Host; the allowed host connects', async () => {
    const r = await runCli(['perf', '-r', guarded.url, '-t', '0.2'])
    expect(r.code).toBe(3)
    expect(r.stderr.trim()).toMatch(/^ipukit: the target refused the connection: Connect Invalid Host \(host nqn nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]{36} is not allowed on nqn\.2026-12\.io\.ipukit:guarded at 127\.0\.0\.1:\d+\)$/)
    expect(guarded.logs.find((e) => e.msg === 'connect refused')).toMatchObject({ level: 'warn', status: '184h', statusName: 'Connect Invalid Host', subnqn: 'nqn.2026-12.io.ipukit:guarded' })
    const ok = await runCli(['perf', '-r', guarded.url, '--hostnqn', HOST, '-t', '0.2', '--json', '-'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout).target.hostnqn).toBe(HOST)
    // a subsystem the target does not have: refused too
    const none = await runCli(['perf', '-r', guarded.url.replace('guarded', 'nothing'), '-t', '0.2'])
    expect(none.code).toBe(3)
    expect(none.stderr.trim()).toMatch(/^ipukit: the target refused the connection: Connect Invalid Parameters \(no subsystem nqn\.2026-12\.io\.ipukit:nothing at 127\.0\.0\.1:\d+\)$/)
  })

  it('nobody listening: exit 3, connection refused; a target that never answers: exit 3, timed out', async () => {
    const s = net.createServer()
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
    const port = (s.address() as net.AddressInfo).port
    await new Promise<void>((r) => s.close(() => r()))
    const r = await runCli(['perf', '-r', `nvme+tcp://127.0.0.1:${port}/nqn.2026-12.io.ipukit:target`, '-t', '1'])
    expect(r.code).toBe(3)
    expect(r.stderr.trim()).toBe(`ipukit: 127.0.0.1:${port}: connection refused`)
    // accepts the TCP connection, never sends an ICResp
    const sockets: net.Socket[] = []
    const silent = net.createServer((c) => sockets.push(c))
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', () => res()))
    const sp = (silent.address() as net.AddressInfo).port
    const t = await runCli(['perf', '-r', `nvme+tcp://127.0.0.1:${sp}/nqn.2026-12.io.ipukit:target`, '--connect-timeout', '0.5'])
    for (const c of sockets) c.destroy()
    silent.close()
    expect(t.code).toBe(3)
    expect(t.stderr.trim()).toBe(`ipukit: 127.0.0.1:${sp}: no answer within 0.5 s (timed out)`)
  })

  it('wrong flags: exit 2, one line naming the flag, no stack trace', async () => {
    const url = open.url
    const cases: [string[], RegExp][] = [
      [[], /required option '-r, --target <url>' not specified/],
      [['-r', 'http://127.0.0.1/nqn.2026-12.io.ipukit:x'], /'-r, --target <url>'.*the scheme must be nvme\+tcp/],
      [['-r', 'nvme+tcp://127.0.0.1:4420/nqn-bad'], /-r nvme\+tcp:\/\/127\.0\.0\.1:4420\/nqn-bad: the subsystem NQN 'nqn-bad' is not of the form/],
      [['-r', url, '-q', '0'], /'-q, --queue-depth <n>' argument '0' is invalid/],
      [['-r', url, '-w', 'trim'], /'-w, --workload <pattern>' argument 'trim' is invalid/],
      [['-r', url, '-M', '101'], /'-M, --rwmixread <percent>' argument '101' is invalid/],
      [['-r', url, '-t', 'soon'], /'-t, --time <seconds>' argument 'soon' is invalid/],
      [['-r', url, '-o', '4x'], /'-o, --io-size <bytes>' argument '4x' is invalid/],
      [['-r', url, '-e', 'PRACT=2'], /'-e, --metadata <spec>'.*PRACT must be 0 or 1/],
      [['-r', url, '--hostnqn', 'bad'], /--hostnqn 'bad' is not of the form/],
      [['-r', url, '--json', '/nonexistent/dir/r.json'], /--json \/nonexistent\/dir\/r\.json: cannot write it: its directory does not exist/],
      // flags that do not fit the namespace (checked once connected)
      [['-r', url, '-o', '1000', '-t', '0.1'], /-o 1000 is not a multiple of namespace 1's block size \(4096 bytes\)/],
      [['-r', url, '-o', '1M', '-t', '0.1'], /-o 1 MiB moves 1048576 bytes per I\/O, more than the target's largest transfer \(MDTS: 256 KiB\)/],
      [['-r', url, '-e', 'PRACT=0,PRCHK=GUARD', '-t', '0.1'], /with PRACT=0 the host would have to generate the PI itself/],
    ]
    const runs = await Promise.all(cases.map(([a]) => runCli(['perf', ...a])))
    for (const [i, r] of runs.entries()) expect(expectUsageShape(r), cases[i]![0].join(' ')).toMatch(cases[i]![1])
    // a namespace that is not there: the target is not what was asked for (3)
    const ns = await runCli(['perf', '-r', url, '--nsid', '7', '-t', '0.1'])
    expect(ns.code).toBe(3)
    expect(ns.stderr.trim()).toBe('ipukit: nqn.2026-12.io.ipukit:perf has no namespace 7 (it has 1)')
  })

  it('an I/O error: exit 1 naming the first status (reads of blocks whose PI -e PRACT=0 writes left wrong)', async () => {
    const t = await startCliTarget(['--listen', '127.0.0.1:0', '--size', '1M', '--md-size', '8', '--pi', 'type1'])
    try {
      // the host's buffers go to the namespace as they are, metadata included: a5h where the PI should be
      const w = await runCli(['perf', '-r', t.url, '-w', 'write', '-e', 'PRACT=0', '-q', '4', '-t', '0.3', '--json', '-'])
      expect(w.code, w.stderr).toBe(0)
      expect(JSON.parse(w.stdout).options.metadata).toBe('PRACT=0,PRCHK=NONE')
      const r = await runCli(['perf', '-r', t.url, '-w', 'read', '-t', '0.3', '--json', '-'])
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^ipukit: a read of 1 blocks at LBA \d+ failed: status 282h Guard Check Error( \(\d+ I\/Os failed\))?$/)
      const j = JSON.parse(r.stdout)
      expect(j.interrupted).toBe('failure')
      expect(j.firstFailure).toMatchObject({ status: 0x282, name: '282h Guard Check Error', op: 'read', blocks: 1 })
    } finally {
      t.child.kill('SIGTERM')
      await t.exited
    }
  })

  it('Ctrl-C stops early: the summary of what was measured, exit 130', async () => {
    const child = spawn(process.execPath, [BIN, 'perf', '-r', open.url, '-w', 'randread', '-t', '60', '--json', '-'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    const running = new Promise<void>((r) => child.stderr.on('data', (b: Buffer) => ((err += b.toString()), /running\n/.test(err) && r())))
    await running
    await new Promise((r) => setTimeout(r, 400))
    const t0 = performance.now()
    child.kill('SIGINT')
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)))
    expect(performance.now() - t0).toBeLessThan(5000)
    expect(code).toBe(130)
    const j = JSON.parse(out)
    expect(j.interrupted).toBe('SIGINT')
    expect(j.read.ios).toBeGreaterThan(0)
    expect(j.seconds).toBeGreaterThan(0.1)
    expect(j.seconds).toBeLessThan(10)
    expect(err).toMatch(/stopped early \(SIGINT\) after [\d.]+ s/)
    expect(err.trim().split('\n').at(-1)).toMatch(/^ipukit: interrupted \(SIGINT\) after [\d.]+ s$/)
  })
})

describe('the latency histogram', () => {
  it('percentiles within 0.8 % of the exact ones, exact min, max and average', () => {
    const h = new LatencyHistogram()
    const xs: number[] = []
    let seed = 12345
    for (let i = 0; i < 100_000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0
      // 1 µs to about 60 ms, log-uniform-ish
      const v = Math.round(1000 * Math.exp((seed / 2 ** 32) * 11))
      xs.push(v)
      h.record(v)
    }
    xs.sort((a, b) => a - b)
    for (const p of [0.5, 0.9, 0.99, 0.999]) {
      const exact = xs[Math.ceil(p * xs.length) - 1]!
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(0.008)
    }
    expect(h.min).toBe(xs[0])
    expect(h.max).toBe(xs.at(-1))
    expect(h.sum / h.n).toBeCloseTo(xs.reduce((a, b) => a + b, 0) / xs.length, 6)
    expect(new LatencyHistogram().latencyUs()).toEqual({ average: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0, p999: 0 })
  })

  it('parses -e as spdk_nvme_perf does', () => {
    expect(parseMetadata('PRACT=1,PRCHK=GUARD|REFTAG')).toEqual({ pract: 1, prchk: { guard: true, refTag: true, appTag: false } })
    expect(parseMetadata('pract=0,prchk=none')).toEqual({ pract: 0, prchk: { guard: false, refTag: false, appTag: false } })
    expect(() => parseMetadata('PRCHK=CRC')).toThrow(/GUARD, REFTAG, APPTAG or NONE/)
  })
})
