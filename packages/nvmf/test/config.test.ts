// SPDK JSON configuration: a target built from nvmf_create_transport, nvmf_create_subsystem,
// nvmf_subsystem_add_ns, nvmf_subsystem_add_listener (and the discovery subsystem's) and
// nvmf_subsystem_add_host over a bdev_malloc_create, which a host then uses; an initiator's
// bdev_nvme_attach_controller; and errors that name the method and the parameter.
import net from 'node:net'
import { createAccel } from '@ipukit/accel'
import { applyConfig, Bdevs } from '@ipukit/bdev'
import { IoVecList } from '@ipukit/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { applyNvmfConfig, BDEV_NVME_CONFIG_METHODS, NvmfError, NvmfHost, NvmfTarget, type NvmeTcpBdev, type TcpTransport } from '../src/index.js'
import { memory, random } from './helpers.js'

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}

const NQN = 'nqn.2016-06.io.spdk:cnode1'
const HOST = 'nqn.2026-12.io.ipukit:config-host'
const cleanup: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanup.reverse()) await c()
})

async function setup() {
  const pm = memory()
  const accel = await createAccel({ physical: pm, aesni: false, driver: null })
  const bdevs = new Bdevs(accel)
  const target = new NvmfTarget({ bdevs })
  cleanup.push(async () => {
    target.close()
    await bdevs.close()
    await accel.close()
  })
  return { pm, accel, bdevs, target }
}

const doc = (port: number | string | null, extra: object[] = []) => ({
  subsystems: [
    { subsystem: 'bdev', config: [{ method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 4096, block_size: 512 } }] },
    {
      subsystem: 'nvmf',
      config: [
        { method: 'nvmf_set_config', params: { discovery_filter: 'match_any' } },
        { method: 'nvmf_create_transport', params: { trtype: 'TCP', max_queue_depth: 64, in_capsule_data_size: 4096, max_io_size: 131072, io_unit_size: 131072, c2h_success: true } },
        { method: 'nvmf_create_subsystem', params: { nqn: NQN, serial_number: 'SPDK00000000000001', model_number: 'SPDK bdev Controller', allow_any_host: false, max_namespaces: 8 } },
        { method: 'nvmf_subsystem_add_ns', params: { nqn: NQN, namespace: { bdev_name: 'Malloc0', nsid: 1 } } },
        ...(port === null
          ? []
          : [
              { method: 'nvmf_subsystem_add_listener', params: { nqn: NQN, listen_address: { trtype: 'TCP', adrfam: 'IPv4', traddr: '127.0.0.1', trsvcid: String(port) } } },
              { method: 'nvmf_subsystem_add_listener', params: { nqn: 'nqn.2014-08.org.nvmexpress.discovery', listen_address: { trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: String(port) } } },
            ]),
        { method: 'nvmf_subsystem_add_host', params: { nqn: NQN, host: HOST } },
        ...extra,
      ],
    },
  ],
})

describe('SPDK JSON configuration of the target', () => {
  it('builds the target the document describes; an allowed host connects, sees the namespace, does I/O', async () => {
    const { pm, bdevs, target } = await setup()
    const port = await freePort()
    const r = await applyNvmfConfig(doc(port), { bdevs, target })
    const tcp = r.transport as TcpTransport
    cleanup.push(() => tcp.close())
    expect(r.ignored).toEqual(['nvmf_set_config'])
    expect(r.created.slice(0, 4)).toEqual(['bdev Malloc0', 'transport TCP', `subsystem ${NQN}`, `namespace 1 of ${NQN}`])
    const s = target.subsystem(NQN)
    expect({ serial: s.serial, model: s.model, allowAny: s.allowAnyHost, hosts: [...s.hosts], max: s.maxNamespaces }).toEqual({ serial: 'SPDK00000000000001', model: 'SPDK bdev Controller', allowAny: false, hosts: [HOST], max: 8 })
    expect(tcp.limits.maxQueueDepth).toBe(64)
    expect(target.listeners().map((l) => l.address)).toEqual([`TCP 127.0.0.1:${port}`])
    const h = new NvmfHost({ physical: pm, traddr: '127.0.0.1', trsvcid: port, subnqn: NQN, hostnqn: HOST })
    await h.connect()
    cleanup.push(() => h.close())
    expect(h.namespaces.get(1)?.blocks).toBe(4096)
    const buf = pm.ipuAllocator.alloc(8192)
    pm.bytes.set(random(4096, 1), buf)
    const st = await new Promise<number>((res) => h.rw(0, true, 1, 8, 8, new IoVecList(1).push(buf, 4096), (_: null, c) => res(c.status), null))
    expect(st).toBe(0)
    // another host is not on the allowlist
    const other = new NvmfHost({ physical: pm, traddr: '127.0.0.1', trsvcid: port, subnqn: NQN, hostnqn: 'nqn.2026-12.io.ipukit:stranger' })
    await expect(other.connect()).rejects.toThrow(/status 184h/)
    await other.close()
    // discovery on the same listener
    const log = await NvmfHost.discover({ physical: pm, traddr: '127.0.0.1', trsvcid: port, hostnqn: HOST })
    expect(log.map((e) => e.subnqn).sort()).toEqual([NQN, 'nqn.2014-08.org.nvmexpress.discovery'].sort())
  })

  it('an initiator attaches the subsystem with bdev_nvme_attach_controller (digests on) and gets Nvme0n1', async () => {
    const { pm, bdevs, target } = await setup()
    const port = await freePort()
    const r = await applyNvmfConfig(doc(port), { bdevs, target })
    cleanup.push(() => r.transport!.close())
    const accel = await createAccel({ physical: pm, aesni: false, driver: null })
    const ini = new Bdevs(accel)
    cleanup.push(async () => {
      await ini.close()
      await accel.close()
    })
    const rep = await applyConfig(
      { subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_nvme_attach_controller', params: { name: 'Nvme0', trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: String(port), subnqn: NQN, hostnqn: HOST, hdgst: true, ddgst: true, ctrlr_loss_timeout_sec: 5, reconnect_delay_sec: 1 } }] }] },
      { bdevs: ini },
      BDEV_NVME_CONFIG_METHODS,
    )
    expect(rep.created).toEqual(['bdev Nvme0n1'])
    const b = ini.get('Nvme0n1') as NvmeTcpBdev
    expect(b.host.hdgst && b.host.ddgst).toBe(true)
    expect(b.blockCount).toBe(4096)
    // a bad parameter names itself
    await expect(applyConfig({ subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_nvme_attach_controller', params: { name: 'Nvme1', trtype: 'tcp', traddr: '127.0.0.1', trsvcid: String(port), subnqn: NQN, multipath: 'failover' } }] }] }, { bdevs: ini }, BDEV_NVME_CONFIG_METHODS)).rejects.toThrow(/params\.multipath/)
  })

  for (const [what, extra, message] of [
    ['an unknown method', [{ method: 'nvmf_subsystem_add_qos', params: {} }], /unknown method 'nvmf_subsystem_add_qos'/],
    ['an unknown parameter', [{ method: 'nvmf_create_subsystem', params: { nqn: 'nqn.2026-12.io.ipukit:x', colour: 'blue' } }], /nvmf_create_subsystem.*colour/],
    ['a bad NQN', [{ method: 'nvmf_create_subsystem', params: { nqn: 'not-an-nqn' } }], /nvmf_create_subsystem.*not of the form/],
    ['a namespace on a missing bdev', [{ method: 'nvmf_subsystem_add_ns', params: { nqn: NQN, namespace: { bdev_name: 'Nope' } } }], /nvmf_subsystem_add_ns.*no bdev 'Nope'/],
    ['a listener of a missing subsystem', [{ method: 'nvmf_subsystem_add_listener', params: { nqn: 'nqn.2026-12.io.ipukit:none', listen_address: { trtype: 'TCP', traddr: '127.0.0.1', trsvcid: '0' } } }], /nvmf_subsystem_add_listener.*params\.nqn: no subsystem/],
    ['RDMA', [{ method: 'nvmf_subsystem_add_listener', params: { nqn: NQN, listen_address: { trtype: 'RDMA', traddr: '127.0.0.1', trsvcid: '0' } } }], /listen_address\.trtype.*only 'TCP'/],
    ['a TLS PSK', [{ method: 'nvmf_subsystem_add_host', params: { nqn: NQN, host: 'nqn.2026-12.io.ipukit:h2', psk: 'key0' } }], /params\.psk: TLS PSKs are not supported/],
    ['dif_insert_or_strip', [{ method: 'nvmf_create_transport', params: { trtype: 'TCP', dif_insert_or_strip: true } }], /dif_insert_or_strip/],
  ] as const) {
    it(`refuses ${what}, naming the method and the parameter`, async () => {
      const { bdevs, target } = await setup()
      // no listeners before the bad method (what was created before it stays: no socket is left open)
      const e = await applyNvmfConfig(doc(null, [...extra]), { bdevs, target }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(NvmfError)
      expect((e as NvmfError).code).toBe('NVMF_CONFIG')
      expect((e as Error).message).toMatch(message)
      expect(target.listeners()).toEqual([])
    })
  }
})
