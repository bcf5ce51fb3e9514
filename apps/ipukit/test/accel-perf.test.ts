// ipukit accel-perf, as a user runs it: the built command in a child process. Short runs
// (-t 0.2) of crc32c and of the write path (verified), the JSON forms, and usage errors:
// exit code 2 and one line that says what is wrong, never a stack trace.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PerfResult } from '@ipukit/accel'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, errorLines, runCli, STACK_LINE } from './support/cli.js'

let dir: string

beforeAll(() => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), 'ipukit-accel-perf-'))
}, 240_000)

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe('ipukit accel-perf', () => {
  it('runs crc32c and prints the result as JSON with --json', async () => {
    const r = await runCli(['accel-perf', '-w', 'crc32c', '-s', '4K', '-q', '16', '-t', '0.2', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout) as PerfResult
    expect(j).toMatchObject({ workload: 'crc32c', transferSize: 4096, queueDepth: 16, module: 'software', driver: 'none', failed: 0 })
    expect(j.ops).toBeGreaterThan(0)
    expect(j.mbPerSecond).toBeGreaterThan(0)
    expect(j.seconds).toBeGreaterThan(0.15)
  })

  it('runs the write path on the ipu driver with --verify: every result checked, none failed', async () => {
    const r = await runCli(['accel-perf', '-w', 'write-path', '-s', '64K', '-q', '16', '-t', '0.2', '--driver', 'ipu', '--verify', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout) as PerfResult
    expect(j).toMatchObject({ workload: 'write-path', transferSize: 65536, driver: 'ipu', failed: 0 })
    expect(j.ops).toBeGreaterThan(0)
  })

  it('the write and read paths on 512-byte blocks (--block-size 512) with --verify: none failed', async () => {
    for (const w of ['write-path', 'read-path']) {
      const r = await runCli(['accel-perf', '-w', w, '-s', '32K', '-q', '8', '-t', '0.2', '--driver', 'ipu', '--block-size', '512', '--verify', '--json'])
      expect(r.code, r.stderr).toBe(0)
      const j = JSON.parse(r.stdout) as Record<string, unknown>
      expect(j).toMatchObject({ workload: w, transferSize: 32768, blockSize: 512, driver: 'ipu', failed: 0 })
      expect(j.ops as number).toBeGreaterThan(0)
    }
  })

  it('--json PATH writes the JSON there and prints the one-line summary; --json - is stdout', async () => {
    const file = join(dir, 'crc.json')
    const [toFile, dash] = await Promise.all([
      runCli(['accel-perf', '-w', 'crc32c', '-t', '0.05', '--json', file]),
      runCli(['accel-perf', '-w', 'crc32c', '-t', '0.05', '--json', '-']),
    ])
    expect(toFile.code).toBe(0)
    expect(toFile.stdout).toMatch(/^crc32c 4096 B qd 32 on software: [\d,]+ ops\/s, [\d.]+ MB\/s, latency us p50 [\d.]+ p90 [\d.]+ p99 [\d.]+ p99\.9 [\d.]+ max \d+\n$/)
    expect((JSON.parse(readFileSync(file, 'utf8')) as PerfResult).ops).toBeGreaterThan(0)
    expect(dash.code).toBe(0)
    expect((JSON.parse(dash.stdout) as PerfResult).workload).toBe('crc32c')
  })

  it('answers bad flags with exit code 2 and one line, no stack trace', async () => {
    const cases: [args: string[], message: RegExp][] = [
      [['-w', 'nope'], /option '-w, --workload <name>' argument 'nope' is invalid\. expected one of copy, .*write-path, read-path/],
      [[], /required option '-w, --workload <name>' not specified/],
      [['-w', 'crc32c', '-s', '12Q'], /option '-s, --size <bytes>' argument '12Q' is invalid/],
      [['-w', 'crc32c', '-s', '256K'], /argument '256K' is invalid\. must be from .* to 128 KiB/],
      [['-w', 'encrypt', '-s', '1000'], /^ipukit: accel-perf: --size 1000: encrypt works on 4096-byte blocks/],
      [['-w', 'crc32c', '-q', '0'], /option '-q, --depth <n>' argument '0' is invalid/],
      [['-w', 'crc32c', '-t', 'soon'], /option '-t, --time <seconds>' argument 'soon' is invalid/],
      [['-w', 'crc32c', '--driver', 'dpu'], /option '--driver <name>' argument 'dpu' is invalid\. expected one of ipu/],
      [['-w', 'crc32c', '-m', 'nosuch', '-t', '0.05'], /^ipukit: accel-perf: --module nosuch: no module named 'nosuch'/],
      [['-w', 'crc32c', '--bogus'], /unknown option '--bogus'/],
      [['-w', 'crc32c', 'extra'], /too many arguments for 'accel-perf'/],
      [['-w', 'crc32c', '-t', '0.05', '--json', join(dir, 'no', 'such', 'dir', 'r.json')], /^ipukit: accel-perf: --json .*r\.json: cannot write it: its directory does not exist$/],
    ]
    const runs = await Promise.all(cases.map(([args]) => runCli(['accel-perf', ...args])))
    runs.forEach((r, i) => {
      const [args, message] = cases[i]!
      const what = `accel-perf ${args.join(' ')}`
      expect(r.code, what).toBe(2)
      expect(r.stdout, what).toBe('')
      expect(r.stderr, what).not.toMatch(STACK_LINE)
      const lines = errorLines(r.stderr)
      expect(lines, what).toHaveLength(1)
      expect(lines[0], what).toMatch(message)
    })
  })
})
