// Why a host could not bring up a controller on a target, as one line and an exit code:
// unreachable (refused, timed out, no route) and refused Connects are exit 3 (the target),
// bad arguments 2, anything else 1.
import { NvmfError } from '@ipukit/nvmf'
import { FabricsCommandStatus, statusName } from '@ipukit/nvme'
import { CliError } from './errors.js'
import { errnoOf, spaced } from './errno.js'

const ERRNO: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'the network is unreachable',
  EHOSTDOWN: 'the host is down',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  EADDRNOTAVAIL: 'the address is not available',
  EPIPE: 'the connection was closed',
}

/** A status as "184h Connect Invalid Host". */
export function describeStatus(status: number, context?: 'fabrics'): string {
  return `${status.toString(16).padStart(3, '0')}h ${spaced(statusName(status, context))}`
}

export interface ConnectTarget {
  host: string
  port: number
  nqn: string
}

/** The CliError for an NvmfHost.connect() (or attach) failure. */
export function connectError(e: unknown, t: ConnectTarget, hostnqn: string): CliError {
  if (e instanceof CliError) return e
  const at = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`
  const msg = (e as Error)?.message ?? String(e)
  if (e instanceof NvmfError) {
    if (e.code === 'NVMF_BAD_ARGUMENT') return new CliError('CLI_USAGE', msg, { cause: e })
    if (e.code === 'NVMF_TRANSPORT') {
      const code = errnoOf(e)
      if (code !== undefined) return new CliError('CLI_TARGET', `${at}: ${ERRNO[code] ?? code}`, { cause: e })
      const timeout = /within (\d+) ms/.exec(msg)
      if (timeout !== null) return new CliError('CLI_TARGET', `${at}: no answer within ${Number(timeout[1]) / 1000} s (timed out)`, { cause: e })
      if (/connection closed/.test(msg)) return new CliError('CLI_TARGET', `${at}: the target closed the connection during the NVMe/TCP handshake`, { cause: e })
      return new CliError('CLI_TARGET', `${at}: ${msg.replace(/^queue \d+: /, '')}`, { cause: e })
    }
    if (e.code === 'NVMF_CONNECT') {
      const m = /status ([0-9a-f]{3})h/.exec(msg)
      const status = m === null ? -1 : parseInt(m[1]!, 16)
      if (/^Connect /.test(msg) && status >= 0) {
        const name = describeStatus(status, 'fabrics').replace(/^\S+ /, '')
        if (status === FabricsCommandStatus.ConnectInvalidHost) return new CliError('CLI_TARGET', `the target refused the connection: ${name} (host nqn ${hostnqn} is not allowed on ${t.nqn} at ${at})`, { cause: e })
        if (status === FabricsCommandStatus.ConnectInvalidParameters) {
          const what = /offset (\d+) of the Connect data/.exec(msg)?.[1]
          const detail = what === '256' ? `no subsystem ${t.nqn} at ${at}` : what === '512' ? `the target does not accept host nqn ${hostnqn}` : msg.replace(/^.*failed: /, '')
          return new CliError('CLI_TARGET', `the target refused the connection: ${name} (${detail})`, { cause: e })
        }
        return new CliError('CLI_TARGET', `the target refused the connection: ${name} (${t.nqn} at ${at})`, { cause: e })
      }
      return new CliError('CLI_TARGET', `${t.nqn} at ${at}: ${msg}${status >= 0 ? ` (${spaced(statusName(status))})` : ''}`, { cause: e })
    }
    if (e.code === 'NVMF_STATE') return new CliError('CLI_TARGET', `${at}: ${msg}`, { cause: e })
  }
  return new CliError('CLI_FAILED', msg, { cause: e })
}
