// CRC-32C (Castagnoli): reflected, poly 0x1EDC6F41 (reflected constant 0x82F63B78).
// The register convention here is the raw one: callers pass ~seed and invert the result,
// so crc32c_update chains across calls (RFC 3720 §B.4, NVMe/TCP digests).
import { CRC32C_TABLE } from './generated/tables'
import { crc32c_w6, crc32c_w6_SPAN, crc32c_w8, crc32c_w8_SPAN } from './generated/filters'

// Input lengths from which each word filter wins, measured with the filter forced at every
// size (4 KiB: table 1.83 GB/s, w8 3.72; 128 KiB: w8 10.8, w6 11.9; 1 MiB: w6 13.8).
const W6_MIN: usize = 96 << 10
const W8_MIN: usize = 2 << 10

/** Slicing-by-16 over n bytes from p, starting from register `crc`. */
export function crc32c_table(crc: u32, p: usize, n: usize): u32 {
  while (n >= 16) {
    const a = load<u64>(p) ^ <u64>crc
    const b = load<u64>(p, 8)
    const a0 = <u32>a, a1 = <u32>(a >> 32), b0 = <u32>b, b1 = <u32>(b >> 32)
    // byte k of the 16 is looked up in table 15 - k; each index is pre-scaled by 4
    crc = load<u32>((a0 << 2) & 0x3fc, CRC32C_TABLE + 15 * 1024)
      ^ load<u32>((a0 >> 6) & 0x3fc, CRC32C_TABLE + 14 * 1024)
      ^ load<u32>((a0 >> 14) & 0x3fc, CRC32C_TABLE + 13 * 1024)
      ^ load<u32>((a0 >> 22) & 0x3fc, CRC32C_TABLE + 12 * 1024)
      ^ load<u32>((a1 << 2) & 0x3fc, CRC32C_TABLE + 11 * 1024)
      ^ load<u32>((a1 >> 6) & 0x3fc, CRC32C_TABLE + 10 * 1024)
      ^ load<u32>((a1 >> 14) & 0x3fc, CRC32C_TABLE + 9 * 1024)
      ^ load<u32>((a1 >> 22) & 0x3fc, CRC32C_TABLE + 8 * 1024)
      ^ load<u32>((b0 << 2) & 0x3fc, CRC32C_TABLE + 7 * 1024)
      ^ load<u32>((b0 >> 6) & 0x3fc, CRC32C_TABLE + 6 * 1024)
      ^ load<u32>((b0 >> 14) & 0x3fc, CRC32C_TABLE + 5 * 1024)
      ^ load<u32>((b0 >> 22) & 0x3fc, CRC32C_TABLE + 4 * 1024)
      ^ load<u32>((b1 << 2) & 0x3fc, CRC32C_TABLE + 3 * 1024)
      ^ load<u32>((b1 >> 6) & 0x3fc, CRC32C_TABLE + 2 * 1024)
      ^ load<u32>((b1 >> 14) & 0x3fc, CRC32C_TABLE + 1 * 1024)
      ^ load<u32>((b1 >> 22) & 0x3fc, CRC32C_TABLE)
    p += 16
    n -= 16
  }
  while (n > 0) {
    crc = load<u32>(((crc ^ <u32>load<u8>(p)) & 0xff) << 2, CRC32C_TABLE) ^ (crc >> 8)
    p++
    n--
  }
  return crc
}

/**
 * CRC-32C register update over n bytes at p. `scratch` must hold CRC32C_SCRATCH bytes
 * (the word filter's history and remainder; unused below W8_MIN).
 */
export function crc32c_update(crc: u32, p: usize, n: usize, scratch: usize): u32 {
  let rem: usize
  let span: usize
  if (n >= W6_MIN) {
    rem = crc32c_w6(p, n >> 4, <u64>crc, scratch)
    span = crc32c_w6_SPAN
  } else if (n >= W8_MIN) {
    rem = crc32c_w8(p, n >> 4, <u64>crc, scratch)
    span = crc32c_w8_SPAN
  } else {
    return crc32c_table(crc, p, n)
  }
  // the remainder stands for the whole-word prefix; the trailing bytes follow it
  const tail = n & 15
  memory.copy(rem + (span << 4), p + n - tail, tail)
  return crc32c_table(0, rem, (span << 4) + tail)
}
