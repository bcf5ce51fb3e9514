// The ipukit command line: one commander program, a subcommand per file in commands/.
// Every failure ends with one line on stderr ("ipukit <command>: <what>") and an exit code
// from internal/errors.ts; no stack trace unless IPUKIT_DEBUG=1.
import { Command, CommanderError } from 'commander'
import { CliError, ExitCode } from './internal/errors.js'
import { registerRun } from './commands/run.js'
import { registerTarget } from './commands/target.js'
import { registerPerf } from './commands/perf.js'
import { registerAccelPerf } from './commands/accel-perf.js'
import { registerTopo } from './commands/topo.js'

export function program(): Command {
  const p = new Command('ipukit')
    .description('An IPU storage data path: NVMe over PCIe in, AES-XTS and T10 PI on the way, NVMe/TCP out')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  registerRun(p)
  registerTarget(p)
  registerPerf(p)
  registerAccelPerf(p)
  registerTopo(p)
  for (const c of p.commands) c.exitOverride().showHelpAfterError('(run with --help for usage)')
  return p
}

/** Runs the command line; resolves to the exit code (never throws, never exits). */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' })
    return ExitCode.Ok
  } catch (e) {
    return exitCodeOf(e)
  }
}

export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) {
    // help and version are exits with code 0; everything else commander reports is usage
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.Ok
    return ExitCode.Usage
  }
  if (e instanceof CliError) {
    process.stderr.write(`ipukit: ${e.message}\n`)
    if (process.env.IPUKIT_DEBUG === '1' && e.cause !== undefined) process.stderr.write(`${String((e.cause as Error).stack ?? e.cause)}\n`)
    return e.exitCode
  }
  const err = e as NodeJS.ErrnoException
  process.stderr.write(`ipukit: ${err?.message ?? String(e)}\n`)
  if (process.env.IPUKIT_DEBUG === '1') process.stderr.write(`${err?.stack}\n`)
  return err?.code === 'ENOSPC' ? ExitCode.NoSpace : ExitCode.Failed
}
