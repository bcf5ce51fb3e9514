// Searches for sparse multiples of a CRC polynomial, the input of the word filters
// (scripts/filters.mjs). A multiple of weight w and span n is a set S of w exponents in
// [0, n] with sum_{e in S} x^e = 0 mod P; the filter then costs w loads per 16-byte word and
// leaves n words for the table. This is a Lee–Brickell information-set search over the
// parity-check matrix whose columns are x^e mod P, e < --span: each iteration picks a random
// information set and tries every pair of non-pivot columns (p = 2).
//
//   node scripts/find-multiples.mjs --crc crc64 --span 300 --weight 12 --iterations 20000
//
// It prints every new best (smallest span for a weight) as it finds it. The sets in
// filters.mjs came from this search; the command above finds CRC-64/NVME's weight-12,
// span-283 set within 40 000 iterations (about 20 s here).
import { parseArgs } from 'node:util'

const POLYS = {
  crc32c: { poly: 0x1edc6f41n, degree: 32 },
  crc16: { poly: 0x8bb7n, degree: 16 },
  crc64: { poly: 0xad93d23594c93659n, degree: 64 },
}

const { values } = parseArgs({
  options: {
    crc: { type: 'string', default: 'crc64' },
    span: { type: 'string', default: '300' },
    weight: { type: 'string', default: '12' },
    iterations: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
  },
})
const spec = POLYS[values.crc]
if (!spec) throw new Error(`--crc must be one of ${Object.keys(POLYS).join(', ')}`)
const D = Number(values.span) + 1
const W = Number(values.weight)
const deg = spec.degree
const mask = (1n << BigInt(deg)) - 1n

// x^e mod P for e < D, as (hi, lo) u32 pairs
const xs = []
for (let e = 0, v = 1n; e < D; e++) {
  xs.push(v)
  v = v & (1n << BigInt(deg - 1)) ? ((v << 1n) & mask) ^ spec.poly : v << 1n
}
const hi = Uint32Array.from(xs, (v) => Number(v >> 32n))
const lo = Uint32Array.from(xs, (v) => Number(v & 0xffffffffn))

let rng = Number(values.seed) >>> 0 || 1
const rand = () => {
  rng ^= rng << 13
  rng >>>= 0
  rng ^= rng >>> 17
  rng ^= rng << 5
  return (rng >>>= 0)
}
const pop = (x) => {
  x -= (x >>> 1) & 0x55555555
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}
const bit = (h, l, b) => (b >= 32 ? (h >>> (b - 32)) & 1 : (l >>> b) & 1)

const best = new Map()
const seen = new Set()
function report(set) {
  const s = [...set].sort((a, b) => a - b)
  const base = s[0]
  const norm = s.map((e) => e - base)
  const key = norm.join(',')
  if (seen.has(key)) return
  seen.add(key)
  let acc = 0n
  for (const e of norm) acc ^= xs[e]
  if (acc !== 0n) throw new Error(`not a multiple: ${key}`)
  const span = norm[norm.length - 1]
  if (span < (best.get(norm.length) ?? Infinity)) {
    best.set(norm.length, span)
    console.log(`weight ${norm.length} span ${span}: [${key}]`)
  }
}

const perm = Array.from({ length: D }, (_, i) => i)
for (let it = 0; it < Number(values.iterations); it++) {
  for (let i = D - 1; i > 0; i--) {
    const j = rand() % (i + 1)
    ;[perm[i], perm[j]] = [perm[j], perm[i]]
  }
  // Gauss-Jordan over the columns in this order: red = reduced pivot vectors, comb = which
  // original pivot columns sum to each (bitmask over pivot indices)
  const rh = [], rl = [], ch = [], cl = [], pb = [], piv = [], non = []
  for (const e of perm) {
    let h = hi[e], l = lo[e], mh = 0, ml = 0
    for (let k = 0; k < pb.length; k++) if (bit(h, l, pb[k])) (h ^= rh[k], l ^= rl[k], mh ^= ch[k], ml ^= cl[k])
    if ((h | l) !== 0 && pb.length < deg) {
      const k = pb.length
      const b = h ? 63 - Math.clz32(h) : 31 - Math.clz32(l)
      if (k < 32) ml ^= 1 << k
      else mh ^= 1 << (k - 32)
      for (let j = 0; j < k; j++) if (bit(rh[j], rl[j], b)) (rh[j] ^= h, rl[j] ^= l, ch[j] ^= mh, cl[j] ^= ml)
      rh.push(h >>> 0), rl.push(l >>> 0), ch.push(mh >>> 0), cl.push(ml >>> 0), pb.push(b), piv.push(e)
    } else non.push(e)
  }
  if (pb.length < deg) continue
  // each non-pivot column as a combination of pivot columns
  const ah = new Uint32Array(non.length)
  const al = new Uint32Array(non.length)
  non.forEach((e, j) => {
    let h = hi[e], l = lo[e], mh = 0, ml = 0
    for (let k = 0; k < deg; k++) if (bit(h, l, pb[k])) (h ^= rh[k], l ^= rl[k], mh ^= ch[k], ml ^= cl[k])
    ah[j] = mh
    al[j] = ml
  })
  const expand = (set, h, l) => {
    for (let k = 0; k < deg; k++) if (k < 32 ? (l >>> k) & 1 : (h >>> (k - 32)) & 1) set.push(piv[k])
    return set
  }
  for (let i = 0; i < non.length; i++) {
    if (1 + pop(ah[i]) + pop(al[i]) <= W) report(expand([non[i]], ah[i], al[i]))
    for (let j = i + 1; j < non.length; j++) {
      const h = ah[i] ^ ah[j], l = al[i] ^ al[j]
      if (2 + pop(h) + pop(l) <= W) report(expand([non[i], non[j]], h, l))
    }
  }
}
