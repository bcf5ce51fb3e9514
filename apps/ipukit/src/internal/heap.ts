// The live heap: used heap after a full collection, so what is measured is what stayed
// alive, not garbage waiting for the collector. `--expose-gc` is set at run time (it is a
// V8 flag, not a Node option) and `gc` fetched from a fresh context, so the command needs
// no flag of its own; where that fails the figure is the used heap without a collection.
import v8 from 'node:v8'
import vm from 'node:vm'

const gc: (() => void) | null = (() => {
  try {
    v8.setFlagsFromString('--expose-gc')
    return vm.runInNewContext('gc') as () => void
  } catch {
    return null
  }
})()

/** Heap in use after a full collection (the live data, not garbage waiting). */
export function liveHeap(): number {
  gc?.()
  return v8.getHeapStatistics().used_heap_size
}

/**
 * Bytes of compiled code and bytecode (with their metadata: relocation info, deopt data,
 * source positions) in the heap. Sampled beside liveHeap, it tells how much of a growth is
 * the JIT compiling the read path's functions (first run after the write phase's sample) and
 * tiering hot ones up: not data that I/Os leave behind. (A heap snapshot diff of a 256 MiB run
 * found the IPU thread's ~800 KB growth to be all code objects, deopt data and relocation info.)
 */
export function liveCode(): number {
  const c = v8.getHeapCodeStatistics()
  return c.code_and_metadata_size + c.bytecode_and_metadata_size
}
