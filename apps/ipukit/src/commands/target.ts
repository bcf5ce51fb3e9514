// ipukit target: a standalone NVMe/TCP target (internal/target.ts has the logic).
import { type Command, Option } from 'commander'
import type { LevelWithSilent } from 'pino'
import { collect, intIn, oneOf, parseListen, parseSize } from '../internal/flags.js'
import { type PiFormat, type PiTypeName, runTarget, type RunTargetOptions, TARGET_DEFAULTS } from '../internal/target.js'

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

interface Flags {
  listen?: { host: string; port: number }
  nqn?: string
  file?: string
  size?: number
  blockSize?: number
  mdSize?: number
  pi?: PiTypeName
  piFormat?: PiFormat
  piLocation?: 'first' | 'last'
  allowHost?: string[]
  config?: string
  logLevel: LevelWithSilent
  exitWithStdin?: boolean
}

export function registerTarget(p: Command): void {
  p.command('target')
    .description('a standalone NVMe/TCP target: one subsystem with a file or RAM namespace (metadata and PI optional), or an SPDK JSON configuration; JSON-line logs on stdout; SIGINT/SIGTERM stop it cleanly')
    .option('--listen <host:port>', `address to listen on; port 0 picks a free one (default ${TARGET_DEFAULTS.listen.host}:${TARGET_DEFAULTS.listen.port})`, parseListen)
    .option('--nqn <nqn>', `the subsystem's NQN (default ${TARGET_DEFAULTS.nqn})`)
    .option('--file <path>', 'the namespace is this file, created or grown to --size; block i at i x (block size + metadata size)')
    .option('--size <bytes>', 'namespace data size, whole blocks (default 256M of RAM; with --file, the blocks the file holds)', parseSize)
    .option('--block-size <bytes>', 'data bytes per block: 512 or 4096 (default 4096)', (v) => Number(oneOf(['512', '4096'])(v)))
    .option('--md-size <bytes>', 'metadata bytes per block, interleaved after its data (default 0; with --pi, the PI size: 8, or 16 for 32b/64b guards)', intIn(0, 4096))
    .option('--pi <type>', 'protection information: none, type1, type2, type3 (default none)', oneOf<PiTypeName>(['none', 'type1', 'type2', 'type3']))
    .option('--pi-format <bits>', 'guard: 16 (CRC16 T10-DIF), 32 (CRC32C), 64 (CRC64-NVMe) (default 16)', (v) => Number(oneOf(['16', '32', '64'])(v)) as PiFormat)
    .option('--pi-location <where>', 'PI in the first or last bytes of the metadata (default last)', oneOf(['first', 'last'] as const))
    .option('--allow-host <nqn>', 'a host NQN allowed to connect (repeatable; none given: any host)', collect)
    .option('--config <path>', 'an SPDK JSON configuration (nvmf_create_transport, bdev_*, nvmf_create_subsystem, nvmf_subsystem_add_ns, nvmf_subsystem_add_listener, nvmf_subsystem_add_host) instead of the namespace flags')
    .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS).default('info'))
    .addOption(new Option('--exit-with-stdin', 'stop when stdin closes (for a parent process)').hideHelp())
    .action(async (f: Flags) => {
      const o: RunTargetOptions = {
        ...(f.listen !== undefined && { listen: f.listen }),
        ...(f.nqn !== undefined && { nqn: f.nqn }),
        ...(f.file !== undefined && { file: f.file }),
        ...(f.size !== undefined && { size: f.size }),
        ...(f.blockSize !== undefined && { blockSize: f.blockSize }),
        ...(f.mdSize !== undefined && { mdSize: f.mdSize }),
        ...(f.pi !== undefined && { pi: f.pi }),
        ...(f.piFormat !== undefined && { piFormat: f.piFormat }),
        ...(f.piLocation !== undefined && { piLocation: f.piLocation }),
        ...(f.allowHost !== undefined && { allowHosts: f.allowHost }),
        ...(f.config !== undefined && { config: f.config }),
        logLevel: f.logLevel,
        exitWithStdin: f.exitWithStdin === true,
      }
      await runTarget(o)
      // everything is closed; should a stray handle keep the loop alive, do not hang
      setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref()
    })
}
