// The T10 / NVMe protection information engine: one call walks a request's iovecs, block
// by block, computing each block's guard with the CRC kernels and generating, verifying or
// remapping its PI tuple. The semantics follow SPDK lib/util/dif.c (generate, verify,
// insert copy, strip copy, DIX, ref tag remap, CRC32C over data) so that the bytes match
// what SPDK, Linux and NVMe drives produce; @ipukit/dif holds the contexts and the API.
//
// A block, whatever the layout, is walked as one sequence of dataBlockSize data bytes
// followed by mdSize metadata bytes:
//
//   data cursor                        metadata cursor
//   +----------------------------+ +-------------+----------+--------------+
//   | data (dataBlockSize)       | | md before   | PI tuple | md after PI  |
//   +----------------------------+ +-------------+----------+--------------+
//   <------------- guard (CRC) ---------------->  piOffset    piSize
//                  (the md before the PI only when COVER_MD)
//
//   interleaved (DIF, extended LBA): both cursors are the same iovec list, in order;
//   DIX: data from list A, metadata from list B;
//   insert copy (generate_copy): data read from B (data only), written to A (extended);
//   strip copy (verify_copy): data read from A (extended), written to B (data only).
//
// PI tuples, big-endian (NVM Command Set 1.0d §5.2.1; no storage tag, as in SPDK):
//
//   16b guard, 8 bytes       | guard 16 | app tag 16 | ref tag 32 |
//   32b guard, 16 bytes      | guard 32 | app tag 16 | 0 (16)  | ref tag 64 |
//   64b guard, 16 bytes      | guard 64 | app tag 16 | ref tag 48 |
//
// A block whose pieces straddle iovecs has its guard bytes gathered into a bounce buffer
// (when one is given and large enough) so the CRC still runs over one contiguous span
// with the fast filters; otherwise the CRC is chained over the pieces. The whole state is
// in the job, so a request can be fed in several calls (streaming).
import { crc16_update } from './crc16-t10dif'
import { crc32c_update } from './crc32c'
import { crc64_update } from './crc64-nvme'

// ---- operations ----
export const DIF_OP_GENERATE: u32 = 1
export const DIF_OP_VERIFY: u32 = 2
export const DIF_OP_REMAP: u32 = 3
export const DIF_OP_CRC32C: u32 = 4
export const DIF_OP_GENERATE_COPY: u32 = 5
export const DIF_OP_VERIFY_COPY: u32 = 6
export const DIF_OP_DIX_GENERATE: u32 = 7
export const DIF_OP_DIX_VERIFY: u32 = 8
export const DIF_OP_DIX_REMAP: u32 = 9

// ---- flags ----
const F_GUARD: u32 = 1 // check (verify) or fill in (generate) the guard
const F_APPTAG: u32 = 2
const F_REFTAG: u32 = 4
const F_COVER_MD: u32 = 8 // the guard covers the metadata bytes before the PI
const F_REF_ALL_ONES: u32 = 16 // generate writes an all-ones ref tag (SPDK_DIF_REFTAG_IGNORE)
const F_REMAP_CHECK: u32 = 32 // remap checks the old ref tag first

// ---- results ----
export const DIF_DONE: i32 = 0
export const DIF_ERROR: i32 = 1
export const DIF_NEED_INPUT: i32 = 2
const ERR_GUARD: u32 = 1
const ERR_APPTAG: u32 = 2
const ERR_REFTAG: u32 = 3

// ---- job layout (bytes from the job's start; the TypeScript side mirrors it) ----
//  parameters
const J_OP: usize = 0
export const J_DBS: usize = 4 //          data block size
export const J_MDS: usize = 8 //          metadata size
const J_PIOFF: usize = 12 //       PI offset inside the metadata
const J_PISIZE: usize = 16 //      8 or 16
const J_FORMAT: usize = 20 //      16, 32 or 64
const J_TYPE: usize = 24 //        0..3
const J_FLAGS: usize = 28
const J_APPTAG: usize = 32
const J_APPMASK: usize = 36
const J_REFBASE: usize = 40 //     u64: ref tag of block 0 of the job
const J_REMAPBASE: usize = 48 //   u64: new ref tag of block 0 (remap)
const J_SEED: usize = 56 //        u64: guard seed
export const J_IOVA: usize = 64 //        iovec list A: address of (addr u32, len u32) pairs
export const J_IOVA_N: usize = 68
const J_IOVB: usize = 72
const J_IOVB_N: usize = 76
const J_BOUNCE: usize = 80
const J_BOUNCE_CAP: usize = 84
export const J_BLOCKS: usize = 88 //      stop after this many blocks (counted from the job's start)
//  resumable state
export const J_BLOCK: usize = 96 //       blocks finished
const J_POS: usize = 100 //       position in the current block, [0, dbs + mds)
const J_A_IDX: usize = 104
const J_A_OFF: usize = 108
const J_B_IDX: usize = 112
const J_B_OFF: usize = 116
const J_CRC: usize = 120 //       u64: guard register of the current block
const J_PIFILL: usize = 128
const J_BFILL: usize = 132 //     bytes gathered in the bounce buffer
const J_PIBUF: usize = 136 //     16 bytes: the PI tuple being assembled
const J_CRC32: usize = 152 //     u32: CRC-32C register (DIF_OP_CRC32C)
const J_PIADDR: usize = 160 //    16 x u32: where each PI byte lies (remap writes back)
//  result
const J_ERRKIND: usize = 224
const J_ERRBLOCK: usize = 228
const J_EXPECTED: usize = 232 //   u64
const J_ACTUAL: usize = 240 //     u64
export const DIF_JOB_SIZE: u32 = 256

// @ts-ignore: decorator
@inline function widthMask(format: u32): u64 {
  return format == 16 ? 0xffffffff : format == 32 ? 0xffffffffffffffff : 0xffffffffffff
}

/** Guard register before the first byte of a block (CRC16 keeps it plain; the others invert). */
// @ts-ignore: decorator
@inline function guardInit(format: u32, seed: u64): u64 {
  return format == 16 ? seed & 0xffff : format == 32 ? ~seed & 0xffffffff : ~seed
}

// @ts-ignore: decorator
@inline function guardFinal(format: u32, reg: u64): u64 {
  return format == 16 ? reg : format == 32 ? ~reg & 0xffffffff : ~reg
}

// @ts-ignore: decorator
@inline function guardUpdate(format: u32, reg: u64, p: usize, n: usize, crcScratch: usize): u64 {
  if (format == 16) return <u64>crc16_update(<u32>reg, p, n, crcScratch)
  if (format == 32) return <u64>crc32c_update(<u32>reg, p, n, crcScratch)
  return crc64_update(reg, p, n, crcScratch)
}

/** Writes the PI tuple for `guard`, `app`, `ref` at pi (big-endian). */
// @ts-ignore: decorator
@inline function storePi(pi: usize, format: u32, guard: u64, app: u32, ref: u64): void {
  if (format == 16) {
    store<u16>(pi, bswap<u16>(<u16>guard))
    store<u16>(pi, bswap<u16>(<u16>app), 2)
    store<u32>(pi, bswap<u32>(<u32>ref), 4)
  } else if (format == 32) {
    store<u32>(pi, bswap<u32>(<u32>guard))
    store<u16>(pi, bswap<u16>(<u16>app), 4)
    store<u16>(pi, 0, 6)
    store<u64>(pi, bswap<u64>(ref), 8)
  } else {
    store<u64>(pi, bswap<u64>(guard))
    store<u16>(pi, bswap<u16>(<u16>app), 8)
    store<u16>(pi, bswap<u16>(<u16>(ref >> 32)), 10)
    store<u32>(pi, bswap<u32>(<u32>ref), 12)
  }
}

// @ts-ignore: decorator
@inline function piGuard(pi: usize, format: u32): u64 {
  if (format == 16) return <u64>bswap<u16>(load<u16>(pi))
  if (format == 32) return <u64>bswap<u32>(load<u32>(pi))
  return bswap<u64>(load<u64>(pi))
}

// @ts-ignore: decorator
@inline function piApp(pi: usize, format: u32): u32 {
  return <u32>bswap<u16>(load<u16>(pi + (format == 16 ? 2 : format == 32 ? 4 : 8)))
}

// @ts-ignore: decorator
@inline function piRef(pi: usize, format: u32): u64 {
  if (format == 16) return <u64>bswap<u32>(load<u32>(pi, 4))
  if (format == 32) return bswap<u64>(load<u64>(pi, 8))
  return (<u64>bswap<u16>(load<u16>(pi, 10)) << 32) | <u64>bswap<u32>(load<u32>(pi, 12))
}

// @ts-ignore: decorator
@inline function setPiRef(pi: usize, format: u32, ref: u64): void {
  if (format == 16) store<u32>(pi, bswap<u32>(<u32>ref), 4)
  else if (format == 32) store<u64>(pi, bswap<u64>(ref), 8)
  else {
    store<u16>(pi, bswap<u16>(<u16>(ref >> 32)), 10)
    store<u32>(pi, bswap<u32>(<u32>ref), 12)
  }
}

/** The ref tag block `block` carries: +1 per block for types 1 and 2, constant for type 3. */
// @ts-ignore: decorator
@inline function refFor(base: u64, block: u32, type: u32, format: u32): u64 {
  return (type == 3 ? base : base + <u64>block) & widthMask(format)
}

/**
 * SPDK _dif_ignore: app tag 0xFFFF turns checking off for a block of type 1 or 2; type 3
 * needs app tag 0xFFFF and an all-ones ref tag as well.
 */
// @ts-ignore: decorator
@inline function ignored(pi: usize, format: u32, type: u32): bool {
  if (piApp(pi, format) != 0xffff) return false
  return type != 3 || piRef(pi, format) == widthMask(format)
}

/**
 * Checks the PI at pi for block `block` against the job (SPDK _dif_verify order: guard,
 * app tag, ref tag). Records the first failure in the job and returns false.
 */
function checkPi(job: usize, pi: usize, guard: u64, block: u32): bool {
  const format = load<u32>(job, J_FORMAT)
  const type = load<u32>(job, J_TYPE)
  const flags = load<u32>(job, J_FLAGS)
  if (ignored(pi, format, type)) return true
  if (flags & F_GUARD) {
    const stored = piGuard(pi, format)
    if (stored != guard) return fail(job, ERR_GUARD, block, stored, guard)
  }
  if (flags & F_APPTAG) {
    const mask = load<u32>(job, J_APPMASK)
    const app = load<u32>(job, J_APPTAG)
    const stored = piApp(pi, format)
    if ((stored & mask) != (app & mask)) return fail(job, ERR_APPTAG, block, <u64>app, <u64>(stored & mask))
  }
  if (flags & F_REFTAG && type != 3) {
    const want = refFor(load<u64>(job, J_REFBASE), block, type, format)
    const stored = piRef(pi, format)
    if (stored != want) return fail(job, ERR_REFTAG, block, want, stored)
  }
  return true
}

function fail(job: usize, kind: u32, block: u32, expected: u64, actual: u64): bool {
  store<u32>(job, kind, J_ERRKIND)
  store<u32>(job, block, J_ERRBLOCK)
  store<u64>(job, expected, J_EXPECTED)
  store<u64>(job, actual, J_ACTUAL)
  return false
}

/** Builds the PI of a generated block (SPDK _dif_generate: unchecked fields are written 0). */
function buildPi(job: usize, pi: usize, guard: u64, block: u32): void {
  const format = load<u32>(job, J_FORMAT)
  const flags = load<u32>(job, J_FLAGS)
  let ref: u64 = 0
  if (flags & F_REFTAG) {
    ref = flags & F_REF_ALL_ONES ? widthMask(format) : refFor(load<u64>(job, J_REFBASE), block, load<u32>(job, J_TYPE), format)
  }
  storePi(pi, format, flags & F_GUARD ? guard : 0, flags & F_APPTAG ? load<u32>(job, J_APPTAG) : 0, ref)
}

/**
 * Remaps the PI at pi (SPDK _dif_remap_ref_tag): skips ignored blocks, optionally checks the
 * old ref tag (types 1 and 2), then writes the new one. Returns false on a mismatch.
 */
function remapPi(job: usize, pi: usize, block: u32): bool {
  const format = load<u32>(job, J_FORMAT)
  const type = load<u32>(job, J_TYPE)
  if (ignored(pi, format, type)) return true
  if (load<u32>(job, J_FLAGS) & F_REMAP_CHECK && type != 3) {
    const want = refFor(load<u64>(job, J_REFBASE), block, type, format)
    const stored = piRef(pi, format)
    if (stored != want) return fail(job, ERR_REFTAG, block, want, stored)
  }
  setPiRef(pi, format, refFor(load<u64>(job, J_REMAPBASE), block, type, format))
  return true
}

/**
 * Copies n bytes between non-overlapping places. V8 runs a bulk memory.copy on a shared
 * memory through a runtime call that costs a few hundred nanoseconds, which dominated the
 * split-iovec path (pieces of a block, PI tuples of 8 or 16 bytes); a SIMD loop with an
 * overlapping last word does not.
 */
// @ts-ignore: decorator
@inline function copyBytes(dst: usize, src: usize, n: usize): void {
  if (n >= 16) {
    let i: usize = 0
    for (; i + 64 <= n; i += 64) {
      const a = v128.load(src + i)
      const b = v128.load(src + i, 16)
      const c = v128.load(src + i, 32)
      const d = v128.load(src + i, 48)
      v128.store(dst + i, a)
      v128.store(dst + i, b, 16)
      v128.store(dst + i, c, 32)
      v128.store(dst + i, d, 48)
    }
    for (; i + 16 <= n; i += 16) v128.store(dst + i, v128.load(src + i))
    if (i < n) v128.store(dst + n - 16, v128.load(src + n - 16))
  } else {
    for (let i: usize = 0; i < n; i++) store<u8>(dst + i, load<u8>(src + i))
  }
}

// ---- cursors over iovec lists ----
// Two cursors, A and B, walk (address u32, length u32) pairs. Their registers live in this
// instance's globals while dif_run works (a thread's own instance, so no sharing), loaded
// from the job on entry and stored back on exit: the per-piece walk then costs a compare
// and an add, not a round trip through memory.
let aList: usize = 0
let aCount: u32 = 0
let aIdx: u32 = 0
let aOff: u32 = 0
let aBase: usize = 0
let aLen: u32 = 0
let bList: usize = 0
let bCount: u32 = 0
let bIdx: u32 = 0
let bOff: u32 = 0
let bBase: usize = 0
let bLen: u32 = 0

function cursorsIn(job: usize): void {
  aList = <usize>load<u32>(job, J_IOVA)
  aCount = load<u32>(job, J_IOVA_N)
  aIdx = load<u32>(job, J_A_IDX)
  aOff = load<u32>(job, J_A_OFF)
  aBase = aIdx < aCount ? <usize>load<u32>(aList + (<usize>aIdx << 3)) : 0
  aLen = aIdx < aCount ? load<u32>(aList + (<usize>aIdx << 3), 4) : 0
  bList = <usize>load<u32>(job, J_IOVB)
  bCount = load<u32>(job, J_IOVB_N)
  bIdx = load<u32>(job, J_B_IDX)
  bOff = load<u32>(job, J_B_OFF)
  bBase = bIdx < bCount ? <usize>load<u32>(bList + (<usize>bIdx << 3)) : 0
  bLen = bIdx < bCount ? load<u32>(bList + (<usize>bIdx << 3), 4) : 0
}

function cursorsOut(job: usize): void {
  store<u32>(job + J_A_IDX, aIdx)
  store<u32>(job + J_A_OFF, aOff)
  store<u32>(job + J_B_IDX, bIdx)
  store<u32>(job + J_B_OFF, bOff)
}

/** Bytes left in cursor w's current iovec, moving past used-up (or empty) ones; 0 at the end. */
// @ts-ignore: decorator
@inline function avail(w: u32): u32 {
  if (w == 0) {
    while (aOff >= aLen) {
      if (aIdx >= aCount) return 0
      aIdx++
      aOff = 0
      if (aIdx >= aCount) {
        aLen = 0
        return 0
      }
      aBase = <usize>load<u32>(aList + (<usize>aIdx << 3))
      aLen = load<u32>(aList + (<usize>aIdx << 3), 4)
    }
    return aLen - aOff
  }
  while (bOff >= bLen) {
    if (bIdx >= bCount) return 0
    bIdx++
    bOff = 0
    if (bIdx >= bCount) {
      bLen = 0
      return 0
    }
    bBase = <usize>load<u32>(bList + (<usize>bIdx << 3))
    bLen = load<u32>(bList + (<usize>bIdx << 3), 4)
  }
  return bLen - bOff
}

// @ts-ignore: decorator
@inline function here(w: u32): usize {
  return w == 0 ? aBase + <usize>aOff : bBase + <usize>bOff
}

// @ts-ignore: decorator
@inline function advance(w: u32, n: u32): void {
  if (w == 0) aOff += n
  else bOff += n
}

/**
 * Runs the job until `J_BLOCKS` blocks are done (DIF_DONE), a check fails (DIF_ERROR, details
 * in the job) or an iovec list runs out first (DIF_NEED_INPUT; give more and call again).
 */
export function dif_run(job: usize, crcScratch: usize): i32 {
  const op = load<u32>(job, J_OP)
  // a DIX remap touches only the metadata: walk blocks of metadata alone
  const dbs: u32 = op == DIF_OP_DIX_REMAP ? 0 : load<u32>(job, J_DBS)
  const mds = load<u32>(job, J_MDS)
  const piOff = load<u32>(job, J_PIOFF)
  const piSize = load<u32>(job, J_PISIZE)
  const format = load<u32>(job, J_FORMAT)
  const flags = load<u32>(job, J_FLAGS)
  const seedReg = guardInit(format, load<u64>(job, J_SEED))
  const bounce = <usize>load<u32>(job, J_BOUNCE)
  const bounceCap = load<u32>(job, J_BOUNCE_CAP)
  const blocks = load<u32>(job, J_BLOCKS)
  const ext = dbs + mds
  // type 0 (PI off): the copy operations still move data, but no PI is read or written
  const piOn = load<u32>(job, J_TYPE) != 0
  const generating = piOn && (op == DIF_OP_GENERATE || op == DIF_OP_GENERATE_COPY || op == DIF_OP_DIX_GENERATE)
  const verifying = piOn && (op == DIF_OP_VERIFY || op == DIF_OP_VERIFY_COPY || op == DIF_OP_DIX_VERIFY)
  const remapping = piOn && (op == DIF_OP_REMAP || op == DIF_OP_DIX_REMAP)
  const dix = op >= DIF_OP_DIX_GENERATE
  const insert = op == DIF_OP_GENERATE_COPY
  const strip = op == DIF_OP_VERIFY_COPY
  const crc32Op = op == DIF_OP_CRC32C
  // the guard is computed only when something will use it
  const needGuard = (flags & F_GUARD) != 0 && (generating || verifying)
  const guardLen = dbs + (flags & F_COVER_MD ? piOff : 0) // (no guard is computed for DIX remap)
  // cursor roles: data is read from D (and written to C when copying), metadata from M;
  // X is the side that carries the metadata (the extended list when copying)
  const D: u32 = insert ? 1 : 0
  const M: u32 = dix ? 1 : 0
  const copying = insert || strip
  const C: u32 = insert ? 0 : 1
  const X: u32 = insert ? C : M
  cursorsIn(job)

  let block = load<u32>(job, J_BLOCK)
  let pos = load<u32>(job, J_POS)
  let crc = pos == 0 ? seedReg : load<u64>(job, J_CRC)
  let crc32 = load<u32>(job, J_CRC32)
  let bfill = load<u32>(job, J_BFILL)
  let pifill = load<u32>(job, J_PIFILL)
  const pibuf = job + J_PIBUF
  let status = DIF_DONE

  while (block < blocks) {
    if (pos == 0) {
      // ---- fast path: the whole block lies in one iovec of each list it touches ----
      const ad = avail(D)
      const am = dix ? avail(M) : ad
      const ac = copying ? avail(C) : 0
      const whole = dix
        ? ad >= dbs && am >= mds
        : insert
          ? ad >= dbs && ac >= ext
          : strip
            ? ad >= ext && ac >= dbs
            : ad >= ext
      if (whole) {
        const d = here(D)
        // the block in its metadata-carrying list (the extended side when copying)
        const m = insert ? here(C) : dix ? here(M) : d
        if (insert) memory.copy(m, d, dbs)
        else if (strip) memory.copy(here(C), d, dbs)
        const md = dix ? m : m + dbs
        let guard: u64 = 0
        if (needGuard) {
          // interleaved: data and the md before the PI are contiguous
          let reg = guardUpdate(format, seedReg, dix ? d : m, dix ? dbs : guardLen, crcScratch)
          if (dix && guardLen > dbs) reg = guardUpdate(format, reg, md, guardLen - dbs, crcScratch)
          guard = guardFinal(format, reg)
        }
        if (crc32Op) crc32 = crc32c_update(crc32, d, dbs, crcScratch)
        const pi = md + piOff
        if (generating) buildPi(job, pi, guard, block)
        else if (verifying) {
          if (!checkPi(job, pi, guard, block)) {
            status = DIF_ERROR
            break
          }
        } else if (remapping) {
          if (!remapPi(job, pi, block)) {
            status = DIF_ERROR
            break
          }
        }
        // advance every list past the block
        if (dix) {
          advance(D, dbs)
          advance(M, mds)
        } else if (insert) {
          advance(D, dbs)
          advance(C, ext)
        } else if (strip) {
          advance(D, ext)
          advance(C, dbs)
        } else advance(D, ext)
        block++
        continue
      }
    }

    // ---- a straddling block of an in-place interleaved job: gather its guard bytes in one
    // tight loop (the common split case: iovecs cut by pages or PDUs) ----
    if (pos == 0 && needGuard && !dix && !copying && guardLen <= bounceCap) {
      let need = guardLen
      while (need > 0) {
        let n = avail(D)
        if (n == 0) break
        if (n > need) n = need
        copyBytes(bounce + bfill, here(D), n)
        advance(D, n)
        bfill += n
        need -= n
      }
      pos = guardLen - need
      if (need > 0) {
        status = DIF_NEED_INPUT
        break
      }
      // the rest of the block (its metadata) usually lies in one piece: finish it in place
      if (avail(D) >= ext - pos) {
        const pi = here(D) + (dbs + piOff - pos)
        crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
        bfill = 0
        const guard = guardFinal(format, crc)
        if (generating) buildPi(job, pi, guard, block)
        else if (verifying) {
          if (!checkPi(job, pi, guard, block)) {
            status = DIF_ERROR
            break
          }
        }
        advance(D, ext - pos)
        block++
        pos = 0
        crc = seedReg
        continue
      }
      // otherwise the metadata and the PI go through the general path below
    }

    // ---- slow path: one piece at a time ----
    if (pos < dbs) {
      // data bytes
      let n = avail(D)
      if (copying) {
        const nc = avail(C)
        if (nc < n) n = nc
      }
      if (n > dbs - pos) n = dbs - pos
      if (n == 0) {
        status = DIF_NEED_INPUT
        break
      }
      const src = here(D)
      if (copying) copyBytes(here(C), src, n)
      if (needGuard) {
        if (bfill + n <= bounceCap) {
          copyBytes(bounce + bfill, src, n)
          bfill += n
        } else {
          if (bfill) crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
          bfill = 0
          crc = guardUpdate(format, crc, src, n, crcScratch)
        }
      }
      if (crc32Op) crc32 = crc32c_update(crc32, src, n, crcScratch)
      advance(D, n)
      if (copying) advance(C, n)
      pos += n
    } else {
      const mpos = pos - dbs
      let n = avail(X)
      if (n == 0) {
        status = DIF_NEED_INPUT
        break
      }
      const p = here(X)
      if (mpos < piOff) {
        // metadata before the PI: part of the guard when COVER_MD
        if (n > piOff - mpos) n = piOff - mpos
        if (needGuard && flags & F_COVER_MD) {
          if (bfill + n <= bounceCap) {
            copyBytes(bounce + bfill, p, n)
            bfill += n
          } else {
            if (bfill) crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
            bfill = 0
            crc = guardUpdate(format, crc, p, n, crcScratch)
          }
        }
      } else if (mpos < piOff + piSize && (generating || verifying || remapping)) {
        // the PI tuple, possibly in pieces
        if (pifill == 0 && generating) {
          if (bfill) crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
          bfill = 0
          buildPi(job, pibuf, guardFinal(format, crc), block)
        }
        if (n > piSize - pifill) n = piSize - pifill
        if (generating) copyBytes(p, pibuf + pifill, n)
        else if (verifying || remapping) {
          copyBytes(pibuf + pifill, p, n)
          for (let i: u32 = 0; i < n; i++) store<u32>(job + J_PIADDR + (<usize>(pifill + i) << 2), <u32>(p + i))
        }
        pifill += n
        if (pifill == piSize) {
          if (verifying) {
            if (bfill) crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
            bfill = 0
            if (!checkPi(job, pibuf, guardFinal(format, crc), block)) {
              status = DIF_ERROR
              break
            }
          } else if (remapping) {
            if (!remapPi(job, pibuf, block)) {
              status = DIF_ERROR
              break
            }
            for (let i: u32 = 0; i < piSize; i++) {
              store<u8>(<usize>load<u32>(job + J_PIADDR + (<usize>i << 2)), load<u8>(pibuf + i))
            }
          }
        }
      } else {
        // metadata after the PI (or the PI itself when nothing reads or writes it)
        if (n > mds - mpos) n = mds - mpos
      }
      advance(X, n)
      pos += n
    }
    if (pos == ext) {
      block++
      pos = 0
      crc = seedReg
      bfill = 0
      pifill = 0
    }
  }
  // a partial block's gathered bytes go into the register, so the job carries no bounce data
  if (bfill) crc = guardUpdate(format, crc, bounce, bfill, crcScratch)
  cursorsOut(job)
  store<u32>(job + J_BLOCK, block)
  store<u32>(job + J_POS, pos)
  store<u64>(job + J_CRC, crc)
  store<u32>(job + J_CRC32, crc32)
  store<u32>(job + J_BFILL, 0)
  store<u32>(job + J_PIFILL, pifill)
  return status
}

/**
 * Per-block guard CRCs, nothing else: `n` blocks of `len` bytes every `stride` bytes from p,
 * each from the format's initial register, results (u64) at out. The floor the PI engine is
 * measured against: the same CRC work, in the same loop, without the PI.
 */
export function crc_blocks(format: u32, p: usize, n: u32, stride: u32, len: u32, seed: u64, out: usize, crcScratch: usize): void {
  const init = guardInit(format, seed)
  for (let i: u32 = 0; i < n; i++) {
    store<u64>(out + (<usize>i << 3), guardFinal(format, guardUpdate(format, init, p, len, crcScratch)))
    p += stride
  }
}
