// Sequences (SPDK struct spdk_accel_sequence): operations appended one by one, each with its
// buffers in their memory domains, then finished: copy elision, the platform driver's
// claims, then one operation at a time, in order (accel_process_sequence):
//
//   for each operation:
//     buffers   accel-domain buffers get memory (iobuf) now; a buffer in a domain the
//               executing module cannot reach gets a bounce buffer, and a source is
//               pulled into it; local memory and reachable domains are used as they are
//     execute   the module (or the driver's fused operation) runs it
//     complete  bounced destinations are pushed back, bounce buffers released, the
//               operation's step callback fires; on failure the remaining step callbacks
//               fire too, then the sequence's callback with the status
//
// Every callback runs after the call that caused it has returned (the completion
// convention of @ipukit/memory), step callbacks before the sequence's, in order.
import { type DifContext, type DifCallOptions } from '@ipukit/dif'
import { Access, type Completion, defer, IOBUF_RETRY, type IobufEntry, type IoVecList, type MemoryDomain, Status } from '@ipukit/memory'
import { DifJobFlag, DifOp } from '@ipukit/kernels'
import type { AccelChannel } from './channel.js'
import { D, LIST_CAPACITY, SMALL_LIST_CAPACITY } from './descriptor.js'
import { AccelError } from './errors.js'
import type { AccelCryptoKey } from './keys.js'
import type { AccelDriver, DriverOperation, SequenceView } from './module.js'
import { AccelStatus, FusedOpc, Opc, OPCODES, type Opcode } from './opcodes.js'
import { TaskList } from './internal/task-list.js'
import { elideCopies } from './optimizer.js'
import { type AccelDifError, type AccelResult, AccelTask, type BufferRef, DST, DST2, SRC, SRC2, type StepCallback } from './task.js'

const R = 1
const W = 2
/** Per opcode: how each slot (src, dst, src2, dst2) is used: read, written, both. */
const SLOTS: readonly (readonly [number, number, number, number])[] = [
  [R, W, 0, 0], // copy
  [0, W, 0, 0], // fill
  [R, W, 0, W], // dualcast
  [R, 0, R, 0], // compare
  [R, 0, 0, 0], // crc32c
  [R, W, 0, 0], // copy_crc32c
  [R, W, 0, 0], // compress
  [R, W, 0, 0], // decompress
  [R, W, 0, 0], // encrypt
  [R, W, 0, 0], // decrypt
  [R, W, 0, 0], // xor (sources in src, one pair each)
  [R, 0, 0, 0], // dif_verify (in place)
  [R, W, 0, 0], // dif_verify_copy
  [R | W, 0, 0, 0], // dif_generate (in place)
  [R, W, 0, 0], // dif_generate_copy
  [R, R | W, 0, 0], // dix_generate (metadata in dst)
  [R, R, 0, 0], // dix_verify (metadata in dst)
]
const FUSED_SLOTS = [R, W, 0, 0] as const

const DIF_OP: Partial<Record<number, number>> = {
  [Opc.dif_verify]: DifOp.Verify,
  [Opc.dif_generate]: DifOp.Generate,
  [Opc.dif_generate_copy]: DifOp.GenerateCopy,
  [Opc.dif_verify_copy]: DifOp.VerifyCopy,
  [Opc.dix_generate]: DifOp.DixGenerate,
  [Opc.dix_verify]: DifOp.DixVerify,
}
const KINDS = ['guard', 'appTag', 'refTag'] as const

/** Why and where a sequence failed (valid inside its callback). */
export interface AccelFailure {
  /** index of the failing operation among those that ran (after elision) */
  readonly step: number
  readonly opcode: Opcode
  readonly status: number
}

type State = 'building' | 'running' | 'done'

export class AccelSequence implements SequenceView {
  readonly channel: AccelChannel
  /** the operations, in execution order */
  readonly tasks = new TaskList()
  readonly #elided = new TaskList()
  #state: State = 'done'
  #cursor = 0
  #cb: Completion<unknown> | null = null
  #arg: unknown = null
  #failure: { step: number; opcode: Opcode; status: number } = { step: -1, opcode: 'copy', status: 0 }
  #failed = false
  #fusedCount = 0
  #elidedCount = 0
  /** operations claimed by the driver: claim per index (0 none) */
  #claims: number[] = []
  #claimModule: string[] = []

  /** @internal */
  constructor(channel: AccelChannel) {
    this.channel = channel
  }

  /** @internal a pooled sequence starts */
  open(): void {
    this.#state = 'building'
    this.tasks.clear()
    this.#elided.clear()
    this.#cursor = 0
    this.#cb = null
    this.#arg = null
    this.#failed = false
    this.#fusedCount = 0
    this.#elidedCount = 0
  }

  /** Operations elided by the optimizer, and fused by the driver (after finish). */
  get elidedCount(): number {
    return this.#elidedCount
  }

  get fusedCount(): number {
    return this.#fusedCount
  }

  /** The failure being reported, inside the sequence's callback (undefined on success). */
  get failure(): AccelFailure | undefined {
    return this.#failed ? this.#failure : undefined
  }

  // ---- appends (spdk_accel_append_*) ----

  #building(): void {
    if (this.#state !== 'building') throw new AccelError('ACCEL_SEQUENCE_STATE', `cannot append to a sequence that is ${this.#state === 'running' ? 'running' : 'finished'}`)
  }

  #task(opcode: number, cb: StepCallback<never> | undefined, arg: unknown): AccelTask | null {
    this.#building()
    const t = this.channel.takeTask()
    if (t === null) return null
    t.opcode = opcode
    t.seq = this
    t.stepCb = (cb as StepCallback<unknown> | undefined) ?? null
    t.stepArg = arg
    this.tasks.push(t)
    return t
  }

  #lengths(what: string, a: IoVecList, b: IoVecList): void {
    if (a.total !== b.total) throw new AccelError('ACCEL_BAD_ARGUMENT', `${what}: dst holds ${a.total} bytes, src ${b.total}`)
  }

  /** copy src to dst. In a sequence a copy may be elided: it only decides where others read and write. */
  appendCopy<T>(dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, cb?: StepCallback<T>, arg?: T): number {
    checkList('dst', dst)
    checkList('src', src)
    this.#lengths('copy', dst, src)
    const t = this.#task(Opc.copy, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.dst.set(dst, dstDomain)
    t.src.set(src, srcDomain)
    t.nbytes = src.total
    return AccelStatus.Ok
  }

  /** fill dst with a byte. */
  appendFill<T>(dst: IoVecList, dstDomain: MemoryDomain | null, pattern: number, cb?: StepCallback<T>, arg?: T): number {
    checkList('dst', dst)
    if (!Number.isInteger(pattern) || pattern < 0 || pattern > 255) throw new AccelError('ACCEL_BAD_ARGUMENT', `fill pattern must be a byte, got ${pattern}`)
    const t = this.#task(Opc.fill, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.dst.set(dst, dstDomain)
    t.seed = pattern
    t.nbytes = dst.total
    return AccelStatus.Ok
  }

  /** compare src1 with src2; a difference fails the sequence with AccelStatus.Miscompare. */
  appendCompare<T>(src1: IoVecList, src1Domain: MemoryDomain | null, src2: IoVecList, src2Domain: MemoryDomain | null, cb?: StepCallback<T>, arg?: T): number {
    checkList('src1', src1)
    checkList('src2', src2)
    // SPDK: src2 must be local memory (src2_domain NULL), else -EINVAL
    if (src2Domain !== null && src2Domain.type !== 'system') throw new AccelError('ACCEL_BAD_ARGUMENT', 'compare: src2 must be local memory (SPDK refuses a src2 domain)')
    this.#lengths('compare', src1, src2)
    const t = this.#task(Opc.compare, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.src.set(src1, src1Domain)
    t.src2.set(src2, src2Domain)
    t.nbytes = src1.total
    return AccelStatus.Ok
  }

  /**
   * decompress (raw deflate, RFC 1951) src into dst; the decompressed size goes to
   * `result.value` when a holder is given. Output that does not fit dst fails the sequence
   * with AccelStatus.NoSpace, corrupt input with AccelStatus.Invalid.
   */
  appendDecompress<T>(dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, result?: AccelResult | null, cb?: StepCallback<T>, arg?: T): number {
    checkList('dst', dst)
    checkList('src', src)
    if (result !== undefined && result !== null) checkResult(result)
    const t = this.#task(Opc.decompress, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.dst.set(dst, dstDomain)
    t.src.set(src, srcDomain)
    t.result = result ?? null
    t.nbytes = src.total
    return AccelStatus.Ok
  }

  /** crc32c of src (SPDK semantics: the register after the data from ~seed, no final inversion) into result.value. */
  appendCrc32c<T>(result: AccelResult, src: IoVecList, srcDomain: MemoryDomain | null, seed: number, cb?: StepCallback<T>, arg?: T): number {
    checkList('src', src)
    checkResult(result)
    checkSeed(seed)
    const t = this.#task(Opc.crc32c, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.src.set(src, srcDomain)
    t.result = result
    t.seed = seed
    t.nbytes = src.total
    return AccelStatus.Ok
  }

  /** encrypt with AES-XTS: data unit i of src uses tweak iv + i (SIMPLE_LBA). */
  appendEncrypt<T>(key: AccelCryptoKey, dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, iv: number, blockSize: number, cb?: StepCallback<T>, arg?: T): number {
    return this.#crypto(Opc.encrypt, key, dst, dstDomain, src, srcDomain, iv, blockSize, cb, arg)
  }

  appendDecrypt<T>(key: AccelCryptoKey, dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, iv: number, blockSize: number, cb?: StepCallback<T>, arg?: T): number {
    return this.#crypto(Opc.decrypt, key, dst, dstDomain, src, srcDomain, iv, blockSize, cb, arg)
  }

  #crypto<T>(op: number, key: AccelCryptoKey, dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, iv: number, blockSize: number, cb?: StepCallback<T>, arg?: T): number {
    checkList('dst', dst)
    checkList('src', src)
    if (key === null || typeof key !== 'object' || key.destroyed) throw new AccelError('ACCEL_NO_KEY', 'key must be a live key from the registry')
    if (!Number.isSafeInteger(iv) || iv < 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `iv must be a non-negative safe integer (the LBA), got ${iv}`)
    if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize > 1 << 24) throw new AccelError('ACCEL_BAD_ARGUMENT', `block size must be in [16, 2^24], got ${blockSize}`)
    this.#lengths(OPCODES[op]!, dst, src)
    // SPDK: nbytes must be a multiple of block_size
    if (src.total % blockSize !== 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `${src.total} bytes is not a multiple of the block size ${blockSize}`)
    const t = this.#task(op, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.dst.set(dst, dstDomain)
    t.src.set(src, srcDomain)
    t.key = key
    t.iv = iv
    t.blockSize = blockSize
    t.nbytes = src.total
    return AccelStatus.Ok
  }

  /** Verifies PI in place (interleaved metadata); a failure fills `error` and fails with AccelStatus.Io. */
  appendDifVerify<T>(src: IoVecList, srcDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, error: AccelDifError, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dif_verify, null, null, src, srcDomain, numBlocks, ctx, error, call, cb, arg)
  }

  /** Generates PI in place. */
  appendDifGenerate<T>(src: IoVecList, srcDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dif_generate, null, null, src, srcDomain, numBlocks, ctx, null, call, cb, arg)
  }

  /** Copies data-only src into extended dst, generating PI. */
  appendDifGenerateCopy<T>(dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dif_generate_copy, dst, dstDomain, src, srcDomain, numBlocks, ctx, null, call, cb, arg)
  }

  /** Copies extended src into data-only dst, verifying PI. */
  appendDifVerifyCopy<T>(dst: IoVecList, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, error: AccelDifError, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dif_verify_copy, dst, dstDomain, src, srcDomain, numBlocks, ctx, error, call, cb, arg)
  }

  /** DIX generate: PI into the separate metadata buffer `md`. */
  appendDixGenerate<T>(src: IoVecList, srcDomain: MemoryDomain | null, md: IoVecList, mdDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dix_generate, md, mdDomain, src, srcDomain, numBlocks, ctx, null, call, cb, arg)
  }

  /** DIX verify against the separate metadata buffer `md`. */
  appendDixVerify<T>(src: IoVecList, srcDomain: MemoryDomain | null, md: IoVecList, mdDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, error: AccelDifError, call?: DifCallOptions, cb?: StepCallback<T>, arg?: T): number {
    return this.#dif(Opc.dix_verify, md, mdDomain, src, srcDomain, numBlocks, ctx, error, call, cb, arg)
  }

  #dif<T>(op: number, dst: IoVecList | null, dstDomain: MemoryDomain | null, src: IoVecList, srcDomain: MemoryDomain | null, numBlocks: number, ctx: DifContext, error: AccelDifError | null, call: DifCallOptions | undefined, cb?: StepCallback<T>, arg?: T): number {
    checkList('src', src)
    if (dst !== null) checkList(op === Opc.dix_generate || op === Opc.dix_verify ? 'md' : 'dst', dst)
    if (ctx === null || typeof ctx !== 'object' || typeof ctx.flags !== 'function') throw new AccelError('ACCEL_BAD_ARGUMENT', 'ctx must be a DifContext')
    if (!Number.isInteger(numBlocks) || numBlocks < 0 || numBlocks > 0xffffffff) throw new AccelError('ACCEL_BAD_ARGUMENT', `numBlocks must be a u32, got ${numBlocks}`)
    if (error !== null && (typeof error !== 'object' || !('block' in error))) throw new AccelError('ACCEL_BAD_ARGUMENT', 'error must be a DIF error holder (difErrorHolder())')
    const dixOp = op === Opc.dix_generate || op === Opc.dix_verify
    if (dixOp === ctx.interleaved) throw new AccelError('ACCEL_BAD_ARGUMENT', `${OPCODES[op]} needs a context with ${dixOp ? 'separate (DIX)' : 'interleaved (DIF)'} metadata`)
    const ext = ctx.dataBlockSize + (dixOp ? 0 : ctx.mdSize)
    if (op === Opc.dif_generate_copy) {
      need(op, src, numBlocks, ctx.dataBlockSize, 'src')
      need(op, dst!, numBlocks, ext, 'dst')
    } else if (op === Opc.dif_verify_copy) {
      need(op, src, numBlocks, ext, 'src')
      need(op, dst!, numBlocks, ctx.dataBlockSize, 'dst')
    } else if (dixOp) {
      need(op, src, numBlocks, ctx.dataBlockSize, 'src')
      need(op, dst!, numBlocks, ctx.mdSize, 'md')
    } else need(op, src, numBlocks, ext, 'src')
    const refBase = ctx.refBase(call)
    const t = this.#task(op, cb, arg)
    if (t === null) return AccelStatus.NoMemory
    t.src.set(src, srcDomain)
    if (dst !== null) t.dst.set(dst, dstDomain)
    t.dif = ctx
    t.difError = error
    t.numBlocks = numBlocks
    t.refBase = refBase
    t.nbytes = numBlocks * ctx.dataBlockSize
    return AccelStatus.Ok
  }

  /** Reverses the order of the operations (a read runs its stack bottom-up). */
  reverse(): void {
    this.#building()
    this.tasks.reverse()
  }

  /** Drops the sequence before finish(): every step callback fires; the sequence's callback never does. */
  abort(): void {
    this.#building()
    this.#state = 'done'
    for (let i = 0; i < this.tasks.length; i++) defer(runStep, this.tasks.at(i), 0)
    // released once the callbacks have run (they read the tasks)
    defer(releaseAborted, this, 0)
  }

  /** @internal */
  releaseAll(): void {
    for (let i = 0; i < this.tasks.length; i++) {
      const t = this.tasks.at(i)
      if (t.partner !== null) this.channel.releaseTask(t.partner)
      this.channel.releaseTask(t)
    }
    for (let i = 0; i < this.#elided.length; i++) this.channel.releaseTask(this.#elided.at(i))
    this.tasks.clear()
    this.#elided.clear()
    this.#failed = false
    this.channel.releaseSequence(this)
  }

  /**
   * Elides copies, lets the platform driver claim operations, and runs the rest in order.
   * `cb(arg, status)` runs after every step callback; the sequence is released after it.
   */
  finish<T>(cb: Completion<T>, arg: T): void {
    this.#building()
    if (typeof cb !== 'function') throw new AccelError('ACCEL_BAD_ARGUMENT', 'cb must be a function')
    this.#state = 'running'
    this.#cb = cb as Completion<unknown>
    this.#arg = arg
    this.#elidedCount = elideCopies(this.tasks, this.#elided)
    // the elided copies are done: their step callbacks come first
    for (let i = 0; i < this.#elided.length; i++) defer(runStep, this.#elided.at(i), 0)
    const driver = this.channel.accel.driver
    // grown, never shrunk: claims per operation index
    while (this.#claims.length < this.tasks.length) {
      this.#claims.push(0)
      this.#claimModule.push('')
    }
    this.#claims.fill(0, 0, this.tasks.length)
    if (driver !== null && this.tasks.length > 0) {
      this.#driver = driver
      driver.examine(this)
      this.#applyClaims()
    }
    // the first operation starts after finish() has returned
    defer(resume, this, 0)
  }

  #driver: AccelDriver | null = null

  // ---- SequenceView, for the platform driver ----

  get length(): number {
    return this.tasks.length
  }

  opcode(i: number): Opcode {
    return OPCODES[this.tasks.at(i).opcode]!
  }

  domain(i: number, which: 'src' | 'dst'): MemoryDomain | null {
    return this.tasks.at(i)[which].domain
  }

  same(i: number, a: 'src' | 'dst', j: number, b: 'src' | 'dst'): boolean {
    return this.tasks.at(i)[a].sameAs(this.tasks.at(j)[b])
  }

  unit(i: number): number {
    const t = this.tasks.at(i)
    return t.dif !== null ? t.dif.dataBlockSize : t.blockSize
  }

  bytes(i: number): number {
    return this.tasks.at(i).nbytes
  }

  claim(i: number, op: DriverOperation, module: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.tasks.length || this.#claims[i] !== 0) throw new AccelError('ACCEL_BAD_ARGUMENT', `cannot claim operation ${i}`)
    const pair = op !== 'single'
    if (pair && (i + 1 >= this.tasks.length || this.#claims[i + 1] !== 0)) throw new AccelError('ACCEL_BAD_ARGUMENT', `cannot claim operations ${i} and ${i + 1}`)
    const m = this.channel.accel.module(module)
    if (m === undefined || !m.usesDescriptors) throw new AccelError('ACCEL_BAD_MODULE', `a driver's operations run on a descriptor module, not '${module}'`)
    const code = op === 'single' ? 1 : op === 'encrypt+dif_generate_copy' ? 2 : op === 'dif_verify_copy+decrypt' ? 3 : 4
    this.#claims[i] = code
    this.#claimModule[i] = module
    if (pair) this.#claims[i + 1] = -1
  }

  /** Folds claimed pairs into their first task. */
  #applyClaims(): void {
    let w = 0
    const tasks = this.tasks
    for (let i = 0; i < tasks.length; i++) {
      const claim = this.#claims[i]!
      const t = tasks.at(i)
      if (claim === -1) continue
      if (claim > 0) {
        t.byDriver = true
        t.module = this.channel.accel.module(this.#claimModule[i]!)!
        if (claim >= 2) {
          const n = tasks.at(i + 1)
          t.partner = n
          t.fused = claim === 2 ? FusedOpc.encryptDifGenerateCopy : claim === 3 ? FusedOpc.difVerifyCopyDecrypt : Opc.copy_crc32c
          this.#fusedCount++
        }
      }
      tasks.set(w++, t)
    }
    tasks.truncate(w)
  }

  // ---- execution ----

  /** @internal runs operations until one has to wait */
  process(): void {
    while (this.#state === 'running') {
      if (this.#cursor >= this.tasks.length) return this.#complete(AccelStatus.Ok)
      const t = this.tasks.at(this.#cursor)
      if (t.module === null) t.module = this.channel.accel.moduleFor(t.opcode)
      const rc = this.#prepare(t)
      if (rc === WAIT) return
      if (rc !== AccelStatus.Ok) return this.#taskFailed(t, rc)
      if (t.pending > 0) return // pulls in flight: pulled() resumes
      return this.#execute(t)
    }
  }

  #slots(t: AccelTask): readonly number[] {
    return t.fused !== 0 ? FUSED_SLOTS : SLOTS[t.opcode]!
  }

  /** The buffer a slot of a (possibly fused) task refers to. */
  #ref(t: AccelTask, slot: number): BufferRef {
    // a fused pair writes where its second operation writes (copy + crc32c: the copy's dst)
    if (t.fused !== 0 && t.fused !== Opc.copy_crc32c && slot === DST) return t.partner!.dst
    return slot === SRC ? t.src : slot === DST ? t.dst : slot === SRC2 ? t.src2 : t.dst2
  }

  /**
   * Resolves every buffer of the task into the descriptor's lists (or leaves it to a module
   * that reaches its domain), taking bounce buffers and starting pulls. Returns Ok, WAIT
   * (a buffer is not available yet: resumed later) or a failure status.
   */
  #prepare(t: AccelTask): number {
    const ch = this.channel
    const m = t.module!
    const slots = this.#slots(t)
    for (let s = 0; s < 4; s++) {
      const use = slots[s]!
      if (use === 0) continue
      const ref = this.#ref(t, s)
      if (ref.iovs === null) continue
      const dom = ref.domain
      if (dom !== null && dom.type !== 'system' && dom.type !== 'accel') {
        const direct = t.byDriver ? this.#driver!.canAccess(dom) : m.canAccess(dom) && !m.usesDescriptors
        if (direct && !t.byDriver) continue // the module takes the domain as it is
        if (!direct) {
          // a bounce buffer in local memory stands in for it
          if (t.bounceLen[s] === 0) {
            const rc = this.#bounce(t, s, ref.iovs.total)
            if (rc !== AccelStatus.Ok) return rc
          }
          if (t.bounce[s] === 0) return WAIT
        }
      }
      const rc = this.#toList(t, s, ref, use)
      if (rc !== AccelStatus.Ok) return rc === Status.NoMemory ? this.#waitForMemory() : rc
    }
    // every bounce is in place: pull the sources (once)
    if (!t.pullsStarted) {
      t.pullsStarted = true
      for (let s = 0; s < 4; s++) {
        if (t.bounce[s] === 0 || (slots[s]! & R) === 0) continue
        const ref = this.#ref(t, s)
        t.pending++
        const rc = ref.domain!.pull(ref.iovs!, t.bounceList[s]!, pulled, t)
        if (rc !== Status.Ok) {
          t.pending--
          return rc
        }
        ch.chargeDomain(ref.domain, ref.iovs!.total, 0)
        ch.chargeDomain(null, 0, ref.iovs!.total) // written into the bounce buffer
      }
    }
    return AccelStatus.Ok
  }

  #waitForMemory(): number {
    this.channel.waitForMemory(this)
    return WAIT
  }

  /** Takes the iobuf buffers of a bounce for `n` bytes of slot `s` (one pair each). */
  #bounce(t: AccelTask, s: number, n: number): number {
    const ch = this.channel
    const size = ch.iobuf.largeSize
    const list = t.bounceList[s]!
    if (n > size * list.capacity) return AccelStatus.Invalid
    if (n > size) {
      // several large buffers: the bounce list has one pair per buffer
      if (list.capacity < Math.ceil(n / size)) return AccelStatus.Invalid
    }
    t.bounceLen[s] = n
    list.clear()
    return this.#moreBounce(t, s)
  }

  #moreBounce(t: AccelTask, s: number): number {
    const ch = this.channel
    const list = t.bounceList[s]!
    const size = ch.iobuf.largeSize
    let have = list.total
    const n = t.bounceLen[s]!
    while (have < n) {
      const want = Math.min(size, n - have)
      const a = ch.iobuf.get(want, t.entry)
      if (a === IOBUF_RETRY) {
        ch.stats.retryIobuf++
        return AccelStatus.Ok // bounce[s] stays 0: bufferArrived() continues
      }
      list.push(a, want)
      have += want
    }
    t.bounce[s] = list.addr[0]!
    return AccelStatus.Ok
  }

  /** @internal an iobuf buffer arrived for a waiting bounce */
  bufferArrived(t: AccelTask, address: number): void {
    for (let s = 0; s < 4; s++) {
      if (t.bounceLen[s] !== 0 && t.bounce[s] === 0) {
        const list = t.bounceList[s]!
        list.push(address, Math.min(this.channel.iobuf.largeSize, t.bounceLen[s]! - list.total))
        this.#moreBounce(t, s)
        if (t.bounce[s] === 0) return // still waiting
        break
      }
    }
    this.process()
  }

  /** Writes a slot's local iovecs into the descriptor list. */
  #toList(t: AccelTask, s: number, ref: BufferRef, use: number): number {
    const ch = this.channel
    const out = ch.scratchList.clear()
    let rc: number
    if (t.bounce[s] !== 0) out.copyFrom(t.bounceList[s]!)
    else {
      const dom = ref.domain
      const access = use & W ? Access.Write : Access.Read
      if (dom === null) rc = ch.system.translate(ref.iovs!, out, access)
      else if (t.byDriver && dom.type !== 'system' && dom.type !== 'accel') rc = this.#driver!.translate(dom, ref.iovs!, out, access)
      else rc = dom.translate(ref.iovs!, out, access)
      if (rc !== Status.Ok) return rc
    }
    const cap = s === SRC || s === DST ? LIST_CAPACITY : SMALL_LIST_CAPACITY
    if (out.count > cap) return AccelStatus.Invalid
    const v = ch.view
    const pairs = t.desc + (s === SRC ? D.srcPairs : s === DST ? D.dstPairs : s === SRC2 ? D.src2Pairs : D.dst2Pairs)
    const u = v.u32
    const at = pairs >>> 2
    for (let i = 0; i < out.count; i++) {
      u[at + 2 * i] = out.addr[i]!
      u[at + 2 * i + 1] = out.len[i]!
    }
    const f = s === SRC ? D.srcList : s === DST ? D.dstList : s === SRC2 ? D.src2List : D.dst2List
    v.set(t.desc, f, pairs)
    v.set(t.desc, f + 4, out.count)
    return AccelStatus.Ok
  }

  /** @internal a pull finished */
  pulled(t: AccelTask, status: number): void {
    t.pending--
    if (status !== Status.Ok && t.pendingStatus === 0) t.pendingStatus = status
    if (t.pending > 0) return
    if (t.pendingStatus !== 0) return this.#taskFailed(t, t.pendingStatus)
    this.#execute(t)
  }

  #execute(t: AccelTask): void {
    const ch = this.channel
    const m = t.module!
    if (m.usesDescriptors || t.byDriver) this.#describe(t)
    // charge what the operation itself reads and writes, per domain
    const slots = this.#slots(t)
    for (let s = 0; s < 4; s++) {
      const use = slots[s]!
      if (use === 0) continue
      const ref = this.#ref(t, s)
      if (ref.iovs === null) continue
      const n = ref.iovs.total
      const dom = t.bounce[s] !== 0 ? null : ref.domain
      ch.chargeDomain(dom, use & R ? n : 0, use & W ? n : 0)
    }
    ch.inflight++
    m.submit(t, taskDone)
  }

  /** Writes the descriptor's operation fields (the lists are written already). */
  #describe(t: AccelTask): void {
    const v = this.channel.view
    const d = t.desc
    const op = t.fused !== 0 ? t.fused : t.opcode
    v.set(d, D.op, op)
    v.setI(d, D.status, 1)
    v.set(d, D.nbytes, t.nbytes)
    v.set(d, D.seed, t.fused === Opc.copy_crc32c ? t.partner!.seed : t.seed)
    v.set(d, D.level, t.level)
    if (t.key !== null) {
      v.set(d, D.keyCtx, t.key.xts.contextAddress)
      v.set(d, D.blockSize, t.blockSize)
      v.set64(d, D.iv, t.iv)
    }
    // the DIF side: the task's own, or the partner's in a fused pair
    const difTask = t.dif !== null ? t : t.partner !== null && t.partner.dif !== null ? t.partner : null
    if (difTask !== null) {
      const ctx = difTask.dif!
      const p = ctx.params
      const gen = difTask.opcode === Opc.dif_generate || difTask.opcode === Opc.dif_generate_copy || difTask.opcode === Opc.dix_generate
      const rb = difTask.refBase
      let flags = ctx.flags(gen && (rb === 0xffffffff || rb === 0xffffffffn) ? DifJobFlag.RefAllOnes : 0)
      if (ctx.type === 0) flags = 0
      v.set(d, D.difOp, DIF_OP[difTask.opcode] ?? 0)
      v.set(d, D.difDbs, p.dataBlockSize)
      v.set(d, D.difMds, p.mdSize)
      v.set(d, D.difPiOffset, p.piOffset)
      v.set(d, D.difPiSize, p.piSize)
      v.set(d, D.difFormat, p.format)
      v.set(d, D.difType, p.type)
      v.set(d, D.difFlags, flags)
      v.set(d, D.difAppTag, p.appTag)
      v.set(d, D.difAppMask, p.appTagMask)
      v.set64(d, D.refBase, rb)
      v.set64(d, D.guardSeed, p.guardSeed)
      v.set(d, D.numBlocks, difTask.numBlocks)
      v.set(d, D.errKind, 0)
    }
    // the crypto side of a fused pair
    if (t.fused === FusedOpc.difVerifyCopyDecrypt) {
      const n = t.partner!
      v.set(d, D.keyCtx, n.key!.xts.contextAddress)
      v.set(d, D.blockSize, n.blockSize)
      v.set64(d, D.iv, n.iv)
    }
  }

  /** @internal the module finished the task */
  taskDone(t: AccelTask, status: number): void {
    const ch = this.channel
    ch.inflight--
    // results the descriptor carries back
    if (status === AccelStatus.Ok) {
      const v = ch.view
      if (t.opcode === Opc.crc32c && t.result !== null) t.result.value = v.get(t.desc, D.result)
      else if (t.fused === Opc.copy_crc32c && t.partner!.result !== null) t.partner!.result!.value = v.get(t.desc, D.result)
      else if ((t.opcode === Opc.compress || t.opcode === Opc.decompress || t.opcode === Opc.copy_crc32c) && t.result !== null) t.result.value = v.get(t.desc, D.result)
    } else if (status === AccelStatus.Io) {
      const holder = t.difError ?? t.partner?.difError ?? null
      if (holder !== null) {
        const v = ch.view
        holder.kind = KINDS[v.get(t.desc, D.errKind) - 1]
        holder.block = v.get(t.desc, D.errBlock)
        holder.expected = v.get64n(t.desc, D.errExpected)
        holder.actual = v.get64n(t.desc, D.errActual)
      }
    }
    if (status !== AccelStatus.Ok) return this.#taskFailed(t, status)
    // push bounced destinations back
    const slots = this.#slots(t)
    t.pending = 0
    t.pendingStatus = 0
    for (let s = 0; s < 4; s++) {
      if (t.bounce[s] === 0 || (slots[s]! & W) === 0) continue
      const ref = this.#ref(t, s)
      t.pending++
      const rc = ref.domain!.push(ref.iovs!, t.bounceList[s]!, pushed, t)
      if (rc !== Status.Ok) {
        t.pending--
        return this.#taskFailed(t, rc)
      }
      ch.chargeDomain(null, ref.iovs!.total, 0) // read from the bounce buffer
      ch.chargeDomain(ref.domain, 0, ref.iovs!.total)
    }
    if (t.pending === 0) this.#taskCompleted(t, AccelStatus.Ok)
  }

  /** @internal a push finished */
  pushed(t: AccelTask, status: number): void {
    t.pending--
    if (status !== Status.Ok && t.pendingStatus === 0) t.pendingStatus = status
    if (t.pending > 0) return
    if (t.pendingStatus !== 0) return this.#taskFailed(t, t.pendingStatus)
    this.#taskCompleted(t, AccelStatus.Ok)
  }

  #taskCompleted(t: AccelTask, status: number): void {
    this.channel.countTask(t, status)
    this.#releaseBounces(t)
    this.#step(t)
    this.#cursor++
    this.process()
  }

  #step(t: AccelTask): void {
    defer(runStep, t, 0)
    if (t.partner !== null) defer(runStep, t.partner, 0)
  }

  #releaseBounces(t: AccelTask): void {
    const ch = this.channel
    for (let s = 0; s < 4; s++) {
      if (t.bounceLen[s] === 0) continue
      const list = t.bounceList[s]!
      for (let i = 0; i < list.count; i++) ch.iobuf.put(list.addr[i]!)
      list.clear()
      t.bounce[s] = 0
      t.bounceLen[s] = 0
    }
    if (t.entry.waiting) ch.iobuf.abort(t.entry)
  }

  #taskFailed(t: AccelTask, status: number): void {
    this.channel.countTask(t, status)
    this.#releaseBounces(t)
    this.#failed = true
    this.#failure.step = this.#cursor
    this.#failure.opcode = OPCODES[t.opcode]!
    this.#failure.status = status
    // the failing step's callback, then every remaining one, then the sequence's
    for (let i = this.#cursor; i < this.tasks.length; i++) this.#step(this.tasks.at(i))
    this.#complete(status)
  }

  #complete(status: number): void {
    this.#state = 'done'
    this.channel.countSequence(this, status)
    defer(finished, this, status)
  }

  /** @internal the sequence's callback, then its release */
  finished(status: number): void {
    const cb = this.#cb!
    const arg = this.#arg
    try {
      cb(arg, status)
    } finally {
      this.releaseAll()
    }
  }
}

const WAIT = 1

function resume(seq: AccelSequence): void {
  seq.process()
}

function finished(seq: AccelSequence, status: number): void {
  seq.finished(status)
}

function runStep(t: AccelTask): void {
  const cb = t.stepCb
  if (cb !== null) cb(t.stepArg)
}

function releaseAborted(seq: AccelSequence): void {
  seq.releaseAll()
}

function pulled(t: AccelTask, status: number): void {
  t.seq!.pulled(t, status)
}

function pushed(t: AccelTask, status: number): void {
  t.seq!.pushed(t, status)
}

function taskDone(t: AccelTask, status: number): void {
  t.seq!.taskDone(t, status)
}

/** @internal an iobuf entry's callback: a bounce buffer arrived */
export function bounceArrived(entry: IobufEntry<AccelTask>, address: number): void {
  const t = entry.data
  t.seq!.bufferArrived(t, address)
}

/** A DIF operation's buffer must hold its blocks. */
function need(op: number, list: IoVecList, numBlocks: number, unit: number, name: string): void {
  if (list.total < numBlocks * unit) throw new AccelError('ACCEL_BAD_ARGUMENT', `${OPCODES[op]}: ${name} holds ${list.total} bytes; ${numBlocks} blocks need ${numBlocks * unit}`)
}

function checkList(name: string, l: IoVecList): void {
  if (l === null || typeof l !== 'object' || typeof l.total !== 'number') throw new AccelError('ACCEL_BAD_ARGUMENT', `${name} must be an IoVecList`)
}

function checkResult(r: AccelResult): void {
  if (r === null || typeof r !== 'object') throw new AccelError('ACCEL_BAD_ARGUMENT', 'result must be an object with a value field')
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new AccelError('ACCEL_BAD_ARGUMENT', `seed must be a u32, got ${seed}`)
}
