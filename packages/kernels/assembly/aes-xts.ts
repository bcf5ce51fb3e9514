// Constant-time AES-XTS (AES-128-XTS and AES-256-XTS) with WebAssembly SIMD.
//
// References
//   IEEE Std 1619-2007   XTS-AES, incl. ciphertext stealing (§5.3.2 encrypt, §5.4.2 decrypt).
//   FIPS-197             AES (round structure, key expansion, S-box affine map).
//   E. Käsper, P. Schwabe, "Faster and Timing-Attack Resistant AES-GCM", CHES 2009:
//                        the 8-blocks-in-8-registers bitsliced layout and the row-major
//                        byte order that turns MixColumns' row rotations into pshufd.
//   J. Boyar, R. Peralta, "A new combinational logic minimization technique with
//                        applications to cryptology" (ePrint 2009/191): the 113-gate S-box.
//   BearSSL (T. Pornin, MIT licence), src/symcipher/aes_ct.c br_aes_ct_bitslice_Sbox and
//                        aes_ct_dec.c br_aes_ct_bitslice_invSbox: the S-box gate list below
//                        is transcribed from there, and so is the inverse-S-box trick.
//
// Why bitsliced: a table-driven AES leaks key bytes through cache timing. Here no memory
// address and no branch depends on key, plaintext, ciphertext or tweak values; the only
// data-dependent work is bitwise logic, fixed shuffles, shifts and SIMD compares.
//
// Bitsliced state (8 blocks at a time, one v128 "plane" per bit):
//
//   block k (16 bytes, FIPS-197 column-major: byte 4c+r is state row r, column c)
//        |  load 8 blocks -> register k holds block k
//        |  byte reorder P: register byte 4r+c <- block byte 4c+r   (row-major)
//        |  12 swapmoves (8x8 bit transpose inside every byte position)
//        v
//   plane j (j = 0..7), register byte i = 4r+c:
//        bit k of that byte = bit j of state byte (r,c) of block k
//
//        plane j:  | row 0: c0 c1 c2 c3 | row 1: c0..c3 | row 2: c0..c3 | row 3: c0..c3 |
//                    i32 lane 0           i32 lane 1      i32 lane 2      i32 lane 3
//
//   The transpose is an involution, and P is too, so the same network goes back.
//   SubBytes: the Boyar-Peralta circuit on the 8 planes (all 128 byte slots at once).
//   ShiftRows: one byte shuffle per plane (rotate row r left by r bytes inside i32 lane r).
//   MixColumns: "rotate every column by one row" is R = i32 lane rotation (pshufd), so
//     with t = s ^ R(s):  out = xtime(t) ^ R(s) ^ R^2(t), xtime done across planes.
//   InvMixColumns = MixColumns(s ^ xtime^2(s ^ R^2(s)))   (matrix 0e0b0d09 = 02030101 x 05000400).
//
// Round keys are stored pre-bitsliced: plane j byte i = 0xFF if bit j of key byte i is set.
// The S-box circuit omits BearSSL's four NOT gates, i.e. it computes S(x) ^ 0x63; the 0x63
// is a constant in every byte, which ShiftRows, MixColumns and InvMixColumns all leave
// unchanged (their coefficients sum to 1), so it is folded into round keys 1..Nr. The same
// key set then also serves the straightforward inverse cipher (see decryptBatch).
//
// XTS: T_0 = E_K2(tweak of the data unit), T_{j+1} = T_j * alpha in GF(2^128), little-endian
// (IEEE 1619 §5.2), branch-free. Blocks of several data units share one 8-lane batch;
// tweak encryptions of 8 consecutive data units are one batch; each unit's stealing step is
// deferred to one extra batch per group of 8 units.

// ---------------------------------------------------------------------------------------
// Context layout (caller reserves AES_XTS_CTX_SIZE bytes, 16-byte aligned)
//   [0, 16)            u32 Nr (10 or 14), rest zero
//   [16, 16+1920)      key1: (Nr+1) bitsliced round keys, 128 bytes each (8 planes x 16)
//   [1936, 1936+1920)  key2: same, used only to encrypt tweaks
//   [3856, 3984)       key-schedule work area, zero outside aes_xts_init
// ---------------------------------------------------------------------------------------
const NR_OFF: usize = 0
const RK1_OFF: usize = 16
const RK_SLOT: usize = 128
const RK_MAX: usize = 15 * RK_SLOT
const RK2_OFF: usize = RK1_OFF + RK_MAX
const TMP_OFF: usize = RK2_OFF + RK_MAX
export const AES_XTS_CTX_SIZE: u32 = <u32>(TMP_OFF + 128) // 3984

// Scratch layout (per call, per thread)
//   ST  8 x 16  batch lanes: blocks in, bit planes while ciphering, blocks out
//   TW  8 x 16  tweak of each lane (XORed in before and after the cipher)
//   DP  8 x 4   destination address of each lane (+ 32 bytes padding)
//   UT  8 x 16  T_0 of each data unit of the current group (also the tweak-encryption batch)
//   US  8 x 16  tweak of each unit's ciphertext-stealing step
const S_ST: usize = 0
const S_TW: usize = 128
const S_DP: usize = 256
const S_UT: usize = 320
const S_US: usize = 448
export const AES_XTS_SCRATCH_SIZE: u32 = 576

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------
// @ts-ignore: decorator
@inline function vx(a: v128, b: v128): v128 { return v128.xor(a, b) }
// @ts-ignore: decorator
@inline function va(a: v128, b: v128): v128 { return v128.and(a, b) }

/** Column-major <-> row-major byte order inside a 16-byte block (a 4x4 transpose; an involution). */
// @ts-ignore: decorator
@inline function permP(x: v128): v128 {
  return i8x16.swizzle(x, i8x16(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15))
}
/** ShiftRows in row-major order: row r (i32 lane r) rotated left by r bytes. */
// @ts-ignore: decorator
@inline function shiftRows(x: v128): v128 {
  return i8x16.swizzle(x, i8x16(0, 1, 2, 3, 5, 6, 7, 4, 10, 11, 8, 9, 15, 12, 13, 14))
}
/** InvShiftRows: row r rotated right by r bytes. */
// @ts-ignore: decorator
@inline function invShiftRows(x: v128): v128 {
  return i8x16.swizzle(x, i8x16(0, 1, 2, 3, 7, 4, 5, 6, 10, 11, 8, 9, 13, 14, 15, 12))
}
// (A swizzle whose index vector is a constant within 0..15 compiles to a single pshufb in V8.)

/** R: every column rotated up by one row: out row r = in row r+1 (pshufd). */
// @ts-ignore: decorator
@inline function rot1(x: v128): v128 {
  return i8x16.shuffle(x, x, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3)
}
/** R^2: out row r = in row r+2 (pshufd). */
// @ts-ignore: decorator
@inline function rot2(x: v128): v128 {
  return i8x16.shuffle(x, x, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)
}

/**
 * T * alpha in GF(2^128), IEEE 1619 little-endian convention: shift the 128-bit value left
 * by one; if bit 127 fell out, XOR 0x87 into byte 0. Branch-free: the sign bits of the two
 * 64-bit halves become masks (psrad + pshufd) that select the carry constants.
 */
// @ts-ignore: decorator
@inline export function mulAlpha(t: v128): v128 {
  const sign = i32x4.shr_s(t, 31) // i32 lane 1: top bit of the low half, lane 3: of the high half
  const m = i8x16.shuffle(sign, sign, 12, 13, 14, 15, 12, 13, 14, 15, 4, 5, 6, 7, 4, 5, 6, 7)
  return v128.xor(i64x2.shl(t, 1), v128.and(m, i32x4(0x87, 0, 1, 0)))
}

// ---------------------------------------------------------------------------------------
// Bitslice transform: 8 blocks at p <-> 8 planes at p (in place)
// ---------------------------------------------------------------------------------------
// swapmove(a, b, s, m): t = ((b >> s) ^ a) & m; a ^= t; b ^= t << s
// exchanges the bits of a selected by m with the bits of b s positions higher. Applied with
// s = 1, 2, 4 to register pairs (k|s, k) it transposes the 8x8 bit matrix
// [register k][bit j] of every byte position. Masks keep bits from crossing bytes, so
// 64-bit lane shifts are fine.

function bitslice(p: usize): void {
  let a0 = permP(load<v128>(p, 0))
  let a1 = permP(load<v128>(p, 16))
  let a2 = permP(load<v128>(p, 32))
  let a3 = permP(load<v128>(p, 48))
  let a4 = permP(load<v128>(p, 64))
  let a5 = permP(load<v128>(p, 80))
  let a6 = permP(load<v128>(p, 96))
  let a7 = permP(load<v128>(p, 112))
  ortho(p, a0, a1, a2, a3, a4, a5, a6, a7, false)
}

function unbitslice(p: usize): void {
  ortho(p, load<v128>(p, 0), load<v128>(p, 16), load<v128>(p, 32), load<v128>(p, 48),
    load<v128>(p, 64), load<v128>(p, 80), load<v128>(p, 96), load<v128>(p, 112), true)
}

// @ts-ignore: decorator
@inline function ortho(p: usize, a0: v128, a1: v128, a2: v128, a3: v128, a4: v128, a5: v128, a6: v128, a7: v128, permOut: bool): void {
  const m1 = i8x16.splat(0x55)
  const m2 = i8x16.splat(0x33)
  const m4 = i8x16.splat(0x0f)
  let t: v128
  t = va(vx(i64x2.shr_u(a0, 1), a1), m1); a1 = vx(a1, t); a0 = vx(a0, i64x2.shl(t, 1))
  t = va(vx(i64x2.shr_u(a2, 1), a3), m1); a3 = vx(a3, t); a2 = vx(a2, i64x2.shl(t, 1))
  t = va(vx(i64x2.shr_u(a4, 1), a5), m1); a5 = vx(a5, t); a4 = vx(a4, i64x2.shl(t, 1))
  t = va(vx(i64x2.shr_u(a6, 1), a7), m1); a7 = vx(a7, t); a6 = vx(a6, i64x2.shl(t, 1))

  t = va(vx(i64x2.shr_u(a0, 2), a2), m2); a2 = vx(a2, t); a0 = vx(a0, i64x2.shl(t, 2))
  t = va(vx(i64x2.shr_u(a1, 2), a3), m2); a3 = vx(a3, t); a1 = vx(a1, i64x2.shl(t, 2))
  t = va(vx(i64x2.shr_u(a4, 2), a6), m2); a6 = vx(a6, t); a4 = vx(a4, i64x2.shl(t, 2))
  t = va(vx(i64x2.shr_u(a5, 2), a7), m2); a7 = vx(a7, t); a5 = vx(a5, i64x2.shl(t, 2))

  t = va(vx(i64x2.shr_u(a0, 4), a4), m4); a4 = vx(a4, t); a0 = vx(a0, i64x2.shl(t, 4))
  t = va(vx(i64x2.shr_u(a1, 4), a5), m4); a5 = vx(a5, t); a1 = vx(a1, i64x2.shl(t, 4))
  t = va(vx(i64x2.shr_u(a2, 4), a6), m4); a6 = vx(a6, t); a2 = vx(a2, i64x2.shl(t, 4))
  t = va(vx(i64x2.shr_u(a3, 4), a7), m4); a7 = vx(a7, t); a3 = vx(a3, i64x2.shl(t, 4))

  if (permOut) {
    a0 = permP(a0); a1 = permP(a1); a2 = permP(a2); a3 = permP(a3)
    a4 = permP(a4); a5 = permP(a5); a6 = permP(a6); a7 = permP(a7)
  }
  store<v128>(p, a0, 0)
  store<v128>(p, a1, 16)
  store<v128>(p, a2, 32)
  store<v128>(p, a3, 48)
  store<v128>(p, a4, 64)
  store<v128>(p, a5, 80)
  store<v128>(p, a6, 96)
  store<v128>(p, a7, 112)
}

// ---------------------------------------------------------------------------------------
// S-box: Boyar-Peralta circuit, gate list as in BearSSL br_aes_ct_bitslice_Sbox (MIT).
// Input planes at q (q + 16j = plane j). As in BearSSL, x0 is the top bit (plane 7) and x7
// the bottom bit (plane 0); likewise s0..s7. The four NOTs of the original (on s1, s2, s6,
// s7) are dropped: this computes S(x) ^ 0x63 (see header).
// The circuit is followed, in the same function, by the linear layer selected by `then`
// (a constant at every call site, folded away by the optimiser): the S-box outputs go
// straight into ShiftRows/MixColumns without a store/load round trip, and the gate list
// exists once in the source. Planes live in memory (p) only between rounds.
// ---------------------------------------------------------------------------------------
// @ts-ignore: decorator
@inline function subBytesThen(q: usize, k: usize, then: i32): void {
  const x0 = load<v128>(q, 112)
  const x1 = load<v128>(q, 96)
  const x2 = load<v128>(q, 80)
  const x3 = load<v128>(q, 64)
  const x4 = load<v128>(q, 48)
  const x5 = load<v128>(q, 32)
  const x6 = load<v128>(q, 16)
  const x7 = load<v128>(q, 0)

  // Top linear transformation.
  const y14 = vx(x3, x5)
  const y13 = vx(x0, x6)
  const y9 = vx(x0, x3)
  const y8 = vx(x0, x5)
  const t0 = vx(x1, x2)
  const y1 = vx(t0, x7)
  const y4 = vx(y1, x3)
  const y12 = vx(y13, y14)
  const y2 = vx(y1, x0)
  const y5 = vx(y1, x6)
  const y3 = vx(y5, y8)
  const t1 = vx(x4, y12)
  const y15 = vx(t1, x5)
  const y20 = vx(t1, x1)
  const y6 = vx(y15, x7)
  const y10 = vx(y15, t0)
  const y11 = vx(y20, y9)
  const y7 = vx(x7, y11)
  const y17 = vx(y10, y11)
  const y19 = vx(y10, y8)
  const y16 = vx(t0, y11)
  const y21 = vx(y13, y16)
  const y18 = vx(x0, y16)

  // Non-linear section (inversion in GF(2^4)^2 tower representation).
  const t2 = va(y12, y15)
  const t3 = va(y3, y6)
  const t4 = vx(t3, t2)
  const t5 = va(y4, x7)
  const t6 = vx(t5, t2)
  const t7 = va(y13, y16)
  const t8 = va(y5, y1)
  const t9 = vx(t8, t7)
  const t10 = va(y2, y7)
  const t11 = vx(t10, t7)
  const t12 = va(y9, y11)
  const t13 = va(y14, y17)
  const t14 = vx(t13, t12)
  const t15 = va(y8, y10)
  const t16 = vx(t15, t12)
  const t17 = vx(t4, t14)
  const t18 = vx(t6, t16)
  const t19 = vx(t9, t14)
  const t20 = vx(t11, t16)
  const t21 = vx(t17, y20)
  const t22 = vx(t18, y19)
  const t23 = vx(t19, y21)
  const t24 = vx(t20, y18)

  const t25 = vx(t21, t22)
  const t26 = va(t21, t23)
  const t27 = vx(t24, t26)
  const t28 = va(t25, t27)
  const t29 = vx(t28, t22)
  const t30 = vx(t23, t24)
  const t31 = vx(t22, t26)
  const t32 = va(t31, t30)
  const t33 = vx(t32, t24)
  const t34 = vx(t23, t33)
  const t35 = vx(t27, t33)
  const t36 = va(t24, t35)
  const t37 = vx(t36, t34)
  const t38 = vx(t27, t36)
  const t39 = va(t29, t38)
  const t40 = vx(t25, t39)

  const t41 = vx(t40, t37)
  const t42 = vx(t29, t33)
  const t43 = vx(t29, t40)
  const t44 = vx(t33, t37)
  const t45 = vx(t42, t41)
  const z0 = va(t44, y15)
  const z1 = va(t37, y6)
  const z2 = va(t33, x7)
  const z3 = va(t43, y16)
  const z4 = va(t40, y1)
  const z5 = va(t29, y7)
  const z6 = va(t42, y11)
  const z7 = va(t45, y17)
  const z8 = va(t41, y10)
  const z9 = va(t44, y12)
  const z10 = va(t37, y3)
  const z11 = va(t33, y4)
  const z12 = va(t43, y13)
  const z13 = va(t40, y5)
  const z14 = va(t29, y2)
  const z15 = va(t42, y9)
  const z16 = va(t45, y14)
  const z17 = va(t41, y8)

  // Bottom linear transformation.
  const t46 = vx(z15, z16)
  const t47 = vx(z10, z11)
  const t48 = vx(z5, z13)
  const t49 = vx(z9, z10)
  const t50 = vx(z2, z12)
  const t51 = vx(z2, z5)
  const t52 = vx(z7, z8)
  const t53 = vx(z0, z3)
  const t54 = vx(z6, z7)
  const t55 = vx(z16, z17)
  const t56 = vx(z12, t48)
  const t57 = vx(t50, t53)
  const t58 = vx(z4, t46)
  const t59 = vx(z3, t54)
  const t60 = vx(t46, t57)
  const t61 = vx(z14, t57)
  const t62 = vx(t52, t58)
  const t63 = vx(t49, t58)
  const t64 = vx(z4, t59)
  const t65 = vx(t61, t62)
  const t66 = vx(z1, t63)
  const s0 = vx(t59, t63)
  const s6 = vx(t56, t62) // BearSSL: t56 ^ ~t62
  const s7 = vx(t48, t60) // BearSSL: t48 ^ ~t60
  const t67 = vx(t64, t65)
  const s3 = vx(t53, t66)
  const s4 = vx(t51, t66)
  const s5 = vx(t47, t65)
  const s1 = vx(t64, s3) // BearSSL: t64 ^ ~s3
  const s2 = vx(t55, t67) // BearSSL: t55 ^ ~t67

  // plane j is s_{7-j}; hand the planes to the following linear layer while still in locals
  if (then == THEN_ENC_MID) {
    mixColumnsAddKey(q, k, shiftRows(s7), shiftRows(s6), shiftRows(s5), shiftRows(s4),
      shiftRows(s3), shiftRows(s2), shiftRows(s1), shiftRows(s0))
  } else if (then == THEN_ENC_LAST) {
    shiftRowsAddKey(q, k, s7, s6, s5, s4, s3, s2, s1, s0)
  } else if (then == THEN_DEC_MID) {
    decRoundLinear(q, k, s7, s6, s5, s4, s3, s2, s1, s0)
  } else if (then == THEN_DEC_LAST) {
    decLastLinear(q, k, s7, s6, s5, s4, s3, s2, s1, s0)
  } else {
    store<v128>(q, s0, 112)
    store<v128>(q, s1, 96)
    store<v128>(q, s2, 80)
    store<v128>(q, s3, 64)
    store<v128>(q, s4, 48)
    store<v128>(q, s5, 32)
    store<v128>(q, s6, 16)
    store<v128>(q, s7, 0)
  }
}

const THEN_STORE = 0
const THEN_ENC_MID = 1
const THEN_ENC_LAST = 2
const THEN_DEC_MID = 3
const THEN_DEC_LAST = 4

/** S-box only, in place (key schedule). */
function sbox(q: usize): void { subBytesThen(q, 0, THEN_STORE) }
/** Encryption round 1..Nr-1: SubBytes, ShiftRows, MixColumns, AddRoundKey. */
function encRound(p: usize, k: usize): void { subBytesThen(p, k, THEN_ENC_MID) }
/** Last encryption round: SubBytes, ShiftRows, AddRoundKey. */
function encLastRound(p: usize, k: usize): void { subBytesThen(p, k, THEN_ENC_LAST) }
/** Decryption round Nr-1..1 (see decRoundLinear). */
function decRound(p: usize, k: usize): void { subBytesThen(p, k, THEN_DEC_MID) }
/** Last decryption round: S-box circuit, B, AddRoundKey(K_0). */
function decLastRound(p: usize, k: usize): void { subBytesThen(p, k, THEN_DEC_LAST) }

// ---------------------------------------------------------------------------------------
// Linear layers. Planes come in as values (q0..q7 = planes 0..7) or at p, results go to p;
// k = one bitsliced round key (8 planes).
// ---------------------------------------------------------------------------------------

/** AddRoundKey only. */
function addKey(p: usize, k: usize): void {
  store<v128>(p, vx(load<v128>(p, 0), load<v128>(k, 0)), 0)
  store<v128>(p, vx(load<v128>(p, 16), load<v128>(k, 16)), 16)
  store<v128>(p, vx(load<v128>(p, 32), load<v128>(k, 32)), 32)
  store<v128>(p, vx(load<v128>(p, 48), load<v128>(k, 48)), 48)
  store<v128>(p, vx(load<v128>(p, 64), load<v128>(k, 64)), 64)
  store<v128>(p, vx(load<v128>(p, 80), load<v128>(k, 80)), 80)
  store<v128>(p, vx(load<v128>(p, 96), load<v128>(k, 96)), 96)
  store<v128>(p, vx(load<v128>(p, 112), load<v128>(k, 112)), 112)
}

/** ShiftRows + AddRoundKey of planes q0..q7, stored to p (last encryption round). */
// @ts-ignore: decorator
@inline function shiftRowsAddKey(p: usize, k: usize, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128): void {
  store<v128>(p, vx(shiftRows(q0), load<v128>(k, 0)), 0)
  store<v128>(p, vx(shiftRows(q1), load<v128>(k, 16)), 16)
  store<v128>(p, vx(shiftRows(q2), load<v128>(k, 32)), 32)
  store<v128>(p, vx(shiftRows(q3), load<v128>(k, 48)), 48)
  store<v128>(p, vx(shiftRows(q4), load<v128>(k, 64)), 64)
  store<v128>(p, vx(shiftRows(q5), load<v128>(k, 80)), 80)
  store<v128>(p, vx(shiftRows(q6), load<v128>(k, 96)), 96)
  store<v128>(p, vx(shiftRows(q7), load<v128>(k, 112)), 112)
}

/**
 * MixColumns of planes s0..s7, plus the round key at k, stored to p.
 *   MixColumns row r: 2 s_r ^ 3 s_{r+1} ^ s_{r+2} ^ s_{r+3}
 *                   = 2 (s_r ^ s_{r+1}) ^ s_{r+1} ^ (s_{r+2} ^ s_{r+3})
 *   so with r_ = R(s), t = s ^ r_:   out = xtime(t) ^ r_ ^ R^2(t).
 * xtime on planes (AES polynomial 0x11B = bits 0,1,3,4 fed by bit 7):
 *   x0 = t7, x1 = t0^t7, x2 = t1, x3 = t2^t7, x4 = t3^t7, x5 = t4, x6 = t5, x7 = t6.
 */
// @ts-ignore: decorator
@inline function mixColumnsAddKey(p: usize, k: usize, s0: v128, s1: v128, s2: v128, s3: v128, s4: v128, s5: v128, s6: v128, s7: v128): void {
  const r0 = rot1(s0), r1 = rot1(s1), r2 = rot1(s2), r3 = rot1(s3)
  const r4 = rot1(s4), r5 = rot1(s5), r6 = rot1(s6), r7 = rot1(s7)
  const t0 = vx(s0, r0), t1 = vx(s1, r1), t2 = vx(s2, r2), t3 = vx(s3, r3)
  const t4 = vx(s4, r4), t5 = vx(s5, r5), t6 = vx(s6, r6), t7 = vx(s7, r7)
  store<v128>(p, vx(vx(t7, r0), vx(rot2(t0), load<v128>(k, 0))), 0)
  store<v128>(p, vx(vx(vx(t0, t7), r1), vx(rot2(t1), load<v128>(k, 16))), 16)
  store<v128>(p, vx(vx(t1, r2), vx(rot2(t2), load<v128>(k, 32))), 32)
  store<v128>(p, vx(vx(vx(t2, t7), r3), vx(rot2(t3), load<v128>(k, 48))), 48)
  store<v128>(p, vx(vx(vx(t3, t7), r4), vx(rot2(t4), load<v128>(k, 64))), 64)
  store<v128>(p, vx(vx(t4, r5), vx(rot2(t5), load<v128>(k, 80))), 80)
  store<v128>(p, vx(vx(t5, r6), vx(rot2(t6), load<v128>(k, 96))), 96)
  store<v128>(p, vx(vx(t6, r7), vx(rot2(t7), load<v128>(k, 112))), 112)
}

// Inverse S-box (BearSSL's trick): with S' = S ^ 0x63 (our circuit) and B the inverse of
// the affine map's linear part,
//   InvS(y) = B(S(B(y ^ 0x63)) ^ 0x63) = B(S'(B(y ^ 0x63))).
// The "^ 0x63" on the input is folded into the round keys (it passes through InvShiftRows
// and InvMixColumns unchanged), so decryption needs only B before and after the circuit.
// B on planes: out_j = q_{j+2} ^ q_{j+5} ^ q_{j+7} (indices mod 8).

/** Decryption, first step: AddRoundKey(K_Nr), InvShiftRows, then B (input side of InvS). */
function decFirstLinear(p: usize, k: usize): void {
  const q0 = invShiftRows(vx(load<v128>(p, 0), load<v128>(k, 0)))
  const q1 = invShiftRows(vx(load<v128>(p, 16), load<v128>(k, 16)))
  const q2 = invShiftRows(vx(load<v128>(p, 32), load<v128>(k, 32)))
  const q3 = invShiftRows(vx(load<v128>(p, 48), load<v128>(k, 48)))
  const q4 = invShiftRows(vx(load<v128>(p, 64), load<v128>(k, 64)))
  const q5 = invShiftRows(vx(load<v128>(p, 80), load<v128>(k, 80)))
  const q6 = invShiftRows(vx(load<v128>(p, 96), load<v128>(k, 96)))
  const q7 = invShiftRows(vx(load<v128>(p, 112), load<v128>(k, 112)))
  store<v128>(p, vx(vx(q2, q5), q7), 0)
  store<v128>(p, vx(vx(q3, q6), q0), 16)
  store<v128>(p, vx(vx(q4, q7), q1), 32)
  store<v128>(p, vx(vx(q5, q0), q2), 48)
  store<v128>(p, vx(vx(q6, q1), q3), 64)
  store<v128>(p, vx(vx(q7, q2), q4), 80)
  store<v128>(p, vx(vx(q0, q3), q5), 96)
  store<v128>(p, vx(vx(q1, q4), q6), 112)
}

/**
 * Decryption rounds Nr-1..1, everything after the S-box circuit (planes q0..q7) up to the next:
 *   B (output side of InvS), AddRoundKey, InvMixColumns, InvShiftRows, B (input side).
 * InvMixColumns(a) = MixColumns(a ^ xtime^2(a ^ R^2(a))):  {05,00,04,00} then MixColumns.
 * xtime^2 on planes u: w0=u6, w1=u6^u7, w2=u0^u7, w3=u1^u6, w4=u2^u6^u7, w5=u3^u7, w6=u4, w7=u5.
 */
// @ts-ignore: decorator
@inline function decRoundLinear(p: usize, k: usize, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128): void {
  // B + round key
  const a0 = vx(vx(q2, q5), vx(q7, load<v128>(k, 0)))
  const a1 = vx(vx(q3, q6), vx(q0, load<v128>(k, 16)))
  const a2 = vx(vx(q4, q7), vx(q1, load<v128>(k, 32)))
  const a3 = vx(vx(q5, q0), vx(q2, load<v128>(k, 48)))
  const a4 = vx(vx(q6, q1), vx(q3, load<v128>(k, 64)))
  const a5 = vx(vx(q7, q2), vx(q4, load<v128>(k, 80)))
  const a6 = vx(vx(q0, q3), vx(q5, load<v128>(k, 96)))
  const a7 = vx(vx(q1, q4), vx(q6, load<v128>(k, 112)))
  // a ^= xtime^2(a ^ R^2(a))
  const u0 = vx(a0, rot2(a0)), u1 = vx(a1, rot2(a1)), u2 = vx(a2, rot2(a2)), u3 = vx(a3, rot2(a3))
  const u4 = vx(a4, rot2(a4)), u5 = vx(a5, rot2(a5)), u6 = vx(a6, rot2(a6)), u7 = vx(a7, rot2(a7))
  const u67 = vx(u6, u7)
  const b0 = vx(a0, u6)
  const b1 = vx(a1, u67)
  const b2 = vx(a2, vx(u0, u7))
  const b3 = vx(a3, vx(u1, u6))
  const b4 = vx(a4, vx(u2, u67))
  const b5 = vx(a5, vx(u3, u7))
  const b6 = vx(a6, u4)
  const b7 = vx(a7, u5)
  // MixColumns(b)
  const r0 = rot1(b0), r1 = rot1(b1), r2 = rot1(b2), r3 = rot1(b3)
  const r4 = rot1(b4), r5 = rot1(b5), r6 = rot1(b6), r7 = rot1(b7)
  const t0 = vx(b0, r0), t1 = vx(b1, r1), t2 = vx(b2, r2), t3 = vx(b3, r3)
  const t4 = vx(b4, r4), t5 = vx(b5, r5), t6 = vx(b6, r6), t7 = vx(b7, r7)
  const m0 = vx(vx(t7, r0), rot2(t0))
  const m1 = vx(vx(vx(t0, t7), r1), rot2(t1))
  const m2 = vx(vx(t1, r2), rot2(t2))
  const m3 = vx(vx(vx(t2, t7), r3), rot2(t3))
  const m4 = vx(vx(vx(t3, t7), r4), rot2(t4))
  const m5 = vx(vx(t4, r5), rot2(t5))
  const m6 = vx(vx(t5, r6), rot2(t6))
  const m7 = vx(vx(t6, r7), rot2(t7))
  // B (bytewise, so it commutes with InvShiftRows) then InvShiftRows
  store<v128>(p, invShiftRows(vx(vx(m2, m5), m7)), 0)
  store<v128>(p, invShiftRows(vx(vx(m3, m6), m0)), 16)
  store<v128>(p, invShiftRows(vx(vx(m4, m7), m1)), 32)
  store<v128>(p, invShiftRows(vx(vx(m5, m0), m2)), 48)
  store<v128>(p, invShiftRows(vx(vx(m6, m1), m3)), 64)
  store<v128>(p, invShiftRows(vx(vx(m7, m2), m4)), 80)
  store<v128>(p, invShiftRows(vx(vx(m0, m3), m5)), 96)
  store<v128>(p, invShiftRows(vx(vx(m1, m4), m6)), 112)
}

/** Decryption, last step: B (output side of InvS) + AddRoundKey(K_0). */
// @ts-ignore: decorator
@inline function decLastLinear(p: usize, k: usize, q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128): void {
  store<v128>(p, vx(vx(q2, q5), vx(q7, load<v128>(k, 0))), 0)
  store<v128>(p, vx(vx(q3, q6), vx(q0, load<v128>(k, 16))), 16)
  store<v128>(p, vx(vx(q4, q7), vx(q1, load<v128>(k, 32))), 32)
  store<v128>(p, vx(vx(q5, q0), vx(q2, load<v128>(k, 48))), 48)
  store<v128>(p, vx(vx(q6, q1), vx(q3, load<v128>(k, 64))), 64)
  store<v128>(p, vx(vx(q7, q2), vx(q4, load<v128>(k, 80))), 80)
  store<v128>(p, vx(vx(q0, q3), vx(q5, load<v128>(k, 96))), 96)
  store<v128>(p, vx(vx(q1, q4), vx(q6, load<v128>(k, 112))), 112)
}

// ---------------------------------------------------------------------------------------
// 8-block ciphers (ECB on the 128 bytes at p, in place)
// ---------------------------------------------------------------------------------------

/** FIPS-197 Cipher on 8 blocks. rk: Nr+1 bitsliced round keys (keys 1..Nr carry the ^0x63). */
function encryptBatch(rk: usize, nr: u32, p: usize): void {
  bitslice(p)
  addKey(p, rk)
  for (let r: u32 = 1; r < nr; r++) encRound(p, rk + <usize>r * RK_SLOT)
  encLastRound(p, rk + <usize>nr * RK_SLOT)
  unbitslice(p)
}

/** FIPS-197 InvCipher (straightforward order) on 8 blocks, same round keys as encryptBatch. */
function decryptBatch(rk: usize, nr: u32, p: usize): void {
  bitslice(p)
  decFirstLinear(p, rk + <usize>nr * RK_SLOT)
  for (let r: u32 = nr - 1; r > 0; r--) decRound(p, rk + <usize>r * RK_SLOT)
  decLastRound(p, rk)
  unbitslice(p)
}

// ---------------------------------------------------------------------------------------
// Key expansion (FIPS-197 §5.2), constant time: SubWord runs the same bitsliced circuit.
// ---------------------------------------------------------------------------------------

/** SubWord via the circuit. w is little-endian (byte 0 in bits 0..7). tmp: 128 bytes. */
function subWord(w: u32, tmp: usize): u32 {
  const x = i32x4.splat(w)
  for (let j = 0; j < 8; j++) {
    const bit = i8x16.splat(<i8>(<i32>1 << j))
    store<v128>(tmp + (<usize>j << 4), i8x16.eq(v128.and(x, bit), bit))
  }
  sbox(tmp)
  let y = i32x4.splat(0)
  for (let j = 0; j < 8; j++) {
    y = v128.or(y, v128.and(load<v128>(tmp + (<usize>j << 4)), i8x16.splat(<i8>(<i32>1 << j))))
  }
  return i32x4.extract_lane(y, 0) ^ 0x63636363 // the circuit computes S ^ 0x63
}

/**
 * Expands an nk-word key (nk = 4 or 8) into nr+1 bitsliced round keys at out.
 * Words are first computed in byte form into the first 16 bytes of each 128-byte slot, then
 * each slot is converted in place to 8 planes (row-major byte order, ^0x63 for keys 1..nr).
 */
function expandKey(out: usize, key: usize, nk: u32, nr: u32, tmp: usize): void {
  const nw = (nr + 1) << 2
  for (let i: u32 = 0; i < nk; i++) {
    store<u32>(out + (<usize>(i >> 2)) * RK_SLOT + ((<usize>i & 3) << 2), load<u32>(key + (<usize>i << 2)))
  }
  let rcon: u32 = 1
  let prev = load<u32>(key + (<usize>(nk - 1) << 2))
  for (let i: u32 = nk; i < nw; i++) {
    const j = i % nk
    if (j == 0) {
      prev = subWord(rotr<u32>(prev, 8), tmp) ^ rcon
      rcon = ((rcon << 1) ^ ((rcon >> 7) * 0x11b)) & 0xff
    } else if (nk > 6 && j == 4) {
      prev = subWord(prev, tmp)
    }
    const back = i - nk
    prev ^= load<u32>(out + (<usize>(back >> 2)) * RK_SLOT + ((<usize>back & 3) << 2))
    store<u32>(out + (<usize>(i >> 2)) * RK_SLOT + ((<usize>i & 3) << 2), prev)
  }
  for (let r: u32 = 0; r <= nr; r++) {
    const slot = out + <usize>r * RK_SLOT
    let x = load<v128>(slot)
    if (r > 0) x = v128.xor(x, i8x16.splat(0x63))
    x = permP(x)
    for (let j = 0; j < 8; j++) {
      const bit = i8x16.splat(<i8>(<i32>1 << j))
      store<v128>(slot + (<usize>j << 4), i8x16.eq(v128.and(x, bit), bit))
    }
  }
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/** keyLen 32: AES-128-XTS (key1 = key[0..16), key2 = key[16..32)); 64: AES-256-XTS. */
export function aes_xts_init(ctx: usize, key: usize, keyLen: u32): void {
  memory.fill(ctx, 0, AES_XTS_CTX_SIZE)
  const half = keyLen >> 1
  const nk = half >> 2
  const nr: u32 = nk + 6
  store<u32>(ctx + NR_OFF, nr)
  expandKey(ctx + RK1_OFF, key, nk, nr, ctx + TMP_OFF)
  expandKey(ctx + RK2_OFF, key + half, nk, nr, ctx + TMP_OFF)
  memory.fill(ctx + TMP_OFF, 0, 128)
}

/** Zero the whole context. */
export function aes_xts_wipe(ctx: usize): void {
  memory.fill(ctx, 0, AES_XTS_CTX_SIZE)
}

export function aes_xts_encrypt(ctx: usize, src: usize, dst: usize, len: u32, dataUnitSize: u32, tweakLo: u64, tweakHi: u64, scratch: usize): void {
  xts(ctx, src, dst, len, dataUnitSize, tweakLo, tweakHi, scratch, false, true)
}

export function aes_xts_decrypt(ctx: usize, src: usize, dst: usize, len: u32, dataUnitSize: u32, tweakLo: u64, tweakHi: u64, scratch: usize): void {
  xts(ctx, src, dst, len, dataUnitSize, tweakLo, tweakHi, scratch, true, true)
}


// ---------------------------------------------------------------------------------------
// XTS driver
// ---------------------------------------------------------------------------------------
//
// Per group of up to 8 data units:
//   1. one batch encrypts the 8 tweak values with key2 -> T_0 of each unit (UT)
//   2. all full 16-byte blocks of the group stream through 8-lane batches (lanes may mix
//      units); lane = (block ^ T_j) -> cipher -> ^ T_j -> dst.
//      With a partial last block (r = dataUnitSize % 16 != 0, m = floor(dataUnitSize/16)):
//        encrypt: block m-1 uses T_{m-1} and yields CC (written to dst block m-1 for now)
//        decrypt: block m-1 uses T_m     and yields PP (likewise)
//   3. stealing batch, one lane per unit (IEEE 1619 §5.3.2 / §5.4.2). With X = that
//      dst block m-1 and Y = the r tail bytes of src:
//          dst tail      <- X[0..r)                 (C_m = CC[0..r) or P_m = PP[0..r))
//          lane          <- Y[0..r) || X[r..16)     (PP = P_m || CC[r..]  or CC = C_m || PP[r..])
//          dst block m-1 <- cipher(lane ^ T) ^ T    (T = T_m to encrypt, T_{m-1} to decrypt)
//      Each tail byte of Y is read before the same position of dst is written, so
//      src === dst works.
//
//   data unit (m = 3 full blocks, r = 5):
//   | block 0 | block 1 | block 2 | tail(5) |
//      T_0       T_1      enc: T_2 -> CC   |  then stealing lane with T_3
//                         dec: T_3 -> PP   |  then stealing lane with T_2

// @ts-ignore: decorator
@inline function pushLane(scratch: usize, n: u32, s: usize, d: usize, tw: v128): void {
  const o = <usize>n << 4
  store<v128>(scratch + S_ST + o, v128.xor(v128.load(s), tw))
  store<v128>(scratch + S_TW + o, tw)
  store<u32>(scratch + S_DP + (<usize>n << 2), <u32>d)
}

/** Runs the cipher over the lane buffer and writes lanes 0..n-1 (XORed with their tweaks). */
function flush(rk: usize, nr: u32, scratch: usize, n: u32, dec: bool): void {
  const st = scratch + S_ST
  if (dec) decryptBatch(rk, nr, st)
  else encryptBatch(rk, nr, st)
  for (let k: u32 = 0; k < n; k++) {
    const o = <usize>k << 4
    v128.store(<usize>load<u32>(scratch + S_DP + (<usize>k << 2)),
      v128.xor(load<v128>(st + o), load<v128>(scratch + S_TW + o)))
  }
}

/**
 * XTS over `len` bytes of whole data units. `wipe` zeroes the scratch afterwards; a kernel
 * that calls this once per block (assembly/fused.ts) wipes once at its end instead.
 */
export function xts(ctx: usize, src: usize, dst: usize, len: u32, dus: u32, tweakLo: u64, tweakHi: u64, scratch: usize, dec: bool, wipe: bool): void {
  if (len == 0) return
  xtsUnits(ctx, src, dus, dst, dus, len / dus, dus, tweakLo, tweakHi, scratch, dec, wipe)
}

/**
 * XTS over `nUnits` data units of `dus` bytes, unit u at src + u * sStride and at
 * dst + u * dStride (strides >= dus): the fused kernels pass the extended buffer's
 * block + metadata stride, so a group of 512-byte units between PI fields shares one
 * tweak batch. (Called once per 512-byte unit, the key2 batch of 8 tweaks carried one
 * tweak: a fifth of the cipher's work on 512-byte blocks went to tweaks thrown away.)
 */
export function xtsUnits(ctx: usize, src: usize, sStride: u32, dst: usize, dStride: u32, nUnits: u32, dus: u32, tweakLo: u64, tweakHi: u64, scratch: usize, dec: bool, wipe: bool): void {
  if (nUnits == 0) return
  const nr = load<u32>(ctx + NR_OFF)
  const rk1 = ctx + RK1_OFF
  const rk2 = ctx + RK2_OFF
  const m = dus >> 4
  const rem = dus & 15
  const nOrd = rem != 0 ? m - 1 : m // blocks per unit with their own tweak T_j
  const ut = scratch + S_UT
  const us = scratch + S_US
  let n: u32 = 0 // lanes filled in the current batch

  for (let u0: u32 = 0; u0 < nUnits; u0 += 8) {
    const g = min<u32>(8, nUnits - u0)

    // 1. tweaks (tweakHi:tweakLo) + u as 128-bit little-endian integers, encrypted with key2
    for (let k: u32 = 0; k < 8; k++) {
      const lo = tweakLo + <u64>(u0 + k)
      const hi = tweakHi + <u64>(lo < tweakLo) // carry out of the low half
      store<u64>(ut + (<usize>k << 4), lo)
      store<u64>(ut + (<usize>k << 4), hi, 8)
    }
    encryptBatch(rk2, nr, ut)

    // 2. full blocks
    for (let k: u32 = 0; k < g; k++) {
      let s = src + <usize>(u0 + k) * <usize>sStride
      let d = dst + <usize>(u0 + k) * <usize>dStride
      let t = load<v128>(ut + (<usize>k << 4))
      for (let j: u32 = 0; j < nOrd; j++) {
        pushLane(scratch, n, s, d, t)
        if (++n == 8) {
          flush(rk1, nr, scratch, 8, dec)
          n = 0
        }
        t = mulAlpha(t)
        s += 16
        d += 16
      }
      if (rem != 0) {
        // t = T_{m-1}; block m-1 takes T_{m-1} (encrypt) or T_m (decrypt), the stealing step the other
        const tNext = mulAlpha(t)
        pushLane(scratch, n, s, d, dec ? tNext : t)
        store<v128>(us + (<usize>k << 4), dec ? t : tNext)
        if (++n == 8) {
          flush(rk1, nr, scratch, 8, dec)
          n = 0
        }
      }
    }

    // 3. ciphertext stealing, one lane per unit of the group
    if (rem != 0) {
      if (n != 0) {
        flush(rk1, nr, scratch, n, dec)
        n = 0
      }
      for (let k: u32 = 0; k < g; k++) {
        const sBase = <usize>(u0 + k) * <usize>sStride + (<usize>m << 4)
        const dBase = <usize>(u0 + k) * <usize>dStride + (<usize>m << 4)
        const blk = dst + dBase - 16
        const tail = src + sBase
        const dtail = dst + dBase
        const lane = scratch + S_ST + (<usize>k << 4)
        store<v128>(lane, v128.load(blk))
        for (let b: usize = 0; b < <usize>rem; b++) {
          const y = load<u8>(tail + b)
          store<u8>(dtail + b, load<u8>(lane + b))
          store<u8>(lane + b, y)
        }
        const tw = load<v128>(us + (<usize>k << 4))
        store<v128>(lane, v128.xor(load<v128>(lane), tw))
        store<v128>(scratch + S_TW + (<usize>k << 4), tw)
        store<u32>(scratch + S_DP + (<usize>k << 2), <u32>blk)
      }
      flush(rk1, nr, scratch, g, dec)
    }
  }
  if (n != 0) flush(rk1, nr, scratch, n, dec)
  // Leave no plaintext, tweaks or intermediate state behind in scratch.
  if (wipe) memory.fill(scratch, 0, AES_XTS_SCRATCH_SIZE)
}
