// Worker for test/iobuf.test.ts: gets and puts buffers as fast as it can, claiming each one
// in an independent map; a buffer already claimed means the pool handed it out twice.
import { parentPort, workerData } from 'node:worker_threads'
import { attachPhysicalMemory, IOBUF_RETRY, IobufChannel } from '../../dist/index.js'

const { memory, claims, errors, id, rounds } = workerData
const pm = attachPhysicalMemory(memory)
const ch = new IobufChannel(pm)
const base = pm.layout.iobuf.smallBase
const size = pm.layout.iobuf.smallSize
const held = []
let moved = 0
let x = 12345 + id
for (let r = 0; r < rounds; r++) {
  x ^= x << 13
  x >>>= 0
  x ^= x >>> 17
  x ^= x << 5
  x >>>= 0
  // hold up to about 40 buffers: together the two threads run the 64-buffer pool dry
  if (held.length === 0 || (x % 100) < 100 - held.length * 2) {
    const a = ch.get(64)
    if (a === IOBUF_RETRY) continue
    const i = (a - base) / size
    if (Atomics.compareExchange(claims, i, 0, id) !== 0) Atomics.add(errors, 0, 1)
    held.push(a)
    moved++
  } else {
    const a = held.splice(x % held.length, 1)[0]
    const i = (a - base) / size
    if (Atomics.compareExchange(claims, i, id, 0) !== id) Atomics.add(errors, 0, 1)
    try {
      ch.put(a)
    } catch {
      Atomics.add(errors, 1, 1)
    }
  }
}
for (const a of held) {
  Atomics.store(claims, (a - base) / size, 0)
  ch.put(a)
}
ch.close()
pm.close()
parentPort.postMessage(moved)
