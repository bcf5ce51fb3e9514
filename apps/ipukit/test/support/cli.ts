// Running the real CLI (bin/ipukit.mjs on dist/) in child processes, for the target and perf
// tests. ensureBuilt() builds (tsc) the app and the workspace packages it depends on where
// dist/ is missing or older than the sources, and fails with a clear message when the files
// these tests exercise cannot be built.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const APP = join(here, '..', '..')
export const BIN = join(APP, 'bin', 'ipukit.mjs')
const PACKAGES = join(APP, '..', '..', 'packages')

function newest(dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

function deps(pkgDir: string, out: string[] = []): string[] {
  const pj = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  for (const d of Object.keys(pj.dependencies ?? {})) {
    if (!d.startsWith('@ipukit/')) continue
    const dir = join(PACKAGES, d.slice('@ipukit/'.length))
    if (out.includes(dir)) continue
    deps(dir, out)
    out.push(dir)
  }
  return out
}

function tsc(dir: string): { ok: boolean; output: string } {
  const bin = join(dirname(createRequire(join(APP, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc')
  const r = spawnSync(process.execPath, [bin, '-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8', timeout: 180_000 })
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim() }
}

/**
 * The app's dist/ and its dependencies' are current. The app's tsc run may report type errors
 * in files other sessions are writing; what matters is that the modules these tests run were
 * emitted from their current sources.
 */
export function ensureBuilt(mine: string[]): void {
  for (const dir of deps(APP)) {
    const index = join(dir, 'dist', 'index.js')
    if (existsSync(index) && newest(join(dir, 'src')) <= statSync(index).mtimeMs) continue
    const r = tsc(dir)
    if (!existsSync(index)) throw new Error(`building ${dir} failed:\n${r.output}`)
  }
  const stale = () =>
    ['cli', ...mine].filter((m) => {
      const js = join(APP, 'dist', `${m}.js`)
      return !existsSync(js) || statSync(join(APP, 'src', `${m}.ts`)).mtimeMs > statSync(js).mtimeMs
    })
  if (stale().length === 0) return
  const r = tsc(APP)
  const still = stale()
  if (still.length > 0) throw new Error(`the app's dist/ lacks current ${still.join(', ')} and tsc did not emit them:\n${r.output}`)
}

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs `ipukit ...args` to its end. */
export function runCli(args: string[], o: { cwd?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd ?? APP, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`ipukit ${args.join(' ')} did not end within ${o.timeoutMs ?? 30_000} ms:\n${stdout}\n${stderr}`))
    }, o.timeoutMs ?? 30_000)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

export interface CliTarget {
  child: ChildProcess
  port: number
  nqn: string
  url: string
  listening: Record<string, unknown>
  /** every log entry so far */
  logs: Record<string, unknown>[]
  stderr(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** Starts `ipukit target ...args` (add --listen 127.0.0.1:0 yourself) and waits for its "listening" line. */
export function startCliTarget(args: string[], o: { cwd?: string } = {}): Promise<CliTarget> {
  const child = spawn(process.execPath, [BIN, 'target', ...args], { cwd: o.cwd ?? APP, stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  const logs: Record<string, unknown>[] = []
  let err = ''
  let buf = ''
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('close', (code, signal) => {
      children.delete(child)
      r({ code, signal })
    }),
  )
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`no "listening" within 15 s:\n${buf}\n${err}`))), 15_000)
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        const e = JSON.parse(line) as Record<string, unknown>
        logs.push(e)
        if (e.msg === 'listening') {
          clearTimeout(timer)
          resolve({ child, port: Number(e.port), nqn: String(e.nqn), url: String(e.url), listening: e, logs, stderr: () => err, exited })
        }
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`the target exited (${code ?? signal}) before listening: ${err}`))
    })
  })
}

/** A usage error as the CLI must print it: exit 2, one message line (commander adds its "(run with --help …)" hint), no stack. */
export function expectUsageShape(r: CliRun): string {
  const lines = r.stderr.trim().split('\n')
  const problems: string[] = []
  if (r.code !== 2) problems.push(`exit code ${r.code} (${r.signal}), not 2`)
  if (lines.some((l) => /^\s+at /.test(l))) problems.push('a stack trace')
  const msg = lines.filter((l) => l !== '(run with --help for usage)')
  if (msg.length !== 1) problems.push(`${msg.length} message lines`)
  if (problems.length > 0) throw new Error(`${problems.join(', ')}:\n${r.stderr}`)
  return msg[0]!
}
