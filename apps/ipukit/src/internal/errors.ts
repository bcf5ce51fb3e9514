// Errors that end a command: a message for the terminal (no stack) and an exit code.
//
//   0  done (and, for `run`, verified)
//   1  the job ran and failed: verification, an I/O error status, a target that went away
//   2  usage: a bad or missing flag, a file that cannot be read
//   3  the target: unreachable, refused the connection, or not what was asked for
//   4  no space: the disk (or the namespace) is full
//   130 interrupted (SIGINT), 143 terminated (SIGTERM)

export const ExitCode = {
  Ok: 0,
  Failed: 1,
  Usage: 2,
  Target: 3,
  NoSpace: 4,
  Interrupted: 130,
  Terminated: 143,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export type CliErrorCode = 'CLI_USAGE' | 'CLI_FAILED' | 'CLI_TARGET' | 'CLI_NO_SPACE' | 'CLI_INTERRUPTED' | 'CLI_TERMINATED'

const EXIT: Record<CliErrorCode, ExitCodeValue> = {
  CLI_USAGE: ExitCode.Usage,
  CLI_FAILED: ExitCode.Failed,
  CLI_TARGET: ExitCode.Target,
  CLI_NO_SPACE: ExitCode.NoSpace,
  CLI_INTERRUPTED: ExitCode.Interrupted,
  CLI_TERMINATED: ExitCode.Terminated,
}

export class CliError extends Error {
  readonly code: CliErrorCode
  readonly exitCode: ExitCodeValue
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
    this.code = code
    this.exitCode = EXIT[code]
  }
}

export function usage(message: string): CliError {
  return new CliError('CLI_USAGE', message)
}
