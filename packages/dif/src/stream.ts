// Streaming: one request processed in pieces (say, as NVMe/TCP data PDUs arrive), each
// piece any number of bytes of the extended-LBA stream. Blocks, and PI tuples, may
// straddle pieces; the partial guard and any partial PI are carried between them
// (spdk_dif_generate_stream / spdk_dif_verify_stream).
import { DIF_STATE_WORDS, DifOp, DifStatus } from '@ipukit/kernels'
import { type DifCallOptions, type DifContext, type DifFailure, DIF_OK, type DifResult } from './dif.js'
import { DifError } from './errors.js'
import { checkUint, rangeError } from './internal/errors.js'
import { inspect, type IoVecs, ListCursor } from './internal/iov.js'

const cursor = new ListCursor()

export class DifStream {
  readonly context: DifContext
  readonly #op: typeof DifOp.Generate | typeof DifOp.Verify
  readonly #state = new Uint32Array(DIF_STATE_WORDS)
  readonly #refBase: number | bigint
  readonly #lba: bigint | undefined
  #failure: DifFailure | undefined
  #finished = false
  #bytes = 0

  /** @internal use DifContext.generateStream / verifyStream */
  constructor(context: DifContext, op: 'generate' | 'verify', call: DifCallOptions | undefined) {
    if (!context.interleaved) throw rangeError('streams need an interleaved (extended LBA) context')
    this.context = context
    this.#op = op === 'generate' ? DifOp.Generate : DifOp.Verify
    this.#refBase = context.refBase(call)
    this.#lba = call?.lba === undefined ? undefined : BigInt(checkUint('lba', call.lba, 64))
  }

  /** Bytes consumed so far. */
  get bytes(): number {
    return this.#bytes
  }

  /** Whole blocks processed so far. */
  get blocks(): number {
    return Math.floor(this.#bytes / this.context.blockSize)
  }

  /**
   * Consumes every byte of `iovs` as the next part of the request. Generate writes PI into
   * them as each block completes; verify answers the first failing block, after which the
   * stream is failed.
   */
  update(iovs: IoVecs): DifResult {
    if (this.#finished) throw new DifError('DIF_STREAM_FINISHED', 'this stream was finished')
    if (this.#failure) throw new DifError('DIF_STREAM_FAILED', `this stream failed at block ${this.#failure.block}`)
    const ctx = this.context
    const k = ctx.kernels
    k.live()
    const { length, inMemory } = inspect(k, 'iovs', iovs)
    if (ctx.type === 0 || length === 0) {
      this.#bytes += length
      return DIF_OK
    }
    const job = ctx.job()
    const p = ctx.params
    p.op = this.#op
    p.blocks = 0xffffffff
    p.refBase = this.#refBase
    p.remapBase = 0
    p.flags = ctx.flags()
    job.start(p)
    job.restoreState(this.#state)
    cursor.reset(iovs)
    let status: number = DifStatus.NeedInput
    if (inMemory) {
      job.bounce(k.staging, k.layout.stagingSize)
      while (status === DifStatus.NeedInput && !cursor.done) {
        job.useListArea(0, cursor.fill(job.listArea(0)))
        status = job.run()
      }
    } else {
      const back = new ListCursor()
      back.reset(iovs)
      for (let left = length; left > 0 && status === DifStatus.NeedInput; ) {
        const n = Math.min(left, k.layout.stagingSize)
        cursor.move(k, k.staging, n, 'in')
        const area = job.listArea(0)
        area[0] = k.staging
        area[1] = n
        job.useListArea(0, 1)
        status = job.run()
        if (this.#op === DifOp.Generate) back.move(k, k.staging, n, 'out')
        left -= n
      }
    }
    job.saveState(this.#state)
    if (status === DifStatus.Error) {
      const e = job.error()
      const kind = e.kind === 1 ? 'guard' : e.kind === 2 ? 'appTag' : 'refTag'
      this.#failure = {
        ok: false,
        kind,
        expected: e.expected,
        actual: e.actual,
        block: e.block,
        ...(this.#lba !== undefined && { lba: this.#lba + BigInt(e.block) }),
      }
      this.#bytes += length
      return this.#failure
    }
    this.#bytes += length
    return DIF_OK
  }

  /** Ends the stream; a request that stops inside a block is a programming error. */
  finish(): DifResult {
    if (this.#finished) throw new DifError('DIF_STREAM_FINISHED', 'this stream was finished')
    this.#finished = true
    if (this.#failure) return this.#failure
    const partial = this.#bytes % this.context.blockSize
    if (partial !== 0) {
      throw rangeError(`the request ended ${partial} bytes into block ${this.blocks}: streams must end on a block boundary`)
    }
    return DIF_OK
  }
}
