/**
 * Data-path outcomes are values, negative errno numbers as in SPDK (0 is success). They
 * are what domain operations return and what their completions receive.
 */
export const Status = {
  Ok: 0,
  /** the domain does not implement the operation (SPDK: -ENOTSUP) */
  NotSupported: -95,
  /** an IOMMU fault: unmapped IOVA, or a write to a read-only page (-EFAULT) */
  Fault: -14,
  /** no buffer right now: retry later (-ENOMEM) */
  NoMemory: -12,
  /** a malformed request that reached the data path: bad range, length mismatch (-EINVAL) */
  Invalid: -22,
  /** a peer-to-peer route the fabric cannot carry (Linux's DMA mapping: -EREMOTEIO) */
  RemoteIo: -121,
} as const
export type StatusCode = (typeof Status)[keyof typeof Status]

const NAMES = new Map<number, string>(Object.entries(Status).map(([k, v]) => [v, k]))

/** A status's name, for logs: 'Ok', 'Fault', …, or the number. */
export function statusName(status: number): string {
  return NAMES.get(status) ?? String(status)
}

/** Codes of the errors @ipukit/memory throws for programming errors (never for data-path faults). */
export type MemoryErrorCode = 'MEMORY_TOO_LARGE' | 'MEMORY_BAD_FREE' | 'MEMORY_LIST_FULL' | 'MEMORY_DOUBLE_PUT' | 'MEMORY_CLOSED'

/** Thrown for misuse: sizes past 4 GiB, freeing what was not allocated, putting a buffer twice. */
export class MemoryError extends Error {
  override readonly name = 'MemoryError'
  readonly code: MemoryErrorCode
  constructor(code: MemoryErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
