// Protection information contexts and operations (SPDK include/spdk/dif.h). A context
// fixes the format of a namespace's blocks; each operation takes scatter-gather lists with
// any split points and runs as one pass of the @ipukit/kernels PI engine.
import {
  defaultKernels,
  DifErrorKind,
  DifJob,
  DifJobFlag,
  type DifJobParams,
  DifOp,
  type DifOpCode,
  DifStatus,
  type Kernels,
} from '@ipukit/kernels'
import { DifError } from './errors.js'
import { checkInt, checkUint, rangeError, typeError } from './internal/errors.js'
import { inspect, type IoVecs, ListCursor } from './internal/iov.js'
import { DifStream } from './stream.js'
import { type InjectKind, type InjectOptions, type Injected, inject } from './inject.js'

/** DIF type (SBC-4 §4.22; NVMe "PI type"). 0 turns protection information off. */
export type DifType = 0 | 1 | 2 | 3

/** Guard width of the PI format: 16b (8-byte tuple), 32b or 64b (16-byte tuples). */
export type PiFormat = 16 | 32 | 64

export interface DifChecks {
  guard?: boolean
  appTag?: boolean
  refTag?: boolean
}

export interface DifContextOptions {
  /** Bytes of data per block (512, 4096, …). */
  dataBlockSize: number
  /** Bytes of metadata per block (8, 16, 64, 128, …), PI included. */
  mdSize: number
  /** Interleaved metadata (DIF, extended LBA: each block's data then its metadata), the
   * default; `false` for DIX (metadata in a buffer of its own). */
  interleaved?: boolean
  /** Where the PI sits inside the metadata. Default 'last' (NVMe DPS.PIP = 0). */
  piLocation?: 'first' | 'last'
  /** Default 16. */
  piFormat?: PiFormat
  type: DifType
  /** Which fields verify checks and generate fills in (the others are written 0). Default all. */
  checks?: DifChecks
  /** Default 0. */
  appTag?: number
  /** Bits of the app tag that are compared. Default 0xFFFF. */
  appTagMask?: number
  /** Ref tag of a request's first block, unless the call gives one. Default 0. With type 1 it
   * is the low bits of the LBA; 0xFFFFFFFF makes generate write an all-ones ref tag (SPDK). */
  initRefTag?: number | bigint
  /** Initial guard register (before the CRC's own init/xorout). Default 0. */
  guardSeed?: number | bigint
  /** Whether the guard also covers the metadata bytes before the PI (NVMe and SPDK: yes,
   * the default; Linux's block integrity: no, data only). */
  guardCoversMetadata?: boolean
  /** The kernels instance (thread) to run on. Default: the module's default instance. */
  kernels?: Kernels
}

/** Per-call values: the request's ref tag and LBA. */
export interface DifCallOptions {
  /** Ref tag of the request's first block (default: the context's initRefTag, or for type 1
   * the low bits of `lba` when that is given). */
  initRefTag?: number | bigint
  /** LBA of the request's first block: failures then report the failing block's LBA. */
  lba?: number | bigint
}

export interface DifOk {
  readonly ok: true
}

/** The first failing block of a verify (SPDK struct spdk_dif_error). */
export interface DifFailure {
  readonly ok: false
  readonly kind: 'guard' | 'appTag' | 'refTag'
  /** guard: the guard stored in the PI; app tag: the context's app tag; ref tag: the ref tag
   * the block should carry (SPDK's convention). */
  readonly expected: bigint
  /** guard: the CRC of the data as it is; app tag: the stored app tag & mask; ref tag: the
   * stored ref tag. */
  readonly actual: bigint
  /** Offset of the block from the start of the request. */
  readonly block: number
  /** The block's LBA, when the call gave the request's `lba`. */
  readonly lba?: bigint
}

export type DifResult = DifOk | DifFailure

export const DIF_OK: DifOk = Object.freeze({ ok: true })

const KINDS = { [DifErrorKind.Guard]: 'guard', [DifErrorKind.AppTag]: 'appTag', [DifErrorKind.RefTag]: 'refTag' } as const

const jobs = new WeakMap<Kernels, DifJob>()

/** The PI tuple's size in bytes for a format. */
export function piSizeOf(format: PiFormat): 8 | 16 {
  return format === 16 ? 8 : 16
}

/** Bits of the ref tag: 32 (16b guard), 64 (32b), 48 (64b), as SPDK without storage tags. */
export function refTagBits(format: PiFormat): number {
  return format === 16 ? 32 : format === 32 ? 64 : 48
}

/**
 * Creates a context, checking the format as spdk_dif_ctx_init does: the metadata must hold
 * the PI, a 16b-guard data block is a multiple of 512 bytes and a 32b/64b-guard one a
 * multiple of 4096.
 */
export function createDifContext(options: DifContextOptions): DifContext {
  return new DifContext(options)
}

export class DifContext {
  readonly dataBlockSize: number
  readonly mdSize: number
  readonly interleaved: boolean
  readonly piLocation: 'first' | 'last'
  readonly piFormat: PiFormat
  readonly type: DifType
  readonly checks: Readonly<Required<DifChecks>>
  readonly appTag: number
  readonly appTagMask: number
  readonly initRefTag: number | bigint
  readonly guardSeed: number | bigint
  readonly guardCoversMetadata: boolean
  readonly kernels: Kernels
  /** Bytes of one block in the main list: data + metadata when interleaved, else data. */
  readonly blockSize: number
  readonly piSize: 8 | 16
  /** Offset of the PI inside the metadata. */
  readonly piOffset: number
  /** @internal the engine parameters, reused by every call */
  readonly params: DifJobParams

  constructor(o: DifContextOptions) {
    if (o === null || typeof o !== 'object') throw typeError('options must be an object')
    const format = o.piFormat ?? 16
    if (format !== 16 && format !== 32 && format !== 64) throw rangeError(`piFormat must be 16, 32 or 64, got ${String(format)}`)
    if (o.type !== 0 && o.type !== 1 && o.type !== 2 && o.type !== 3) throw rangeError(`type must be 0, 1, 2 or 3, got ${String(o.type)}`)
    checkInt('dataBlockSize', o.dataBlockSize, 1, 1 << 24)
    checkInt('mdSize', o.mdSize, 0, 1 << 16)
    const piSize = piSizeOf(format)
    if (o.type !== 0) {
      if (o.mdSize < piSize) throw rangeError(`mdSize must hold the ${piSize}-byte PI of a ${format}b guard, got ${o.mdSize}`)
      const unit = format === 16 ? 512 : 4096
      if (o.dataBlockSize % unit !== 0) {
        throw rangeError(`dataBlockSize must be a multiple of ${unit} for a ${format}b guard (as spdk_dif_ctx_init), got ${o.dataBlockSize}`)
      }
    }
    const location = o.piLocation ?? 'last'
    if (location !== 'first' && location !== 'last') throw rangeError(`piLocation must be 'first' or 'last', got ${String(location)}`)
    const checks = { guard: o.checks?.guard ?? true, appTag: o.checks?.appTag ?? true, refTag: o.checks?.refTag ?? true }
    for (const [key, v] of Object.entries(checks)) if (typeof v !== 'boolean') throw typeError(`checks.${key} must be a boolean`)
    const appTag = o.appTag ?? 0
    const appTagMask = o.appTagMask ?? 0xffff
    checkInt('appTag', appTag, 0, 0xffff)
    checkInt('appTagMask', appTagMask, 0, 0xffff)
    const initRefTag = checkUint('initRefTag', o.initRefTag ?? 0, refTagBits(format))
    const guardSeed = checkUint('guardSeed', o.guardSeed ?? 0, format)
    const interleaved = o.interleaved ?? true
    const covers = o.guardCoversMetadata ?? true
    if (typeof interleaved !== 'boolean') throw typeError('interleaved must be a boolean')
    if (typeof covers !== 'boolean') throw typeError('guardCoversMetadata must be a boolean')
    this.kernels = o.kernels ?? defaultKernels()
    this.dataBlockSize = o.dataBlockSize
    this.mdSize = o.mdSize
    this.interleaved = interleaved
    this.piLocation = location
    this.piFormat = format
    this.type = o.type
    this.checks = Object.freeze(checks)
    this.appTag = appTag
    this.appTagMask = appTagMask
    this.initRefTag = initRefTag
    this.guardSeed = guardSeed
    this.guardCoversMetadata = covers
    this.blockSize = interleaved ? o.dataBlockSize + o.mdSize : o.dataBlockSize
    this.piSize = piSize
    this.piOffset = location === 'first' ? 0 : Math.max(0, o.mdSize - piSize)
    this.params = {
      op: DifOp.Generate,
      dataBlockSize: this.dataBlockSize,
      mdSize: this.mdSize,
      piOffset: this.piOffset,
      piSize,
      format,
      type: o.type,
      flags: 0,
      appTag,
      appTagMask,
      refBase: 0,
      remapBase: 0,
      guardSeed,
      blocks: 0,
    }
  }

  /** @internal engine flags for an operation */
  flags(extra = 0): number {
    const c = this.checks
    let f = extra
    if (c.guard) f |= DifJobFlag.Guard
    if (c.appTag) f |= DifJobFlag.AppTag
    if (c.refTag) f |= DifJobFlag.RefTag
    if (this.guardCoversMetadata) f |= DifJobFlag.CoverMetadata
    return f
  }

  /** @internal ref tag of a request's first block */
  refBase(call: DifCallOptions | undefined): number | bigint {
    const bits = refTagBits(this.piFormat)
    if (call?.initRefTag !== undefined) return checkUint('initRefTag', call.initRefTag, bits)
    if (call?.lba !== undefined && this.type === 1) {
      // type 1: the ref tag is the low bits of the LBA
      const lba = checkUint('lba', call.lba, 64)
      if (typeof lba === 'number') return bits >= 53 ? lba : lba % 2 ** bits
      return lba & ((1n << BigInt(bits)) - 1n)
    }
    return this.initRefTag
  }

  /** @internal this context's engine job (one per kernels instance) */
  job(): DifJob {
    let j = jobs.get(this.kernels)
    if (j === undefined) {
      j = new DifJob(this.kernels)
      jobs.set(this.kernels, j)
    }
    return j
  }

  /** Generates PI in place in an extended-LBA list (spdk_dif_generate). */
  generate(iovs: IoVecs, numBlocks: number, call?: DifCallOptions): void {
    this.#interleavedOnly('generate')
    run(this, DifOp.Generate, iovs, undefined, numBlocks, call)
  }

  /** Verifies PI in an extended-LBA list (spdk_dif_verify): the first failing block, or ok. */
  verify(iovs: IoVecs, numBlocks: number, call?: DifCallOptions): DifResult {
    this.#interleavedOnly('verify')
    return run(this, DifOp.Verify, iovs, undefined, numBlocks, call)
  }

  /**
   * Inserts PI: copies data-only `src` into extended-LBA `dst`, generating each block's PI
   * (spdk_dif_generate_copy). Metadata bytes other than the PI keep what `dst` held.
   */
  generateCopy(dst: IoVecs, src: IoVecs, numBlocks: number, call?: DifCallOptions): void {
    this.#interleavedOnly('generateCopy')
    run(this, DifOp.GenerateCopy, dst, src, numBlocks, call)
  }

  /** Strips PI: verifies extended-LBA `src` and copies its data into data-only `dst`
   * (spdk_dif_verify_copy). Stops at the first failing block. */
  verifyCopy(dst: IoVecs, src: IoVecs, numBlocks: number, call?: DifCallOptions): DifResult {
    this.#interleavedOnly('verifyCopy')
    return run(this, DifOp.VerifyCopy, src, dst, numBlocks, call)
  }

  /** Generates PI into the separate metadata list `md` (spdk_dix_generate). */
  dixGenerate(iovs: IoVecs, md: IoVecs, numBlocks: number, call?: DifCallOptions): void {
    this.#separateOnly('dixGenerate')
    run(this, DifOp.DixGenerate, iovs, md, numBlocks, call)
  }

  /** Verifies PI held in `md` against data in `iovs` (spdk_dix_verify). */
  dixVerify(iovs: IoVecs, md: IoVecs, numBlocks: number, call?: DifCallOptions): DifResult {
    this.#separateOnly('dixVerify')
    return run(this, DifOp.DixVerify, iovs, md, numBlocks, call)
  }

  /**
   * Rewrites each block's ref tag for a new starting ref tag (spdk_dif_remap_ref_tag), for
   * a request that moves to other LBAs. With `check`, the old ref tag (types 1 and 2) is
   * verified first. Blocks whose PI says "ignore" are left alone.
   */
  remapRefTag(iovs: IoVecs, numBlocks: number, newInitRefTag: number | bigint, opts?: DifCallOptions & { check?: boolean }): DifResult {
    this.#interleavedOnly('remapRefTag')
    return run(this, DifOp.Remap, iovs, undefined, numBlocks, opts, newInitRefTag, opts?.check)
  }

  /** remapRefTag for PI held in a separate metadata list (spdk_dix_remap_ref_tag). */
  dixRemapRefTag(md: IoVecs, numBlocks: number, newInitRefTag: number | bigint, opts?: DifCallOptions & { check?: boolean }): DifResult {
    this.#separateOnly('dixRemapRefTag')
    return run(this, DifOp.DixRemap, undefined, md, numBlocks, opts, newInitRefTag, opts?.check)
  }

  /**
   * CRC-32C of the data of an extended-LBA list, skipping the metadata (what an NVMe/TCP
   * data digest covers when PI is inserted or stripped on the way). `seed` continues a
   * previous result, as @ipukit/kernels' crc32c does.
   */
  updateCrc32c(iovs: IoVecs, numBlocks: number, seed = 0): number {
    this.#interleavedOnly('updateCrc32c')
    checkInt('seed', seed, 0, 0xffffffff)
    const job = this.job()
    run(this, DifOp.Crc32c, iovs, undefined, numBlocks, undefined, undefined, undefined, ~seed >>> 0)
    return ~job.crc32Register >>> 0
  }

  /** A stream that generates PI over a request given in pieces. */
  generateStream(call?: DifCallOptions): DifStream {
    return new DifStream(this, 'generate', call)
  }

  /** A stream that verifies PI over a request given in pieces. */
  verifyStream(call?: DifCallOptions): DifStream {
    return new DifStream(this, 'verify', call)
  }

  /**
   * Flips one bit of a block's guard, app tag, ref tag or data in an extended-LBA list, at
   * a place chosen by a seeded generator (deterministic: the same seed picks the same bit),
   * such that verify must catch it (spdk_dif_inject_error).
   */
  injectError(iovs: IoVecs, numBlocks: number, kind: InjectKind, opts?: InjectOptions): Injected {
    this.#interleavedOnly('injectError')
    return inject(this, iovs, undefined, numBlocks, kind, opts)
  }

  /** injectError for DIX: PI fields in `md`, data in `iovs` (spdk_dix_inject_error). */
  dixInjectError(iovs: IoVecs, md: IoVecs, numBlocks: number, kind: InjectKind, opts?: InjectOptions): Injected {
    this.#separateOnly('dixInjectError')
    return inject(this, iovs, md, numBlocks, kind, opts)
  }

  #interleavedOnly(op: string): void {
    if (!this.interleaved) throw rangeError(`${op} needs an interleaved (extended LBA) context; this one is DIX: use the dix* operations`)
  }

  #separateOnly(op: string): void {
    if (this.interleaved) throw rangeError(`${op} needs a DIX context (interleaved: false)`)
  }
}

// ---------------------------------------------------------------------------------------
// The driver: lists in memory are fed to the engine in batches of (address, length)
// pairs; lists elsewhere are staged in chunks of whole blocks through the instance's
// staging area and, when the operation writes them, copied back.

const cursors = [new ListCursor(), new ListCursor()] as const
const EMPTY = new Uint8Array(0)
/** The two lists, A and B (a constant array: iterating it allocates nothing once optimised). */
const SIDES = [0, 1] as const

// Per-call working state, reused: a request's success path allocates nothing.
const UNITS = [0, 0]
const LISTS: [IoVecs | undefined, IoVecs | undefined] = [undefined, undefined]
const MEMORY = [true, true]
const COUNTS = [0, 0]
const NAMES: Record<DifOpCode, readonly [string, string]> = {
  [DifOp.Generate]: ['iovs', ''],
  [DifOp.Verify]: ['iovs', ''],
  [DifOp.Remap]: ['iovs', ''],
  [DifOp.Crc32c]: ['iovs', ''],
  [DifOp.GenerateCopy]: ['dst', 'src'],
  [DifOp.VerifyCopy]: ['src', 'dst'],
  [DifOp.DixGenerate]: ['iovs', 'md'],
  [DifOp.DixVerify]: ['iovs', 'md'],
  [DifOp.DixRemap]: ['iovs', 'md'],
}

/** Bytes per block of list A and B for an operation, into UNITS. */
function units(ctx: DifContext, op: DifOpCode): void {
  const ext = ctx.dataBlockSize + ctx.mdSize
  switch (op) {
    case DifOp.GenerateCopy:
    case DifOp.VerifyCopy:
      UNITS[0] = ext
      UNITS[1] = ctx.dataBlockSize
      return
    case DifOp.DixGenerate:
    case DifOp.DixVerify:
      UNITS[0] = ctx.dataBlockSize
      UNITS[1] = ctx.mdSize
      return
    case DifOp.DixRemap:
      UNITS[0] = 0
      UNITS[1] = ctx.mdSize
      return
    default:
      UNITS[0] = ext
      UNITS[1] = 0
  }
}

/** Which lists an operation writes: [A, B]. */
function writes(op: DifOpCode): [boolean, boolean] {
  switch (op) {
    case DifOp.Generate:
    case DifOp.Remap:
    case DifOp.GenerateCopy:
      return [true, false]
    case DifOp.VerifyCopy:
    case DifOp.DixGenerate:
    case DifOp.DixRemap:
      return [false, true]
    default:
      return [false, false]
  }
}

/** @internal runs one operation to its end */
export function run(
  ctx: DifContext,
  op: DifOpCode,
  listA: IoVecs | undefined,
  listB: IoVecs | undefined,
  numBlocks: number,
  call: DifCallOptions | undefined,
  remapTo?: number | bigint,
  remapCheck?: boolean,
  crc32Init?: number,
): DifResult {
  const k = ctx.kernels
  k.live()
  checkInt('numBlocks', numBlocks, 0, 0xffffffff)
  units(ctx, op)
  const names = NAMES[op]
  LISTS[0] = listA
  LISTS[1] = listB
  try {
    const areas = pairAreas(k)
    for (const i of SIDES) {
      const unit = UNITS[i]!
      const list = LISTS[i]
      MEMORY[i] = true
      if (unit === 0) continue
      if (list === undefined) throw typeError(`${names[i]} must be given`)
      const { length, inMemory, count } = inspect(k, names[i], list, areas.pairs[i])
      if (length < numBlocks * unit) {
        throw rangeError(`${names[i]} holds ${length} bytes; ${numBlocks} blocks need ${numBlocks * unit}`)
      }
      MEMORY[i] = inMemory
      COUNTS[i] = count
    }
    const refBase = ctx.refBase(call)
    const lba = call?.lba
    if (lba !== undefined) checkUint('lba', lba, 64)
    const job = ctx.job()
    const p = ctx.params
    p.op = op
    p.blocks = numBlocks
    p.refBase = refBase
    p.remapBase = remapTo === undefined ? 0 : checkUint('newInitRefTag', remapTo, refTagBits(ctx.piFormat))
    let extra = 0
    if (remapCheck) extra |= DifJobFlag.RemapCheck
    if ((op === DifOp.Generate || op === DifOp.GenerateCopy || op === DifOp.DixGenerate) && (refBase === 0xffffffff || refBase === 0xffffffffn)) {
      // SPDK: an initial ref tag of SPDK_DIF_REFTAG_IGNORE writes all-ones ref tags
      extra |= DifJobFlag.RefAllOnes
    }
    p.flags = ctx.flags(extra)
    if (ctx.type === 0 || numBlocks === 0) {
      // PI off: nothing to generate or check, but data still moves and CRC-32C still counts
      if (op !== DifOp.GenerateCopy && op !== DifOp.VerifyCopy && op !== DifOp.Crc32c) return DIF_OK
      p.flags = 0
    }
    job.start(p)
    if (crc32Init !== undefined) job.crc32Register = crc32Init
    const status =
      MEMORY[0] && MEMORY[1]
        ? runInMemory(ctx, job, LISTS, UNITS[0]!, UNITS[1]!, COUNTS, areas)
        : runStaged(ctx, job, op, LISTS, MEMORY, UNITS[0]!, UNITS[1]!, numBlocks)
    if (status === DifStatus.Done) return DIF_OK
    const e = job.error()
    return {
      ok: false,
      kind: KINDS[e.kind as 1 | 2 | 3],
      expected: e.expected,
      actual: e.actual,
      block: e.block,
      ...(lba !== undefined && { lba: BigInt(lba) + BigInt(e.block) }),
    }
  } finally {
    // do not keep the caller's buffers reachable
    LISTS[0] = undefined
    LISTS[1] = undefined
  }
}

/**
 * When every list lies in the kernels' memory the staging area is free for the engine:
 * its first half gathers blocks that straddle iovecs, and its second half holds the
 * lists' (address, length) pairs, written by inspect() as it checks them, so a request of
 * up to a few thousand iovecs runs in one engine call.
 */
interface PairAreas {
  buffer: ArrayBufferLike
  address: [number, number]
  pairs: [Uint32Array, Uint32Array]
}
const pairAreaCache = new WeakMap<Kernels, PairAreas>()

function pairAreas(k: Kernels): PairAreas {
  let a = pairAreaCache.get(k)
  const buffer = k.memory.buffer
  if (a === undefined || a.buffer !== buffer) {
    const quarter = k.layout.stagingSize / 4
    const at: [number, number] = [k.staging + 2 * quarter, k.staging + 3 * quarter]
    a = {
      buffer,
      address: at,
      pairs: [new Uint32Array(buffer, at[0], quarter / 4), new Uint32Array(buffer, at[1], quarter / 4)],
    }
    pairAreaCache.set(k, a)
  }
  return a
}

function runInMemory(
  ctx: DifContext,
  job: DifJob,
  lists: readonly [IoVecs | undefined, IoVecs | undefined],
  unitA: number,
  unitB: number,
  counts: number[],
  areas: PairAreas,
): number {
  const k = ctx.kernels
  job.bounce(k.staging, k.layout.stagingSize / 2)
  for (const i of SIDES) {
    const list = lists[i]
    if ((i === 0 ? unitA : unitB) === 0 || list === undefined) continue
    if (counts[i]! <= areas.pairs[i].length >> 1) {
      // inspect() wrote them all: the whole list in one go
      job.useList(i, areas.address[i], counts[i]!)
      cursors[i].reset(EMPTY) // nothing left to feed
    } else {
      cursors[i].reset(list)
      job.useListArea(i, cursors[i].fill(job.listArea(i)))
    }
  }
  for (;;) {
    const status = job.run()
    if (status !== DifStatus.NeedInput) return status
    // refill whichever list ran out; lengths were checked, so one of them has more
    let refilled = false
    for (const i of SIDES) {
      if ((i === 0 ? unitA : unitB) !== 0 && job.exhausted(i) && !cursors[i].done) {
        job.useListArea(i, cursors[i].fill(job.listArea(i)))
        refilled = true
      }
    }
    if (!refilled) throw new Error('PI engine ran out of input after the lengths were checked')
  }
}

function runStaged(
  ctx: DifContext,
  job: DifJob,
  op: DifOpCode,
  lists: readonly [IoVecs | undefined, IoVecs | undefined],
  inMemory: boolean[],
  unitA: number,
  unitB: number,
  numBlocks: number,
): number {
  const k = ctx.kernels
  const written = writes(op)
  const staged = [!inMemory[0] && unitA > 0, !inMemory[1] && unitB > 0]
  const perBlock = (staged[0] ? unitA : 0) + (staged[1] ? unitB : 0)
  const chunk = Math.floor(k.layout.stagingSize / perBlock)
  if (chunk === 0) {
    throw new DifError(
      'DIF_BLOCK_TOO_LARGE',
      `a block (${perBlock} bytes to stage) does not fit the staging area (${k.layout.stagingSize} bytes): place the buffers in the kernels' memory or raise stagingSize`,
    )
  }
  const base = [k.staging, k.staging + chunk * (staged[0] ? unitA : 0)]
  for (const i of SIDES) {
    const list = lists[i]
    if ((i === 0 ? unitA : unitB) === 0 || list === undefined) continue
    cursors[i].reset(list)
    if (!staged[i]) job.useListArea(i, cursors[i].fill(job.listArea(i)))
  }
  const back = [new ListCursor(), new ListCursor()]
  for (let done = 0; done < numBlocks; ) {
    const n = Math.min(chunk, numBlocks - done)
    for (const i of SIDES) {
      if (!staged[i]) continue
      const unit = i === 0 ? unitA : unitB
      if (written[i] && done === 0) back[i]!.reset(lists[i]!)
      cursors[i].move(k, base[i]!, n * unit, 'in')
      const area = job.listArea(i)
      area[0] = base[i]!
      area[1] = n * unit
      job.useListArea(i, 1)
    }
    job.blocks = done + n
    let status = job.run()
    while (status === DifStatus.NeedInput) {
      // only a list left in memory can run out inside a chunk
      let refilled = false
      for (const i of SIDES) {
        if (!staged[i] && (i === 0 ? unitA : unitB) !== 0 && job.exhausted(i) && !cursors[i].done) {
          job.useListArea(i, cursors[i].fill(job.listArea(i)))
          refilled = true
        }
      }
      if (!refilled) throw new Error('PI engine ran out of input after the lengths were checked')
      status = job.run()
    }
    for (const i of SIDES) {
      if (staged[i] && written[i]) back[i]!.move(k, base[i]!, n * (i === 0 ? unitA : unitB), 'out')
    }
    if (status === DifStatus.Error) return status
    done += n
  }
  return DifStatus.Done
}
