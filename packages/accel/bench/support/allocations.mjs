// Heap bytes per operation in steady state, on the built package (dist/, what users run:
// vitest's module runner adds allocations of its own to the sources it transforms). The
// software module, completions drained by hand: a one-shot crc32c, and the write path (two
// accel buffers, encrypt, dif_generate_copy, copy; elided and fused by the ipu driver).
// Prints {"crc": bytes, "write": bytes}.
import { createAccel } from '@ipukit/accel'
import { allocationPerCall } from '@ipukit/bench-utils'
import { createDifContext } from '@ipukit/dif'
import { createPhysicalMemory, drainCompletions, IoVecList } from '@ipukit/memory'

const physical = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 256 << 20 })
const cb = () => {}

const sw = await createAccel({ physical, aesni: false })
const ch = sw.channel()
const base = sw.allocShared(1 << 20)
const src = IoVecList.of([base, 4096])
const r = { value: 0 }
const crc = await allocationPerCall(() => {
  ch.submitCrc32c(r, src, 0, cb, null)
  drainCompletions()
}, 400_000, 4000)

const ipu = await createAccel({ physical, aesni: false, driver: 'ipu' })
const wch = ipu.channel()
const key = ipu.keys.create({ name: 'alloc', key: 'a5'.repeat(32), key2: '5a'.repeat(32) })
const pi = createDifContext({ dataBlockSize: 4096, mdSize: 8, type: 1 })
const n = 16384
const ext = 4 * 4104
const data = IoVecList.of([base, n])
const send = IoVecList.of([base + 65536, ext])
const l1 = new IoVecList(1)
const l2 = new IoVecList(1)
const call = { lba: 0 }
const write = await allocationPerCall(() => {
  const seq = wch.sequence()
  const b1 = wch.getBuf(n)
  const b2 = wch.getBuf(ext)
  l1.clear().push(b1, n)
  l2.clear().push(b2, ext)
  seq.appendEncrypt(key, l1, wch.accelDomain, data, null, 0, 4096)
  seq.appendDifGenerateCopy(l2, wch.accelDomain, l1, wch.accelDomain, 4, pi, call)
  seq.appendCopy(send, null, l2, wch.accelDomain)
  seq.finish(cb, null)
  drainCompletions()
  wch.putBuf(b1)
  wch.putBuf(b2)
}, 200_000, 2000)
await sw.close()
await ipu.close()
process.stdout.write(`${JSON.stringify({ crc, write })}\n`)
