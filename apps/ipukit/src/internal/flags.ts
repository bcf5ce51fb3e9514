// Flag values: sizes with binary suffixes, bounded integers, choices. Each parser throws
// commander's InvalidArgumentError, which commander reports as
// "error: option '--size <bytes>' argument '12Q' is invalid. <why>" (exit code 2).
import { InvalidArgumentError } from 'commander'

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** 4096, 4k, 4K, 4KiB, 128k, 256M, 1G: bytes (binary multiples). */
export function parseSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v)
  if (m === null) throw new InvalidArgumentError('expected a size: a number of bytes, or with K, M, G or T (binary: 4K = 4096)')
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a whole, positive number of bytes')
  return n
}

export function sizeIn(lo: number, hi: number, multipleOf = 1): (v: string) => number {
  return (v) => {
    const n = parseSize(v)
    if (n < lo || n > hi) throw new InvalidArgumentError(`must be from ${fmt(lo)} to ${fmt(hi)}`)
    if (n % multipleOf !== 0) throw new InvalidArgumentError(`must be a multiple of ${fmt(multipleOf)}`)
    return n
  }
}

export function intIn(lo: number, hi: number): (v: string) => number {
  return (v) => {
    if (!/^\s*\d+\s*$/.test(v)) throw new InvalidArgumentError(`expected a whole number from ${lo} to ${hi}`)
    const n = Number(v)
    if (n < lo || n > hi) throw new InvalidArgumentError(`must be from ${lo} to ${hi}`)
    return n
  }
}

export function numberIn(lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`expected a number from ${lo} to ${hi}`)
    return n
  }
}

export function oneOf<T extends string>(choices: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`)
    return v as T
  }
}

/** Repeatable flags: each occurrence appended. */
export function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v]
}

/** host:port, [v6]:port or a port alone (on 127.0.0.1). */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d+)$/.exec(v.trim())
  if (m === null) throw new InvalidArgumentError('expected HOST:PORT (or a port)')
  const port = Number(m[3])
  if (port < 0 || port > 65535) throw new InvalidArgumentError('the port must be from 0 to 65535')
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port }
}

/** nvme+tcp://host:port/nqn (the port defaults to 4420). */
export function parseTargetUrl(v: string): { host: string; port: number; nqn: string } {
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw new InvalidArgumentError('expected nvme+tcp://HOST[:PORT]/NQN')
  }
  if (u.protocol !== 'nvme+tcp:') throw new InvalidArgumentError(`the scheme must be nvme+tcp, got '${u.protocol.replace(/:$/, '')}'`)
  const nqn = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (u.hostname === '' || nqn === '') throw new InvalidArgumentError('expected nvme+tcp://HOST[:PORT]/NQN')
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 4420 : Number(u.port), nqn }
}

export function fmt(bytes: number): string {
  for (const [u, k] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) if (bytes >= k && bytes % k === 0) return `${bytes / k} ${u}`
  return `${bytes} bytes`
}
