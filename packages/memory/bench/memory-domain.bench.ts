// A 128 KiB pull from host memory (through the IOMMU) into system memory, with its
// completion, beside TypedArray.prototype.set over the same bytes; and what the
// completion convention costs per operation.
import { allocationPerCall, machine, measure, median, method, printSize, save, type SizeResult } from '@ipukit/bench-utils'
import { test } from 'vitest'
import { Access, createPhysicalMemory, drainCompletions, HostMemoryDomain, Iommu, iovCopy, IoVecList, Status } from '../src/index.js'

test('memory domain pull', async () => {
  const pm = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 32 << 20 })
  const iommu = new Iommu(pm)
  const rid = 0x0200
  const N = 128 * 1024
  // contiguous host pages for one buffer, scattered pages for another
  iommu.map(rid, 0x10_0000, 0x20_0000, N, Access.Read)
  for (let i = 0; i < 32; i++) iommu.map(rid, 0x20_0000 + i * 4096, 0x40_0000 + ((i * 11) % 32) * 8192, 4096, Access.Read)
  const host = new HostMemoryDomain(pm, iommu, rid)
  const bytes = pm.bytes
  const hb = pm.region('host').base
  for (let i = 0; i < 16 << 20; i++) bytes[hb + i] = i * 7
  const dstAt = pm.region('ipu').base + (20 << 20)
  const src = IoVecList.of([0x10_0000, N])
  const srcScattered = IoVecList.of([0x20_0000, N])
  const dst = IoVecList.of([dstAt, N])
  let completed = 0
  const done = (_: null, s: number) => {
    if (s === Status.Ok) completed++
  }
  const pull = () => {
    if (host.pull(src, dst, done, null) !== Status.Ok) throw new Error('pull failed')
    drainCompletions()
  }
  const physSrc = IoVecList.of([hb + 0x20_0000, N])
  const sizes: SizeResult[] = []
  const r = measure(N, [
    { name: 'ipukit pull host -> system (contiguous pages)', kind: 'ipukit', run: pull },
    {
      name: 'ipukit pull host -> system (32 scattered pages)',
      kind: 'ipukit',
      run: () => {
        host.pull(srcScattered, dst, done, null)
        drainCompletions()
      },
    },
    { name: 'iovCopy of the same bytes (no IOMMU, no completion)', kind: 'ipukit', run: () => iovCopy(bytes, dst, physSrc) },
    { name: 'TypedArray.prototype.set, same bytes', kind: 'ceiling', run: () => bytes.set(bytes.subarray(hb + 0x20_0000, hb + 0x20_0000 + N), dstAt) },
  ])
  r.label = '128 KiB'
  printSize('pull', r)
  sizes.push(r)
  // the completion convention's cost: tiny pulls, completion vs none
  const tiny = IoVecList.of([0x10_0000, 64])
  const tinyDst = IoVecList.of([dstAt, 64])
  const tinyPhys = IoVecList.of([hb + 0x20_0000, 64])
  const OPS = 1000
  const c = measure(OPS, [
    {
      name: 'ipukit pull, 64 B, with completion',
      kind: 'ipukit',
      run: () => {
        for (let i = 0; i < OPS; i++) host.pull(tiny, tinyDst, done, null)
        drainCompletions()
      },
    },
    { name: 'iovCopy 64 B, no domain, no completion', kind: 'ceiling', run: () => { for (let i = 0; i < OPS; i++) iovCopy(bytes, tinyDst, tinyPhys) } },
  ])
  c.label = '64 B operations'
  printSize('completion cost', c, 'M ops/s')
  const perOpNs = 1000 / median(c, 'ipukit pull, 64 B, with completion') - 1000 / median(c, 'iovCopy 64 B, no domain, no completion')
  const ratio = median(r, 'ipukit pull host -> system (contiguous pages)') / median(r, 'TypedArray.prototype.set, same bytes')
  const alloc = await allocationPerCall(() => {
    host.pull(tiny, tinyDst, done, null)
    drainCompletions()
  })
  console.log(`pull ÷ set: ${ratio.toFixed(2)}; domain + completion: ${perOpNs.toFixed(0)} ns per operation; allocation per pull: ${alloc} bytes; completed ${completed}`)
  save({
    kernel: 'memory-domain',
    order: 3,
    title: 'Pull from host memory into system memory',
    date: new Date().toISOString(),
    machine: machine(),
    method,
    sizes,
    targets: [
      { text: '128 KiB pull ÷ TypedArray.prototype.set', value: ratio, goal: 0.8, met: ratio >= 0.8 },
      { text: 'heap bytes allocated per pull with its completion (steady state)', value: alloc, goal: 0, met: alloc === 0, atMost: true },
    ],
    notes: [
      `Domain dispatch, IOMMU translation and the deferred completion of a 64-byte pull cost ${perOpNs.toFixed(0)} ns over a bare 64-byte iovCopy (${median(c, 'ipukit pull, 64 B, with completion').toFixed(2)} vs ${median(c, 'iovCopy 64 B, no domain, no completion').toFixed(2)} M ops/s).`,
    ],
  })
})
