// Error injection (spdk_dif_inject_error / spdk_dix_inject_error): flips one bit of one
// block, in a field verify checks, chosen by a seeded generator so a test can be replayed.
// Unlike SPDK (srand(time(0))), the choice is deterministic, and never a bit verify cannot
// see: not an app tag bit outside the mask, not a flip that turns the block's PI into
// "ignore", not a block whose PI already says "ignore".
import type { DifContext } from './dif.js'
import { checkInt, rangeError, typeError } from './internal/errors.js'
import { inspect, type IoVecs, ListCursor } from './internal/iov.js'

export type InjectKind = 'guard' | 'appTag' | 'refTag' | 'data'

export interface InjectOptions {
  /** Seed of the generator (any 32-bit value; 0 is taken as 1). Default 1. */
  seed?: number
  /** Inject into this block instead of one the generator picks. */
  block?: number
}

export interface Injected {
  kind: InjectKind
  /** Block that was changed, from the start of the request. */
  block: number
  /** Which list holds the flipped bit: the main list, or the DIX metadata list. */
  list: 'iovs' | 'md'
  /** Byte offset of the flipped bit in that list. */
  offset: number
  /** The bit, 0 = least significant. */
  bit: number
}

const cursor = new ListCursor()

/** Byte offset of a field inside the PI tuple, and its width in bits (SPDK struct spdk_dif). */
function field(ctx: DifContext, kind: 'guard' | 'appTag' | 'refTag'): { at: number; bits: number } {
  const f = ctx.piFormat
  if (kind === 'guard') return { at: 0, bits: f }
  if (kind === 'appTag') return { at: f === 16 ? 2 : f === 32 ? 4 : 8, bits: 16 }
  return f === 16 ? { at: 4, bits: 32 } : f === 32 ? { at: 8, bits: 64 } : { at: 10, bits: 48 }
}

function readField(get: (i: number) => number, at: number, bits: number): bigint {
  let v = 0n
  for (let i = 0; i < bits / 8; i++) v = (v << 8n) | BigInt(get(at + i))
  return v
}

export function inject(
  ctx: DifContext,
  iovs: IoVecs,
  md: IoVecs | undefined,
  numBlocks: number,
  kind: InjectKind,
  opts: InjectOptions = {},
): Injected {
  const k = ctx.kernels
  k.live()
  if (kind !== 'guard' && kind !== 'appTag' && kind !== 'refTag' && kind !== 'data') {
    throw typeError(`kind must be 'guard', 'appTag', 'refTag' or 'data', got ${String(kind)}`)
  }
  checkInt('numBlocks', numBlocks, 1, 0xffffffff)
  if (ctx.type === 0) throw rangeError('this context has PI off (type 0): nothing would catch an injected error')
  const c = ctx.checks
  if ((kind === 'guard' || kind === 'data') && !c.guard) throw rangeError(`${kind} errors need the guard check, which this context turns off`)
  if (kind === 'appTag' && (!c.appTag || ctx.appTagMask === 0)) throw rangeError('appTag errors need the app tag check and a non-zero mask')
  if (kind === 'refTag' && (!c.refTag || ctx.type === 3)) throw rangeError('refTag errors need the ref tag check, and type 1 or 2 (type 3 never checks it)')
  const dix = md !== undefined
  const ext = ctx.dataBlockSize + ctx.mdSize
  const mainUnit = dix ? ctx.dataBlockSize : ext
  if (inspect(k, 'iovs', iovs).length < numBlocks * mainUnit) throw rangeError(`iovs is shorter than ${numBlocks} blocks`)
  if (dix && inspect(k, 'md', md).length < numBlocks * ctx.mdSize) throw rangeError(`md is shorter than ${numBlocks} blocks`)
  const piList = dix ? md : iovs
  const piAt = (block: number) => (dix ? block * ctx.mdSize : block * ext + ctx.dataBlockSize) + ctx.piOffset
  const byteAt = (list: IoVecs, offset: number) => {
    cursor.reset(list)
    return cursor.locate(k, offset)
  }
  const piByte = (block: number) => (i: number) => byteAt(piList, piAt(block) + i).get()
  const app = field(ctx, 'appTag')
  const ref = field(ctx, 'refTag')
  const allOnes = (1n << BigInt(ref.bits)) - 1n
  const ignored = (a: bigint, r: bigint) => a === 0xffffn && (ctx.type !== 3 || r === allOnes)

  let s = (opts.seed ?? 1) >>> 0 || 1
  const next = () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
  let block: number
  if (opts.block !== undefined) {
    checkInt('block', opts.block, 0, numBlocks - 1)
    block = opts.block
  } else block = next() % numBlocks
  // skip blocks whose PI says "ignore": verify never looks at them
  for (let tries = 0; ; tries++) {
    if (tries === numBlocks) throw rangeError('every block of the request has PI that says "ignore"')
    const get = piByte(block)
    if (!ignored(readField(get, app.at, 16), readField(get, ref.at, ref.bits))) break
    if (opts.block !== undefined) throw rangeError(`block ${block}'s PI says "ignore": verify would not see an error there`)
    block = (block + 1) % numBlocks
  }

  let list: 'iovs' | 'md' = dix ? 'md' : 'iovs'
  let offset: number
  let bit: number
  if (kind === 'data') {
    const b = next() % (ctx.dataBlockSize * 8)
    list = 'iovs'
    offset = block * mainUnit + (b >> 3)
    bit = b & 7
  } else {
    const f = field(ctx, kind)
    let candidates: number[] = Array.from({ length: f.bits }, (_, i) => i)
    if (kind === 'appTag') {
      const get = piByte(block)
      const a = readField(get, app.at, 16)
      const r = readField(get, ref.at, ref.bits)
      // only bits verify compares, and no flip that makes the block "ignore"
      candidates = candidates.filter((i) => (ctx.appTagMask >> i) & 1 && !ignored(a ^ (1n << BigInt(i)), r))
      if (candidates.length === 0) throw rangeError(`no app tag bit of block ${block} can be flipped detectably`)
    }
    const b = candidates[next() % candidates.length]!
    // fields are big-endian: bit b of the field is in its byte (width - 1 - b / 8)
    offset = piAt(block) + f.at + (f.bits / 8 - 1 - (b >> 3))
    bit = b & 7
  }
  const at = byteAt(list === 'md' ? md! : iovs, offset)
  at.set(at.get() ^ (1 << bit))
  return { kind, block, list, offset, bit }
}
