// Copy elision, case by case as SPDK's accel_ut test_sequence_copy_elision and
// test_sequence_crc32 have them, then the in-place DIF and compare steps, and a property:
// whatever elision removes, the sequence's output bytes are those of running every step.
import { createDifContext } from '@ipukit/dif'
import type { IoVecList, MemoryDomain } from '@ipukit/memory'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AccelSequence, AccelStatus } from '../src/index.js'
import { TaskList } from '../src/internal/task-list.js'
import { elideCopies } from '../src/optimizer.js'
import type { AccelTask } from '../src/task.js'
import { fixture, type Fixture, fuzzRuns, list, random, read, run, same, write } from './helpers.js'

let f: Fixture
beforeAll(async () => {
  f = await fixture({ aesni: false })
})
afterAll(async () => {
  await f.close()
})

const N = 4096
/** distinct buffers A..H in local memory */
const buf = (i: number) => list([f.local(i * 65536), N])

function plan(build: (seq: AccelSequence) => void): { ops: string[]; tasks: AccelTask[]; removed: number } {
  const seq = f.ch.sequence()!
  build(seq)
  const elided = new TaskList()
  const removed = elideCopies(seq.tasks, elided)
  const tasks = seq.tasks.toArray()
  // hand everything back to the pool
  for (const t of elided.toArray()) f.ch.releaseTask(t)
  seq.abort()
  return { ops: tasks.map((t) => t.name), tasks, removed }
}

const key = () => f.accel.keys.get('k') ?? f.accel.keys.create({ name: 'k', key: '01'.repeat(32), key2: '02'.repeat(32) })

describe('copy elision (SPDK test_sequence_copy_elision)', () => {
  it('removes a leading copy: the next operation reads the copy\'s source', () => {
    const [A, B, C] = [buf(0), buf(1), buf(2)]
    const p = plan((s) => {
      s.appendCopy(B, null, A, null)
      s.appendEncrypt(key(), C, null, B, null, 0, 512)
    })
    expect(p.ops).toEqual(['encrypt'])
    expect(p.tasks[0]!.src.iovs).toBe(A)
    expect(p.tasks[0]!.dst.iovs).toBe(C)
  })

  it('removes a trailing copy: the operation before writes the copy\'s destination', () => {
    const [A, B, C] = [buf(0), buf(1), buf(2)]
    const p = plan((s) => {
      s.appendEncrypt(key(), B, null, A, null, 0, 512)
      s.appendCopy(C, null, B, null)
    })
    expect(p.ops).toEqual(['encrypt'])
    expect(p.tasks[0]!.dst.iovs).toBe(C)
  })

  it('copy + encrypt + copy and copy + decrypt + copy become one crypto operation', () => {
    for (const op of ['appendEncrypt', 'appendDecrypt'] as const) {
      const [A, B, C, D] = [buf(0), buf(1), buf(2), buf(3)]
      const p = plan((s) => {
        s.appendCopy(B, null, A, null)
        s[op](key(), C, null, B, null, 0, 512)
        s.appendCopy(D, null, C, null)
      })
      expect(p.ops).toEqual([op === 'appendEncrypt' ? 'encrypt' : 'decrypt'])
      expect([p.tasks[0]!.src.iovs, p.tasks[0]!.dst.iovs]).toEqual([A, D])
      expect(p.removed).toBe(2)
    }
  })

  it('of two chained copies one is removed; fill + copy fills the copy\'s destination', () => {
    const [A, B, C] = [buf(0), buf(1), buf(2)]
    const p = plan((s) => {
      s.appendCopy(B, null, A, null)
      s.appendCopy(C, null, B, null)
    })
    expect(p.ops).toEqual(['copy'])
    expect([p.tasks[0]!.src.iovs, p.tasks[0]!.dst.iovs]).toEqual([A, C])
    const q = plan((s) => {
      s.appendFill(B, null, 0xa5)
      s.appendCopy(C, null, B, null)
    })
    expect(q.ops).toEqual(['fill'])
    expect(q.tasks[0]!.dst.iovs).toBe(C)
  })

  it('carries memory domains (and only merges buffers of the same domain)', () => {
    const [A, B, C] = [buf(0), buf(1), buf(2)]
    const host = f.fabric.busMaster(f.nvme) as MemoryDomain
    const p = plan((s) => {
      s.appendCopy(B, f.ch.accelDomain, A, host)
      s.appendEncrypt(key(), C, null, B, f.ch.accelDomain, 0, 512)
    })
    expect(p.ops).toEqual(['encrypt'])
    expect(p.tasks[0]!.src.domain).toBe(host)
    // the same iovecs in another domain are another buffer
    const q = plan((s) => {
      s.appendCopy(B, f.ch.accelDomain, A, null)
      s.appendEncrypt(key(), C, null, B, null, 0, 512)
    })
    expect(q.ops).toEqual(['copy', 'encrypt'])
  })

  it('compares iovecs by value, not by object (SPDK accel_compare_iovs)', () => {
    const [A, C] = [buf(0), buf(2)]
    const B1 = list([f.local(65536), N])
    const B2 = list([f.local(65536), N])
    expect(plan((s) => {
      s.appendCopy(B1, null, A, null)
      s.appendEncrypt(key(), C, null, B2, null, 0, 512)
    }).ops).toEqual(['encrypt'])
    const B3 = list([f.local(65536), N / 2], [f.local(65536) + N / 2, N / 2])
    expect(plan((s) => {
      s.appendCopy(B1, null, A, null)
      s.appendEncrypt(key(), C, null, B3, null, 0, 512)
    }).ops).toEqual(['copy', 'encrypt'])
  })
})

describe('copy elision with crc32c (SPDK test_sequence_crc32)', () => {
  it('does not elide copy + crc32c, nor crc32c + copy at the start of a sequence', () => {
    const [A, B] = [buf(0), buf(1)]
    const r = { value: 0 }
    expect(plan((s) => {
      s.appendCopy(B, null, A, null)
      s.appendCrc32c(r, B, null, 0)
    }).ops).toEqual(['copy', 'crc32c'])
    expect(plan((s) => {
      s.appendCrc32c(r, A, null, 0)
      s.appendCopy(B, null, A, null)
    }).ops).toEqual(['crc32c', 'copy'])
  })

  it('encrypt + crc32c + copy: the encrypt writes the copy\'s destination and the crc32c reads it there', () => {
    const [A, B, C] = [buf(0), buf(1), buf(2)]
    const r = { value: 0 }
    const p = plan((s) => {
      s.appendEncrypt(key(), B, null, A, null, 0, 512)
      s.appendCrc32c(r, B, null, 0)
      s.appendCopy(C, null, B, null)
    })
    expect(p.ops).toEqual(['encrypt', 'crc32c'])
    expect(p.tasks[0]!.dst.iovs).toBe(C)
    expect(p.tasks[1]!.src.iovs).toBe(C)
  })
})

describe('in-place DIF and compare steps', () => {
  const ctx = () => createDifContext({ dataBlockSize: 512, mdSize: 8, type: 1 })

  it('dif_generate in place, then a copy: generated in the copy\'s destination (beyond SPDK, as crc32c)', () => {
    const A = list([f.local(0), 8 * 512])
    const B = list([f.local(65536), 8 * 520])
    const C = list([f.local(2 * 65536), 8 * 520])
    const p = plan((s) => {
      s.appendDifGenerateCopy(B, null, A, null, 8, ctx())
      s.appendDifGenerate(B, null, 8, ctx())
      s.appendCopy(C, null, B, null)
    })
    expect(p.ops).toEqual(['dif_generate_copy', 'dif_generate'])
    expect(p.tasks[0]!.dst.iovs).toBe(C)
    expect(p.tasks[1]!.src.iovs).toBe(C)
  })

  it('a compare or an in-place verify in the middle is left alone, and the copies around it still go where they can', () => {
    const [A, B, C, D] = [buf(0), buf(1), buf(2), buf(3)]
    const p = plan((s) => {
      s.appendCopy(B, null, A, null)
      s.appendEncrypt(key(), C, null, B, null, 0, 512)
      s.appendCompare(C, null, D, null)
      s.appendCopy(A, null, C, null)
    })
    // the leading copy goes (encrypt reads A); compare ends no pair; the trailing copy stays
    expect(p.ops).toEqual(['encrypt', 'compare', 'copy'])
    const q = plan((s) => {
      s.appendDifVerify(list([f.local(0), 8 * 520]), null, 8, ctx(), { kind: undefined, block: 0, expected: 0n, actual: 0n })
      s.appendCopy(B, null, A, null)
    })
    expect(q.ops).toEqual(['dif_verify', 'copy'])
  })
})

describe('property: elision never changes the output', () => {
  it('random chains of copy, encrypt, decrypt, fill, crc32c, compare give the bytes every step would', async () => {
    const k = key()
    const OPS = ['copy', 'encrypt', 'decrypt', 'fill', 'crc32c'] as const
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...OPS), fc.nat(3)), { minLength: 1, maxLength: 6 }), fc.nat(), async (steps, seed) => {
        // buffers 0..3; each step reads one and writes the next as the chain goes
        const bufs = [0, 1, 2, 3, 4, 5, 6].map((i) => list([f.local((8 + i) * 65536), N]))
        const init = random(7 * N, seed)
        const reset = () => bufs.forEach((b, i) => write(f.pm, b, init.subarray(i * N, (i + 1) * N)))
        const chain = (s: AccelSequence, results: { value: number }[]) => {
          let cur = 0
          steps.forEach(([op, pick], i) => {
            const next = (cur + 1 + pick) % bufs.length
            if (op === 'copy') s.appendCopy(bufs[next]!, null, bufs[cur]!, null)
            else if (op === 'encrypt') s.appendEncrypt(k, bufs[next]!, null, bufs[cur]!, null, i, 512)
            else if (op === 'decrypt') s.appendDecrypt(k, bufs[next]!, null, bufs[cur]!, null, i, 512)
            else if (op === 'fill') s.appendFill(bufs[next]!, null, i)
            else s.appendCrc32c(results[i]!, bufs[cur]!, null, 0)
            if (op !== 'crc32c') cur = next
          })
          return cur
        }
        // with elision (finish runs it)
        reset()
        const r1 = steps.map(() => ({ value: 0 }))
        const s1 = f.ch.sequence()!
        const last = chain(s1, r1)
        expect(await run(s1)).toBe(AccelStatus.Ok)
        const out1 = read(f.pm, bufs[last]!)
        // every step on its own (one sequence each: nothing to elide)
        reset()
        const r2 = steps.map(() => ({ value: 0 }))
        let cur = 0
        for (const [i, [op, pick]] of steps.entries()) {
          const s = f.ch.sequence()!
          const next = (cur + 1 + pick) % bufs.length
          if (op === 'copy') s.appendCopy(bufs[next]!, null, bufs[cur]!, null)
          else if (op === 'encrypt') s.appendEncrypt(k, bufs[next]!, null, bufs[cur]!, null, i, 512)
          else if (op === 'decrypt') s.appendDecrypt(k, bufs[next]!, null, bufs[cur]!, null, i, 512)
          else if (op === 'fill') s.appendFill(bufs[next]!, null, i)
          else s.appendCrc32c(r2[i]!, bufs[cur]!, null, 0)
          expect(await run(s)).toBe(AccelStatus.Ok)
          if (op !== 'crc32c') cur = next
        }
        expect(cur).toBe(last)
        expect(same(out1, read(f.pm, bufs[cur]!))).toBe(true)
        expect(r1.map((r) => r.value)).toEqual(r2.map((r) => r.value))
      }),
      { numRuns: fuzzRuns(60) },
    )
  })
})

export type { IoVecList }
