// The protection information engine's job (assembly/dif.ts), seen from TypeScript: the
// low-level interface @ipukit/dif is built on. Everything is addresses in the kernels'
// memory; nothing here allocates per call. Most users want @ipukit/dif instead.
import type { Kernels } from './kernels.js'

/** Operations of the PI engine (SPDK dif.h names in comments). */
export const DifOp = {
  /** spdk_dif_generate: interleaved, in place (list A). */
  Generate: 1,
  /** spdk_dif_verify (list A). */
  Verify: 2,
  /** spdk_dif_remap_ref_tag (list A). */
  Remap: 3,
  /** spdk_dif_update_crc32c: CRC-32C over the data of an extended-LBA list A. */
  Crc32c: 4,
  /** spdk_dif_generate_copy: data-only list B into extended list A, inserting PI. */
  GenerateCopy: 5,
  /** spdk_dif_verify_copy: extended list A into data-only list B, checking PI. */
  VerifyCopy: 6,
  /** spdk_dix_generate: data list A, metadata list B. */
  DixGenerate: 7,
  /** spdk_dix_verify. */
  DixVerify: 8,
  /** spdk_dix_remap_ref_tag. */
  DixRemap: 9,
} as const
export type DifOpCode = (typeof DifOp)[keyof typeof DifOp]

/** Job flags. */
export const DifJobFlag = {
  Guard: 1,
  AppTag: 2,
  RefTag: 4,
  /** the guard covers the metadata bytes before the PI */
  CoverMetadata: 8,
  /** generate writes an all-ones ref tag (SPDK_DIF_REFTAG_IGNORE as the initial ref tag) */
  RefAllOnes: 16,
  /** remap checks the old ref tag before writing the new one */
  RemapCheck: 32,
} as const

export const DifStatus = { Done: 0, Error: 1, NeedInput: 2 } as const
export type DifStatusCode = (typeof DifStatus)[keyof typeof DifStatus]

/** Error kinds as the engine reports them. */
export const DifErrorKind = { None: 0, Guard: 1, AppTag: 2, RefTag: 3 } as const

/** The job's parameters; the caller keeps one and changes what differs per request. */
export interface DifJobParams {
  op: DifOpCode
  dataBlockSize: number
  mdSize: number
  /** offset of the PI tuple inside the metadata */
  piOffset: number
  /** 8 (16b guard) or 16 */
  piSize: number
  format: 16 | 32 | 64
  type: 0 | 1 | 2 | 3
  flags: number
  appTag: number
  appTagMask: number
  /** ref tag of the job's block 0 (before masking to the format's width) */
  refBase: number | bigint
  /** new ref tag of block 0 (remap) */
  remapBase: number | bigint
  guardSeed: number | bigint
  /** the engine stops after this many blocks */
  blocks: number
}

// job layout, mirrored from assembly/dif.ts (word = u32 index)
const JOB = 64 // byte offset of the job in the scratch
const LIST_A = JOB + 256
const LIST_B = LIST_A + 256 * 8
/** (address, length) pairs each scratch list holds. */
export const DIF_LIST_CAPACITY = 256
const W = {
  op: 0,
  dbs: 1,
  mds: 2,
  piOff: 3,
  piSize: 4,
  format: 5,
  type: 6,
  flags: 7,
  appTag: 8,
  appMask: 9,
  refBase: 10,
  remapBase: 12,
  seed: 14,
  listA: 16,
  listAN: 17,
  listB: 18,
  listBN: 19,
  bounce: 20,
  bounceCap: 21,
  blocks: 22,
  block: 24,
  pos: 25,
  aIdx: 26,
  aOff: 27,
  bIdx: 28,
  bOff: 29,
  crc: 30,
  piFill: 32,
  bFill: 33,
  piBuf: 34,
  crc32: 38,
  piAddr: 40,
  errKind: 56,
  errBlock: 57,
  expected: 58,
  actual: 60,
} as const
/** Words of resumable state (block … the PI byte addresses), for saveState/restoreState. */
export const DIF_STATE_WORDS = W.errKind - W.block

function putU64(w: Uint32Array, at: number, v: number | bigint): void {
  if (typeof v === 'number') {
    const lo = v % 0x100000000
    w[at] = lo
    w[at + 1] = (v - lo) / 0x100000000
  } else {
    w[at] = Number(v & 0xffffffffn)
    w[at + 1] = Number((v >> 32n) & 0xffffffffn)
  }
}

const u64 = (w: Uint32Array, at: number) => (BigInt(w[at + 1]!) << 32n) | BigInt(w[at]!)

/**
 * One thread's PI engine job, in its Kernels instance's scratch. Write parameters and
 * lists, run, read the outcome; a request larger than the lists is fed in batches
 * (run() answers NeedInput, the caller refills the exhausted list and runs again).
 */
export class DifJob {
  readonly kernels: Kernels
  #words: Uint32Array
  #lists: [Uint32Array, Uint32Array]

  constructor(kernels: Kernels) {
    kernels.live()
    this.kernels = kernels
    this.#words = new Uint32Array(0)
    this.#lists = [this.#words, this.#words]
    this.#views()
  }

  #views(): Uint32Array {
    const buffer = this.kernels.memory.buffer
    if (this.#words.buffer !== buffer) {
      const s = this.kernels.scratch
      this.#words = new Uint32Array(buffer, s + JOB, 64)
      this.#lists = [new Uint32Array(buffer, s + LIST_A, 2 * DIF_LIST_CAPACITY), new Uint32Array(buffer, s + LIST_B, 2 * DIF_LIST_CAPACITY)]
    }
    return this.#words
  }

  /** Writes the parameters and clears the state and result. */
  start(p: DifJobParams): void {
    const w = this.#views()
    w[W.op] = p.op
    w[W.dbs] = p.dataBlockSize
    w[W.mds] = p.mdSize
    w[W.piOff] = p.piOffset
    w[W.piSize] = p.piSize
    w[W.format] = p.format
    w[W.type] = p.type
    w[W.flags] = p.flags
    w[W.appTag] = p.appTag
    w[W.appMask] = p.appTagMask
    putU64(w, W.refBase, p.refBase)
    putU64(w, W.remapBase, p.remapBase)
    putU64(w, W.seed, p.guardSeed)
    w[W.blocks] = p.blocks
    w[W.bounce] = 0
    w[W.bounceCap] = 0
    w.fill(0, W.block, 64)
  }

  /** Blocks the engine may process before it stops (counted from the job's start). */
  set blocks(n: number) {
    this.#views()[W.blocks] = n
  }

  /** The scratch list area for list 0 (A) or 1 (B): DIF_LIST_CAPACITY (address, length) pairs. */
  listArea(which: 0 | 1): Uint32Array {
    this.#views()
    return this.#lists[which]
  }

  /** Uses `count` pairs from the list area `which`, starting the cursor at its beginning. */
  useListArea(which: 0 | 1, count: number): void {
    this.useList(which, this.kernels.scratch + (which === 0 ? LIST_A : LIST_B), count)
  }

  /** Uses `count` (address, length) pairs at `address` in the memory as list `which`. */
  useList(which: 0 | 1, address: number, count: number): void {
    const w = this.#views()
    w[which === 0 ? W.listA : W.listB] = address
    w[which === 0 ? W.listAN : W.listBN] = count
    w[which === 0 ? W.aIdx : W.bIdx] = 0
    w[which === 0 ? W.aOff : W.bOff] = 0
  }

  /** True when the cursor of list `which` has used up its pairs. */
  exhausted(which: 0 | 1): boolean {
    const w = this.#views()
    return w[which === 0 ? W.aIdx : W.bIdx]! >= w[which === 0 ? W.listAN : W.listBN]!
  }

  /** A gather buffer for blocks that straddle iovecs (0 bytes: chain the CRC instead). */
  bounce(address: number, capacity: number): void {
    const w = this.#views()
    w[W.bounce] = address
    w[W.bounceCap] = capacity
  }

  run(): DifStatusCode {
    this.#views()
    return this.kernels.abi.dif(this.kernels.scratch) as DifStatusCode
  }

  /** Blocks finished so far. */
  get block(): number {
    return this.#views()[W.block]!
  }

  /** Position inside the current block: 0 when the job is between blocks. */
  get position(): number {
    return this.#views()[W.pos]!
  }

  /** The raw CRC-32C register of a Crc32c job. */
  get crc32Register(): number {
    return this.#views()[W.crc32]!
  }

  set crc32Register(reg: number) {
    this.#views()[W.crc32] = reg >>> 0
  }

  /** The first failure of a verify or remap job. */
  error(): { kind: number; block: number; expected: bigint; actual: bigint } {
    const w = this.#views()
    return { kind: w[W.errKind]!, block: w[W.errBlock]!, expected: u64(w, W.expected), actual: u64(w, W.actual) }
  }

  /** Copies the resumable state (not the parameters or lists) out, for a stream to keep. */
  saveState(into: Uint32Array): void {
    into.set(this.#views().subarray(W.block, W.errKind))
  }

  /** Puts state saved by saveState back. */
  restoreState(from: Uint32Array): void {
    this.#views().set(from.subarray(0, DIF_STATE_WORDS), W.block)
  }
}
