// ipukit perf: a host workload against an NVMe/TCP target, as spdk_nvme_perf (internal/perf.ts has the logic).
import { type Command, InvalidArgumentError, Option } from 'commander'
import { CliError } from '../internal/errors.js'
import { checkJsonPath, writeJson } from '../internal/json-file.js'
import { stopOnSignals } from '../internal/signals.js'
import { intIn, numberIn, parseSize, parseTargetUrl } from '../internal/flags.js'
import { formatPerf, parseMetadata, PERF_WORKLOADS, type PerfOptions, type PerfWorkload, runPerf } from '../internal/perf.js'

interface Flags {
  target: { host: string; port: number; nqn: string }
  queueDepth: number
  ioSize: number
  workload: PerfWorkload
  rwmixread: number
  time: number
  warmup: number
  ioQueues: number
  hdgst?: boolean
  ddgst?: boolean
  nsid?: number
  hostnqn?: string
  metadata?: PerfOptions['metadata']
  connectTimeout: number
  json?: string
}

/** nvme+tcp://HOST[:PORT]/NQN, or SPDK's transport ID: 'trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:…'. */
export function parsePerfTarget(v: string): { host: string; port: number; nqn: string } {
  if (!/^\s*nvme\+tcp:/i.test(v) && /\btraddr:/i.test(v)) {
    const kv = new Map<string, string>()
    for (const part of v.trim().split(/\s+/)) {
      const i = part.indexOf(':')
      if (i <= 0) throw new InvalidArgumentError(`expected key:value pairs (trtype:TCP traddr:… trsvcid:… subnqn:…), got '${part}'`)
      kv.set(part.slice(0, i).toLowerCase(), part.slice(i + 1))
    }
    const tr = kv.get('trtype')
    if (tr !== undefined && tr.toUpperCase() !== 'TCP') throw new InvalidArgumentError(`only trtype:TCP is supported, got '${tr}'`)
    const nqn = kv.get('subnqn')
    if (nqn === undefined || nqn === '') throw new InvalidArgumentError('the transport ID needs subnqn:NQN')
    const port = Number(kv.get('trsvcid') ?? 4420)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`trsvcid must be a port from 1 to 65535, got '${kv.get('trsvcid')}'`)
    return { host: kv.get('traddr')!, port, nqn }
  }
  const t = parseTargetUrl(v)
  if (t.port < 1 || t.port > 65535) throw new InvalidArgumentError('the port must be from 1 to 65535')
  return t
}

function metadataFlag(v: string): NonNullable<PerfOptions['metadata']> {
  try {
    return parseMetadata(v)
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message)
  }
}

export function registerPerf(p: Command): void {
  p.command('perf')
    .description('a host workload against an NVMe/TCP target, as spdk_nvme_perf: IOPS, MiB/s and latency percentiles for reads, writes and in total')
    .requiredOption('-r, --target <url>', "the target: nvme+tcp://HOST[:PORT]/NQN (or SPDK's 'trtype:TCP traddr:HOST trsvcid:PORT subnqn:NQN')", parsePerfTarget)
    .option('-q, --queue-depth <n>', 'I/Os in flight, over all I/O queues', intIn(1, 4096), 32)
    .option('-o, --io-size <bytes>', "bytes per I/O, a multiple of the namespace's block size", parseSize, 4096)
    .addOption(new Option('-w, --workload <pattern>', 'I/O pattern').choices(PERF_WORKLOADS).default('randread'))
    .option('-M, --rwmixread <percent>', 'randrw: percent of reads', intIn(0, 100), 50)
    .option('-t, --time <seconds>', 'seconds to measure', numberIn(0.001, 86_400), 5)
    .option('--warmup <seconds>', 'seconds to run before measuring', numberIn(0, 3600), 0)
    .option('--io-queues <n>', 'I/O queues (TCP connections) of the controller', intIn(1, 128), 1)
    .option('--nsid <n>', 'the namespace (default the first)', intIn(1, 0xfffffffe))
    .option('--hdgst', 'header digests (CRC32C)')
    .option('--ddgst', 'data digests (CRC32C)')
    .option('--hostnqn <nqn>', 'the host NQN (default nqn.2014-08.org.nvmexpress:uuid:<random>)')
    .option('-e, --metadata <spec>', 'PI handling: PRACT=0|1,PRCHK=GUARD|REFTAG|APPTAG|NONE (default on a PI namespace: PRACT=1,PRCHK=GUARD|REFTAG)', metadataFlag)
    .option('--connect-timeout <seconds>', 'seconds for the TCP connection and each bring-up command', numberIn(0.01, 600), 5)
    .option('--json <path>', "write the result as JSON to this file ('-': stdout, the summary then goes to stderr)")
    .action(async (f: Flags) => {
      // a result that could not be written is found before the run, not after it
      if (f.json !== undefined && f.json !== '-') checkJsonPath('perf', f.json)
      const out = f.json === '-' ? process.stderr : process.stdout
      // a second signal: no summary, out now
      const stop = stopOnSignals('exit')
      try {
        let r
        try {
          r = await runPerf({
            target: f.target,
            queueDepth: f.queueDepth,
            ioSize: f.ioSize,
            workload: f.workload,
            readPercent: f.rwmixread,
            seconds: f.time,
            warmupSeconds: f.warmup,
            ioQueues: f.ioQueues,
            hdgst: f.hdgst === true,
            ddgst: f.ddgst === true,
            ...(f.nsid !== undefined && { nsid: f.nsid }),
            ...(f.hostnqn !== undefined && { hostnqn: f.hostnqn }),
            ...(f.metadata !== undefined && { metadata: f.metadata }),
            connectTimeoutMs: Math.round(f.connectTimeout * 1000),
            signal: stop.signal,
            onStart: (i) => out.write(`connected to ${i.url} (controller ${i.cntlid}, ${i.ioQueues} I/O queue${i.ioQueues === 1 ? '' : 's'}) in ${i.connectMs.toFixed(1)} ms; running\n`),
          })
        } catch (e) {
          // stopped before the first I/O
          if (stop.received !== null && (e as Error)?.name === 'AbortError') throw stop.interrupted(' before the run began')
          throw e
        }
        out.write(formatPerf(r))
        if (f.json !== undefined) writeJson('perf', f.json, r)
        if (r.firstFailure !== null) {
          const x = r.firstFailure
          throw new CliError('CLI_FAILED', `a ${x.op} of ${x.blocks} blocks at LBA ${x.lba} failed: status ${x.name}${r.failed > 1 ? ` (${r.failed} I/Os failed)` : ''}`)
        }
        if (stop.received !== null) throw stop.interrupted(` after ${r.seconds.toFixed(2)} s`)
      } finally {
        stop.dispose()
      }
    })
}
