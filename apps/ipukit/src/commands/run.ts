// ipukit run: the main job (internal/flow.ts has it). A host writes a data set through the
// IPU (encrypted, protected, forwarded over NVMe/TCP), reads it back and verifies it; a
// progress bar on a terminal, then a summary of where the time and the bytes went.
import cliProgress from 'cli-progress'
import { type Command, Option } from 'commander'
import { CliError } from '../internal/errors.js'
import { checkJsonPath, writeJson } from '../internal/json-file.js'
import { stopOnSignals } from '../internal/signals.js'
import { fmt, intIn, numberIn, oneOf, parseSize, parseTargetUrl } from '../internal/flags.js'
import { type Cipher, type PiType, type RunOptions, type RunReport, runFlow } from '../internal/flow.js'

interface Flags {
  size?: number
  input?: string
  bs: number
  qd: number
  cipher: Cipher
  keyFile?: string
  pi: PiType
  piFormat: 16 | 32 | 64
  blockSize: 512 | 4096
  workers: number
  target?: { host: string; port: number; nqn: string }
  targetFile?: string
  json?: string
  connectTimeout: number
  hostThread: boolean
  hostMode: 'interrupt' | 'poll'
  seed: number
  progress?: boolean
}

const MiB = 1024 * 1024

export function registerRun(p: Command): void {
  p.command('run')
    .description('the main job: a host writes a data set through the IPU (AES-XTS, T10 PI) to a remote NVMe/TCP target, reads it back and verifies it; then where the time and the bytes went')
    .option('--size <bytes>', 'bytes of generated data, whole blocks (default 256M)', parseSize)
    .option('--input <path>', "write this file's bytes instead of generated data (not with --size)")
    .option('--bs <bytes>', 'bytes per I/O, a multiple of the block size, at most 128K', parseSize, 128 * 1024)
    .option('--qd <n>', 'I/Os in flight', intIn(1, 1024), 32)
    .addOption(new Option('--cipher <cipher>', 'encryption on the IPU').choices(['aes-xts-128', 'aes-xts-256', 'none']).default('aes-xts-256'))
    .option('--key-file <path>', 'hex key1‖key2 (generated and saved there, mode 0600, when absent) (default ipukit-<cipher>.key)')
    .addOption(new Option('--pi <type>', 'T10/NVMe protection information on the remote blocks').choices(['none', 'type1', 'type2', 'type3']).default('type1'))
    .option('--pi-format <bits>', 'guard: 16 (CRC16 T10-DIF), 32 (CRC32C) or 64 (CRC64-NVMe); 32 and 64 need --block-size 4096', (v) => Number(oneOf(['16', '32', '64'])(v)) as 16 | 32 | 64, 16)
    .option('--block-size <bytes>', 'data bytes per block: 512 or 4096', (v) => Number(oneOf(['512', '4096'])(v)) as 512 | 4096, 512)
    .option('--workers <n>', 'accel worker threads (0: the accel work on the IPU thread)', intIn(0, 64), 1)
    .option('--target <url>', 'an external target nvme+tcp://HOST[:PORT]/NQN instead of the embedded one (its namespace must match --block-size and --pi)', (v) => parseTargetUrl(v))
    .option('--target-file <path>', "the embedded target's namespace file: kept after the run (default a temporary file, removed)")
    .option('--connect-timeout <seconds>', 'seconds for the connection to the target and each bring-up command', numberIn(0.01, 600), 5)
    .option('--json <path>', "write the report as JSON to this file ('-': stdout, the summary then goes to stderr)")
    .option('--no-host-thread', 'run the host driver on the IPU thread rather than its own')
    .addOption(new Option('--host-mode <mode>', 'how the host driver learns of completions').choices(['interrupt', 'poll']).default('interrupt'))
    .option('--seed <n>', 'seed of the generated data', intIn(0, 0xffffffff), 1)
    .option('--no-progress', 'no progress bar (there is none unless stderr is a terminal)')
    .action(async (f: Flags) => {
      if (f.input !== undefined && f.size !== undefined) throw new CliError('CLI_USAGE', '--input and --size: the data is the file, its size is the file\'s; give one of them')
      if (f.target !== undefined && f.targetFile !== undefined) throw new CliError('CLI_USAGE', '--target-file keeps the embedded target\'s file; with --target there is no embedded target')
      if (f.target !== undefined && (f.target.port < 1 || f.target.port > 65535)) throw new CliError('CLI_USAGE', '--target: the port must be from 1 to 65535')
      if (f.json !== undefined && f.json !== '-') checkJsonPath('run', f.json)
      const out = f.json === '-' ? process.stderr : process.stdout
      // a second signal is ignored: what is in flight completes, then everything (the embedded target too) is torn down
      const stop = stopOnSignals('ignore')
      const tty = f.progress !== false && process.stderr.isTTY === true
      const bar = tty ? new cliProgress.SingleBar({ format: '{phase} |{bar}| {percentage}% {done}/{total} MiB {rate} MB/s', hideCursor: true, clearOnComplete: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null
      let barPhase = ''
      let phaseStart = 0
      const o: RunOptions = {
        ...(f.size !== undefined && { size: f.size }),
        ...(f.input !== undefined && { input: f.input }),
        ioBytes: f.bs,
        queueDepth: f.qd,
        cipher: f.cipher,
        ...(f.keyFile !== undefined && { keyFile: f.keyFile }),
        pi: f.pi,
        piFormat: f.piFormat,
        blockSize: f.blockSize,
        workers: f.workers,
        ...(f.target !== undefined && { target: f.target }),
        ...(f.targetFile !== undefined && { targetFile: f.targetFile }),
        connectTimeoutMs: Math.round(f.connectTimeout * 1000),
        hostThread: f.hostThread,
        hostMode: f.hostMode,
        seed: f.seed,
        signal: stop.signal,
        log: (m) => {
          if (bar === null) return
          process.stderr.write(`${m}\n`)
        },
        progress: (phase, bytes, total) => {
          if (bar === null) return
          const now = performance.now()
          if (phase !== barPhase) {
            if (barPhase !== '') bar.stop()
            barPhase = phase
            phaseStart = now
            bar.start(total, 0, { phase: phase.padEnd(5), done: '0', total: (total / MiB).toFixed(0), rate: '-' })
          }
          const s = (now - phaseStart) / 1000
          bar.update(bytes, { done: (bytes / MiB).toFixed(0), rate: s > 0 ? (bytes / s / 1e6).toFixed(0) : '-' })
        },
      }
      let report: RunReport
      try {
        report = await runFlow(o)
      } catch (e) {
        // stopped while the target or the pipeline was being set up (whatever was thrown, it was the signal's doing)
        if (stop.received !== null && !(e instanceof CliError && e.code !== 'CLI_INTERRUPTED' && e.code !== 'CLI_TERMINATED')) throw stop.interrupted(' before the run began; nothing was left running')
        throw e
      } finally {
        bar?.stop()
        stop.dispose()
      }
      out.write(formatRun(report))
      if (f.json !== undefined) writeJson('run', f.json, report)
      if (stop.received !== null) throw stop.interrupted(`: ${fmt(report.bytesWritten)} written, ${fmt(report.bytesRead)} read back; the target stopped and flushed`)
      if (report.failure !== undefined) throw new CliError(report.failure.noSpace ? 'CLI_NO_SPACE' : 'CLI_FAILED', report.failure.message)
      if (!report.verified) throw new CliError('CLI_FAILED', `verification failed: ${report.verify.mismatches} I/Os read back differ, the first at byte ${report.verify.firstMismatch}`)
    })
}

const mb = (bytesPerSec: number) => (bytesPerSec / 1e6).toFixed(1)
const num = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

function bytes(n: number): string {
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} B`
}

function table(rows: string[][], right: boolean[]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => `  ${r.map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd()}\n`).join('')
}

/** The summary a terminal shows after a run. */
export function formatRun(r: RunReport): string {
  const c = r.config
  let s = ''
  s += `ipukit run: ${fmt(c.size)} ${c.input === null ? 'generated' : `from ${c.input}`}, ${fmt(c.ioBytes)} I/Os at QD ${c.queueDepth}, ${c.blockSize}-byte blocks`
  s += c.metadataSize > 0 ? ` + ${c.metadataSize} bytes of PI (${c.pi}, ${c.piFormat}b guard)` : ', no PI'
  s += c.cipher === 'none' ? ', not encrypted' : `, ${c.cipher.toUpperCase()} (key ${c.keyFile})`
  s += `\n  host (${c.hostThread ? `own thread, ${c.hostMode}` : 'IPU thread'}) ─PCIe─▶ ${c.pipeline.join(' ─▶ ')} ─TCP─▶ ${c.target === 'embedded' ? 'embedded target' : 'target'} ${c.remote.host}:${c.remote.port} ${c.remote.nqn}${c.targetFile !== null ? ` (file ${c.targetFile})` : ''}; accel workers ${c.workers}\n\n`
  const rows = [['', 'MB/s', 'IOPS', 'p50 µs', 'p99 µs', 'max µs', 'seconds']]
  for (const [name, p] of [['write', r.write], ['read', r.read]] as const) {
    if (p === null) continue
    rows.push([name, mb(p.bytesPerSec), num(p.iops), num(p.latencyUs.p50, 1), num(p.latencyUs.p99, 1), num(p.latencyUs.max, 1), p.seconds.toFixed(2)])
  }
  s += table(rows, [false, true, true, true, true, true, true])
  s += '\naccel, per opcode and module\n'
  const ar = [['opcode', 'module', 'executed', 'failed', 'bytes in', 'bytes out']]
  for (const [op, mods] of Object.entries(r.accel.opcodes)) for (const [m, st] of Object.entries(mods)) ar.push([op, m, num(st.executed), num(st.failed), bytes(st.bytesIn), bytes(st.bytesOut)])
  s += ar.length > 1 ? table(ar, [false, false, true, true, true, true]) : '  (none)\n'
  const q = r.accel.sequences
  s += `  sequences: ${num(q.completed)} completed, ${num(q.failed)} failed; ${num(q.fused)} operations fused, ${num(q.elided)} copies elided\n`
  for (const [name, m] of [['write', r.memory.write], ['read', r.memory.read]] as const) {
    if (m === null) continue
    s += `\nmemory, ${name} phase\n`
    const mr = [['', 'read', 'written']]
    for (const [id, d] of Object.entries(m.domains)) mr.push([`domain ${id} (${d.type})`, bytes(d.read), bytes(d.written)])
    for (const [id, g] of Object.entries(m.regions)) mr.push([`region ${id} (${g.kind}, PCIe)`, bytes(g.read), bytes(g.written)])
    s += table(mr, [false, true, true])
    for (const [id, l] of Object.entries(m.links)) s += `  link ${id} (gen${l.gen} x${l.width}): ${bytes(l.up)} up, ${bytes(l.down)} down\n`
  }
  const wp = r.memory.writePasses
  s += `\npasses over the data on the IPU, write: the host's data read ${wp.hostRead.toFixed(4)}x, the ${c.cipher === 'none' ? '' : 'encrypted, '}${c.metadataSize > 0 ? 'protected ' : ''}blocks written ${wp.ipuWritten.toFixed(4)}x`
  s += c.metadataSize > 0 ? ` (${c.blockSize + c.metadataSize}/${c.blockSize} = ${((c.blockSize + c.metadataSize) / c.blockSize).toFixed(4)} per data byte: once)\n` : '\n'
  const h = r.heap
  s += `heap (live, after a full GC) from the warm write phase to the end, ${num(h.ios)} I/Os: IPU thread ${signed(h.growthBytes)} (compiled code ${signed(h.codeGrowthBytes)}, the rest ${signed(h.dataGrowthBytes)})${h.hostThread !== null ? `, host thread ${signed(h.hostThread.growthBytes)}` : ''}\n`
  if (r.interrupted) s += `\nINTERRUPTED: ${fmt(r.bytesWritten)} written, ${fmt(r.bytesRead)} read back and compared (${r.verify.mismatches} differed)\n`
  else if (r.failure !== undefined) s += `\nFAILED: ${r.failure.message}\n`
  else s += r.verified ? `\nverified: ${fmt(r.verify.checkedBytes)} read back equal to what was written\n` : `\nNOT VERIFIED: ${r.verify.mismatches} I/Os differ, the first at byte ${r.verify.firstMismatch}\n`
  return s
}

function signed(n: number): string {
  const a = Math.abs(n)
  return `${n < 0 ? '-' : '+'}${a >= 1024 * 1024 ? `${(a / MiB).toFixed(2)} MiB` : `${(a / 1024).toFixed(1)} KiB`}`
}
