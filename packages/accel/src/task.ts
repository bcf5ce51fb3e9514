// One operation of a sequence (SPDK struct spdk_accel_task): its opcode, its buffers (each an
// iovec list with its memory domain), and the parameters of its opcode. Tasks come from a
// per-channel pool and own a descriptor slot in the shared memory for their whole life.
import type { DifContext } from '@ipukit/dif'
import { IobufEntry, IoVecList, type MemoryDomain } from '@ipukit/memory'
import type { AccelCryptoKey } from './keys.js'
import type { AccelModule } from './module.js'
import { OPCODES, type Opcode } from './opcodes.js'
import type { AccelSequence } from './sequence.js'

/** Where a crc32c, copy_crc32c or compress result is written: `holder.value`. */
export interface AccelResult {
  value: number
}

/** Filled when a DIF verify fails (SPDK struct spdk_dif_error). */
export interface AccelDifError {
  kind: 'guard' | 'appTag' | 'refTag' | undefined
  /** offset of the failing block in the operation */
  block: number
  expected: bigint
  actual: bigint
}

/** Creates an empty DIF error holder to pass to the verify appends. */
export function difErrorHolder(): AccelDifError {
  return { kind: undefined, block: 0, expected: 0n, actual: 0n }
}

/** A buffer of a task: iovecs in a domain (null: local memory, the system domain). */
export class BufferRef {
  iovs: IoVecList | null = null
  domain: MemoryDomain | null = null
  ctx: unknown = null

  set(iovs: IoVecList | null, domain: MemoryDomain | null, ctx: unknown = null): void {
    this.iovs = iovs
    this.domain = domain
    this.ctx = ctx
  }

  copyFrom(o: BufferRef): void {
    this.iovs = o.iovs
    this.domain = o.domain
    this.ctx = o.ctx
  }

  clear(): void {
    this.iovs = null
    this.domain = null
    this.ctx = null
  }

  /** SPDK accel_compare_iovs: the same domain and byte-identical iovec arrays. */
  sameAs(o: BufferRef): boolean {
    if (this.domain !== o.domain) return false
    const a = this.iovs
    const b = o.iovs
    if (a === b) return true
    if (a === null || b === null || a.count !== b.count) return false
    for (let i = 0; i < a.count; i++) if (a.addr[i] !== b.addr[i] || a.len[i] !== b.len[i]) return false
    return true
  }
}

export type StepCallback<T> = (arg: T) => void

/** Slots of the bounce buffers a task may hold. */
export const SRC = 0
export const DST = 1
export const SRC2 = 2
export const DST2 = 3

export class AccelTask {
  /** an Opc value */
  opcode = 0
  /** a FusedOpc when a platform driver fused this task with the next (`partner`), else 0 */
  fused = 0
  /** the task fused into this one (removed from the sequence's list) */
  partner: AccelTask | null = null
  seq: AccelSequence | null = null
  readonly src = new BufferRef()
  readonly dst = new BufferRef()
  readonly src2 = new BufferRef()
  readonly dst2 = new BufferRef()
  nbytes = 0
  seed = 0
  result: AccelResult | null = null
  key: AccelCryptoKey | null = null
  iv = 0
  blockSize = 0
  dif: DifContext | null = null
  difError: AccelDifError | null = null
  numBlocks = 0
  refBase: number | bigint = 0
  level = 0
  stepCb: StepCallback<unknown> | null = null
  stepArg: unknown = null
  status = 0
  module: AccelModule | null = null
  /** executed by the platform driver (remote domains reached through its DMA engine) */
  byDriver = false
  /** address of the task's descriptor in the shared memory */
  readonly desc: number
  /** bounce buffers (iobuf addresses, 0 = none) and their lengths, per slot */
  readonly bounce = new Float64Array(4)
  readonly bounceLen = new Float64Array(4)
  /** one-pair lists describing each bounce buffer (for pull and push) */
  readonly bounceList: IoVecList[] = [new IoVecList(32), new IoVecList(32), new IoVecList(32), new IoVecList(32)]
  /** async steps (pulls, pushes) outstanding */
  pending = 0
  /** the first failure among the pending steps */
  pendingStatus = 0
  /** the pulls into bounce buffers have been started */
  pullsStarted = false
  /** waits for a bounce buffer */
  readonly entry: IobufEntry<AccelTask>

  constructor(desc: number, onBuffer: (entry: IobufEntry<AccelTask>, address: number) => void) {
    this.desc = desc
    this.entry = new IobufEntry<AccelTask>(onBuffer, this as AccelTask)
  }

  get name(): Opcode {
    return OPCODES[this.opcode]!
  }

  /** Clears everything but the descriptor slot and the entry, for reuse. */
  reset(): void {
    this.opcode = 0
    this.fused = 0
    this.partner = null
    this.seq = null
    this.src.clear()
    this.dst.clear()
    this.src2.clear()
    this.dst2.clear()
    this.nbytes = 0
    this.seed = 0
    this.result = null
    this.key = null
    this.iv = 0
    this.blockSize = 0
    this.dif = null
    this.difError = null
    this.numBlocks = 0
    this.refBase = 0
    this.level = 0
    this.stepCb = null
    this.stepArg = null
    this.status = 0
    this.module = null
    this.byDriver = false
    this.bounce.fill(0)
    this.bounceLen.fill(0)
    this.pending = 0
    this.pendingStatus = 0
    this.pullsStarted = false
  }

  /** Bytes a task's output covers (for stats): the dst total, or nbytes. */
  get bytesOut(): number {
    return this.dst.iovs !== null ? this.dst.iovs.total : 0
  }
}
