// Cursors over scatter-gather lists of (address u32, length u32) pairs, for the kernels
// that walk iovecs (assembly/fused.ts). A cursor is 16 bytes of memory the caller gives:
//
//   +0 list address | +4 pair count | +8 current pair | +12 offset in the current pair
//
// Kernels keep their state in memory, not objects: the module has no allocator.

// @ts-ignore: decorator
@inline export function curInit(c: usize, list: usize, n: u32): void {
  store<u32>(c, <u32>list)
  store<u32>(c, n, 4)
  store<u32>(c, 0, 8)
  store<u32>(c, 0, 12)
}

/** Contiguous bytes at the cursor (skipping empty pairs); 0 once the list is used up. */
export function curAvail(c: usize): u32 {
  const list = <usize>load<u32>(c)
  const n = load<u32>(c, 4)
  let i = load<u32>(c, 8)
  let off = load<u32>(c, 12)
  while (i < n) {
    const len = load<u32>(list + (<usize>i << 3), 4)
    if (off < len) {
      store<u32>(c, i, 8)
      store<u32>(c, off, 12)
      return len - off
    }
    i++
    off = 0
  }
  store<u32>(c, i, 8)
  store<u32>(c, 0, 12)
  return 0
}

/** The address at the cursor (call curAvail first). */
// @ts-ignore: decorator
@inline export function curHere(c: usize): usize {
  const list = <usize>load<u32>(c)
  return <usize>load<u32>(list + (<usize>load<u32>(c, 8) << 3)) + <usize>load<u32>(c, 12)
}

/** Moves the cursor `n` bytes on, within the current pair (n <= curAvail). */
// @ts-ignore: decorator
@inline export function curStep(c: usize, n: u32): void {
  store<u32>(c, load<u32>(c, 12) + n, 12)
}

/** Moves the cursor `n` bytes on, across pairs; false if the list ends first. */
export function curSkip(c: usize, n: u32): bool {
  while (n > 0) {
    const a = curAvail(c)
    if (a == 0) return false
    const k = a < n ? a : n
    curStep(c, k)
    n -= k
  }
  return true
}

/** Copies `n` bytes from the cursor's list to `dst`, moving the cursor; false if it ends first. */
export function curGather(c: usize, dst: usize, n: u32): bool {
  while (n > 0) {
    const a = curAvail(c)
    if (a == 0) return false
    const k = a < n ? a : n
    memory.copy(dst, curHere(c), k)
    curStep(c, k)
    dst += k
    n -= k
  }
  return true
}

/** Copies `n` bytes from `src` into the cursor's list, moving the cursor; false if it ends first. */
export function curScatter(c: usize, src: usize, n: u32): bool {
  while (n > 0) {
    const a = curAvail(c)
    if (a == 0) return false
    const k = a < n ? a : n
    memory.copy(curHere(c), src, k)
    curStep(c, k)
    src += k
    n -= k
  }
  return true
}
