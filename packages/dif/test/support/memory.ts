import { createKernelMemory, createKernelsSync, type Kernels } from '@ipukit/kernels'

/** A kernels instance with `extra` bytes of caller memory, and a bump allocator over it. */
export function arena(extra = 16 << 20): { k: Kernels; place(bytes: Uint8Array): Uint8Array; reset(): void } {
  const k = createKernelsSync({ memory: createKernelMemory({ extraBytes: extra, scratchSlots: 1, keySlots: 0 }) })
  let next = k.layout.end
  return {
    k,
    place(bytes) {
      // odd alignment on purpose: nothing may assume aligned buffers
      next += 3
      if (next + bytes.length > k.memory.buffer.byteLength) next = k.layout.end + 3
      const view = new Uint8Array(k.memory.buffer, next, bytes.length)
      view.set(bytes)
      next += bytes.length
      return view
    },
    reset() {
      next = k.layout.end
    },
  }
}
