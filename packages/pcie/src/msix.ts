// MSI-X (PCI Local Bus 3.0 §6.8.2, PCIe Base 6.0 §7.7.2): a capability in config space
// that points at a table and a pending bit array (PBA) in a register BAR. A function
// signals vector v by writing the table entry's message data to its message address; the
// host's interrupt controller decodes that write and runs the handler. A masked vector
// (or a masked function) holds the event as a pending bit and sends it when unmasked.
//
//   capability (config space)            table entry (16 bytes, vector v at table + 16 v)
//   +0  id 0x11 | next                   +0   message address [31:2] (bits 1:0 are 0)
//   +2  message control:                 +4   message upper address
//         [10:0] table size - 1          +8   message data
//         [14] function mask             +12  vector control: [0] mask (1 at reset)
//         [15] MSI-X enable
//   +4  table offset [31:3] | BIR [2:0]  PBA: one bit per vector, in qwords (pending v at
//   +8  PBA offset   [31:3] | BIR [2:0]       PBA + 8 (v / 64), bit v % 64)
import { checkInt } from '@ipukit/kernels'
import { defer } from '@ipukit/memory'
import { CapId, type ConfigSpace } from './config-space.js'
import { PcieError } from './errors.js'

/** The x86 interrupt message window (the local APICs answer writes to 0xFEEx_xxxx). */
export const MSI_ADDRESS = 0xfee0_0000
const MSI_WINDOW = 0x10_0000

/** Sizes of the structures (tested): a table entry is 16 bytes, the capability 12. */
export const MSIX_ENTRY_SIZE = 16
export const MSIX_CAP_SIZE = 12

/** Message Control bits. */
export const MsixControl = { FunctionMask: 1 << 14, Enable: 1 << 15 } as const

/** What happened to a signal. */
export type MsixOutcome = 'delivered' | 'pending' | 'disabled' | 'stray'

export interface MsixSpec {
  vectors: number
  /** BAR holding the table and the PBA (a register BAR) */
  bar: number
  tableOffset: number
  pbaOffset: number
}

/**
 * The host side: decodes interrupt messages (writes to the MSI window) and hands each
 * message data value (an interrupt "vector" of the host) to its handler and its waiters.
 * Counters live in shared memory, so another thread may Atomics.wait on counts[data].
 */
export class InterruptController {
  /** deliveries per message data value (Int32, on a SharedArrayBuffer) */
  readonly counts: Int32Array
  readonly #handlers: (((data: number) => void) | undefined)[]
  readonly #waiters: ((() => void)[] | undefined)[]
  #next = 0
  #stray = 0

  constructor(capacity = 4096) {
    checkInt('capacity', capacity, 1, 1 << 16)
    this.counts = new Int32Array(new SharedArrayBuffer(4 * capacity))
    this.#handlers = new Array(capacity)
    this.#waiters = new Array(capacity)
  }

  get capacity(): number {
    return this.counts.length
  }

  /**
   * Reserves `count` consecutive message data values and returns the first; program a
   * table entry with { address: MSI_ADDRESS, data }.
   */
  allocate(count = 1): number {
    checkInt('count', count, 1, this.capacity - this.#next)
    const first = this.#next
    this.#next += count
    return first
  }

  /** Runs `handler(data)` for every delivery of `data` (after the signalling code returns). */
  onInterrupt(data: number, handler: ((data: number) => void) | undefined): void {
    checkInt('data', data, 0, this.capacity - 1)
    this.#handlers[data] = handler
  }

  /** Deliveries of `data` so far. */
  count(data: number): number {
    checkInt('data', data, 0, this.capacity - 1)
    return Atomics.load(this.counts, data)
  }

  /** Messages that hit the window with a data value nothing allocated. */
  get strayCount(): number {
    return this.#stray
  }

  /** Resolves when `data` has been delivered more than `seen` times (default: from now). */
  wait(data: number, seen = this.count(data)): Promise<number> {
    checkInt('data', data, 0, this.capacity - 1)
    const now = Atomics.load(this.counts, data)
    if (now > seen) return Promise.resolve(now)
    return new Promise((resolve) => {
      const list = (this.#waiters[data] ??= [])
      list.push(() => resolve(Atomics.load(this.counts, data)))
    })
  }

  /** Whether a message address is one this controller decodes. */
  decodes(address: number): boolean {
    return address >= MSI_ADDRESS && address < MSI_ADDRESS + MSI_WINDOW
  }

  /** @internal an interrupt message arrived (a 4-byte write of `data` to the window) */
  deliver(data: number): boolean {
    if (data >= this.#next) {
      this.#stray++
      return false
    }
    Atomics.add(this.counts, data, 1)
    Atomics.notify(this.counts, data)
    defer(runInterrupt, this, data)
    return true
  }

  /** @internal */
  run(data: number): void {
    const h = this.#handlers[data]
    if (h !== undefined) h(data)
    const w = this.#waiters[data]
    if (w !== undefined && w.length > 0) {
      this.#waiters[data] = undefined
      for (const resolve of w) resolve()
    }
  }
}

function runInterrupt(ctl: InterruptController, data: number): void {
  ctl.run(data)
}

/** A function's MSI-X table, PBA and capability. */
export class MsixTable {
  readonly vectors: number
  readonly bar: number
  readonly tableOffset: number
  readonly pbaOffset: number
  /** the capability's offset in config space */
  readonly cap: number
  readonly #config: ConfigSpace
  readonly #controller: InterruptController
  readonly #table: Uint32Array
  readonly #pba: Uint32Array
  readonly #tableEnd: number
  readonly #pbaEnd: number
  #delivered = 0

  constructor(config: ConfigSpace, spec: MsixSpec, barSize: number, controller: InterruptController) {
    checkInt('msix.vectors', spec.vectors, 1, 2048)
    checkInt('msix.tableOffset', spec.tableOffset, 0, barSize)
    checkInt('msix.pbaOffset', spec.pbaOffset, 0, barSize)
    if (spec.tableOffset % 8 !== 0 || spec.pbaOffset % 8 !== 0) throw bad('msix: the table and PBA offsets must be multiples of 8 (bits 2:0 hold the BIR)')
    this.vectors = spec.vectors
    this.bar = spec.bar
    this.tableOffset = spec.tableOffset
    this.pbaOffset = spec.pbaOffset
    this.#tableEnd = spec.tableOffset + MSIX_ENTRY_SIZE * spec.vectors
    this.#pbaEnd = spec.pbaOffset + 8 * Math.ceil(spec.vectors / 64)
    if (this.#tableEnd > barSize) throw bad(`msix: a table of ${spec.vectors} vectors at ${spec.tableOffset} runs past the ${barSize}-byte BAR ${spec.bar}`)
    if (this.#pbaEnd > barSize) throw bad(`msix: the PBA at ${spec.pbaOffset} runs past the ${barSize}-byte BAR ${spec.bar}`)
    if (spec.tableOffset < this.#pbaEnd && spec.pbaOffset < this.#tableEnd) throw bad('msix: the table and the PBA overlap')
    this.#config = config
    this.#controller = controller
    this.#table = new Uint32Array(4 * spec.vectors)
    for (let v = 0; v < spec.vectors; v++) this.#table[4 * v + 3] = 1 // masked at reset
    this.#pba = new Uint32Array(2 * Math.ceil(spec.vectors / 64))
    const at = config.addCapability(CapId.MsiX, MSIX_CAP_SIZE)
    this.cap = at
    config.set(at + 2, 2, spec.vectors - 1, MsixControl.FunctionMask | MsixControl.Enable)
    config.set(at + 4, 4, spec.tableOffset | spec.bar)
    config.set(at + 8, 4, spec.pbaOffset | spec.bar)
  }

  #control(): number {
    return this.#config.read(this.cap + 2, 2)
  }

  /** MSI-X Enable in Message Control. */
  get enabled(): boolean {
    return (this.#control() & MsixControl.Enable) !== 0
  }

  get functionMasked(): boolean {
    return (this.#control() & MsixControl.FunctionMask) !== 0
  }

  /** Signals so far that reached the controller. */
  get delivered(): number {
    return this.#delivered
  }

  masked(vector: number): boolean {
    this.#vector(vector)
    return (this.#table[4 * vector + 3]! & 1) !== 0
  }

  pending(vector: number): boolean {
    this.#vector(vector)
    return (this.#pba[vector >>> 5]! & (1 << (vector & 31))) !== 0
  }

  /** The message a vector sends: { address, data } as the table holds them. */
  entry(vector: number): { address: number; data: number; masked: boolean } {
    this.#vector(vector)
    const t = this.#table
    const i = 4 * vector
    return { address: t[i + 1]! * 2 ** 32 + t[i]!, data: t[i + 2]!, masked: (t[i + 3]! & 1) !== 0 }
  }

  #vector(vector: number): void {
    checkInt('vector', vector, 0, this.vectors - 1)
  }

  /**
   * The device signals `vector`: delivered now when MSI-X is enabled and neither the
   * function nor the vector is masked; held as a pending bit when masked; dropped when
   * MSI-X is disabled (the function would use INTx, which is not modelled). A message
   * address outside the interrupt window is counted as stray.
   */
  signal(vector: number): MsixOutcome {
    if (!(vector >= 0 && vector < this.vectors) || !Number.isInteger(vector)) this.#vector(vector)
    const ctl = this.#control()
    if ((ctl & MsixControl.Enable) === 0) return 'disabled'
    if ((ctl & MsixControl.FunctionMask) !== 0 || (this.#table[4 * vector + 3]! & 1) !== 0) {
      this.#pba[vector >>> 5]! |= 1 << (vector & 31)
      return 'pending'
    }
    return this.#send(vector)
  }

  #send(vector: number): MsixOutcome {
    const t = this.#table
    const i = 4 * vector
    const address = t[i + 1]! * 2 ** 32 + t[i]!
    if (!this.#controller.decodes(address) || !this.#controller.deliver(t[i + 2]!)) return 'stray'
    this.#delivered++
    return 'delivered'
  }

  /** Sends the pending vectors that are no longer masked (after an unmask). */
  #flush(): void {
    const ctl = this.#control()
    if ((ctl & MsixControl.Enable) === 0 || (ctl & MsixControl.FunctionMask) !== 0) return
    for (let w = 0; w < this.#pba.length; w++) {
      let bits = this.#pba[w]!
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits)
        bits &= bits - 1
        const v = 32 * w + b
        if ((this.#table[4 * v + 3]! & 1) === 0) {
          this.#pba[w]! &= ~(1 << b)
          this.#send(v)
        }
      }
    }
  }

  /** @internal the capability was written */
  configWritten(offset: number): void {
    if (offset <= this.cap + 3 && offset + 4 > this.cap + 2) this.#flush()
  }

  /** Whether an access of `size` bytes at `offset` of BAR `bar` is to the table or the PBA. */
  claims(bar: number, offset: number, size: number): boolean {
    if (bar !== this.bar) return false
    return (offset < this.#tableEnd && offset + size > this.tableOffset) || (offset < this.#pbaEnd && offset + size > this.pbaOffset)
  }

  /** A read of the table or the PBA: dword or qword reads only (§6.8.2: other sizes are undefined). */
  read(_bar: number, offset: number, size: number): number {
    this.#checkAccess(offset, size, 'read')
    if (offset >= this.tableOffset && offset < this.#tableEnd) return this.#table[(offset - this.tableOffset) >>> 2]!
    return this.#pba[(offset - this.pbaOffset) >>> 2]!
  }

  /** A write to the table (PBA writes are ignored: it is read-only). */
  write(_bar: number, offset: number, size: number, value: number): void {
    this.#checkAccess(offset, size, 'write')
    if (!(offset >= this.tableOffset && offset < this.#tableEnd)) return
    const word = (offset - this.tableOffset) >>> 2
    if ((word & 3) === 3) {
      // vector control: only the mask bit is writable
      const was = this.#table[word]! & 1
      this.#table[word] = value & 1
      if (was === 1 && (value & 1) === 0) this.#flush()
    } else if ((word & 3) === 0) this.#table[word] = value & 0xfffffffc
    else this.#table[word] = value >>> 0
  }

  #checkAccess(offset: number, size: number, what: string): void {
    if (size !== 4 && size !== 8) throw new PcieError('PCIE_BAD_ACCESS', `MSI-X ${what} of ${size} bytes at BAR ${this.bar} offset ${offset}: the table and PBA take 4- or 8-byte accesses`)
    const inTable = offset >= this.tableOffset && offset + size <= this.#tableEnd
    const inPba = offset >= this.pbaOffset && offset + size <= this.#pbaEnd
    if (!inTable && !inPba) throw new PcieError('PCIE_BAD_ACCESS', `MSI-X ${what} at BAR ${this.bar} offset ${offset} straddles the table or PBA boundary`)
  }
}

function bad(message: string): PcieError {
  return new PcieError('PCIE_BAD_TOPOLOGY', message)
}
