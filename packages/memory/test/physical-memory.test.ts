import { describe, expect, it } from 'vitest'
import { attachPhysicalMemory, createPhysicalMemory, MemoryError, planMemory, RegionAllocator } from '../src/index.js'

describe('physical memory', () => {
  it('cuts the kernels memory into named, 64 KiB-aligned regions in order', () => {
    const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 4 << 20, devices: [{ name: 'cmb', size: 300_000 }], iobuf: { smallCount: 16, largeCount: 4 } })
    const names = pm.regions.map((r) => r.name)
    expect(names).toEqual(['kernels', 'control', 'host', 'ipu', 'cmb'])
    for (let i = 1; i < pm.regions.length; i++) {
      const r = pm.regions[i]!
      expect(r.base % 65536).toBe(0)
      expect(r.base).toBe(pm.regions[i - 1]!.base + pm.regions[i - 1]!.size)
    }
    expect(pm.region('cmb').size).toBe(327_680) // rounded up to 64 KiB
    expect(pm.memory.buffer.byteLength).toBe(pm.layout.size)
    expect(pm.region('kernels').size).toBe(pm.kernels.layout.end)
    expect(pm.regionOf(pm.region('host').base + 10)?.name).toBe('host')
    expect(pm.regionOf(pm.region('host').base + pm.region('host').size - 1, 2)).toBeUndefined()
    expect(() => pm.region('nope')).toThrow(/no region named 'nope'/)
  })

  it('refuses a configuration past 4 GiB, and bad sizes and names', () => {
    let err: unknown
    try {
      planMemory({ hostSize: 2 ** 31, ipuSize: 2 ** 31 })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(MemoryError)
    expect((err as MemoryError).code).toBe('MEMORY_TOO_LARGE')
    expect((err as Error).message).toMatch(/4 GiB/)
    expect(() => planMemory({ hostSize: 100 })).toThrow(RangeError)
    expect(() => planMemory({ devices: [{ name: 'host', size: 4096 }] })).toThrow(/already taken/)
    expect(() => planMemory({ ipuSize: 1 << 20, iobuf: { smallCount: 1024 } })).toThrow(/iobuf pools need/)
  })

  it('lets another thread attach with the same layout', () => {
    const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 2 << 20, iobuf: { smallCount: 8, largeCount: 2 } })
    const other = attachPhysicalMemory(pm.describe())
    expect(other.layout).toEqual(pm.layout)
    expect(other.kernels.slot).not.toBe(pm.kernels.slot)
    other.bytes[pm.region('host').base] = 42
    expect(pm.bytes[pm.region('host').base]).toBe(42)
    expect(() => attachPhysicalMemory({ memory: pm.memory, options: { hostSize: 2 << 20 } })).toThrow(RangeError)
  })
})

describe('region allocator', () => {
  it('hands out page runs, aligned, never overlapping, and takes them back', () => {
    const pm = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 1 << 20, devices: [{ name: 'p2p', size: 256 * 1024 }], iobuf: { smallCount: 4, largeCount: 1 } })
    const a = new RegionAllocator(pm.region('p2p'))
    expect(a.available).toBe(256 * 1024)
    const x = a.alloc(5000)
    const y = a.alloc(4096, 65536)
    expect(x).toBe(pm.region('p2p').base)
    expect(y % 65536).toBe(0)
    expect(a.sizeOf(x)).toBe(8192)
    expect(a.available).toBe(256 * 1024 - 8192 - 4096)
    expect(() => a.free(x + 4096)).toThrow(expect.objectContaining({ code: 'MEMORY_BAD_FREE' }))
    a.free(x)
    expect(() => a.free(x)).toThrow(MemoryError)
    // fill it up, then fail, then reuse
    const all: number[] = []
    for (let p = a.alloc(4096); p >= 0; p = a.alloc(4096)) all.push(p)
    expect(a.available).toBe(0)
    expect(a.alloc(4096)).toBe(-1)
    expect(new Set(all).size).toBe(all.length)
    a.free(all[3]!)
    expect(a.alloc(4096)).toBe(all[3])
    expect(() => a.alloc(4096, 3000)).toThrow(RangeError)
  })
})
