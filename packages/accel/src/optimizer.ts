// The generic optimizer: copy elision, as spdk_accel_sequence_finish() does it
// (accel_sequence_merge_tasks / accel_task_set_dstbuf in lib/accel/accel.c), before any
// operation runs and before the platform driver sees the sequence. One forward pass over
// adjacent pairs (task, next); buffers "match" when their domains are the same object and
// their iovec lists are identical.
//
//   1. copy, then X reading the copy's dst (X: decompress, copy, encrypt, decrypt,
//      copy_crc32c, dif_generate_copy, dif_verify_copy): X reads the copy's src, and the
//      copy goes.
//   2. X writing what a following copy reads (X: decompress, fill, encrypt, decrypt,
//      dif_generate_copy, dif_verify_copy): X writes the copy's dst, and the copy goes.
//   3. X with no data dst (crc32c, dix_generate, dix_verify), reading what a following copy
//      reads: if the operation before X can be redirected (rule 2, recursively), it writes
//      the copy's dst, X reads it there, and the copy goes.
//
// As SPDK's header says, a copy in a sequence is not guaranteed to happen: it may only
// change where other operations read and write. Beyond SPDK, rule 3 also takes the in-place
// dif_verify and dif_generate (like crc32c, they have no separate dst; generating in place
// on the copy's dst leaves it with the same bytes the copy would have), and any other
// opcode ending a pair (compare, xor, fill after a copy, ...) leaves it alone where SPDK's
// debug build would assert.
import { Opc } from './opcodes.js'
import type { TaskList } from './internal/task-list.js'
import type { AccelTask } from './task.js'

const READS_COPY_DST = new Set<number>([Opc.decompress, Opc.copy, Opc.encrypt, Opc.decrypt, Opc.copy_crc32c, Opc.dif_generate_copy, Opc.dif_verify_copy])
const REDIRECTABLE_DST = new Set<number>([Opc.decompress, Opc.fill, Opc.encrypt, Opc.decrypt, Opc.dif_generate_copy, Opc.dif_verify_copy])
const NO_DATA_DST = new Set<number>([Opc.crc32c, Opc.dix_generate, Opc.dix_verify, Opc.dif_verify, Opc.dif_generate])

/** accel_task_set_dstbuf: makes `tasks[i]` write where `copy` writes; false if it cannot. */
function setDstBuf(tasks: TaskList, i: number, copy: AccelTask): boolean {
  const task = tasks.at(i)
  if (REDIRECTABLE_DST.has(task.opcode)) {
    if (!task.dst.sameAs(copy.src)) return false
    task.dst.copyFrom(copy.dst)
    return true
  }
  if (NO_DATA_DST.has(task.opcode)) {
    if (!task.src.sameAs(copy.src)) return false
    // only if the operation before it can be redirected too
    if (i === 0 || !setDstBuf(tasks, i - 1, copy)) return false
    task.src.copyFrom(copy.dst)
    return true
  }
  return false
}

/**
 * Elides copies in place: removes them from `tasks` and appends them to `elided` (their
 * step callbacks are the caller's to fire). Returns how many were removed.
 */
export function elideCopies(tasks: TaskList, elided: TaskList): number {
  let removed = 0
  let i = 0
  while (i + 1 < tasks.length) {
    const task = tasks.at(i)
    const next = tasks.at(i + 1)
    if (task.opcode === Opc.copy) {
      if (READS_COPY_DST.has(next.opcode) && task.dst.sameAs(next.src)) {
        next.src.copyFrom(task.src)
        elided.push(tasks.removeAt(i))
        removed++
        // the loop goes on with `next` at i, as TAILQ_FOREACH_SAFE does
        continue
      }
    } else if (next.opcode === Opc.copy && (REDIRECTABLE_DST.has(task.opcode) || NO_DATA_DST.has(task.opcode))) {
      if (setDstBuf(tasks, i, next)) {
        elided.push(tasks.removeAt(i + 1))
        removed++
        // SPDK moves on to the task after the removed copy, not back to `task`
        i++
        continue
      }
    }
    i++
  }
  return removed
}
