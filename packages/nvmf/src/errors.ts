/** Codes of the errors @ipukit/nvmf throws (programming and configuration errors; protocol errors are TermReqs and NVMe statuses). */
export type NvmfErrorCode =
  /** arguments out of range or that do not fit together */
  | 'NVMF_BAD_ARGUMENT'
  /** a subsystem, namespace, host or listener that exists, or does not */
  | 'NVMF_EXISTS'
  | 'NVMF_NOT_FOUND'
  /** the target or host was closed, or is not connected */
  | 'NVMF_STATE'
  /** a socket could not be opened, or the peer broke the protocol (the message says how) */
  | 'NVMF_TRANSPORT'
  /** Connect or the bring-up failed: the message carries the NVMe status */
  | 'NVMF_CONNECT'
  /** a JSON configuration that is not valid: the message names the method and the parameter */
  | 'NVMF_CONFIG'

export class NvmfError extends Error {
  override readonly name = 'NvmfError'
  readonly code: NvmfErrorCode
  constructor(code: NvmfErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
