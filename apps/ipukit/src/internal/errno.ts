// The errno code (ENOSPC, EADDRINUSE, ECONNREFUSED…) somewhere down an error's cause chain:
// the packages wrap what the system said (BdevError → NvmfError → …) and keep it as `cause`.

/** The first `code` that looks like an errno (E…) on the error or its causes. */
export function errnoOf(e: unknown): string | undefined {
  for (let x: unknown = e, depth = 0; x !== null && typeof x === 'object' && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return code
  }
  return undefined
}

/** No space on the file system (the bdev layer's mapping: ENOSPC, EDQUOT, EFBIG). */
export function isNoSpace(code: string | undefined): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
}

/** "ConnectInvalidHost" → "Connect Invalid Host". */
export function spaced(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
}
