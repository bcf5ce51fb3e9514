// A standalone NVMe/TCP target, for the host-resilience test (test/resilience.test.ts): a
// file bdev as namespace 1 of one subsystem (any host may connect), a TCP listener on
// 127.0.0.1:<port>; "READY <address> <nqn> <blocks>x<blockSize>" on stdout once it listens, then
// it serves until it is killed. The test SIGKILLs it mid-workload and starts it again on the
// same file and port.
//
//   node target-process.mjs --file <path> --port <port> [--nqn <nqn>] [--blocks <n>] [--block-size <bytes>] [--stdin-lifeline]
//
// or the same from the environment: IPUKIT_TARGET_FILE, _PORT, _NQN, _BLOCKS, _BLOCK_SIZE.
//
// Plain Node, no source condition: the @ipukit packages resolve to their built dist/ (the test
// builds those missing or older than their sources first).
//
// Durability: the file bdev completes a write once pwritev has returned, so the data is in the
// kernel's page cache, which outlives a SIGKILL of this process; what the host saw acknowledged
// is in the file after the kill. (Power loss would need a flush or FUA to reach the disk.)
//
// With --stdin-lifeline the process also exits when its stdin (the parent's end of a pipe)
// closes: a test runner that dies without killing it leaves no orphan listening on the port.
import { createAccel } from '@ipukit/accel'
import { Bdevs, createFileBdev } from '@ipukit/bdev'
import { createPhysicalMemory } from '@ipukit/memory'
import { NvmfTarget, TcpTransport } from '@ipukit/nvmf'

function options() {
  const o = {
    file: process.env.IPUKIT_TARGET_FILE,
    port: process.env.IPUKIT_TARGET_PORT,
    nqn: process.env.IPUKIT_TARGET_NQN ?? 'nqn.2026-12.io.ipukit:resilience',
    blocks: process.env.IPUKIT_TARGET_BLOCKS ?? '2048',
    blockSize: process.env.IPUKIT_TARGET_BLOCK_SIZE ?? '4096',
  }
  const names = { '--file': 'file', '--port': 'port', '--nqn': 'nqn', '--blocks': 'blocks', '--block-size': 'blockSize' }
  const argv = process.argv.slice(2)
  let lifeline = false
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--stdin-lifeline') {
      lifeline = true
      continue
    }
    const k = names[argv[i]]
    if (k === undefined || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument '${argv[i]}'`)
    o[k] = argv[++i]
  }
  if (o.file === undefined || o.file === '') throw new Error('--file (or IPUKIT_TARGET_FILE) is required')
  const port = Number(o.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be a port number, got '${o.port}'`)
  const blocks = Number(o.blocks)
  const blockSize = Number(o.blockSize)
  if (!Number.isInteger(blocks) || blocks < 1) throw new Error(`--blocks must be a positive integer, got '${o.blocks}'`)
  if (!Number.isInteger(blockSize) || blockSize < 512) throw new Error(`--block-size must be an integer >= 512, got '${o.blockSize}'`)
  return { file: o.file, port, nqn: o.nqn, blocks, blockSize, lifeline }
}

try {
  const o = options()
  const physical = createPhysicalMemory({ hostSize: 1 << 20, ipuSize: 128 << 20 })
  const accel = await createAccel({ physical, aesni: false, driver: null, taskCount: 1024, sequenceCount: 256 })
  const bdevs = new Bdevs(accel, { ioCount: 1024 })
  // created (zero-filled) when missing; reopened as it is otherwise, so a restart sees what the killed process wrote
  await createFileBdev(bdevs, { name: 'file0', path: o.file, blockSize: o.blockSize, blockCount: o.blocks })
  const target = new NvmfTarget({ bdevs })
  const tcp = new TcpTransport(target)
  const l = await tcp.listen('127.0.0.1', o.port)
  const subsystem = target.createSubsystem({ nqn: o.nqn, allowAnyHost: true })
  subsystem.addNamespace({ bdev: 'file0' })
  subsystem.addListener(l.address)
  target.discovery.addListener(l.address)

  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    try {
      await tcp.close()
      target.close()
      await bdevs.close()
      await accel.close()
    } finally {
      process.exit(code)
    }
  }
  process.on('SIGTERM', () => void stop(0))
  process.on('SIGINT', () => void stop(0))
  if (o.lifeline) {
    process.stdin.on('end', () => void stop(0))
    process.stdin.on('error', () => void stop(0))
    process.stdin.resume()
  }
  process.stdout.write(`READY ${l.address} ${o.nqn} ${o.blocks}x${o.blockSize} pid ${process.pid}\n`)
} catch (e) {
  process.stderr.write(`target-process: ${e?.stack ?? e}\n`)
  process.exit(1)
}
