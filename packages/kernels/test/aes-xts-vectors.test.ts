// AES-XTS against the IEEE 1619-2007 Annex B vectors, in both directions and in place.
// Runs in Node and in the browser (no Node APIs).
import { describe, expect, it } from 'vitest'
import { createXts } from '../src/index.js'
import xts from './vectors/xts.json' with { type: 'json' }

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => Number.parseInt(h, 16))
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

describe('AES-XTS known answers', () => {
  for (const v of xts.vectors) {
    it(v.name, () => {
      const ctx = createXts(hex(v.key))
      const pt = hex(v.plaintext)
      const unit = BigInt(`0x${v.dataUnit}`)
      const ct = ctx.encrypt(pt, new Uint8Array(pt.length), pt.length, unit)
      expect(toHex(ct)).toBe(v.ciphertext)
      expect(toHex(ctx.decrypt(ct, new Uint8Array(ct.length), ct.length, unit))).toBe(v.plaintext)
      // in place, and with the data unit given as a number
      const buf = pt.slice()
      ctx.encrypt(buf, buf, buf.length, Number(unit))
      expect(toHex(buf)).toBe(v.ciphertext)
      ctx.decrypt(buf, buf, buf.length, Number(unit))
      expect(toHex(buf)).toBe(v.plaintext)
      expect(ctx.keyBits).toBe(v.key.length === 64 ? 128 : 256)
      ctx.destroy()
    })
  }
})
