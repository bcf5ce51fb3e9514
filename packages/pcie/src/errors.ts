/** Codes of the errors @ipukit/pcie throws. */
export type PcieErrorCode =
  /** a topology document or builder call that does not describe a valid fabric */
  | 'PCIE_BAD_TOPOLOGY'
  /** a register or config access of the wrong size, misaligned, or past the end */
  | 'PCIE_BAD_ACCESS'
  /** an MMIO access no BAR decodes (a master abort) */
  | 'PCIE_UNCLAIMED'
  /** p2pmem misuse: no resource, bad range, freeing what was not allocated */
  | 'PCIE_P2PMEM'

/**
 * Thrown for invalid topologies and invalid accesses, with a stable code. Data-path
 * outcomes of DMA (IOMMU faults, unsupported P2P routes) are statuses instead.
 */
export class PcieError extends Error {
  override readonly name = 'PcieError'
  readonly code: PcieErrorCode
  constructor(code: PcieErrorCode, message: string) {
    super(message)
    this.code = code
  }
}
