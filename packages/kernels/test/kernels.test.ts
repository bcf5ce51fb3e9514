// Instances, the kernel region and its header: layout, slots, attach, refusal of memories
// that are not ours.
import { describe, expect, it } from 'vitest'
import {
  createKernelMemory,
  createKernels,
  createKernelsSync,
  crc32c,
  defaultKernels,
  kernelLayout,
  KernelsError,
} from '../src/index.js'
import { unsharedVariant } from '../src/internal/binary.js'
import wasmBase64 from '../build/kernels-wasm.js'

const check = new TextEncoder().encode('123456789')

describe('kernel region layout', () => {
  it('puts header, tables, scratch slots and key slots in order, ending on a 64 KiB page', () => {
    const l = kernelLayout({ scratchSlots: 3, keySlots: 10 })
    expect(l.headerSize).toBe(4096)
    expect(l.staticEnd).toBeGreaterThan(4096)
    expect(l.scratchBase).toBeGreaterThanOrEqual(l.staticEnd)
    expect(l.scratchBase % 4096).toBe(0)
    expect(l.keyBase).toBe(l.scratchBase + 3 * l.scratchSlotSize)
    expect(l.scratchSlotSize).toBeGreaterThan(l.stagingSize)
    expect(l.end % 65536).toBe(0)
    expect(l.end).toBeGreaterThanOrEqual(l.keyBase + 10 * l.keySlotSize)
  })

  it('rejects impossible options', () => {
    expect(() => kernelLayout({ scratchSlots: 0 })).toThrow(RangeError)
    expect(() => kernelLayout({ scratchSlots: 2000 })).toThrow(/scratchSlots/)
    expect(() => kernelLayout({ keySlots: -1 })).toThrow(RangeError)
    expect(() => kernelLayout({ stagingSize: 5000 })).toThrow(/multiple of 4096/)
    expect(() => kernelLayout({ scratchSlots: 1.5 })).toThrow(RangeError)
  })
})

describe('instances', () => {
  it('attach to a memory formatted by createKernelMemory and take its layout', async () => {
    const memory = createKernelMemory({ scratchSlots: 2, keySlots: 4, extraBytes: 65536 })
    const a = createKernelsSync({ memory })
    const b = await createKernels({ memory })
    expect(a.layout).toEqual(b.layout)
    expect(a.layout.scratchSlots).toBe(2)
    expect(a.shared).toBe(true)
    expect(a.slot).not.toBe(b.slot)
    expect(memory.buffer.byteLength).toBe(a.layout.end + 65536)
    expect(a.crc32c(check)).toBe(0xe3069283)
    expect(b.crc32c(check)).toBe(0xe3069283)
    // both slots taken
    let err: unknown
    try {
      createKernelsSync({ memory })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(KernelsError)
    expect((err as KernelsError).code).toBe('KERNELS_NO_SCRATCH_SLOT')
    // closing frees the slot; a closed instance refuses work
    a.close()
    a.close()
    expect(() => a.crc32c(check)).toThrow(expect.objectContaining({ code: 'KERNELS_CLOSED' }))
    const c = createKernelsSync({ memory })
    expect(c.slot).toBe(a.slot)
    expect(c.crc32c(check)).toBe(0xe3069283)
  })

  it('formats a plain memory on first use, and refuses a contradicting layout later', () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true })
    const k = createKernelsSync({ memory, scratchSlots: 2, keySlots: 8 })
    expect(k.layout.keySlots).toBe(8)
    expect(() => createKernelsSync({ memory, keySlots: 9 })).toThrow(expect.objectContaining({ code: 'KERNELS_BAD_MEMORY' }))
    expect(createKernelsSync({ memory, keySlots: 8 }).layout.keySlots).toBe(8)
  })

  it('refuses a memory that holds other data at the bottom, and leaves it untouched', () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true })
    const bytes = new Uint8Array(memory.buffer)
    bytes[100] = 7
    expect(() => createKernelsSync({ memory })).toThrow(expect.objectContaining({ code: 'KERNELS_BAD_MEMORY' }))
    expect(bytes.subarray(0, 4096).reduce((a, b) => a + b, 0)).toBe(7)
    // and can be retried once cleared: the failed attempt left no half-written state
    bytes[100] = 0
    expect(createKernelsSync({ memory, scratchSlots: 1, keySlots: 1 }).crc32c(check)).toBe(0xe3069283)
  })

  it('refuses a memory too small for its kernel region', () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true })
    expect(() => createKernelsSync({ memory })).toThrow(/kernel region needs/)
    expect(new Uint8Array(memory.buffer).every((b) => b === 0)).toBe(true)
  })

  it('refuses a memory set up by a different build of the module', () => {
    const memory = createKernelMemory({ scratchSlots: 1, keySlots: 1 })
    const header = new Int32Array(memory.buffer, 0, 16)
    header[3] = header[3]! ^ 1 // the module hash word
    expect(() => createKernelsSync({ memory })).toThrow(/different build/)
  })

  it('refuses things that are not memories', () => {
    expect(() => createKernelsSync({ memory: {} as WebAssembly.Memory })).toThrow(TypeError)
  })

  it('runs on an unshared memory through the unshared variant of the module', () => {
    const k = createKernelsSync({ memory: createKernelMemory({ shared: false, scratchSlots: 1, keySlots: 1 }) })
    expect(k.shared).toBe(false)
    expect(k.crc32c(check)).toBe(0xe3069283)
    expect(k.crc64Nvme(check)).toBe(0xae8b14860a799888n)
  })

  it('derives the unshared variant by clearing only the shared flag of the memory import', () => {
    const bin = Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0))
    const un = unsharedVariant(bin)
    const diff = [...bin].flatMap((b, i) => (b === un[i] ? [] : [i]))
    expect(diff).toHaveLength(1)
    expect(bin[diff[0]!]).toBe(0x03)
    expect(un[diff[0]!]).toBe(0x01)
    expect(WebAssembly.Module.imports(new WebAssembly.Module(un))).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }])
  })

  it('gives module-level functions a default instance of their own', () => {
    expect(crc32c(check)).toBe(0xe3069283)
    expect(defaultKernels()).toBe(defaultKernels())
    expect(defaultKernels().layout.scratchSlots).toBe(1)
  })
})
