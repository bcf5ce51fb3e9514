/** Codes of the errors @ipukit/accel throws (programming errors; data-path outcomes are AccelStatus values). */
export type AccelErrorCode =
  /** a key with that name exists */
  | 'ACCEL_KEY_EXISTS'
  /** key parameters SPDK would refuse (lengths, equal halves, cipher, tweak mode) */
  | 'ACCEL_BAD_KEY'
  /** no such key */
  | 'ACCEL_NO_KEY'
  /** no such module, or a module that cannot take the opcode */
  | 'ACCEL_BAD_MODULE'
  /** an assignment or driver change after start(), or use before it */
  | 'ACCEL_STATE'
  /** a sequence used after finish() or abort(), or an append to a running one */
  | 'ACCEL_SEQUENCE_STATE'
  /** an operation's arguments do not fit together (lengths, domains, block counts) */
  | 'ACCEL_BAD_ARGUMENT'

export class AccelError extends Error {
  override readonly name = 'AccelError'
  readonly code: AccelErrorCode
  constructor(code: AccelErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
