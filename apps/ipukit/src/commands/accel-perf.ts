// ipukit accel-perf: one workload of @ipukit/accel (an opcode, or the write or read path of
// the design) kept at a queue depth for a while; prints ops/s, MB/s and latency
// percentiles (formatPerf), or the PerfResult as JSON. The command line of runAccelPerf,
// as packages/accel/bench/accel-perf.mjs was before it:
//
//   ipukit accel-perf -w crc32c -s 4K -q 128 -t 2 --workers 2
//   ipukit accel-perf -w write-path -s 128K -q 32 --driver ipu --verify --json
//   ipukit accel-perf -w encrypt -t 5 --json results/encrypt.json   (the line on stdout, JSON in the file)
//
// Exit codes: 0 done, 1 some operations failed (with --verify: a result that differs from
// the single kernels), 2 a bad flag or a combination runAccelPerf refuses.
import { AccelError, formatPerf, PERF_WORKLOADS, type PerfResult, type PerfWorkload, runAccelPerf } from '@ipukit/accel'
import { createPhysicalMemory } from '@ipukit/memory'
import type { Command } from 'commander'
import { CliError, usage } from '../internal/errors.js'
import { checkJsonPath, writeJson } from '../internal/json-file.js'
import { intIn, numberIn, oneOf, sizeIn } from '../internal/flags.js'

export interface AccelPerfOptions {
  workload: PerfWorkload
  /** bytes per operation; default 4096 */
  size?: number
  /** operations in flight; default 32 */
  depth?: number
  /** seconds; default 1 */
  time?: number
  /** worker threads of the `workers` module; default 0 */
  workers?: number
  /** the module the workload's opcodes are assigned to */
  module?: string
  /** the platform driver; default none */
  driver?: 'ipu'
  /** check every result against the single kernels */
  verify?: boolean
  /** the crypto data unit and DIF block, 512 or 4096; default 4096 */
  blockSize?: 512 | 4096
}

function blockWorkload(w: PerfWorkload): boolean {
  return w === 'encrypt' || w === 'decrypt' || w.startsWith('dif') || w.startsWith('dix') || w.endsWith('-path')
}

/**
 * Runs one accel-perf measurement on its own physical memory (16 MiB host DRAM, 256 MiB
 * IPU DRAM, as the script did). Bad combinations (a size that is not whole blocks for a
 * crypto or DIF workload, an unknown module or one that cannot run the workload) are
 * CliError usage errors; the run's own failures are in the result (`failed`).
 */
export async function accelPerf(o: AccelPerfOptions): Promise<PerfResult> {
  const size = o.size ?? 4096
  const block = o.blockSize ?? 4096
  if (blockWorkload(o.workload) && size % block !== 0) throw usage(`accel-perf: --size ${size}: ${o.workload} works on ${block}-byte blocks, so the size must be a multiple of ${block === 4096 ? '4K' : block}`)
  const workers = o.workers ?? 0
  const physical = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 256 << 20, kernels: { scratchSlots: Math.max(8, workers + 2) } })
  try {
    return await runAccelPerf(physical, {
      workload: o.workload,
      transferSize: size,
      blockSize: block,
      queueDepth: o.depth ?? 32,
      seconds: o.time ?? 1,
      workers,
      ...(o.module !== undefined && { module: o.module }),
      driver: o.driver ?? null,
      verify: o.verify ?? false,
    })
  } catch (e) {
    if (e instanceof AccelError && (e.code === 'ACCEL_BAD_ARGUMENT' || e.code === 'ACCEL_BAD_MODULE')) {
      throw new CliError('CLI_USAGE', `accel-perf: ${o.module !== undefined && e.code === 'ACCEL_BAD_MODULE' ? `--module ${o.module}: ` : ''}${e.message}`, { cause: e })
    }
    throw e
  }
}

interface Flags {
  workload: PerfWorkload
  size: number
  depth: number
  time: number
  workers: number
  module?: string
  driver?: 'ipu'
  verify?: true
  blockSize: 512 | 4096
  /** true: JSON on stdout; a string: the JSON file ('-' is stdout) */
  json?: true | string
}

export function registerAccelPerf(p: Command): void {
  p.command('accel-perf')
    .description(`Measure one accel workload: -q operations in flight for -t seconds; ops/s, MB/s and latency percentiles (workloads: ${PERF_WORKLOADS.join(', ')})`)
    .requiredOption('-w, --workload <name>', 'an opcode, write-path (encrypt → dif_generate_copy → copy) or read-path (copy → dif_verify_copy → decrypt)', oneOf(PERF_WORKLOADS))
    .option('-s, --size <bytes>', 'bytes per operation, 1 to 128K (whole blocks for crypto and DIF workloads)', sizeIn(1, 128 * 1024), 4096)
    .option('--block-size <bytes>', 'the crypto data unit and DIF block (8 bytes of PI each): 512 or 4096', (v) => Number(oneOf(['512', '4096'])(v)) as 512 | 4096, 4096)
    .option('-q, --depth <n>', 'operations in flight, 1 to 1024', intIn(1, 1024), 32)
    .option('-t, --time <seconds>', 'seconds to measure, 0.01 to 3600 (after a 10% warm-up)', numberIn(0.01, 3600), 1)
    .option('--workers <n>', 'worker threads for the workers module, 0 to 64 (0: none)', intIn(0, 64), 0)
    .option('-m, --module <name>', "run the workload's opcodes on this module: software, aesni (AES-XTS only), or workers (with --workers N)")
    .option('--driver <name>', 'the platform driver (ipu: fuses the write and read paths)', oneOf(['ipu'] as const))
    .option('--verify', 'check every result against the single kernels (for correctness, not for figures)')
    .option('--json [path]', 'print the result as JSON; with a path, write the JSON there and print the usual line (- is stdout)')
    .action(async (f: Flags) => {
      const file = typeof f.json === 'string' && f.json !== '-' ? f.json : undefined
      // a JSON file that cannot be written is a usage error before the run, not after it
      if (file !== undefined) checkJsonPath('accel-perf', file)
      const r = await accelPerf({
        workload: f.workload,
        size: f.size,
        depth: f.depth,
        time: f.time,
        workers: f.workers,
        ...(f.module !== undefined && { module: f.module }),
        ...(f.driver !== undefined && { driver: f.driver }),
        verify: f.verify === true,
        blockSize: f.blockSize,
      })
      if (f.json !== undefined && file === undefined) writeJson('accel-perf', '-', r)
      else {
        if (file !== undefined) writeJson('accel-perf', file, r)
        process.stdout.write(`${formatPerf(r)}\n`)
      }
      if (r.failed > 0) throw new CliError('CLI_FAILED', `accel-perf: ${r.failed} operation${r.failed === 1 ? '' : 's'} failed${f.verify === true ? ' (an error status, or a result that differs from the single kernels)' : ''}`)
    })
}
