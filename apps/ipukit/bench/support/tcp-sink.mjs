// The far end of the raw loopback TCP ceiling of bench/ipukit.bench.ts, in a process of its
// own (as the embedded target is): a server that reads everything into one reused buffer
// (onread, as the NVMe/TCP target reads) and drops it, and ends its side once the writer
// has ended its own, so the writer's `close` says every byte was delivered. Prints its
// port as one JSON line; exits when its stdin (a pipe from the bench) closes, or on SIGTERM.
import net from 'node:net'

const server = net
  .createServer({ pauseOnConnect: true, noDelay: true }, (raw) => {
    const handle = raw._handle
    raw._handle = null
    raw.destroy()
    const s = new net.Socket({ handle, readable: true, writable: true, onread: { buffer: Buffer.allocUnsafe(1 << 20), callback: () => true } })
    s.on('end', () => s.end())
    s.on('error', () => {})
    s.resume()
  })
  .listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`))
process.stdin.on('close', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
