// AES-XTS throughput with 4 KiB data units (the buffer's size below 4 KiB): ipukit's
// constant-time bitsliced WASM beside node:crypto (OpenSSL with AES-NI, one createCipheriv
// per data unit, which is how a per-sector caller must use it), a JavaScript XTS built on
// @noble/ciphers' AES block function (the best pure-JS AES), and memcpy as the ceiling.
import { createCipheriv, randomBytes } from 'node:crypto'
import { unsafe } from '@noble/ciphers/aes.js'
import { test } from 'vitest'
import { createKernelMemory, createKernelsSync } from '../src/index.js'
import { machine, measure, memcpyCeiling, median, method, printSize, save, SIZES, type SizeResult } from '@ipukit/bench-utils'

const FIRST = 1_000_000

function ivOf(unit: number, out: Buffer): Buffer {
  out.fill(0)
  out.writeUIntLE(unit, 0, 6)
  return out
}

/** XTS-AES-256 in JavaScript on noble's AES rounds: whole blocks only (4 KiB units). */
function nobleXts(key: Uint8Array) {
  const k1 = unsafe.expandKeyLE(key.subarray(0, 32))
  const k2 = unsafe.expandKeyLE(key.subarray(32))
  return (src: Uint8Array, dst: Uint8Array, dus: number, first: number) => {
    const s32 = new Uint32Array(src.buffer, src.byteOffset, src.length >> 2)
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length >> 2)
    for (let u = 0; u < src.length / dus; u++) {
      const unit = first + u
      let { s0: t0, s1: t1, s2: t2, s3: t3 } = unsafe.encrypt(k2, unit >>> 0, Math.floor(unit / 2 ** 32), 0, 0)
      for (let w = (u * dus) >> 2, end = ((u + 1) * dus) >> 2; w < end; w += 4) {
        const o = unsafe.encrypt(k1, s32[w]! ^ t0, s32[w + 1]! ^ t1, s32[w + 2]! ^ t2, s32[w + 3]! ^ t3)
        d32[w] = o.s0 ^ t0
        d32[w + 1] = o.s1 ^ t1
        d32[w + 2] = o.s2 ^ t2
        d32[w + 3] = o.s3 ^ t3
        // T *= alpha (little-endian, IEEE 1619 §5.2)
        const carry = t3 >>> 31
        t3 = (t3 << 1) | (t2 >>> 31)
        t2 = (t2 << 1) | (t1 >>> 31)
        t1 = (t1 << 1) | (t0 >>> 31)
        t0 = (t0 << 1) ^ (carry * 0x87)
      }
    }
    return dst
  }
}

test('aes-xts throughput', () => {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: 6 << 20, scratchSlots: 1, keySlots: 4 }), scratchSlots: 1 })
  const key = new Uint8Array(randomBytes(64))
  const key128 = new Uint8Array(randomBytes(32))
  const x256 = k.createXts(key)
  const x128 = k.createXts(key128)
  const noble = nobleXts(key)
  const iv = Buffer.alloc(16)
  const src = k.layout.end
  const dst = src + (2 << 20)
  const sizes: SizeResult[] = []
  for (const n of SIZES) {
    const dus = Math.min(n, 4096)
    const data = new Uint8Array(randomBytes(n))
    const out = new Uint8Array(n)
    const mem = new Uint8Array(k.memory.buffer)
    mem.set(data, src)
    const viewOut = () => mem.slice(dst, dst + n)
    const node = () => {
      for (let off = 0, u = 0; off < n; off += dus, u++) {
        const c = createCipheriv('aes-256-xts', key, ivOf(FIRST + u, iv))
        out.set(c.update(data.subarray(off, off + dus)), off)
        c.final()
      }
      return out
    }
    // decrypt must invert encrypt (checked here, outside the timed loop)
    x256.encryptAt(src, dst, n, dus, FIRST)
    x256.decryptAt(dst, dst + n, n, dus, FIRST)
    if (!mem.subarray(dst + n, dst + 2 * n).every((b, i) => b === data[i])) throw new Error('decrypt(encrypt(x)) != x')
    const r = measure(n, [
      {
        name: 'ipukit XTS-256 encrypt (kernel memory)',
        kind: 'ipukit',
        run: () => x256.encryptAt(src, dst, n, dus, FIRST),
        output: () => (x256.encryptAt(src, dst, n, dus, FIRST), viewOut()),
      },
      {
        name: 'ipukit XTS-256 encrypt (Uint8Array, staged)',
        kind: 'ipukit',
        run: () => x256.encrypt(data, out, dus, FIRST),
        output: () => x256.encrypt(data, out, dus, FIRST).slice(),
      },
      { name: 'ipukit XTS-256 decrypt (kernel memory)', kind: 'ipukit', run: () => x256.decryptAt(src, dst, n, dus, FIRST) },
      { name: 'ipukit XTS-128 encrypt (kernel memory)', kind: 'ipukit', run: () => x128.encryptAt(src, dst, n, dus, FIRST) },
      { name: 'node:crypto aes-256-xts, createCipheriv per unit', kind: 'peer', run: node, output: () => node().slice() },
      { name: '@noble/ciphers 2.4 AES, XTS in JS', kind: 'peer', run: () => noble(data, out, dus, FIRST), output: () => noble(data, out, dus, FIRST).slice() },
      memcpyCeiling(n),
    ])
    printSize('AES-XTS, 4 KiB data units', r)
    sizes.push(r)
  }
  const mib = sizes[sizes.length - 1]!
  const enc = median(mib, 'ipukit XTS-256 encrypt (kernel memory)')
  save({
    kernel: 'aes-xts',
    order: 4,
    title: 'AES-XTS (4 KiB data units)',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes,
    targets: [{ text: 'constant-time XTS-256 encrypt, 4 KiB units, at 1 MiB, GB/s', value: enc / 1000, goal: 0.15, met: enc >= 150 }],
    notes: [
      `ipukit ÷ node:crypto (AES-NI, per-unit calls) at 1 MiB: ${(enc / median(mib, 'node:crypto aes-256-xts, createCipheriv per unit')).toFixed(2)}`,
      `ipukit ÷ @noble/ciphers XTS at 1 MiB: ${(enc / median(mib, '@noble/ciphers 2.4 AES, XTS in JS')).toFixed(1)}`,
    ],
  })
  x256.destroy()
  x128.destroy()
  k.close()
})
