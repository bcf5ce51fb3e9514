// CRC-16/T10-DIF: poly 0x8BB7, init 0, MSB-first (not reflected), no xorout (SBC-4 §4.22.4,
// NVM Command Set Specification 1.0d §5.2.1.3, 16b guard). The register is the CRC itself, so chaining is
// crc16_update(crc(a), b) == crc(a ‖ b).
import { CRC16_TABLE } from './generated/tables'
import { crc16_w3, crc16_w3_SPAN, crc16_w5, crc16_w5_SPAN } from './generated/filters'

// Input lengths from which each word filter wins (forced at every size: 1 KiB: table 1.64
// GB/s, w5 2.21; 4 KiB: w5 6.62; 256 KiB: w5 17.8, w3 18.3; 1 MiB: w3 22.7).
const W3_MIN: usize = 256 << 10
const W5_MIN: usize = 1 << 10

/** Slicing-by-16 over n bytes from p, starting from register `crc` (16 bits). */
export function crc16_table(crc: u32, p: usize, n: usize): u32 {
  while (n >= 16) {
    // the register's high byte meets the first input byte: XOR it in byte-swapped
    const a = load<u64>(p) ^ <u64>(((crc >> 8) | (crc << 8)) & 0xffff)
    const b = load<u64>(p, 8)
    const a0 = <u32>a, a1 = <u32>(a >> 32), b0 = <u32>b, b1 = <u32>(b >> 32)
    // byte k of the 16 is looked up in table 15 - k; each index is pre-scaled by 2
    crc = <u32>load<u16>((a0 << 1) & 0x1fe, CRC16_TABLE + 15 * 512)
      ^ <u32>load<u16>((a0 >> 7) & 0x1fe, CRC16_TABLE + 14 * 512)
      ^ <u32>load<u16>((a0 >> 15) & 0x1fe, CRC16_TABLE + 13 * 512)
      ^ <u32>load<u16>((a0 >> 23) & 0x1fe, CRC16_TABLE + 12 * 512)
      ^ <u32>load<u16>((a1 << 1) & 0x1fe, CRC16_TABLE + 11 * 512)
      ^ <u32>load<u16>((a1 >> 7) & 0x1fe, CRC16_TABLE + 10 * 512)
      ^ <u32>load<u16>((a1 >> 15) & 0x1fe, CRC16_TABLE + 9 * 512)
      ^ <u32>load<u16>((a1 >> 23) & 0x1fe, CRC16_TABLE + 8 * 512)
      ^ <u32>load<u16>((b0 << 1) & 0x1fe, CRC16_TABLE + 7 * 512)
      ^ <u32>load<u16>((b0 >> 7) & 0x1fe, CRC16_TABLE + 6 * 512)
      ^ <u32>load<u16>((b0 >> 15) & 0x1fe, CRC16_TABLE + 5 * 512)
      ^ <u32>load<u16>((b0 >> 23) & 0x1fe, CRC16_TABLE + 4 * 512)
      ^ <u32>load<u16>((b1 << 1) & 0x1fe, CRC16_TABLE + 3 * 512)
      ^ <u32>load<u16>((b1 >> 7) & 0x1fe, CRC16_TABLE + 2 * 512)
      ^ <u32>load<u16>((b1 >> 15) & 0x1fe, CRC16_TABLE + 1 * 512)
      ^ <u32>load<u16>((b1 >> 23) & 0x1fe, CRC16_TABLE)
    p += 16
    n -= 16
  }
  while (n > 0) {
    crc = (<u32>load<u16>((((crc >> 8) ^ <u32>load<u8>(p)) & 0xff) << 1, CRC16_TABLE) ^ (crc << 8)) & 0xffff
    p++
    n--
  }
  return crc
}

/** CRC16 T10-DIF register update; `scratch` as for crc32c_update. */
export function crc16_update(crc: u32, p: usize, n: usize, scratch: usize): u32 {
  const init = <u64>(((crc >> 8) | (crc << 8)) & 0xffff)
  let rem: usize
  let span: usize
  if (n >= W3_MIN) {
    rem = crc16_w3(p, n >> 4, init, scratch)
    span = crc16_w3_SPAN
  } else if (n >= W5_MIN) {
    rem = crc16_w5(p, n >> 4, init, scratch)
    span = crc16_w5_SPAN
  } else {
    return crc16_table(crc, p, n)
  }
  const tail = n & 15
  memory.copy(rem + (span << 4), p + n - tail, tail)
  return crc16_table(0, rem, (span << 4) + tail)
}
