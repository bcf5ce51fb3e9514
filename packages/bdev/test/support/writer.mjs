// The durability test's writer: a file bdev written block by block, a flush after every
// eighth write; "acked N" goes to stdout once blocks 0..N are written and flushed. The test
// kills this process with SIGKILL mid-run and checks every acknowledged block.
import { createAccel } from '@ipukit/accel'
import { Bdevs, createFileBdev } from '@ipukit/bdev'
import { createPhysicalMemory, IoVecList } from '@ipukit/memory'

const [path, blocks] = [process.argv[2], Number(process.argv[3])]
const physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 64 << 20 })
const accel = await createAccel({ physical, aesni: false })
const bdevs = new Bdevs(accel)
await createFileBdev(bdevs, { name: 'f', path, blockSize: 4096, mdSize: 8, blockCount: blocks })
const d = bdevs.open('f', { write: true })
const ch = bdevs.channel()
const at = physical.ipuAllocator.alloc(8192)
const buf = IoVecList.of([at, 4104])
const pattern = (i) => {
  const v = physical.bytes.subarray(at, at + 4104)
  for (let k = 0; k < 4104; k += 4) v[k] = (i * 7 + k) & 0xff
  v[1] = i & 0xff
  v[2] = (i >> 8) & 0xff
}
let i = 0
const next = () => {
  pattern(i)
  d.writev(ch, buf, null, i, 1, (_, st) => {
    if (st !== 0) throw new Error(`write ${i}: ${st}`)
    if (i % 8 === 7) {
      const n = i
      d.flush(ch, 0, blocks, (_, s2) => {
        if (s2 !== 0) throw new Error(`flush: ${s2}`)
        process.stdout.write(`acked ${n}\n`)
        i++
        if (i < blocks) next()
      }, null)
      return
    }
    i++
    if (i < blocks) next()
  }, null)
}
next()
