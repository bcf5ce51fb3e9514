// The `ipu` platform driver: what an IPU's data path hardware does in one pass. It looks at
// each sequence after copy elision and claims
//
//   encrypt -> dif_generate_copy   (the write path: ciphertext + PI in one pass)
//   dif_verify_copy -> decrypt     (the read path)
//   copy -> crc32c of the copy     (copy_crc32c: a data digest while copying)
//   encrypt or decrypt reading or writing a remote domain (what copy + encrypt from host
//                                  memory becomes once the copy is elided)
//
// Claimed operations run as one descriptor on the WASM kernels (the module assigned to
// dif_generate_copy when it runs descriptors, else `software`), and a buffer in a function's
// bus-master domain (@ipukit/pcie) is reached as that function's DMA reads or writes it:
// translated through its IOMMU context, charged to the fabric's links, never bounced.
import type { IoVecList, MemoryDomain } from '@ipukit/memory'
import { BusMasterDomain } from '@ipukit/pcie'
import type { Accel } from './accel.js'
import type { AccelDriver, SequenceView } from './module.js'
import { Opc } from './opcodes.js'

export class IpuDriver implements AccelDriver {
  readonly name = 'ipu'
  #module = 'software'

  init(accel: Accel): void {
    const m = accel.moduleFor(Opc.dif_generate_copy)
    this.#module = m.usesDescriptors ? m.name : 'software'
  }

  canAccess(domain: MemoryDomain): boolean {
    return domain instanceof BusMasterDomain
  }

  translate(domain: MemoryDomain, iovs: IoVecList, out: IoVecList, access: number): number {
    return (domain as BusMasterDomain).translateForDma(iovs, out, access)
  }

  #remote(d: MemoryDomain | null): boolean {
    return d !== null && this.canAccess(d)
  }

  examine(seq: SequenceView): void {
    const n = seq.length
    for (let i = 0; i < n; i++) {
      const op = seq.opcode(i)
      const next = i + 1 < n ? seq.opcode(i + 1) : undefined
      if (op === 'encrypt' && next === 'dif_generate_copy' && seq.same(i, 'dst', i + 1, 'src') && seq.unit(i) === seq.unit(i + 1) && seq.bytes(i) === seq.bytes(i + 1)) {
        seq.claim(i++, 'encrypt+dif_generate_copy', this.#module)
      } else if (op === 'dif_verify_copy' && next === 'decrypt' && seq.same(i, 'dst', i + 1, 'src') && seq.unit(i) === seq.unit(i + 1) && seq.bytes(i) === seq.bytes(i + 1)) {
        seq.claim(i++, 'dif_verify_copy+decrypt', this.#module)
      } else if (op === 'copy' && next === 'crc32c' && seq.same(i, 'dst', i + 1, 'src') && seq.bytes(i) === seq.bytes(i + 1)) {
        seq.claim(i++, 'copy+crc32c', this.#module)
      } else if ((op === 'encrypt' || op === 'decrypt') && (this.#remote(seq.domain(i, 'src')) || this.#remote(seq.domain(i, 'dst')))) {
        seq.claim(i, 'single', this.#module)
      }
    }
  }
}
