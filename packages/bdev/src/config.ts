// SPDK's JSON configuration (what `spdk_tgt --json` reads and `rpc.py save_config` writes),
// for the methods ipukit implements:
//
//   { "subsystems": [
//       { "subsystem": "accel", "config": [
//           { "method": "accel_crypto_key_create",
//             "params": { "name": "k0", "cipher": "AES_XTS", "key": "…", "key2": "…" } } ] },
//       { "subsystem": "bdev", "config": [
//           { "method": "bdev_aio_create", "params": { "name": "aio0", "filename": "/data/ns0",
//             "block_size": 512, "md_size": 8, "dif_type": 1, "num_blocks": 262144 } },
//           { "method": "bdev_dif_create", "params": { "name": "dif0", "base_bdev_name": "aio0" } },
//           { "method": "bdev_crypto_create", "params": { "name": "crypt0",
//             "base_bdev_name": "dif0", "key_name": "k0" } } ] } ] }
//
// Subsystems are applied accel first, then bdev, then the rest, each in its order. Every
// object is strict: an unknown parameter is an error naming the method and the parameter,
// as is an unknown method. The *_set_options methods and the like that save_config emits
// are accepted and reported as ignored. Extensions (file metadata, PI, growth, direct I/O;
// the dif bdev) are marked in the README.
import { isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import type { Bdevs } from './bdev.js'
import { createCryptoBdev } from './crypto.js'
import { createDifBdev } from './dif.js'
import { BdevError } from './errors.js'
import { createFileBdev } from './file.js'
import { createMallocBdev } from './malloc.js'
import { createPassthruBdev } from './passthru.js'

export interface ConfigContext {
  bdevs: Bdevs
  /** where relative file names resolve from; default the working directory */
  baseDir?: string
}

/** One method's handler: validated params in, a note out (what it created). */
export interface ConfigMethod<P = unknown> {
  subsystem: string
  params: z.ZodType<P>
  apply(params: P, ctx: ConfigContext): Promise<string> | string
}

export interface ConfigReport {
  /** what each applied method created, in order ("bdev aio0", "key k0") */
  created: string[]
  /** methods accepted and ignored (pool sizes, options ipukit sets on its own) */
  ignored: string[]
}

const name = z.string().min(1).max(255)
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { error: 'must be a UUID' })
const hex = z.string().regex(/^(?:[0-9a-f]{2})+$/i, { error: 'must be an even-length hex string' })
const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi)
const difType = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)], { error: 'must be 0 (none), 1, 2 or 3' })
const piFormat = z.union([z.literal(0), z.literal(1), z.literal(2)], { error: 'must be 0 (16b guard), 1 (32b) or 2 (64b), as SPDK numbers them' })
const FORMATS = [16, 32, 64] as const

const mallocParams = z.strictObject({
  name: name.optional(),
  num_blocks: int(1, Number.MAX_SAFE_INTEGER),
  block_size: int(512, 65536),
  physical_block_size: int(512, 65536).optional(),
  uuid: uuid.optional(),
  optimal_io_boundary: int(0, 2 ** 32).optional(),
  md_size: int(0, 4096).optional(),
  md_interleave: z.boolean().optional(),
  dif_type: difType.optional(),
  dif_is_head_of_md: z.boolean().optional(),
  dif_pi_format: piFormat.optional(),
})

const aioParams = z.strictObject({
  name,
  filename: z.string().min(1),
  block_size: int(512, 65536).optional(),
  readonly: z.boolean().optional(),
  fallocate: z.boolean().optional(),
  uuid: uuid.optional(),
  // ipukit: a file-backed namespace with metadata (extended-LBA layout), sized on creation
  md_size: int(0, 4096).optional(),
  dif_type: difType.optional(),
  dif_is_head_of_md: z.boolean().optional(),
  dif_pi_format: piFormat.optional(),
  num_blocks: int(1, Number.MAX_SAFE_INTEGER).optional(),
  direct: z.boolean().optional(),
})

const cryptoParams = z.strictObject({
  base_bdev_name: name,
  name,
  crypto_pmd: z.string().optional(),
  key_name: name.optional(),
  key: hex.optional(),
  key2: hex.optional(),
  cipher: z.string().optional(),
  tweak_mode: z.string().optional(),
})

const keyParams = z.strictObject({
  name,
  cipher: z.string(),
  key: hex,
  key2: hex.optional(),
  tweak_mode: z.string().optional(),
})

const passthruParams = z.strictObject({ base_bdev_name: name, name, uuid: uuid.optional() })

const difParams = z.strictObject({
  base_bdev_name: name,
  name,
  uuid: uuid.optional(),
  app_tag: int(0, 0xffff).optional(),
  app_tag_mask: int(0, 0xffff).optional(),
  guard_check: z.boolean().optional(),
  app_tag_check: z.boolean().optional(),
  ref_tag_check: z.boolean().optional(),
})

function pi(p: { dif_type?: 0 | 1 | 2 | 3 | undefined; dif_is_head_of_md?: boolean | undefined; dif_pi_format?: 0 | 1 | 2 | undefined }) {
  return { type: p.dif_type ?? 0, format: FORMATS[p.dif_pi_format ?? 0], location: p.dif_is_head_of_md === true ? ('first' as const) : ('last' as const) }
}

let mallocIndex = 0

/** A parameter a method's handler refuses after the schema passed it (an unsupported value). */
export class ParamError extends Error {
  readonly param: string
  constructor(param: string, message: string) {
    super(message)
    this.param = param
  }
}

function createKey(ctx: ConfigContext, n: string, cipher: string, key: string, key2: string | undefined, tweak: string | undefined): string {
  if (cipher !== 'AES_XTS') {
    throw new ParamError('cipher', `'${cipher}' is not supported; ipukit runs AES_XTS (AES_CBC chains inside a data unit, so no module here can run it at speed)`)
  }
  if (tweak !== undefined && tweak !== 'SIMPLE_LBA') throw new ParamError('tweak_mode', `'${tweak}' is not supported; SIMPLE_LBA is`)
  if (key2 === undefined) throw new ParamError('key2', 'AES_XTS needs key2')
  ctx.bdevs.accel.keys.create({ name: n, cipher: 'AES_XTS', key, key2, tweakMode: 'SIMPLE_LBA' })
  return `key ${n}`
}

/** The methods ipukit's bdev layer implements (other packages add theirs). */
export const BDEV_CONFIG_METHODS: Record<string, ConfigMethod<any>> = {
  accel_crypto_key_create: {
    subsystem: 'accel',
    params: keyParams,
    apply: (p: z.infer<typeof keyParams>, ctx) => createKey(ctx, p.name, p.cipher, p.key, p.key2, p.tweak_mode),
  },
  bdev_malloc_create: {
    subsystem: 'bdev',
    params: mallocParams,
    apply: (p: z.infer<typeof mallocParams>, ctx) => {
      if ((p.md_size ?? 0) > 0 && p.md_interleave !== true) throw new ParamError('md_interleave', 'separate metadata (DIX, md_interleave false, SPDK\'s default) is not supported: set md_interleave to true')
      const n = p.name ?? `Malloc${mallocIndex++}`
      createMallocBdev(ctx.bdevs, { name: n, blockCount: p.num_blocks, blockSize: p.block_size, mdSize: p.md_size ?? 0, pi: pi(p), ...(p.uuid !== undefined && { uuid: p.uuid }) })
      return `bdev ${n}`
    },
  },
  bdev_aio_create: {
    subsystem: 'bdev',
    params: aioParams,
    apply: async (p: z.infer<typeof aioParams>, ctx) => {
      const path = isAbsolute(p.filename) ? p.filename : resolve(ctx.baseDir ?? process.cwd(), p.filename)
      await createFileBdev(ctx.bdevs, {
        name: p.name,
        path,
        blockSize: p.block_size ?? 512,
        mdSize: p.md_size ?? 0,
        pi: pi(p),
        ...(p.num_blocks !== undefined && { blockCount: p.num_blocks }),
        ...(p.readonly !== undefined && { readonly: p.readonly }),
        ...(p.direct !== undefined && { direct: p.direct }),
        ...(p.uuid !== undefined && { uuid: p.uuid }),
      })
      return `bdev ${p.name}`
    },
  },
  bdev_crypto_create: {
    subsystem: 'bdev',
    params: cryptoParams,
    apply: (p: z.infer<typeof cryptoParams>, ctx) => {
      let key = p.key_name
      if (key === undefined) {
        // SPDK's legacy form: the key given inline, registered as <name>_<cipher>
        if (p.key === undefined) throw new ParamError('key_name', 'give key_name, or key (and cipher and key2)')
        if (p.cipher === undefined) throw new ParamError('cipher', 'SPDK\'s default for an inline key is AES_CBC, which ipukit does not support; give cipher AES_XTS and key2')
        key = `${p.name}_${p.cipher}`
        createKey(ctx, key, p.cipher, p.key, p.key2, p.tweak_mode)
      } else if (p.key !== undefined) throw new ParamError('key', 'give key_name or an inline key, not both')
      createCryptoBdev(ctx.bdevs, { name: p.name, base: p.base_bdev_name, key })
      return `bdev ${p.name}`
    },
  },
  bdev_passthru_create: {
    subsystem: 'bdev',
    params: passthruParams,
    apply: (p: z.infer<typeof passthruParams>, ctx) => {
      createPassthruBdev(ctx.bdevs, { name: p.name, base: p.base_bdev_name, ...(p.uuid !== undefined && { uuid: p.uuid }) })
      return `bdev ${p.name}`
    },
  },
  bdev_dif_create: {
    subsystem: 'bdev',
    params: difParams,
    apply: (p: z.infer<typeof difParams>, ctx) => {
      createDifBdev(ctx.bdevs, {
        name: p.name,
        base: p.base_bdev_name,
        ...(p.app_tag !== undefined && { appTag: p.app_tag }),
        ...(p.app_tag_mask !== undefined && { appTagMask: p.app_tag_mask }),
        checks: { guard: p.guard_check ?? true, appTag: p.app_tag_check ?? true, refTag: p.ref_tag_check ?? true },
        ...(p.uuid !== undefined && { uuid: p.uuid }),
      })
      return `bdev ${p.name}`
    },
  },
}

/** Methods SPDK's save_config writes whose settings ipukit makes on its own: accepted, not applied. */
export const IGNORED_CONFIG_METHODS: ReadonlySet<string> = new Set([
  'accel_set_options',
  'accel_set_driver',
  'accel_assign_opc',
  'iobuf_set_options',
  'bdev_set_options',
  'bdev_wait_for_examine',
  'bdev_nvme_set_options',
  'bdev_nvme_set_hotplug',
  'bdev_iscsi_set_options',
  'bdev_raid_set_options',
  'sock_set_default_impl',
  'sock_impl_set_options',
  'vmd_enable',
  'framework_set_scheduler',
  'nvmf_set_config',
  'nvmf_set_max_subsystems',
  'nvmf_set_crdt',
  'keyring_set_options',
  'vfu_tgt_set_base_path',
  'iscsi_set_options',
  'scsi_set_options',
])

const ORDER = ['keyring', 'iobuf', 'sock', 'vmd', 'accel', 'bdev']

const documentSchema = z.strictObject({
  subsystems: z.array(
    z.strictObject({
      subsystem: z.string().min(1),
      config: z.array(z.strictObject({ method: z.string().min(1), params: z.record(z.string(), z.unknown()).optional() })).nullable().optional(),
    }),
  ),
})

function zodMessage(e: z.ZodError): string {
  const issue = e.issues[0]!
  const path = issue.path.length > 0 ? `${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[')}: ` : ''
  return `${path}${issue.message}`
}

/** Parses a configuration's text; a syntax error is a BdevError naming the position. */
export function parseConfig(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new BdevError('BDEV_CONFIG', `the configuration is not JSON: ${(e as Error).message}`)
  }
}

/**
 * Applies a configuration: every method of every subsystem, in SPDK's order. `methods`
 * extends the set (the NVMe-oF target adds nvmf_*). A method that fails stops it, with a
 * BdevError naming the method, its place and the parameter; what was created before stays.
 */
export async function applyConfig(doc: unknown, ctx: ConfigContext, methods: Record<string, ConfigMethod<any>> = BDEV_CONFIG_METHODS): Promise<ConfigReport> {
  const parsed = documentSchema.safeParse(doc)
  if (!parsed.success) throw new BdevError('BDEV_CONFIG', `configuration: ${zodMessage(parsed.error)}`)
  const report: ConfigReport = { created: [], ignored: [] }
  const subs = parsed.data.subsystems.map((s, i) => ({ ...s, i }))
  const rank = (s: string) => {
    const r = ORDER.indexOf(s)
    return r < 0 ? ORDER.length : r
  }
  subs.sort((a, b) => rank(a.subsystem) - rank(b.subsystem) || a.i - b.i)
  for (const s of subs) {
    const config = s.config ?? []
    for (let j = 0; j < config.length; j++) {
      const { method, params } = config[j]!
      const where = `subsystems[${s.i}].config[${j}] (${method})`
      const m = methods[method]
      if (m === undefined) {
        if (IGNORED_CONFIG_METHODS.has(method)) {
          report.ignored.push(method)
          continue
        }
        const known = Object.keys(methods).filter((k) => methods[k]!.subsystem === s.subsystem)
        throw new BdevError('BDEV_CONFIG', `${where}: unknown method '${method}'${known.length > 0 ? ` (subsystem ${s.subsystem} has ${known.join(', ')})` : ` (ipukit implements no method of subsystem '${s.subsystem}')`}`)
      }
      if (m.subsystem !== s.subsystem) throw new BdevError('BDEV_CONFIG', `${where}: ${method} belongs in subsystem '${m.subsystem}', not '${s.subsystem}'`)
      const p = m.params.safeParse(params ?? {})
      if (!p.success) throw new BdevError('BDEV_CONFIG', `${where}: params.${zodMessage(p.error)}`)
      try {
        report.created.push(await m.apply(p.data, ctx))
      } catch (e) {
        const msg = e instanceof ParamError ? `params.${e.param}: ${e.message}` : (e as Error).message
        throw new BdevError('BDEV_CONFIG', `${where}: ${msg}`, { cause: e })
      }
    }
  }
  return report
}
