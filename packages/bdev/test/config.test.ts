// SPDK JSON configurations: a whole stack from one document (accel first, whatever the
// order in the file), SPDK's own parameter names, save_config's housekeeping methods
// accepted and reported, and every mistake an error naming the method and the parameter.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyConfig, parseConfig } from '../src/index.js'
import { fixture, type Fixture } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
let f: Fixture
let dir: string
beforeAll(async () => {
  mkdirSync(join(here, '..', '.tmp'), { recursive: true })
  dir = mkdtempSync(join(here, '..', '.tmp', 'config-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const K1 = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'
const K2 = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100'

describe('SPDK JSON configuration', () => {
  it('builds a stack: aio with PI, dif, crypto with a named key, malloc, passthru, an inline legacy key', async () => {
    f = await fixture()
    const doc = parseConfig(
      JSON.stringify({
        subsystems: [
          {
            subsystem: 'bdev',
            config: [
              { method: 'bdev_set_options', params: { bdev_io_pool_size: 65535 } },
              { method: 'bdev_aio_create', params: { name: 'aio0', filename: 'ns0.img', block_size: 4096, md_size: 8, dif_type: 1, num_blocks: 64 } },
              { method: 'bdev_dif_create', params: { name: 'dif0', base_bdev_name: 'aio0', app_tag: 7 } },
              { method: 'bdev_crypto_create', params: { name: 'crypt0', base_bdev_name: 'dif0', key_name: 'k0' } },
              { method: 'bdev_malloc_create', params: { num_blocks: 32, block_size: 4096, md_size: 16, md_interleave: true, dif_type: 3, dif_is_head_of_md: true, dif_pi_format: 2 } },
              { method: 'bdev_malloc_create', params: { name: 'm1', num_blocks: 16, block_size: 512 } },
              { method: 'bdev_crypto_create', params: { name: 'c1', base_bdev_name: 'm1', key: K1, key2: K2, cipher: 'AES_XTS' } },
              { method: 'bdev_passthru_create', params: { name: 'pt0', base_bdev_name: 'c1' } },
              { method: 'bdev_wait_for_examine' },
            ],
          },
          { subsystem: 'accel', config: [{ method: 'accel_crypto_key_create', params: { name: 'k0', cipher: 'AES_XTS', key: K1, key2: K2 } }] },
          { subsystem: 'iobuf', config: [{ method: 'iobuf_set_options', params: { small_pool_count: 8192 } }] },
          { subsystem: 'sock', config: null },
        ],
      }),
    )
    const r = await applyConfig(doc, { bdevs: f.bdevs, baseDir: dir })
    expect(r.created).toEqual(['key k0', 'bdev aio0', 'bdev dif0', 'bdev crypt0', expect.stringMatching(/^bdev Malloc\d+$/), 'bdev m1', 'bdev c1', 'bdev pt0'])
    expect(r.ignored).toEqual(['iobuf_set_options', 'bdev_set_options', 'bdev_wait_for_examine'])
    const aio = f.bdevs.get('aio0')!
    expect(aio.info()).toMatchObject({ module: 'aio', blockSize: 4096, mdSize: 8, pi: { type: 1, format: 16, location: 'last' }, blockCount: 64, claimed: 'dif dif0', driverSpecific: { aio: { filename: join(dir, 'ns0.img') } } })
    const malloc = f.bdevs.list().find((b) => b.module === 'malloc' && b.name !== 'm1')!
    expect(malloc.pi).toEqual({ type: 3, format: 64, location: 'first' })
    expect(f.bdevs.get('crypt0')!.driverSpecific()).toEqual({ crypto: { base: 'dif0', key: 'k0', cipher: 'AES_XTS', tweakMode: 'SIMPLE_LBA' } })
    expect(f.accel.keys.get('c1_AES_XTS')).toBeDefined()
    await f.close()
  })

  it('names the method and the parameter of every mistake', async () => {
    f = await fixture()
    const one = (method: string, params: unknown, subsystem = 'bdev') => applyConfig({ subsystems: [{ subsystem, config: [{ method, params }] }] }, { bdevs: f.bdevs, baseDir: dir })
    await expect(one('bdev_malloc_create', { num_blocks: 'many', block_size: 512 })).rejects.toThrow(/subsystems\[0\]\.config\[0\] \(bdev_malloc_create\): params\.num_blocks: /)
    await expect(one('bdev_malloc_create', { num_blocks: 8, block_size: 512, colour: 'red' })).rejects.toThrow(/bdev_malloc_create\): params\.?.*colour/)
    await expect(one('bdev_malloc_create', { num_blocks: 8, block_size: 512, md_size: 8 })).rejects.toThrow(/params\.md_interleave: separate metadata/)
    await expect(one('bdev_malloc_create', { num_blocks: 8, block_size: 512, dif_type: 5 })).rejects.toThrow(/params\.dif_type: must be 0 \(none\), 1, 2 or 3/)
    await expect(one('bdev_lvol_create', { lvs_name: 'x' })).rejects.toThrow(/unknown method 'bdev_lvol_create' \(subsystem bdev has bdev_malloc_create/)
    await expect(one('nvmf_create_subsystem', {}, 'nvmf')).rejects.toThrow(/ipukit implements no method of subsystem 'nvmf'/)
    await expect(one('accel_crypto_key_create', { name: 'c', cipher: 'AES_CBC', key: K1 }, 'accel')).rejects.toThrow(/params\.cipher: 'AES_CBC' is not supported/)
    await expect(one('accel_crypto_key_create', { name: 'c', cipher: 'AES_XTS', key: K1 }, 'accel')).rejects.toThrow(/params\.key2: AES_XTS needs key2/)
    await expect(one('accel_crypto_key_create', { name: 'c', cipher: 'AES_XTS', key: K1, key2: K1 }, 'accel')).rejects.toThrow(/must differ/)
    await expect(one('bdev_crypto_create', { name: 'c', base_bdev_name: 'none', key_name: 'x' })).rejects.toThrow(/no bdev named 'none'/)
    await expect(one('bdev_crypto_create', { name: 'c', base_bdev_name: 'none', key: K1 })).rejects.toThrow(/params\.cipher: SPDK's default for an inline key is AES_CBC/)
    await expect(one('bdev_malloc_create', { num_blocks: 8, block_size: 512 }, 'accel')).rejects.toThrow(/belongs in subsystem 'bdev'/)
    await expect(one('bdev_aio_create', { name: 'a', filename: 'missing/ns.img' })).rejects.toThrow(/bdev_aio_create\): a: cannot open/)
    await expect(applyConfig({ subsystem: [] }, { bdevs: f.bdevs })).rejects.toThrow(/configuration: /)
    expect(() => parseConfig('{ "subsystems": [ }')).toThrow(/the configuration is not JSON/)
    await f.close()
  })
})
