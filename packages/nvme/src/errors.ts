/** Codes of the errors @ipukit/nvme throws (programming, configuration and bring-up errors; command outcomes are NVMe statuses). */
export type NvmeErrorCode =
  /** arguments out of range or that do not fit together (queue counts, sizes, nsids, vectors) */
  | 'NVME_BAD_ARGUMENT'
  /** a namespace with that nsid exists, or none does */
  | 'NVME_NAMESPACE'
  /** host DRAM cannot hold what the driver asked */
  | 'NVME_NO_SPACE'
  /** the queue has no free slot: retry after a completion */
  | 'NVME_QUEUE_FULL'
  /** the controller did not become ready (or not ready to stop) within CAP.TO, or set CSTS.CFS */
  | 'NVME_TIMEOUT'
  /** the controller cannot be driven: it is gone, or lacks what the driver needs */
  | 'NVME_UNSUPPORTED'
  /** an admin command of the bring-up failed: the message carries its status */
  | 'NVME_INIT'
  /** a host thread's channel is closed (serveHostThread's close(), or disconnectHostThread): no request crosses it */
  | 'NVME_CLOSED'

export class NvmeError extends Error {
  override readonly name = 'NvmeError'
  readonly code: NvmeErrorCode
  constructor(code: NvmeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
