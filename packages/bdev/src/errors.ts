/** Codes of the errors @ipukit/bdev throws (programming and configuration errors; I/O outcomes are NVMe statuses). */
export type BdevErrorCode =
  /** a bdev with that name exists */
  | 'BDEV_EXISTS'
  /** no bdev with that name */
  | 'BDEV_NOT_FOUND'
  /** another module holds the bdev's write claim */
  | 'BDEV_CLAIMED'
  /** a write through a descriptor opened read-only */
  | 'BDEV_READ_ONLY'
  /** a descriptor used after close(), a bdev being removed, a channel after close() */
  | 'BDEV_STATE'
  /** arguments that do not fit together (lengths, block counts, geometry) */
  | 'BDEV_BAD_ARGUMENT'
  /** IPU DRAM or the accel pools cannot hold what was asked */
  | 'BDEV_NO_SPACE'
  /** a file that cannot be opened, sized or used as asked */
  | 'BDEV_FILE'
  /** a JSON configuration that is not valid: the message names the method and the parameter */
  | 'BDEV_CONFIG'

export class BdevError extends Error {
  override readonly name = 'BdevError'
  readonly code: BdevErrorCode
  constructor(code: BdevErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
