// Generates the kernels' static data and unrolled loops into assembly/generated/:
//   tables.ts   CRC slicing-by-16 tables (static data, 64-byte aligned)
//   filters.ts  sparse-multiple word filters, unrolled with their taps as immediates
// Run by scripts/build-wasm.mjs before asc; the output is not committed.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FILTERS } from './filters.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const outDir = join(here, '..', 'assembly', 'generated')

// ---------------------------------------------------------------------------------------
// Slicing tables. Table k maps a byte b to the register contribution of b followed by k
// zero bytes, so slicing-by-16 XORs 16 lookups per 16 input bytes (Kounavis & Berry,
// "Novel Table Lookup-Based Algorithms for High-Performance CRC Generation", 2008).

/** Reflected (LSB-first) CRC of width 32 or 64. */
function reflectedTables(polyRev, width, slices) {
  const mask = (1n << BigInt(width)) - 1n
  const t0 = []
  for (let b = 0; b < 256; b++) {
    let c = BigInt(b)
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ polyRev : c >> 1n
    t0.push(c & mask)
  }
  const t = [t0]
  for (let s = 1; s < slices; s++) t.push(t0.map((_, b) => (t[s - 1][b] >> 8n) ^ t0[Number(t[s - 1][b] & 0xffn)]))
  return t
}

/** Non-reflected (MSB-first) CRC16. */
function normal16Tables(poly, slices) {
  const t0 = []
  for (let b = 0; b < 256; b++) {
    let c = b << 8
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ poly) & 0xffff : (c << 1) & 0xffff
    t0.push(c)
  }
  const t = [t0]
  for (let s = 1; s < slices; s++) t.push(t0.map((_, b) => ((t[s - 1][b] << 8) & 0xffff) ^ t0[t[s - 1][b] >> 8]))
  return t
}

function table(name, type, tables, comment) {
  const bytes = { u16: 2, u32: 4, u64: 8 }[type]
  const flat = tables.flat()
  const lines = []
  for (let i = 0; i < flat.length; i += 8) lines.push('  ' + flat.slice(i, i + 8).map((v) => `0x${v.toString(16)}`).join(', ') + ',')
  return [
    `// ${comment}`,
    `// ${tables.length} tables x 256 entries x ${bytes} bytes = ${tables.length * 256 * bytes} bytes`,
    `export const ${name}: usize = memory.data<${type}>([`,
    ...lines,
    `], 64)`,
    '',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------
// Sparse-multiple word filters. For a multiple F(y) = sum_{e in S} y^e of the CRC
// polynomial P(x), with y = x^128 (one 16-byte word), the word at index i of a message is
// congruent (mod P) to the sum of copies of itself at indices i + (n - e), e in S \ {n},
// n = max S. Eliminating words front to back is the IIR recurrence
//   v[i] = w[i] ^ XOR_{d in taps} v[i - d],   taps = { n - e : e in S, e < n },
// and the last n words that are not eliminated (the remainder) are congruent to the whole
// message. F(x^128) = F(x)^128 over GF(2), so F works for 16-byte words when it is a
// multiple of P in x: the search is over ordinary multiples (scripts/filters.mjs).

function filter(f) {
  const span = Math.max(...f.exponents)
  const taps = f.exponents.filter((e) => e < span).map((e) => span - e).sort((a, b) => a - b)
  const unroll = Math.min(4, taps[0])
  // h points SPAN words before the word being produced, so every tap is a non-negative
  // immediate offset: v[i - d] is at h + (SPAN - d) * 16.
  const word = (k, store) => {
    const off = k * 16
    const srcTerms = [`v128.load(src, ${off})`, ...taps.map((d) => `v128.load(h, ${(span - d) * 16 + off})`)]
    return store === 'ring'
      ? `      v128.store(h, ${xorTree(srcTerms)}, ${span * 16 + off})`
      : `      v128.store(out, ${xorTree(srcTerms)})`
  }
  const xorTree = (xs) => (xs.length === 1 ? xs[0] : `v128.xor(${xorTree(xs.slice(0, xs.length >> 1))}, ${xorTree(xs.slice(xs.length >> 1))})`)
  const poly = f.exponents
    .slice()
    .sort((a, b) => b - a)
    .map((e) => (e === 0 ? '1' : `y^${e}`))
    .join(' + ')
  const N = f.name
  return `
// ${f.crc}: F(y) = ${poly}  (weight ${f.exponents.length}, ${f.note})
// v[i] = w[i] ^ ${taps.map((d) => `v[i-${d}]`).join(' ^ ')}
export const ${N}_SPAN: usize = ${span}
/**
 * Reduces the first \`nwords\` 16-byte words at \`src\` (nwords > ${span}) to ${span} words
 * congruent to them modulo the CRC polynomial, with \`init\` XORed into word 0 first.
 * Returns the address of the remainder in \`scratch\` (FILTER_SCRATCH bytes); the caller
 * appends the message's trailing bytes and runs the table CRC over it from register 0.
 */
export function ${N}(src: usize, nwords: usize, init: u64, scratch: usize): usize {
  const SPAN: usize = ${span}
  const CHUNK: usize = 1024
  // scratch: [ SPAN words of history | CHUNK words | SPAN words of zeros ] [ SPAN words + 16 B remainder ]
  const limit = scratch + ((SPAN + CHUNK) << 4)
  memory.fill(scratch, 0, SPAN << 4)
  // word 0: all its sources lie before the message, so they are zero
  v128.store(scratch + (SPAN << 4), v128.xor(v128.load(src), i64x2(init, 0)))
  let h = scratch + 16
  src += 16
  const elim = nwords - SPAN
  let done: usize = 1
  while (done < elim) {
    let todo = (limit - (h + (SPAN << 4))) >> 4
    if (todo > elim - done) todo = elim - done
    const stop = h + (todo << 4)
    while (h + ${unroll * 16} <= stop) {
${Array.from({ length: unroll }, (_, k) => word(k, 'ring')).join('\n')}
      h += ${unroll * 16}
      src += ${unroll * 16}
    }
    while (h < stop) {
${word(0, 'ring')}
      h += 16
      src += 16
    }
    done += todo
    if (h + (SPAN << 4) == limit && done < elim) {
      // keep the last SPAN words as history at the front, so taps never wrap
      memory.copy(scratch, h, SPAN << 4)
      h = scratch
    }
  }
  // Remainder: words elim..nwords-1 receive contributions only from eliminated words,
  // so their own slots are zero while they are computed into a separate area.
  memory.fill(h + (SPAN << 4), 0, SPAN << 4)
  const rem = scratch + ((2 * SPAN + CHUNK) << 4)
  let out = rem
  const end = rem + (SPAN << 4)
  while (out < end) {
${word(0, 'out')}
    out += 16
    h += 16
    src += 16
  }
  return rem
}
`
}

const tables = [
  '// Generated by scripts/gen-tables.mjs. Do not edit.',
  '',
  table('CRC32C_TABLE', 'u32', reflectedTables(0x82f63b78n, 32, 16), 'CRC-32C (Castagnoli), reflected constant 0x82F63B78, slicing-by-16'),
  table('CRC16_TABLE', 'u16', normal16Tables(0x8bb7, 16), 'CRC-16/T10-DIF, poly 0x8BB7, MSB-first, slicing-by-16'),
  table('CRC64_TABLE', 'u64', reflectedTables(0x9a6c9329ac4bc9b5n, 64, 16), 'CRC-64/NVME, poly 0xAD93D23594C93659 (reflected constant 0x9A6C9329AC4BC9B5), slicing-by-16'),
]
const scratchMax = Math.max(...FILTERS.map((f) => (3 * Math.max(...f.exponents) + 1024) * 16 + 16))
const filters = [
  '// Generated by scripts/gen-tables.mjs. Do not edit.',
  ...FILTERS.map(filter),
  `/** Scratch bytes the largest filter needs. */\nexport const FILTER_SCRATCH: usize = ${scratchMax}\n`,
]
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'tables.ts'), tables.join('\n'))
writeFileSync(join(outDir, 'filters.ts'), filters.join('\n'))
