// The key registry: SPDK's checks on create, lookups, and destroy zeroing the key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AccelError, AccelStatus } from '../src/index.js'
import { fixture, type Fixture, list, submit } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture()
})
afterAll(async () => {
  await f.close()
})

const code = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    return (e as AccelError).code
  }
  return 'none'
}

describe('crypto keys', () => {
  it('creates AES_XTS keys of 128 and 256 bits from bytes or hex, and finds them by name', () => {
    const a = f.accel.keys.create({ name: 'a', key: '00112233445566778899aabbccddeeff', key2: 'ffeeddccbbaa99887766554433221100' })
    expect(a.keyBits).toBe(128)
    expect(a.cipher).toBe('AES_XTS')
    expect(a.tweakMode).toBe('SIMPLE_LBA')
    const b = f.accel.keys.create({ name: 'b', key: new Uint8Array(32).fill(1), key2: new Uint8Array(32).fill(2) })
    expect(b.keyBits).toBe(256)
    expect(f.accel.keys.get('a')).toBe(a)
    expect(f.accel.keys.names()).toEqual(['a', 'b'])
  })

  it('refuses what SPDK refuses', () => {
    const k = f.accel.keys
    const ok = { key: '01'.repeat(16), key2: '02'.repeat(16) }
    expect(code(() => k.create({ name: 'a', ...ok }))).toBe('ACCEL_KEY_EXISTS')
    expect(code(() => k.create({ name: 'x', key: '01'.repeat(16), key2: '01'.repeat(16) }))).toBe('ACCEL_BAD_KEY') // key1 = key2
    expect(code(() => k.create({ name: 'x', key: '01'.repeat(16), key2: '02'.repeat(32) }))).toBe('ACCEL_BAD_KEY') // lengths differ
    expect(code(() => k.create({ name: 'x', key: '01'.repeat(24), key2: '02'.repeat(24) }))).toBe('ACCEL_BAD_KEY') // 192-bit
    expect(code(() => k.create({ name: 'x', cipher: 'AES_CBC' as 'AES_XTS', ...ok }))).toBe('ACCEL_BAD_KEY')
    expect(code(() => k.create({ name: 'x', tweakMode: 'INCR_512_FULL_LBA' as 'SIMPLE_LBA', ...ok }))).toBe('ACCEL_BAD_KEY')
    expect(code(() => k.create({ name: 'x', key: '0g'.repeat(16), key2: '02'.repeat(16) }))).toBe('ERR_INVALID_ARG_TYPE')
    expect(code(() => k.create({ name: 'x', key: '01'.repeat(16) } as never))).toBe('ACCEL_BAD_KEY')
    expect(code(() => k.destroy('nope'))).toBe('ACCEL_NO_KEY')
  })

  it('destroy zeroes the key bytes and its key schedule; the key cannot be used afterwards', async () => {
    const key = f.accel.keys.create({ name: 'gone', key: '05'.repeat(32), key2: '06'.repeat(32) })
    const material = key.material
    const ctx = key.xts.contextAddress
    f.accel.keys.destroy('gone')
    expect(key.destroyed).toBe(true)
    expect(material.every((b) => b === 0)).toBe(true)
    // the schedule in the shared memory is zeroed too (wiped by the kernels)
    expect(f.pm.bytes.subarray(ctx, ctx + 256).every((b) => b === 0)).toBe(true)
    expect(f.accel.keys.get('gone')).toBeUndefined()
    const A = list([f.local(0), 512])
    expect(() => f.ch.submitEncrypt(key, A, A, 0, 512, () => {}, null)).toThrow(AccelError)
    expect(await submit((cb) => f.ch.submitEncrypt(f.accel.keys.get('b')!, A, A, 0, 512, cb, null))).toBe(AccelStatus.Ok)
  })
})
