// Per-thread scratch iovec lists for the translations inside one domain operation: the
// lists are reused by every operation on the thread and only grow, so a pull, push or
// transfer allocates nothing once they are large enough.
import { IoVecList } from '../iov.js'

/** Scratch lists for translations inside one operation, grown as needed. */
export class Scratch {
  a = new IoVecList(256)
  b = new IoVecList(256)
  /** a list with room for `n` more pairs than `l` needs */
  fit(which: 'a' | 'b', n: number): IoVecList {
    let l = this[which]
    if (l.capacity < n) l = this[which] = new IoVecList(Math.max(n, 2 * l.capacity))
    return l.clear()
  }
}
