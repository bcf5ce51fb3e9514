// SIGINT and SIGTERM while a command works: the first aborts its AbortSignal (the work stops
// submitting, what is in flight completes, the summary of what was done is printed) and ends
// the command with 130 or 143; a second either exits at once ('exit': perf, nothing to tear
// down) or is ignored ('ignore': run, whose embedded target must still be stopped and flushed).
import { CliError } from './errors.js'

export type StopSignal = 'SIGINT' | 'SIGTERM'

export interface SignalStop {
  /** aborted at the first signal */
  readonly signal: AbortSignal
  /** the first signal received, or null */
  readonly received: StopSignal | null
  /** the CliError (exit 130 or 143) that ends a command the signal stopped */
  interrupted(detail: string): CliError
  /** removes the handlers */
  dispose(): void
}

export function stopOnSignals(second: 'exit' | 'ignore'): SignalStop {
  const ac = new AbortController()
  let received: StopSignal | null = null
  const on = (s: StopSignal) => () => {
    if (received !== null) {
      if (second === 'exit') process.exit(s === 'SIGINT' ? 130 : 143)
      return
    }
    received = s
    ac.abort(s)
  }
  const onInt = on('SIGINT')
  const onTerm = on('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  return {
    signal: ac.signal,
    get received() {
      return received
    },
    interrupted(detail) {
      return new CliError(received === 'SIGTERM' ? 'CLI_TERMINATED' : 'CLI_INTERRUPTED', `interrupted (${received ?? 'SIGINT'})${detail}`)
    },
    dispose() {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
    },
  }
}
