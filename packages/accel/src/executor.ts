// Runs task descriptors (./descriptor.ts) on one thread's kernels: the `software` module
// runs it in the caller's thread, the `workers` module in worker threads, each with its own
// Kernels instance on the shared memory. A descriptor is trusted: the framework built it
// from translated, range-checked buffers. Nothing here allocates per operation except
// compress/decompress (node:zlib returns fresh buffers) and a PI error's report.
import { constants as zlibConstants, deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib'
import { DifJob, type DifJobParams, DifOp, FusedStatus, type Kernels } from '@ipukit/kernels'
import { D, DescriptorView } from './descriptor.js'
import { AccelStatus, FusedOpc, Opc } from './opcodes.js'

const DIF_OP_OF: Partial<Record<number, DifJobParams['op']>> = {
  [Opc.dif_verify]: DifOp.Verify,
  [Opc.dif_generate]: DifOp.Generate,
  [Opc.dif_generate_copy]: DifOp.GenerateCopy,
  [Opc.dif_verify_copy]: DifOp.VerifyCopy,
  [Opc.dix_generate]: DifOp.DixGenerate,
  [Opc.dix_verify]: DifOp.DixVerify,
  [FusedOpc.encryptDifGenerateCopy]: DifOp.Generate,
  [FusedOpc.difVerifyCopyDecrypt]: DifOp.Verify,
}

export class Executor {
  readonly kernels: Kernels
  readonly #v: DescriptorView
  readonly #job: DifJob
  readonly #params: DifJobParams
  #bytes: Uint8Array

  constructor(kernels: Kernels) {
    kernels.live()
    this.kernels = kernels
    this.#v = new DescriptorView(kernels.memory)
    this.#job = new DifJob(kernels)
    this.#bytes = new Uint8Array(kernels.memory.buffer)
    this.#params = {
      op: DifOp.Generate,
      dataBlockSize: 0,
      mdSize: 0,
      piOffset: 0,
      piSize: 8,
      format: 16,
      type: 0,
      flags: 0,
      appTag: 0,
      appTagMask: 0,
      refBase: 0,
      remapBase: 0,
      guardSeed: 0,
      blocks: 0,
    }
  }

  /** Runs the descriptor at `desc`; writes and returns its status. */
  run(desc: number): number {
    let status: number
    try {
      status = this.#run(desc)
    } catch (e) {
      // a kernel trap (an address past the memory) or a zlib failure: the operation failed,
      // the thread goes on
      status = e instanceof RangeError && /output|buffer/i.test(e.message) ? AccelStatus.NoSpace : AccelStatus.Invalid
    }
    this.#v.setI(desc, D.status, status)
    return status
  }

  #run(desc: number): number {
    const v = this.#v
    const op = v.get(desc, D.op)
    const n = v.get(desc, D.nbytes)
    const sL = v.get(desc, D.srcList)
    const sN = v.get(desc, D.srcCount)
    const dL = v.get(desc, D.dstList)
    const dN = v.get(desc, D.dstCount)
    switch (op) {
      case Opc.copy:
        return this.#copy(dL, dN, sL, sN, n)
      case Opc.dualcast: {
        const rc = this.#copy(dL, dN, sL, sN, n)
        return rc !== AccelStatus.Ok ? rc : this.#copy(v.get(desc, D.dst2List), v.get(desc, D.dst2Count), sL, sN, n)
      }
      case Opc.fill:
        return this.#fill(dL, dN, n, v.get(desc, D.seed) & 0xff)
      case Opc.compare:
        return this.#compare(desc, sL, sN, v.get(desc, D.src2List), v.get(desc, D.src2Count), n)
      case Opc.crc32c:
        return this.#crc32c(desc, sL, sN, n)
      case Opc.copy_crc32c: {
        const k = this.kernels
        const reg = k.abi.fused_copy_crc32c(sL, sN, dL, dN, n, ~v.get(desc, D.seed), k.scratch) >>> 0
        if (v.getI(k.scratch, 48) !== FusedStatus.Ok) return AccelStatus.Invalid
        v.set(desc, D.result, reg)
        return AccelStatus.Ok
      }
      case Opc.encrypt:
      case Opc.decrypt: {
        const k = this.kernels
        this.#tweak(desc)
        const rc = k.abi.fused_xts(v.get(desc, D.keyCtx), op === Opc.decrypt ? 1 : 0, sL, sN, dL, dN, n, v.get(desc, D.blockSize), k.staging, k.layout.stagingSize, k.scratch)
        return rc === FusedStatus.Ok ? AccelStatus.Ok : AccelStatus.Invalid
      }
      case Opc.xor:
        return this.#xor(desc, sL, sN, dL, dN, n)
      case Opc.compress:
      case Opc.decompress:
        return this.#zlib(desc, op === Opc.compress, sL, sN, dL, dN, n)
      case Opc.dif_verify:
      case Opc.dif_generate:
        return this.#dif(desc, sL, sN, 0, 0)
      case Opc.dif_generate_copy:
        return this.#dif(desc, dL, dN, sL, sN)
      case Opc.dif_verify_copy:
        return this.#dif(desc, sL, sN, dL, dN)
      case Opc.dix_generate:
      case Opc.dix_verify:
        return this.#dif(desc, sL, sN, dL, dN)
      case FusedOpc.encryptDifGenerateCopy: {
        // the job walks the extended dst (list A); the kernel reads the data-only src
        const job = this.#startJob(desc, dL, dN, 0, 0)
        this.#tweak(desc)
        const k = this.kernels
        const rc = k.abi.fused_xts_dif_generate(v.get(desc, D.keyCtx), sL, sN, v.get(desc, D.numBlocks), k.staging, k.layout.stagingSize, k.scratch)
        return this.#fusedStatus(desc, job, rc)
      }
      case FusedOpc.difVerifyCopyDecrypt: {
        const job = this.#startJob(desc, sL, sN, 0, 0)
        this.#tweak(desc)
        const k = this.kernels
        const rc = k.abi.fused_dif_verify_xts_decrypt(v.get(desc, D.keyCtx), dL, dN, v.get(desc, D.numBlocks), k.staging, k.layout.stagingSize, k.scratch)
        return this.#fusedStatus(desc, job, rc)
      }
      default:
        return AccelStatus.NotSupported
    }
  }

  #tweak(desc: number): void {
    const w = this.kernels.callArea
    const i = (desc + D.iv) >>> 2
    w[0] = this.#v.u32[i]!
    w[1] = this.#v.u32[i + 1]!
    w[2] = 0
    w[3] = 0
  }

  #mem(): Uint8Array {
    if (this.#bytes.byteLength === 0) this.#bytes = new Uint8Array(this.kernels.memory.buffer)
    return this.#bytes
  }

  /** Copies n bytes between two lists, pair by pair. */
  #copy(dL: number, dN: number, sL: number, sN: number, n: number): number {
    const u = this.#v.u32
    const m = this.#mem()
    let si = 0
    let so = 0
    let di = 0
    let dO = 0
    let left = n
    while (left > 0) {
      while (si < sN && so >= u[(sL >>> 2) + 2 * si + 1]!) {
        si++
        so = 0
      }
      while (di < dN && dO >= u[(dL >>> 2) + 2 * di + 1]!) {
        di++
        dO = 0
      }
      if (si >= sN || di >= dN) return AccelStatus.Invalid
      const sa = u[(sL >>> 2) + 2 * si]! + so
      const da = u[(dL >>> 2) + 2 * di]! + dO
      const k = Math.min(left, u[(sL >>> 2) + 2 * si + 1]! - so, u[(dL >>> 2) + 2 * di + 1]! - dO)
      if (sa !== da) m.copyWithin(da, sa, sa + k)
      so += k
      dO += k
      left -= k
    }
    return AccelStatus.Ok
  }

  #fill(dL: number, dN: number, n: number, byte: number): number {
    const u = this.#v.u32
    const m = this.#mem()
    let left = n
    for (let i = 0; i < dN && left > 0; i++) {
      const a = u[(dL >>> 2) + 2 * i]!
      const k = Math.min(left, u[(dL >>> 2) + 2 * i + 1]!)
      m.fill(byte, a, a + k)
      left -= k
    }
    return left === 0 ? AccelStatus.Ok : AccelStatus.Invalid
  }

  #compare(desc: number, aL: number, aN: number, bL: number, bN: number, n: number): number {
    const u = this.#v.u32
    const abi = this.kernels.abi
    let ai = 0
    let ao = 0
    let bi = 0
    let bo = 0
    let off = 0
    while (off < n) {
      while (ai < aN && ao >= u[(aL >>> 2) + 2 * ai + 1]!) {
        ai++
        ao = 0
      }
      while (bi < bN && bo >= u[(bL >>> 2) + 2 * bi + 1]!) {
        bi++
        bo = 0
      }
      if (ai >= aN || bi >= bN) return AccelStatus.Invalid
      const k = Math.min(n - off, u[(aL >>> 2) + 2 * ai + 1]! - ao, u[(bL >>> 2) + 2 * bi + 1]! - bo)
      const at = abi.compare(u[(aL >>> 2) + 2 * ai]! + ao, u[(bL >>> 2) + 2 * bi]! + bo, k)
      if (at >= 0) {
        this.#v.set(desc, D.result, off + at)
        return AccelStatus.Miscompare
      }
      ao += k
      bo += k
      off += k
    }
    return AccelStatus.Ok
  }

  /** SPDK's accel crc32c: the register after the data, from ~seed, with no final inversion. */
  #crc32c(desc: number, sL: number, sN: number, n: number): number {
    const u = this.#v.u32
    const k = this.kernels
    let reg = ~this.#v.get(desc, D.seed)
    let left = n
    for (let i = 0; i < sN && left > 0; i++) {
      const len = Math.min(left, u[(sL >>> 2) + 2 * i + 1]!)
      reg = k.abi.crc32c_update(reg, u[(sL >>> 2) + 2 * i]!, len, k.kernelArea)
      left -= len
    }
    if (left > 0) return AccelStatus.Invalid
    this.#v.set(desc, D.result, reg >>> 0)
    return AccelStatus.Ok
  }

  /** dst (one contiguous buffer) = xor of the sources (one pair each in the src list). */
  #xor(desc: number, srcs: number, count: number, dL: number, dN: number, n: number): number {
    const v = this.#v
    const u = v.u32
    if (dN !== 1 || u[(dL >>> 2) + 1]! < n || count < 2) return AccelStatus.Invalid
    const list = desc + D.xorSources
    for (let i = 0; i < count; i++) {
      if (u[(srcs >>> 2) + 2 * i + 1]! < n) return AccelStatus.Invalid
      u[(list >>> 2) + i] = u[(srcs >>> 2) + 2 * i]!
    }
    this.kernels.abi.xor_n(u[dL >>> 2]!, list, count, n)
    return AccelStatus.Ok
  }

  #zlib(desc: number, compress: boolean, sL: number, sN: number, dL: number, dN: number, n: number): number {
    const input = this.#zlibInput(sL, sN, n)
    const capacity = this.#capacity(dL, dN)
    let out: Uint8Array
    try {
      out = compress
        ? deflateRawSync(input, { level: this.#v.get(desc, D.level) })
        : inflateRawSync(input, { maxOutputLength: Math.max(1, capacity), finishFlush: zlibConstants.Z_SYNC_FLUSH })
    } catch (e) {
      return zlibFailure(e)
    }
    return this.#zlibOutput(desc, out, dL, dN, capacity)
  }

  /**
   * Runs a compress or decompress descriptor on node:zlib's thread pool (libuv's workers),
   * so the calling thread goes on meanwhile; `done(status)` follows, with the descriptor's
   * status written. Other opcodes run at once, as run() does.
   */
  runAsync(desc: number, done: (status: number) => void): void {
    const v = this.#v
    const op = v.get(desc, D.op)
    if (op !== Opc.compress && op !== Opc.decompress) {
      done(this.run(desc))
      return
    }
    const sL = v.get(desc, D.srcList)
    const sN = v.get(desc, D.srcCount)
    const dL = v.get(desc, D.dstList)
    const dN = v.get(desc, D.dstCount)
    const input = this.#zlibInput(sL, sN, v.get(desc, D.nbytes))
    const capacity = this.#capacity(dL, dN)
    const finish = (e: Error | null, out: Uint8Array) => {
      let status: number
      try {
        status = e !== null ? zlibFailure(e) : this.#zlibOutput(desc, out, dL, dN, capacity)
      } catch {
        status = AccelStatus.Invalid
      }
      v.setI(desc, D.status, status)
      done(status)
    }
    if (op === Opc.compress) deflateRaw(input, { level: v.get(desc, D.level) }, finish)
    else inflateRaw(input, { maxOutputLength: Math.max(1, capacity), finishFlush: zlibConstants.Z_SYNC_FLUSH }, finish)
  }

  /** The input: the memory itself when it is one pair, else gathered. */
  #zlibInput(sL: number, sN: number, n: number): Uint8Array {
    const u = this.#v.u32
    if (sN === 1) return new Uint8Array(this.kernels.memory.buffer, u[sL >>> 2]!, n)
    const input = new Uint8Array(n)
    let o = 0
    const m = this.#mem()
    for (let i = 0; i < sN && o < n; i++) {
      const a = u[(sL >>> 2) + 2 * i]!
      const k = Math.min(n - o, u[(sL >>> 2) + 2 * i + 1]!)
      input.set(m.subarray(a, a + k), o)
      o += k
    }
    return input
  }

  #capacity(dL: number, dN: number): number {
    const u = this.#v.u32
    let capacity = 0
    for (let i = 0; i < dN; i++) capacity += u[(dL >>> 2) + 2 * i + 1]!
    return capacity
  }

  #zlibOutput(desc: number, out: Uint8Array, dL: number, dN: number, capacity: number): number {
    if (out.length > capacity) return AccelStatus.NoSpace
    const u = this.#v.u32
    const m = this.#mem()
    let o = 0
    for (let i = 0; i < dN && o < out.length; i++) {
      const a = u[(dL >>> 2) + 2 * i]!
      const k = Math.min(out.length - o, u[(dL >>> 2) + 2 * i + 1]!)
      m.set(out.subarray(o, o + k), a)
      o += k
    }
    this.#v.set(desc, D.result, out.length)
    return AccelStatus.Ok
  }

  #startJob(desc: number, aL: number, aN: number, bL: number, bN: number): DifJob {
    const v = this.#v
    const p = this.#params
    const op = v.get(desc, D.op)
    p.op = DIF_OP_OF[op]!
    p.dataBlockSize = v.get(desc, D.difDbs)
    p.mdSize = v.get(desc, D.difMds)
    p.piOffset = v.get(desc, D.difPiOffset)
    p.piSize = v.get(desc, D.difPiSize)
    p.format = v.get(desc, D.difFormat) as 16 | 32 | 64
    p.type = v.get(desc, D.difType) as 0 | 1 | 2 | 3
    p.flags = v.get(desc, D.difFlags)
    p.appTag = v.get(desc, D.difAppTag)
    p.appTagMask = v.get(desc, D.difAppMask)
    p.refBase = v.get64(desc, D.refBase)
    p.guardSeed = v.get64(desc, D.guardSeed)
    p.blocks = v.get(desc, D.numBlocks)
    const job = this.#job
    job.start(p)
    job.useList(0, aL, aN)
    if (bN > 0) job.useList(1, bL, bN)
    const k = this.kernels
    job.bounce(k.staging, k.layout.stagingSize)
    return job
  }

  #dif(desc: number, aL: number, aN: number, bL: number, bN: number): number {
    const job = this.#startJob(desc, aL, aN, bL, bN)
    const st = job.run()
    if (st === 0) return AccelStatus.Ok
    if (st === 1) {
      this.#report(desc, job)
      return AccelStatus.Io
    }
    return AccelStatus.Invalid
  }

  #fusedStatus(desc: number, job: DifJob, rc: number): number {
    if (rc === FusedStatus.Ok) return AccelStatus.Ok
    if (rc === FusedStatus.PiError) {
      this.#report(desc, job)
      return AccelStatus.Io
    }
    return AccelStatus.Invalid
  }

  #report(desc: number, job: DifJob): void {
    const e = job.error()
    const v = this.#v
    v.set(desc, D.errKind, e.kind)
    v.set(desc, D.errBlock, e.block)
    v.set64(desc, D.errExpected, e.expected)
    v.set64(desc, D.errActual, e.actual)
  }
}

/** A zlib failure as a status: output past the room given is NoSpace, the rest bad input. */
function zlibFailure(e: unknown): number {
  const code = (e as { code?: string }).code
  return code === 'ERR_BUFFER_TOO_LARGE' ? AccelStatus.NoSpace : AccelStatus.Invalid
}
