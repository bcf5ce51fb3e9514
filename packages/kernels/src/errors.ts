/**
 * Errors thrown by @ipukit/kernels. Invalid arguments are `TypeError` or `RangeError`
 * (with `code` ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, as Node does); misuse of state,
 * exhausted slots and unusable memories are `KernelsError`, each with a stable `code`.
 */
export type KernelsErrorCode =
  | 'KERNELS_DESTROYED'
  | 'KERNELS_CLOSED'
  | 'KERNELS_NO_SCRATCH_SLOT'
  | 'KERNELS_NO_KEY_SLOT'
  | 'KERNELS_BAD_MEMORY'
  | 'KERNELS_UNSUPPORTED'

export class KernelsError extends Error {
  override readonly name = 'KernelsError'
  readonly code: KernelsErrorCode
  constructor(code: KernelsErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
