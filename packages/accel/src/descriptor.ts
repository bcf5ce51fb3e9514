// The task descriptor: one operation, described in the shared memory so that any thread on
// it (the caller's, or a worker's) can run it with no message but its address. Buffers are
// system iovecs (translated and bounced before the descriptor is written); XTS keys are the
// addresses of their key schedules, which live in the same memory.
//
//   off   size  field
//     0      4  op          Opc value, or a FusedOpc code
//     4      4  flags       (reserved)
//     8      4  status      out: an AccelStatus
//    12      4  nbytes      bytes of work (the src side; data bytes for DIF operations)
//    16      8  src list    address u32, count u32 of (address u32, length u32) pairs;
//                           xor's sources, one pair each
//    24      8  dst list
//    32      8  src2 list   compare's second source
//    40      8  dst2 list   dualcast's second destination
//    48      4  seed        crc32c seed; fill byte
//    52      4  result      out: crc32c register, compress output size, compare offset
//    56      4  keyCtx      XTS key schedule address (Xts.contextAddress)
//    60      4  blockSize   XTS data unit bytes
//    64      8  iv          tweak of the first data unit (SIMPLE_LBA: the LBA), u64
//    72      4  level       compress level
//    76      4  (reserved)
//    80     40  DIF job     op, dataBlockSize, mdSize, piOffset, piSize, format, type,
//                           flags, appTag, appTagMask (u32 each)
//   120      8  refBase     u64
//   128      8  guardSeed   u64
//   136      4  numBlocks
//   140      4  (reserved)
//   144     24  DIF error   out: kind u32, block u32, expected u64, actual u64
//   168     88  (reserved)
//   256   2048  src pairs   (LIST_CAPACITY pairs)
//  2304   2048  dst pairs
//  4352    256  src2 pairs  (SMALL_LIST_CAPACITY pairs)
//  4608    256  dst2 pairs
//  4864    256  xor source addresses (u32)
//  5120         end

export const DESC_SIZE = 5120
export const LIST_CAPACITY = 256
export const SMALL_LIST_CAPACITY = 32

/** Byte offsets of the fields. */
export const D = {
  op: 0,
  flags: 4,
  status: 8,
  nbytes: 12,
  srcList: 16,
  srcCount: 20,
  dstList: 24,
  dstCount: 28,
  src2List: 32,
  src2Count: 36,
  dst2List: 40,
  dst2Count: 44,
  seed: 48,
  result: 52,
  keyCtx: 56,
  blockSize: 60,
  iv: 64,
  level: 72,
  difOp: 80,
  difDbs: 84,
  difMds: 88,
  difPiOffset: 92,
  difPiSize: 96,
  difFormat: 100,
  difType: 104,
  difFlags: 108,
  difAppTag: 112,
  difAppMask: 116,
  refBase: 120,
  guardSeed: 128,
  numBlocks: 136,
  errKind: 144,
  errBlock: 148,
  errExpected: 152,
  errActual: 160,
  srcPairs: 256,
  dstPairs: 2304,
  src2Pairs: 4352,
  dst2Pairs: 4608,
  xorSources: 4864,
} as const

/** u32 and u64 access to descriptors through one view of the memory (no per-call views). */
export class DescriptorView {
  readonly memory: WebAssembly.Memory
  u32: Uint32Array
  i32: Int32Array

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory
    this.u32 = new Uint32Array(memory.buffer)
    this.i32 = new Int32Array(memory.buffer)
  }

  get(desc: number, field: number): number {
    return this.u32[(desc + field) >>> 2]!
  }

  set(desc: number, field: number, value: number): void {
    this.u32[(desc + field) >>> 2] = value
  }

  getI(desc: number, field: number): number {
    return this.i32[(desc + field) >>> 2]!
  }

  setI(desc: number, field: number, value: number): void {
    this.i32[(desc + field) >>> 2] = value
  }

  /** A u64 field as a number (exact below 2^53) */
  get64(desc: number, field: number): number {
    const i = (desc + field) >>> 2
    return this.u32[i + 1]! * 0x100000000 + this.u32[i]!
  }

  get64n(desc: number, field: number): bigint {
    const i = (desc + field) >>> 2
    return (BigInt(this.u32[i + 1]!) << 32n) | BigInt(this.u32[i]!)
  }

  set64(desc: number, field: number, value: number | bigint): void {
    const i = (desc + field) >>> 2
    if (typeof value === 'number') {
      const lo = value % 0x100000000
      this.u32[i] = lo
      this.u32[i + 1] = (value - lo) / 0x100000000
    } else {
      this.u32[i] = Number(value & 0xffffffffn)
      this.u32[i + 1] = Number((value >> 32n) & 0xffffffffn)
    }
  }
}
