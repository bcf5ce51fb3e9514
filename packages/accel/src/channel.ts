// A channel (SPDK spdk_accel_get_io_channel): one thread's pools of sequences and tasks,
// its iobuf channel and accel memory domain (virtual buffers), and its counters. Each task
// owns a descriptor slot in the shared memory for its whole life; nothing is allocated per
// operation in steady state.
import { AccelMemoryDomain, type Completion, IobufChannel, IoVecList, type MemoryDomain, SystemMemoryDomain } from '@ipukit/memory'
import type { Accel } from './accel.js'
import { DESC_SIZE, DescriptorView, LIST_CAPACITY } from './descriptor.js'
import { AccelError } from './errors.js'
import type { AccelCryptoKey } from './keys.js'
import { AccelStatus, Opc, OPCODES } from './opcodes.js'
import { AccelSequence, bounceArrived } from './sequence.js'
import type { AccelDifError, AccelResult } from './task.js'
import { AccelTask } from './task.js'
import type { DifCallOptions, DifContext } from '@ipukit/dif'

/** SPDK ACCEL_TASKS_IN_SEQUENCE_LIMIT: a new sequence needs this many free tasks (no deadlock). */
export const TASKS_IN_SEQUENCE_LIMIT = 8

export interface OpcodeStats {
  executed: number
  failed: number
  bytesIn: number
  bytesOut: number
}

export interface DomainStats {
  readonly id: string
  readonly type: string
  read: number
  written: number
}

export class ChannelStats {
  /** per module name, per opcode */
  readonly opcodes = new Map<string, OpcodeStats[]>()
  sequencesCompleted = 0
  sequencesFailed = 0
  /** operations removed by copy elision */
  elided = 0
  /** operations the platform driver fused into one */
  fused = 0
  /** bytes read and written per memory domain (null key: local memory, the system domain) */
  readonly domains = new Map<MemoryDomain | null, DomainStats>()
  retryIobuf = 0
  retryTask = 0
  retrySequence = 0

  /** @internal */
  op(module: string, opcode: number): OpcodeStats {
    let a = this.opcodes.get(module)
    if (a === undefined) {
      a = OPCODES.map(() => ({ executed: 0, failed: 0, bytesIn: 0, bytesOut: 0 }))
      this.opcodes.set(module, a)
    }
    return a[opcode]!
  }
}

export class AccelChannel {
  readonly accel: Accel
  readonly iobuf: IobufChannel
  /** the accel domain: getBuf() buffers live here, with memory only while they are used */
  readonly accelDomain: AccelMemoryDomain
  /** local memory */
  readonly system: SystemMemoryDomain
  readonly stats = new ChannelStats()
  /** @internal */ readonly view: DescriptorView
  /** @internal translations land here on their way into a descriptor */
  readonly scratchList = new IoVecList(2 * LIST_CAPACITY)
  /** @internal operations submitted to modules and not completed */
  inflight = 0
  readonly #tasks: AccelTask[] = []
  readonly #free: AccelTask[] = []
  readonly #seqs: AccelSequence[] = []
  readonly #waiting: AccelSequence[] = []
  #retryScheduled = false
  #closed = false

  /** @internal use Accel.channel() */
  readonly #descBase: number

  constructor(accel: Accel, descBase: number, taskCount: number, sequenceCount: number, buffers: number) {
    this.accel = accel
    this.#descBase = descBase
    const pm = accel.physical
    this.iobuf = new IobufChannel(pm)
    this.accelDomain = new AccelMemoryDomain(pm, this.iobuf, { buffers })
    this.system = new SystemMemoryDomain(pm)
    this.view = new DescriptorView(pm.memory)
    for (let i = 0; i < taskCount; i++) {
      const t = new AccelTask(descBase + i * DESC_SIZE, bounceArrived)
      this.#tasks.push(t)
      this.#free.push(t)
    }
    for (let i = 0; i < sequenceCount; i++) this.#seqs.push(new AccelSequence(this))
  }

  /** Free tasks and sequences (for tests and monitoring). */
  get freeTasks(): number {
    return this.#free.length
  }

  get freeSequences(): number {
    return this.#seqs.length
  }

  /**
   * A new, empty sequence; null when the pool is empty or fewer than 8 tasks are free
   * (SPDK's -ENOMEM: a sequence must be able to finish once started).
   */
  sequence(): AccelSequence | null {
    this.#live()
    if (this.#seqs.length === 0) {
      this.stats.retrySequence++
      return null
    }
    if (this.#free.length < TASKS_IN_SEQUENCE_LIMIT) {
      this.stats.retryTask++
      return null
    }
    const s = this.#seqs.pop()!
    s.open()
    return s
  }

  /** A virtual buffer in the accel domain (spdk_accel_get_buf): its address, or 0 when none is free. */
  getBuf(length: number): number {
    this.#live()
    return this.accelDomain.allocBuffer(length)
  }

  /** Gives back a getBuf() buffer and its memory (spdk_accel_put_buf). */
  putBuf(address: number): void {
    this.accelDomain.freeBuffer(address)
    this.#retry()
  }

  // ---- one-shot operations on local memory (spdk_accel_submit_*) ----

  #oneShot(): AccelSequence | null {
    return this.sequence()
  }

  #submit<T>(seq: AccelSequence, rc: number, cb: Completion<T>, arg: T): number {
    if (rc !== AccelStatus.Ok) {
      seq.abort()
      return rc
    }
    seq.finish(cb, arg)
    return AccelStatus.Ok
  }

  submitCopy<T>(dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendCopy(dst, null, src, null), cb, arg)
  }

  submitFill<T>(dst: IoVecList, pattern: number, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendFill(dst, null, pattern), cb, arg)
  }

  /** Copies src to two destinations. */
  submitDualcast<T>(dst1: IoVecList, dst2: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    if (s === null) return AccelStatus.NoMemory
    const rc = s.appendCopy(dst1, null, src, null)
    if (rc === AccelStatus.Ok) {
      const t = s.tasks.last()
      if (dst2.total !== src.total) {
        s.abort()
        throw new AccelError('ACCEL_BAD_ARGUMENT', `dualcast: dst2 holds ${dst2.total} bytes, src ${src.total}`)
      }
      t.opcode = Opc.dualcast
      t.dst2.set(dst2, null)
    }
    return this.#submit(s, rc, cb, arg)
  }

  submitCompare<T>(src1: IoVecList, src2: IoVecList, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendCompare(src1, null, src2, null), cb, arg)
  }

  submitCrc32c<T>(result: AccelResult, src: IoVecList, seed: number, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendCrc32c(result, src, null, seed), cb, arg)
  }

  /** Copies src to dst and computes the crc32c of the bytes (SPDK semantics: no final inversion). */
  submitCopyCrc32c<T>(result: AccelResult, dst: IoVecList, src: IoVecList, seed: number, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    if (s === null) return AccelStatus.NoMemory
    const rc = s.appendCopy(dst, null, src, null)
    if (rc === AccelStatus.Ok) {
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        s.abort()
        throw new AccelError('ACCEL_BAD_ARGUMENT', `seed must be a u32, got ${seed}`)
      }
      const t = s.tasks.last()
      t.opcode = Opc.copy_crc32c
      t.result = result
      t.seed = seed
    }
    return this.#submit(s, rc, cb, arg)
  }

  submitEncrypt<T>(key: AccelCryptoKey, dst: IoVecList, src: IoVecList, iv: number, blockSize: number, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendEncrypt(key, dst, null, src, null, iv, blockSize), cb, arg)
  }

  submitDecrypt<T>(key: AccelCryptoKey, dst: IoVecList, src: IoVecList, iv: number, blockSize: number, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDecrypt(key, dst, null, src, null, iv, blockSize), cb, arg)
  }

  /** dst (one contiguous buffer) = xor of the sources (one pair each in `sources`, each as long as dst). */
  submitXor<T>(dst: IoVecList, sources: IoVecList, cb: Completion<T>, arg: T): number {
    if (dst.count !== 1 || sources.count < 2 || sources.count > 64) throw new AccelError('ACCEL_BAD_ARGUMENT', 'xor takes one dst buffer and 2 to 64 sources, one pair each')
    for (let i = 0; i < sources.count; i++) {
      if (sources.len[i] !== dst.len[0]) throw new AccelError('ACCEL_BAD_ARGUMENT', `xor source ${i} holds ${sources.len[i]} bytes, dst ${dst.len[0]}`)
    }
    const s = this.#oneShot()
    if (s === null) return AccelStatus.NoMemory
    const rc = s.appendFill(dst, null, 0)
    if (rc === AccelStatus.Ok) {
      const t = s.tasks.last()
      t.opcode = Opc.xor
      t.src.set(sources, null)
      t.nbytes = dst.total
    }
    return this.#submit(s, rc, cb, arg)
  }

  /** deflate (raw, RFC 1951) src into dst; the compressed size goes to result.value. */
  submitCompress<T>(result: AccelResult, dst: IoVecList, src: IoVecList, level: number, cb: Completion<T>, arg: T): number {
    return this.#zlib(Opc.compress, result, dst, src, level, cb, arg)
  }

  /** inflate (raw) src into dst; the decompressed size goes to result.value. */
  submitDecompress<T>(result: AccelResult, dst: IoVecList, src: IoVecList, cb: Completion<T>, arg: T): number {
    return this.#zlib(Opc.decompress, result, dst, src, 0, cb, arg)
  }

  #zlib<T>(opcode: number, result: AccelResult, dst: IoVecList, src: IoVecList, level: number, cb: Completion<T>, arg: T): number {
    if (!Number.isInteger(level) || level < -1 || level > 9) throw new AccelError('ACCEL_BAD_ARGUMENT', `compress level must be -1 to 9, got ${level}`)
    if (result === null || typeof result !== 'object') throw new AccelError('ACCEL_BAD_ARGUMENT', 'result must be an object with a value field')
    const s = this.#oneShot()
    if (s === null) return AccelStatus.NoMemory
    // built as a fill, then turned into the zlib opcode: the checks of dst apply
    const rc = s.appendFill(dst, null, 0)
    if (rc === AccelStatus.Ok) {
      const t = s.tasks.last()
      t.opcode = opcode
      t.src.set(src, null)
      t.nbytes = src.total
      t.level = level < 0 ? 6 : level
      t.result = result
    }
    return this.#submit(s, rc, cb, arg)
  }

  submitDifVerify<T>(src: IoVecList, numBlocks: number, ctx: DifContext, error: AccelDifError, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDifVerify(src, null, numBlocks, ctx, error, call), cb, arg)
  }

  submitDifGenerate<T>(src: IoVecList, numBlocks: number, ctx: DifContext, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDifGenerate(src, null, numBlocks, ctx, call), cb, arg)
  }

  submitDifGenerateCopy<T>(dst: IoVecList, src: IoVecList, numBlocks: number, ctx: DifContext, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDifGenerateCopy(dst, null, src, null, numBlocks, ctx, call), cb, arg)
  }

  submitDifVerifyCopy<T>(dst: IoVecList, src: IoVecList, numBlocks: number, ctx: DifContext, error: AccelDifError, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDifVerifyCopy(dst, null, src, null, numBlocks, ctx, error, call), cb, arg)
  }

  submitDixGenerate<T>(src: IoVecList, md: IoVecList, numBlocks: number, ctx: DifContext, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDixGenerate(src, null, md, null, numBlocks, ctx, call), cb, arg)
  }

  submitDixVerify<T>(src: IoVecList, md: IoVecList, numBlocks: number, ctx: DifContext, error: AccelDifError, call: DifCallOptions | undefined, cb: Completion<T>, arg: T): number {
    const s = this.#oneShot()
    return s === null ? AccelStatus.NoMemory : this.#submit(s, s.appendDixVerify(src, null, md, null, numBlocks, ctx, error, call), cb, arg)
  }

  // ---- internals ----

  #live(): void {
    if (this.#closed) throw new AccelError('ACCEL_STATE', 'this channel was closed')
  }

  /** @internal */
  takeTask(): AccelTask | null {
    const t = this.#free.pop()
    if (t === undefined) {
      this.stats.retryTask++
      return null
    }
    return t
  }

  /** @internal */
  releaseTask(t: AccelTask): void {
    t.reset()
    this.#free.push(t)
  }

  /** @internal */
  releaseSequence(s: AccelSequence): void {
    this.#seqs.push(s)
    this.#retry()
  }

  /** @internal a sequence waits for memory (an accel buffer's backing) */
  waitForMemory(s: AccelSequence): void {
    this.stats.retryIobuf++
    this.#waiting.push(s)
    this.#retry()
  }

  #retry(): void {
    if (this.#waiting.length === 0 || this.#retryScheduled) return
    this.#retryScheduled = true
    // give other completions (and buffer returns) a turn first
    setImmediate(() => {
      this.#retryScheduled = false
      const n = this.#waiting.length
      // the ones that wait again are pushed behind the n taken here
      for (let i = 0; i < n; i++) this.#waiting[i]!.process()
      this.#waiting.copyWithin(0, n)
      this.#waiting.length -= n
      this.iobuf.poll()
    })
  }

  /** @internal charges bytes read and written to a domain (null: local memory) */
  chargeDomain(domain: MemoryDomain | null, read: number, written: number): void {
    const key = domain !== null && domain.type === 'system' ? null : domain
    let d = this.stats.domains.get(key)
    if (d === undefined) {
      d = { id: key === null ? 'system' : key.id, type: key === null ? 'system' : key.type, read: 0, written: 0 }
      this.stats.domains.set(key, d)
    }
    d.read += read
    d.written += written
  }

  /** @internal */
  countTask(t: AccelTask, status: number): void {
    const name = t.module?.name ?? 'none'
    const s = this.stats.op(name, t.opcode)
    if (status === AccelStatus.Ok) {
      s.executed++
      s.bytesIn += t.nbytes
      s.bytesOut += t.bytesOut
    } else s.failed++
    const p = t.partner
    if (p !== null) {
      const ps = this.stats.op(name, p.opcode)
      if (status === AccelStatus.Ok) {
        ps.executed++
        ps.bytesIn += p.nbytes
        ps.bytesOut += p.bytesOut
      } else ps.failed++
    }
    this.#retry()
  }

  /** @internal */
  countSequence(s: AccelSequence, status: number): void {
    if (status === AccelStatus.Ok) this.stats.sequencesCompleted++
    else this.stats.sequencesFailed++
    this.stats.elided += s.elidedCount
    this.stats.fused += s.fusedCount
  }

  /**
   * Returns the channel's cached iobuf buffers and descriptor memory; its counters are kept
   * in the framework's totals. Outstanding sequences must have finished.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.iobuf.close()
    this.accel.channelClosed(this, this.#descBase)
  }
}
