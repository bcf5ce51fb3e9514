// CRC-64/NVME: reflected, poly 0xAD93D23594C93659 (reflected constant 0x9A6C9329AC4BC9B5),
// init and xorout all ones (NVM Command Set Specification 1.0d §5.2.1.3, 64b guard). Raw register
// convention as for CRC-32C: callers pass ~seed and invert the result.
import { CRC64_TABLE } from './generated/tables'
import { crc64_w10, crc64_w10_SPAN, crc64_w12, crc64_w12_SPAN } from './generated/filters'

// Input lengths from which each word filter wins (forced at every size: 8 KiB: table 1.74
// GB/s, w12 1.96; 256 KiB: w12 6.98, w10 6.67; 1 MiB: w12 7.23, w10 7.49).
const W10_MIN: usize = 512 << 10
const W12_MIN: usize = 8 << 10

/** Slicing-by-16 over n bytes from p, starting from register `crc`. */
export function crc64_table(crc: u64, p: usize, n: usize): u64 {
  while (n >= 16) {
    const a = load<u64>(p) ^ crc
    const b = load<u64>(p, 8)
    const a0 = <u32>a, a1 = <u32>(a >> 32), b0 = <u32>b, b1 = <u32>(b >> 32)
    // byte k of the 16 is looked up in table 15 - k; each index is pre-scaled by 8
    crc = load<u64>((a0 << 3) & 0x7f8, CRC64_TABLE + 15 * 2048)
      ^ load<u64>((a0 >> 5) & 0x7f8, CRC64_TABLE + 14 * 2048)
      ^ load<u64>((a0 >> 13) & 0x7f8, CRC64_TABLE + 13 * 2048)
      ^ load<u64>((a0 >> 21) & 0x7f8, CRC64_TABLE + 12 * 2048)
      ^ load<u64>((a1 << 3) & 0x7f8, CRC64_TABLE + 11 * 2048)
      ^ load<u64>((a1 >> 5) & 0x7f8, CRC64_TABLE + 10 * 2048)
      ^ load<u64>((a1 >> 13) & 0x7f8, CRC64_TABLE + 9 * 2048)
      ^ load<u64>((a1 >> 21) & 0x7f8, CRC64_TABLE + 8 * 2048)
      ^ load<u64>((b0 << 3) & 0x7f8, CRC64_TABLE + 7 * 2048)
      ^ load<u64>((b0 >> 5) & 0x7f8, CRC64_TABLE + 6 * 2048)
      ^ load<u64>((b0 >> 13) & 0x7f8, CRC64_TABLE + 5 * 2048)
      ^ load<u64>((b0 >> 21) & 0x7f8, CRC64_TABLE + 4 * 2048)
      ^ load<u64>((b1 << 3) & 0x7f8, CRC64_TABLE + 3 * 2048)
      ^ load<u64>((b1 >> 5) & 0x7f8, CRC64_TABLE + 2 * 2048)
      ^ load<u64>((b1 >> 13) & 0x7f8, CRC64_TABLE + 1 * 2048)
      ^ load<u64>((b1 >> 21) & 0x7f8, CRC64_TABLE)
    p += 16
    n -= 16
  }
  while (n > 0) {
    crc = load<u64>(((<u32>crc ^ <u32>load<u8>(p)) & 0xff) << 3, CRC64_TABLE) ^ (crc >> 8)
    p++
    n--
  }
  return crc
}

/** CRC-64/NVME register update; `scratch` as for crc32c_update. */
export function crc64_update(crc: u64, p: usize, n: usize, scratch: usize): u64 {
  let rem: usize
  let span: usize
  if (n >= W10_MIN) {
    rem = crc64_w10(p, n >> 4, crc, scratch)
    span = crc64_w10_SPAN
  } else if (n >= W12_MIN) {
    rem = crc64_w12(p, n >> 4, crc, scratch)
    span = crc64_w12_SPAN
  } else {
    return crc64_table(crc, p, n)
  }
  const tail = n & 15
  memory.copy(rem + (span << 4), p + n - tail, tail)
  return crc64_table(0, rem, (span << 4) + tail)
}
