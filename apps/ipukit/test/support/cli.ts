// The built ipukit command (bin/ipukit.mjs → dist/cli.js) in child processes, for tests that
// check what a user sees: stdout, stderr, the exit code; and `ipukit target` started in the
// background for the tests that need a target.
//
// ensureBuilt() (call it in beforeAll) builds what the command runs on where dist/ is
// missing or older than the sources: the app itself (tsc) and the @ipukit/* packages it
// depends on whose build is plain tsc (dependencies first); a package with another build
// (kernels: AssemblyScript first) that has no dist/ is an error that says what to run. Test
// files run in parallel, so the build holds a lock (a directory in the OS temp dir).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const APP = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const packagesDir = join(APP, '..', '..', 'packages')
export const BIN = join(APP, 'bin', 'ipukit.mjs')
const TSC_BUILD = 'tsc -p tsconfig.build.json'
const HOW = '`pnpm exec turbo run build` at the repository root'

function newestMtime(dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return t
}

function dependencies(dir: string): string[] {
  const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  return Object.keys(pj.dependencies ?? {}).filter((d) => d.startsWith('@ipukit/'))
}

/** The @ipukit/* packages the app depends on, transitively, dependencies first. */
function workspaceDeps(): string[] {
  const out: string[] = []
  const visit = (name: string) => {
    if (out.includes(name)) return
    for (const d of dependencies(join(packagesDir, name.replace('@ipukit/', '')))) visit(d)
    out.push(name)
  }
  for (const d of dependencies(APP)) visit(d)
  return out
}

const stale = (dir: string, output: string) => !existsSync(output) || newestMtime(join(dir, 'src')) > statSync(output).mtimeMs

function tsc(dir: string): { ok: boolean; output: string } {
  const bin = join(dirname(createRequire(join(APP, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc')
  const r = spawnSync(process.execPath, [bin, '-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8', timeout: 180_000 })
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim() }
}

function withLock<T>(f: () => T): T {
  const lock = join(tmpdir(), `ipukit-cli-build-${createHash('sha256').update(APP).digest('hex').slice(0, 12)}.lock`)
  const deadline = Date.now() + 240_000
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      // a build that died leaves its lock: older than the longest build, it is taken over
      try {
        if (Date.now() - statSync(lock).mtimeMs > 200_000) rmSync(lock, { recursive: true, force: true })
      } catch {}
      if (Date.now() > deadline) throw new Error(`waited 4 minutes for another test's build of the ipukit command (lock ${lock})`)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
    }
  }
  try {
    return f()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** Builds what `node bin/ipukit.mjs` runs on, where it is missing or out of date. */
export function ensureBuilt(): void {
  const cli = join(APP, 'dist', 'cli.js')
  const deps = workspaceDeps()
  const dirOf = (name: string) => join(packagesDir, name.replace('@ipukit/', ''))
  if (!stale(APP, cli) && deps.every((d) => !stale(dirOf(d), join(dirOf(d), 'dist', 'index.js')))) return
  withLock(() => {
    for (const name of deps) {
      const dir = dirOf(name)
      const index = join(dir, 'dist', 'index.js')
      if (!stale(dir, index)) continue
      const build = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts?.build
      if (build !== TSC_BUILD) {
        if (!existsSync(index)) throw new Error(`the ipukit command runs on built packages, and ${name} has no dist/; run ${HOW} first`)
        console.warn(`${name}'s dist/ is older than its sources; the ipukit command runs on the old build (${HOW} refreshes it)`)
        continue
      }
      const r = tsc(dir)
      if (!r.ok && !existsSync(index)) throw new Error(`building ${name} (tsc) failed; run ${HOW}:\n${r.output}`)
      if (!r.ok) console.warn(`building ${name} (tsc) reported errors; the ipukit command runs on what tsc emitted:\n${r.output}`)
    }
    if (!stale(APP, cli)) return
    // tsc emits even when it reports type errors (elsewhere in the app, say): the tests then
    // run on what it emitted, and fail on their own if that does not work
    const r = tsc(APP)
    if (!existsSync(cli)) throw new Error(`building the ipukit app (tsc) failed; run \`pnpm run build\` in apps/ipukit:\n${r.output}`)
    if (!r.ok) console.warn(`building the ipukit app (tsc) reported errors; the tests run on what tsc emitted:\n${r.output.split('\n').slice(0, 20).join('\n')}`)
  })
}

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs `ipukit ...args` to its end. */
export function runCli(args: readonly string[], o: { cwd?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env }
    delete env.IPUKIT_DEBUG
    const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd ?? APP, env, stdio: ['ignore', 'pipe', 'pipe'] })
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
  const msg = lines.filter((l) => l !== HELP_HINT)
  if (msg.length !== 1) problems.push(`${msg.length} message lines`)
  if (problems.length > 0) throw new Error(`${problems.join(', ')}:\n${r.stderr}`)
  return msg[0]!
}

/** commander's hint after a usage error (src/cli.ts: showHelpAfterError) */
export const HELP_HINT = '(run with --help for usage)'

/** The lines of stderr that say what went wrong (without commander's hint line). */
export function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && l !== HELP_HINT)
}

/** A stack trace line ("    at f (file.js:1:2)"). */
export const STACK_LINE = /^\s+at .+[(:]/m
