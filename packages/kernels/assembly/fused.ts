// Kernels over scatter-gather lists, and the fused pairs of the accel framework's platform
// driver (@ipukit/accel): each makes one pass over the data, block by block, so a byte is
// read from memory once and written once, and the second operation finds it in L1.
//
//   xts_lists                AES-XTS, src list -> dst list (in place when they are the same)
//   xts_dif_generate         encrypt, then dif_generate_copy: data-only src -> extended dst,
//                            ciphertext + PI (SPDK: encrypt -> dif_generate_copy)
//   dif_verify_xts_decrypt   dif_verify_copy, then decrypt: extended src -> data-only dst
//   copy_crc32c_lists        copy + CRC-32C of the bytes (SPDK copy_crc32c)
//
// The DIF side runs the PI engine (assembly/dif.ts) on the job the caller prepared: its
// list A is the extended buffer, and the engine is stepped a group of blocks at a time
// (J_BLOCKS) right after (generate) or right before (verify) the cipher touches the same
// group, a group being as many blocks as fit in 32 KiB. Blocks that straddle iovecs are
// gathered into and scattered out of the caller's bounce buffer, one data unit at a time.
//
// Results: FUSED_OK, FUSED_PI_ERROR (the job holds the failing block and fields), or a
// negative code when a list is shorter than the work or a straddling unit does not fit
// the bounce buffer (the TypeScript side checks both first; these are the last guard).
import { AES_XTS_SCRATCH_SIZE, xts, xtsUnits } from './aes-xts'
import { crc32c_update } from './crc32c'
import { DIF_DONE, DIF_ERROR, dif_run, J_BLOCKS, J_DBS, J_IOVA, J_IOVA_N, J_MDS } from './dif'
import { curAvail, curGather, curHere, curInit, curScatter, curSkip, curStep } from './iov'

export const FUSED_OK: i32 = 0
export const FUSED_PI_ERROR: i32 = 1
export const FUSED_SHORT: i32 = -1
export const FUSED_BOUNCE: i32 = -2

/** Bytes a group of blocks may span: the fused pairs revisit a group while it is in L1. */
const GROUP_BYTES: u32 = 32768
/** copy + crc32c works in chunks that stay in L2 between the copy and the CRC. */
const COPY_CRC_CHUNK: u32 = 262144

/** Adds `k` to the 128-bit little-endian tweak at `tw`. */
// @ts-ignore: decorator
@inline function tweakAdd(tw: usize, k: u64): void {
  const lo = load<u64>(tw)
  const n = lo + k
  store<u64>(tw, n)
  if (n < lo) store<u64>(tw, load<u64>(tw, 8) + 1, 8)
}

/**
 * How many of the next `max` units of `unit` bytes lie whole in the current pair of both
 * cursors, unit u at u * stride on each side (the last unit needs only `unit` bytes, not a
 * whole stride). 0 when not even one does: that unit straddles iovecs (unitThrough).
 */
function runOf(s: usize, sStride: u32, unit: u32, d: usize, dStride: u32, max: u32): u32 {
  const as = curAvail(s)
  const ad = curAvail(d)
  if (as < unit || ad < unit) return 0
  let k = (as - unit) / sStride + 1
  const kd = (ad - unit) / dStride + 1
  if (kd < k) k = kd
  return k < max ? k : max
}

/** One data unit from cursor s to cursor d through the cipher, gathering/scattering if it straddles. */
function unitThrough(ctx: usize, dec: bool, s: usize, d: usize, unit: u32, tw: usize, bounce: usize, bounceCap: u32, xs: usize): i32 {
  const as = curAvail(s)
  const ad = curAvail(d)
  if (as >= unit && ad >= unit) {
    xts(ctx, curHere(s), curHere(d), unit, unit, load<u64>(tw), load<u64>(tw, 8), xs, dec, false)
    curStep(s, unit)
    curStep(d, unit)
  } else {
    if (as == 0 || ad == 0) return FUSED_SHORT
    if (unit > bounceCap) return FUSED_BOUNCE
    if (!curGather(s, bounce, unit)) return FUSED_SHORT
    xts(ctx, bounce, bounce, unit, unit, load<u64>(tw), load<u64>(tw, 8), xs, dec, false)
    if (!curScatter(d, bounce, unit)) return FUSED_SHORT
  }
  tweakAdd(tw, 1)
  return FUSED_OK
}

/**
 * XTS over `nbytes` (whole units) from cursor `s` to cursor `d`; runs of units that are
 * contiguous on both sides go to the cipher in one call. The tweak at `tw` advances.
 */
export function xts_lists(ctx: usize, dec: bool, s: usize, d: usize, nbytes: u32, unit: u32, tw: usize, bounce: usize, bounceCap: u32, xs: usize): i32 {
  let left = nbytes
  let rc = FUSED_OK
  while (left > 0) {
    const as = curAvail(s)
    const ad = curAvail(d)
    if (as >= unit && ad >= unit) {
      let k = as < ad ? as : ad
      if (k > left) k = left
      k -= k % unit
      xts(ctx, curHere(s), curHere(d), k, unit, load<u64>(tw), load<u64>(tw, 8), xs, dec, false)
      curStep(s, k)
      curStep(d, k)
      left -= k
      tweakAdd(tw, <u64>(k / unit))
    } else {
      rc = unitThrough(ctx, dec, s, d, unit, tw, bounce, bounceCap, xs)
      if (rc != FUSED_OK) break
      left -= unit
    }
  }
  memory.fill(xs, 0, AES_XTS_SCRATCH_SIZE)
  if (bounceCap > 0 && bounce != 0) memory.fill(bounce, 0, unit <= bounceCap ? unit : bounceCap)
  return rc
}

/**
 * encrypt + dif_generate_copy: `nblocks` data units from cursor `s` (data only) are
 * encrypted into the data areas of the job's list A (extended), then the PI engine
 * generates each group's PI over the ciphertext.
 */
export function xts_dif_generate(ctx: usize, s: usize, d: usize, nblocks: u32, tw: usize, job: usize, bounce: usize, bounceCap: u32, crcScratch: usize, xs: usize): i32 {
  const dbs = load<u32>(job, J_DBS)
  const mds = load<u32>(job, J_MDS)
  curInit(d, <usize>load<u32>(job, J_IOVA), load<u32>(job, J_IOVA_N))
  let group = GROUP_BYTES / (dbs + mds)
  if (group == 0) group = 1
  let done: u32 = 0
  let rc = FUSED_OK
  while (done < nblocks) {
    const g = nblocks - done < group ? nblocks - done : group
    for (let b: u32 = 0; b < g; ) {
      // the units contiguous in both lists go to the cipher together (one tweak batch per 8)
      const k = runOf(s, dbs, dbs, d, dbs + mds, g - b)
      if (k > 0) {
        xtsUnits(ctx, curHere(s), dbs, curHere(d), dbs + mds, k, dbs, load<u64>(tw), load<u64>(tw, 8), xs, false, false)
        curStep(s, k * dbs)
        curStep(d, (k - 1) * (dbs + mds) + dbs)
        tweakAdd(tw, <u64>k)
        b += k
      } else {
        rc = unitThrough(ctx, false, s, d, dbs, tw, bounce, bounceCap, xs)
        if (rc != FUSED_OK) break
        b++
      }
      if (!curSkip(d, mds)) {
        rc = FUSED_SHORT
        break
      }
    }
    if (rc != FUSED_OK) break
    done += g
    store<u32>(job, done, J_BLOCKS)
    const st = dif_run(job, crcScratch)
    if (st != DIF_DONE) {
      rc = st == DIF_ERROR ? FUSED_PI_ERROR : FUSED_SHORT
      break
    }
  }
  memory.fill(xs, 0, AES_XTS_SCRATCH_SIZE)
  if (bounceCap > 0 && bounce != 0) memory.fill(bounce, 0, dbs <= bounceCap ? dbs : bounceCap)
  return rc
}

/**
 * dif_verify_copy + decrypt: the PI engine verifies a group of blocks of the job's list A
 * (extended), then their data areas are decrypted into cursor `d` (data only). A failed
 * check stops before the group is decrypted.
 */
export function dif_verify_xts_decrypt(ctx: usize, s: usize, d: usize, nblocks: u32, tw: usize, job: usize, bounce: usize, bounceCap: u32, crcScratch: usize, xs: usize): i32 {
  const dbs = load<u32>(job, J_DBS)
  const mds = load<u32>(job, J_MDS)
  curInit(s, <usize>load<u32>(job, J_IOVA), load<u32>(job, J_IOVA_N))
  let group = GROUP_BYTES / (dbs + mds)
  if (group == 0) group = 1
  let done: u32 = 0
  let rc = FUSED_OK
  while (done < nblocks) {
    const g = nblocks - done < group ? nblocks - done : group
    store<u32>(job, done + g, J_BLOCKS)
    const st = dif_run(job, crcScratch)
    if (st != DIF_DONE) {
      rc = st == DIF_ERROR ? FUSED_PI_ERROR : FUSED_SHORT
      break
    }
    for (let b: u32 = 0; b < g; ) {
      const k = runOf(s, dbs + mds, dbs, d, dbs, g - b)
      if (k > 0) {
        xtsUnits(ctx, curHere(s), dbs + mds, curHere(d), dbs, k, dbs, load<u64>(tw), load<u64>(tw, 8), xs, true, false)
        curStep(s, (k - 1) * (dbs + mds) + dbs)
        curStep(d, k * dbs)
        tweakAdd(tw, <u64>k)
        b += k
      } else {
        rc = unitThrough(ctx, true, s, d, dbs, tw, bounce, bounceCap, xs)
        if (rc != FUSED_OK) break
        b++
      }
      if (!curSkip(s, mds)) {
        rc = FUSED_SHORT
        break
      }
    }
    if (rc != FUSED_OK) break
    done += g
  }
  memory.fill(xs, 0, AES_XTS_SCRATCH_SIZE)
  if (bounceCap > 0 && bounce != 0) memory.fill(bounce, 0, dbs <= bounceCap ? dbs : bounceCap)
  return rc
}

/**
 * Copies `nbytes` from cursor `s` to cursor `d` and returns the CRC-32C register after
 * them (raw: the caller inverts). Chunks of at most 256 KiB are copied and then summed
 * while they are still in L2 (smaller chunks pay the CRC's per-call cost more often than
 * they save). `status` receives FUSED_OK or FUSED_SHORT.
 */
export function copy_crc32c_lists(s: usize, d: usize, nbytes: u32, crc: u32, crcScratch: usize, status: usize): u32 {
  let left = nbytes
  store<i32>(status, FUSED_OK)
  while (left > 0) {
    const as = curAvail(s)
    const ad = curAvail(d)
    if (as == 0 || ad == 0) {
      store<i32>(status, FUSED_SHORT)
      return crc
    }
    let k = as < ad ? as : ad
    if (k > left) k = left
    if (k > COPY_CRC_CHUNK) k = COPY_CRC_CHUNK
    const dp = curHere(d)
    memory.copy(dp, curHere(s), k)
    crc = crc32c_update(crc, dp, k, crcScratch)
    curStep(s, k)
    curStep(d, k)
    left -= k
  }
  return crc
}
