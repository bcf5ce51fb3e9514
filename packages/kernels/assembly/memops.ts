// Byte kernels the accel framework needs beside the CRCs and the cipher: XOR of n sources,
// compare, and the two halves of AES-XTS that wrap an external AES-ECB pass (the `aesni`
// module runs the block cipher on node:crypto's AES-NI, and these do the tweak work):
//
//   T_0(u)  = E_K2(tweak + u)                 one ECB pass of key2 over the units' tweaks
//   X       = P ^ T_j(u),  T_{j+1} = T_j * a  xts_tweak_xor (pass 1)
//   Y       = E_K1(X)                         one ECB pass of key1 over the whole batch
//   C       = Y ^ T_j(u)                      xts_tweak_xor again (pass 2)
//
// which is XTS exactly, for data units that are whole 16-byte blocks (no stealing).
import { mulAlpha } from './aes-xts'

/** dst = srcs[0] ^ srcs[1] ^ ... (n >= 1 sources of `len` bytes; `srcs` holds u32 addresses). */
export function xor_n(dst: usize, srcs: usize, n: u32, len: u32): void {
  const first = <usize>load<u32>(srcs)
  let off: usize = 0
  const end = <usize>len
  for (; off + 16 <= end; off += 16) {
    let v = v128.load(first + off)
    for (let i: u32 = 1; i < n; i++) v = v128.xor(v, v128.load(<usize>load<u32>(srcs + (<usize>i << 2)) + off))
    v128.store(dst + off, v)
  }
  for (; off < end; off++) {
    let b = load<u8>(first + off)
    for (let i: u32 = 1; i < n; i++) b ^= load<u8>(<usize>load<u32>(srcs + (<usize>i << 2)) + off)
    store<u8>(dst + off, b)
  }
}

/** Index of the first byte where a and b differ, or -1 when `len` bytes are equal. */
export function compare(a: usize, b: usize, len: u32): i32 {
  let off: usize = 0
  const end = <usize>len
  for (; off + 16 <= end; off += 16) {
    if (!i8x16.all_true(i8x16.eq(v128.load(a + off), v128.load(b + off)))) break
  }
  for (; off < end; off++) if (load<u8>(a + off) != load<u8>(b + off)) return <i32>off
  return -1
}

/** Writes n 16-byte little-endian tweaks tw + 0, tw + 1, ... at `out` (tw: 128 bits at `twAddr`). */
export function xts_tweak_values(out: usize, n: u32, twAddr: usize): void {
  const lo0 = load<u64>(twAddr)
  const hi0 = load<u64>(twAddr, 8)
  for (let u: u32 = 0; u < n; u++) {
    const lo = lo0 + <u64>u
    store<u64>(out + (<usize>u << 4), lo)
    store<u64>(out + (<usize>u << 4), hi0 + <u64>(lo < lo0), 8)
  }
}

/**
 * dst = src ^ T_j for every 16-byte block j of every data unit u, T_0 = the encrypted
 * tweak of unit u at t0 + 16 u. `unit` and `len` are multiples of 16.
 */
export function xts_tweak_xor(src: usize, dst: usize, len: u32, unit: u32, t0: usize): void {
  const units = len / unit
  const blocks = unit >> 4
  let p: usize = 0
  for (let u: u32 = 0; u < units; u++) {
    let t = v128.load(t0 + (<usize>u << 4))
    for (let j: u32 = 0; j < blocks; j++) {
      v128.store(dst + p, v128.xor(v128.load(src + p), t))
      t = mulAlpha(t)
      p += 16
    }
  }
}
