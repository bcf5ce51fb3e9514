/** Codes of the errors @ipukit/dif throws for misuse (never for bad data). */
export type DifErrorCode = 'DIF_STREAM_FAILED' | 'DIF_STREAM_FINISHED' | 'DIF_BLOCK_TOO_LARGE'

/**
 * Thrown for misuse of a context or stream. Invalid arguments throw TypeError or RangeError;
 * bad protection information is a DifFailure value, never an exception.
 */
export class DifError extends Error {
  override readonly name = 'DifError'
  readonly code: DifErrorCode
  constructor(code: DifErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
