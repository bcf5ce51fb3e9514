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
