// An `ipukit target` in a child process, for `ipukit run` and tests: the app's own CLI
// (bin/ipukit.mjs target --listen 127.0.0.1:0 …) on process.execPath, so the target has a
// core and an event loop of its own, as a remote target would. Started when its first log
// line, "listening", says where; stopped with SIGTERM (SIGKILL after a timeout).
//
// The child never outlives this process: it is killed when this process exits, and it stops
// by itself when its stdin (a pipe from here) closes, which covers this process being killed
// with SIGKILL. It runs in a process group of its own, so a Ctrl-C at the terminal reaches
// the parent, which then stops it in its own order.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CliError, ExitCode } from './errors.js'
import type { PiFormat, PiTypeName } from './target.js'

/** The app's CLI (bin/ipukit.mjs, on the built dist/). */
export const IPUKIT_BIN = fileURLToPath(new URL('../../bin/ipukit.mjs', import.meta.url))

export interface EmbeddedTargetOptions {
  /** the namespace's file (kept afterwards); default a new temporary file, removed by stop() unless keepFile */
  file?: string
  /** a RAM namespace instead of a file */
  ram?: boolean
  /** data bytes (a whole number of blocks) */
  size: number
  /** default 4096 */
  blockSize?: number
  /** default 0 (or the PI's size with pi) */
  mdSize?: number
  /** default none */
  pi?: PiTypeName
  /** default 16 */
  piFormat?: PiFormat
  piLocation?: 'first' | 'last'
  /** default nqn.2026-12.io.ipukit:target */
  nqn?: string
  /** keep the temporary file after stop() */
  keepFile?: boolean
  /** host NQNs allowed; default any */
  allowHosts?: string[]
  /** the child's log level; default info */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** every log entry of the child after "listening" (and that one), parsed */
  onLog?: (entry: Record<string, unknown>) => void
  /** ms to wait for "listening"; default 15 000 */
  startTimeoutMs?: number
  /** ms stop() waits after SIGTERM before SIGKILL; default 10 000 */
  stopTimeoutMs?: number
}

export interface EmbeddedTarget {
  host: string
  port: number
  nqn: string
  /** nvme+tcp://host:port/nqn */
  url: string
  /** the namespace's file, null for RAM */
  file: string | null
  pid: number
  /** the "listening" entry, as the child logged it */
  listening: Record<string, unknown>
  /** resolves when the child has exited (whatever the reason) */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /**
   * SIGTERM, then waits for the exit (SIGKILL after stopTimeoutMs); removes a temporary file
   * unless keepFile. Rejects (CliError) if the target did not stop cleanly (exit code not 0,
   * or it had to be killed), after cleaning up. Idempotent.
   */
  stop(): Promise<void>
}

const STDERR_KEEP = 8192

function exitCodeError(code: number | null): CliError['code'] {
  switch (code) {
    case ExitCode.Usage:
      return 'CLI_USAGE'
    case ExitCode.NoSpace:
      return 'CLI_NO_SPACE'
    default:
      return 'CLI_FAILED'
  }
}

function targetArgs(o: EmbeddedTargetOptions, file: string | null): string[] {
  const a = ['target', '--listen', '127.0.0.1:0', '--size', String(o.size), '--log-level', o.logLevel ?? 'info', '--exit-with-stdin']
  if (file !== null) a.push('--file', file)
  if (o.nqn !== undefined) a.push('--nqn', o.nqn)
  if (o.blockSize !== undefined) a.push('--block-size', String(o.blockSize))
  if (o.mdSize !== undefined) a.push('--md-size', String(o.mdSize))
  if (o.pi !== undefined && o.pi !== 'none') {
    a.push('--pi', o.pi)
    if (o.piFormat !== undefined) a.push('--pi-format', String(o.piFormat))
    if (o.piLocation !== undefined) a.push('--pi-location', o.piLocation)
  }
  for (const h of o.allowHosts ?? []) a.push('--allow-host', h)
  return a
}

/** Starts `ipukit target` in a child process; resolves once it listens. */
export async function startEmbeddedTarget(o: EmbeddedTargetOptions): Promise<EmbeddedTarget> {
  let tmpDir: string | null = null
  let file: string | null = null
  if (o.ram !== true) {
    if (o.file !== undefined) file = o.file
    else {
      tmpDir = mkdtempSync(join(tmpdir(), 'ipukit-target-'))
      file = join(tmpDir, 'namespace.img')
    }
  }
  const removeTemp = () => {
    if (tmpDir !== null && o.keepFile !== true) rmSync(tmpDir, { recursive: true, force: true })
  }
  let child: ChildProcess
  try {
    child = spawn(process.execPath, [IPUKIT_BIN, ...targetArgs(o, file)], { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
  } catch (e) {
    removeTemp()
    throw new CliError('CLI_FAILED', `cannot start the embedded target: ${(e as Error).message}`, { cause: e })
  }
  // this process exits: the child goes too (its stdin closing would stop it as well, more gently)
  const killOnExit = () => {
    try {
      child.kill('SIGKILL')
    } catch {
      // gone already
    }
  }
  process.on('exit', killOnExit)
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP)
  })
  child.stdin!.on('error', () => {})
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit)
      resolve({ code, signal })
    })
  })
  const lastLine = () => stderr.trim().split('\n').filter(Boolean).pop()?.replace(/^ipukit: /, '') ?? ''
  let listening: Record<string, unknown>
  try {
    listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let buf = ''
      let started = false
      const timeoutMs = o.startTimeoutMs ?? 15_000
      const timer = setTimeout(() => {
        killOnExit()
        reject(new CliError('CLI_FAILED', `the embedded target did not listen within ${timeoutMs} ms${stderr.trim() !== '' ? `: ${lastLine()}` : ''}`))
      }, timeoutMs)
      child.stdout!.setEncoding('utf8')
      child.stdout!.on('data', (s: string) => {
        buf += s
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          let entry: Record<string, unknown>
          try {
            entry = JSON.parse(line) as Record<string, unknown>
          } catch {
            continue
          }
          if (!started && entry.msg === 'listening') {
            started = true
            clearTimeout(timer)
            resolve(entry)
          }
          if (started) o.onLog?.(entry)
        }
      })
      child.once('error', (e) => {
        clearTimeout(timer)
        reject(new CliError('CLI_FAILED', `cannot start the embedded target: ${e.message}`, { cause: e }))
      })
      void exited.then(({ code, signal }) => {
        if (started) return
        clearTimeout(timer)
        const why = lastLine()
        reject(new CliError(exitCodeError(code), `the embedded target exited (${signal ?? `code ${code}`}) before it listened${why !== '' ? `: ${why}` : ''}`))
      })
    })
  } catch (e) {
    await exited
    removeTemp()
    throw e
  }
  const host = String(listening.address)
  const port = Number(listening.port)
  const nqn = String(listening.nqn)
  let stopping: Promise<void> | null = null
  return {
    host,
    port,
    nqn,
    url: `nvme+tcp://${host}:${port}/${nqn}`,
    file,
    pid: child.pid!,
    listening,
    exited,
    stop() {
      stopping ??= (async () => {
        let killed = false
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => {
            killed = true
            killOnExit()
          }, o.stopTimeoutMs ?? 10_000)
          await exited
          clearTimeout(timer)
        }
        const { code, signal } = await exited
        child.stdin!.destroy()
        removeTemp()
        if (killed) throw new CliError('CLI_FAILED', `the embedded target did not stop within ${o.stopTimeoutMs ?? 10_000} ms of SIGTERM and was killed`)
        if (code !== 0) throw new CliError(exitCodeError(code), `the embedded target exited with ${signal ?? `code ${code}`}${lastLine() !== '' ? `: ${lastLine()}` : ''}`)
      })()
      return stopping
    },
  }
}
