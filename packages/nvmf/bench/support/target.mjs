// The far end of the NVMe/TCP benchmark, in a process of its own (its own core): an ipukit
// target with a RAM namespace, and two raw TCP servers for the ceiling: a sink that reads and
// drops everything, and a responder that answers each 72-byte request with a 4096 + 24-byte
// reply (the shape of a 4 KiB read's capsule and C2HData). Prints the ports as one JSON line.
import net from 'node:net'
import { createAccel } from '@ipukit/accel'
import { Bdevs, createMallocBdev } from '@ipukit/bdev'
import { createPhysicalMemory } from '@ipukit/memory'
import { NvmfTarget, TcpTransport } from '@ipukit/nvmf'

const physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 256 << 20, kernels: { scratchSlots: 8 } })
const accel = await createAccel({ physical, aesni: false, driver: null, taskCount: 1024, sequenceCount: 256 })
const bdevs = new Bdevs(accel, { ioCount: 1024 })
createMallocBdev(bdevs, { name: 'ram0', blockCount: 16384, blockSize: 4096 })
const target = new NvmfTarget({ bdevs })
const tcp = new TcpTransport(target)
const l = await tcp.listen('127.0.0.1', 0)
const s = target.createSubsystem({ nqn: 'nqn.2026-12.io.ipukit:bench', allowAnyHost: true })
s.addNamespace({ bdev: 'ram0' })
s.addListener(l.address)

// the raw servers read as the target does: into one reused buffer (onread), no allocation per read
function server(onSocket) {
  return net
    .createServer({ pauseOnConnect: true, noDelay: true }, (raw) => {
      const handle = raw._handle
      raw._handle = null
      raw.destroy()
      onSocket(handle)
    })
    .listen(0, '127.0.0.1')
}
const sink = server((handle) => {
  const s = new net.Socket({ handle, readable: true, writable: true, onread: { buffer: Buffer.allocUnsafe(1 << 20), callback: () => true } })
  s.on('end', () => s.end())
  s.on('error', () => {})
  s.resume()
})
const reply = Buffer.alloc(4096 + 24, 7)
const responder = server((handle) => {
  let pending = 0
  const s = new net.Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: Buffer.allocUnsafe(64 << 10),
      callback: (n) => {
        pending += n
        let k = 0
        while (pending >= 72) {
          pending -= 72
          k++
        }
        if (k > 0) {
          s.cork()
          for (let i = 0; i < k; i++) s.write(reply)
          s.uncork()
        }
        return true
      },
    },
  })
  s.on('end', () => s.end())
  s.on('error', () => {})
  s.resume()
})
await Promise.all([sink, responder].map((x) => new Promise((r) => (x.listening ? r() : x.once('listening', r)))))
process.stdout.write(`${JSON.stringify({ nvmf: Number(l.trsvcid), sink: sink.address().port, responder: responder.address().port })}\n`)
process.on('SIGTERM', async () => {
  await tcp.close()
  process.exit(0)
})
