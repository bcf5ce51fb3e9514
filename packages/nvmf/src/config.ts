// SPDK JSON configuration for the NVMe-oF target and the nvme-tcp bdev: the methods of
// subsystem "nvmf" (nvmf_create_transport, nvmf_create_subsystem, nvmf_subsystem_add_ns,
// nvmf_subsystem_add_listener (the discovery subsystem's too), nvmf_subsystem_add_host) and
// bdev_nvme_attach_controller in subsystem "bdev", beside @ipukit/bdev's own methods:
//
//   { "subsystems": [
//       { "subsystem": "bdev", "config": [
//           { "method": "bdev_malloc_create", "params": { "name": "Malloc0", "num_blocks": 32768, "block_size": 512 } } ] },
//       { "subsystem": "nvmf", "config": [
//           { "method": "nvmf_create_transport", "params": { "trtype": "TCP", "in_capsule_data_size": 4096 } },
//           { "method": "nvmf_create_subsystem", "params": { "nqn": "nqn.2016-06.io.spdk:cnode1", "allow_any_host": true } },
//           { "method": "nvmf_subsystem_add_ns", "params": { "nqn": "nqn.2016-06.io.spdk:cnode1", "namespace": { "bdev_name": "Malloc0" } } },
//           { "method": "nvmf_subsystem_add_listener", "params": { "nqn": "nqn.2016-06.io.spdk:cnode1",
//               "listen_address": { "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4420" } } } ] } ] }
//
// Parameters are SPDK's names; one ipukit does not implement, or a value it does not
// support, is an error naming the method and the parameter. Options SPDK has for its own
// machinery (buffer pools, socket priority, zero copy) are accepted and have no effect.
import { applyConfig, BDEV_CONFIG_METHODS, BdevError, type Bdevs, type ConfigContext, type ConfigMethod, type ConfigReport, ParamError } from '@ipukit/bdev'
import { z } from 'zod'
import { attachNvmeController } from './bdev-nvme.js'
import { NvmfError } from './errors.js'
import { DISCOVERY_NQN } from './spec/fabrics.js'
import type { NvmfTarget } from './target.js'
import { TcpTransport } from './tcp-target.js'

const str = z.string().min(1)
const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi)
const trtype = z.string().refine((t) => t.toUpperCase() === 'TCP', { error: "only 'TCP' is a transport here" })
const adrfam = z.string().refine((t) => ['IPV4', 'IPV6'].includes(t.toUpperCase()), { error: "must be 'IPv4' or 'IPv6'" }).optional()

const transportParams = z.strictObject({
  trtype,
  tgt_name: str.optional(),
  max_queue_depth: int(2, 65535).optional(),
  max_io_qpairs_per_ctrlr: int(1, 65534).optional(),
  max_qpairs_per_ctrlr: int(2, 65535).optional(),
  in_capsule_data_size: int(0, 8192).optional(),
  max_io_size: int(4096, 1 << 24).optional(),
  max_aq_depth: int(32, 4096).optional(),
  c2h_success: z.boolean().optional(),
  dif_insert_or_strip: z.literal(false, { error: 'dif_insert_or_strip is not supported: stack a dif bdev instead' }).optional(),
  // SPDK's own machinery: accepted, no effect here
  io_unit_size: int(0, 1 << 24).optional(),
  num_shared_buffers: int(0, 1 << 20).optional(),
  buf_cache_size: int(0, 2 ** 32).optional(),
  sock_priority: int(0, 16).optional(),
  abort_timeout_sec: int(0, 3600).optional(),
  zcopy: z.boolean().optional(),
  control_msg_num: int(0, 1 << 16).optional(),
  ack_timeout: int(0, 1 << 20).optional(),
  data_wr_pool_size: int(0, 1 << 20).optional(),
})

const subsystemParams = z.strictObject({
  nqn: str,
  tgt_name: str.optional(),
  serial_number: z.string().max(20).optional(),
  model_number: z.string().max(40).optional(),
  allow_any_host: z.boolean().optional(),
  max_namespaces: int(1, 1024).optional(),
  ana_reporting: z.literal(false, { error: 'ANA reporting is not supported' }).optional(),
  min_cntlid: int(1, 0xffef).optional(),
  max_cntlid: int(1, 0xffef).optional(),
})

const listenAddress = z.strictObject({ trtype, adrfam, traddr: str, trsvcid: z.union([str, int(0, 65535)]) })
const listenerParams = z.strictObject({ nqn: str, listen_address: listenAddress, tgt_name: str.optional(), secure_channel: z.literal(false, { error: 'TLS (secure_channel) is not supported' }).optional(), ana_state: z.string().optional() })

const nsParams = z.strictObject({
  nqn: str,
  tgt_name: str.optional(),
  namespace: z.strictObject({ bdev_name: str, nsid: int(1, 0xfffffffe).optional(), uuid: z.string().optional(), nguid: z.string().optional(), eui64: z.string().optional(), anagrpid: int(1, 0xffffffff).optional(), no_auto_visible: z.literal(false).optional() }),
})

const hostParams = z.strictObject({ nqn: str, host: str, tgt_name: str.optional(), psk: z.never({ error: 'TLS PSKs are not supported' }).optional() })

const attachParams = z.strictObject({
  name: str,
  trtype,
  traddr: str,
  adrfam,
  trsvcid: z.union([str, int(1, 65535)]),
  subnqn: str,
  hostnqn: str.optional(),
  hostaddr: str.optional(),
  hostsvcid: str.optional(),
  hdgst: z.boolean().optional(),
  ddgst: z.boolean().optional(),
  num_io_queues: int(1, 1024).optional(),
  io_queue_requests: int(2, 4096).optional(),
  ctrlr_loss_timeout_sec: int(-1, 86400).optional(),
  reconnect_delay_sec: int(0, 3600).optional(),
  fast_io_fail_timeout_sec: int(0, 86400).optional(),
  keep_alive_timeout_ms: int(0, 0xffffffff).optional(),
  fabrics_connect_timeout_us: int(1, 2 ** 32).optional(),
  prchk_reftag: z.literal(false, { error: 'PI checks belong to a dif bdev here' }).optional(),
  prchk_guard: z.literal(false, { error: 'PI checks belong to a dif bdev here' }).optional(),
  multipath: z.string().optional(),
  psk: z.never({ error: 'TLS PSKs are not supported' }).optional(),
})

/** @ipukit/bdev's methods and bdev_nvme_attach_controller: an initiator's configuration (applyConfig(doc, ctx, BDEV_NVME_CONFIG_METHODS)). */
export const BDEV_NVME_CONFIG_METHODS: Record<string, ConfigMethod<any>> = {
  ...BDEV_CONFIG_METHODS,
  bdev_nvme_attach_controller: {
    subsystem: 'bdev',
    params: attachParams,
    async apply(p: z.infer<typeof attachParams>, ctx: ConfigContext) {
      if (p.multipath !== undefined && p.multipath !== 'disable') throw new ParamError('multipath', `'${p.multipath}' is not supported; one path per controller`)
      const names = await attachNvmeController(ctx.bdevs, {
        name: p.name,
        traddr: p.traddr,
        trsvcid: p.trsvcid,
        subnqn: p.subnqn,
        ...(p.hostnqn !== undefined && { hostnqn: p.hostnqn }),
        hdgst: p.hdgst ?? false,
        ddgst: p.ddgst ?? false,
        ioQueues: p.num_io_queues ?? 1,
        ...(p.io_queue_requests !== undefined && { queueDepth: Math.min(4096, p.io_queue_requests) }),
        // SPDK: -1 never gives up; 0 (the default) fails at once
        ...(p.ctrlr_loss_timeout_sec !== undefined && { ctrlLossTimeoutMs: p.ctrlr_loss_timeout_sec < 0 ? 86_400_000 : p.ctrlr_loss_timeout_sec * 1000 }),
        ...(p.reconnect_delay_sec !== undefined && { reconnectDelayMs: p.reconnect_delay_sec * 1000 }),
        ...(p.keep_alive_timeout_ms !== undefined && { kato: p.keep_alive_timeout_ms }),
      })
      return names.map((n) => `bdev ${n}`).join(', ')
    },
  },
}

/** The nvmf methods, bound to `target`; the TCP transport nvmf_create_transport makes is kept here. */
export function nvmfConfigMethods(target: NvmfTarget): { methods: Record<string, ConfigMethod<any>>; transport(): TcpTransport | null } {
  let tcp: TcpTransport | null = null
  const transport = () => {
    if (tcp === null) throw new ParamError('listen_address.trtype', 'no TCP transport: nvmf_create_transport with trtype TCP first')
    return tcp
  }
  const methods: Record<string, ConfigMethod<any>> = {
    ...BDEV_NVME_CONFIG_METHODS,
    nvmf_create_transport: {
      subsystem: 'nvmf',
      params: transportParams,
      apply(p: z.infer<typeof transportParams>) {
        if (tcp !== null) throw new ParamError('trtype', 'a TCP transport exists')
        const qpairs = p.max_qpairs_per_ctrlr ?? (p.max_io_qpairs_per_ctrlr !== undefined ? p.max_io_qpairs_per_ctrlr + 1 : undefined)
        tcp = new TcpTransport(target, {
          ...(p.max_queue_depth !== undefined && { maxQueueDepth: p.max_queue_depth }),
          ...(qpairs !== undefined && { maxQpairsPerCtrlr: qpairs }),
          ...(p.in_capsule_data_size !== undefined && { inCapsuleDataSize: p.in_capsule_data_size }),
          ...(p.max_io_size !== undefined && { maxIoSize: p.max_io_size }),
          ...(p.max_aq_depth !== undefined && { maxAqDepth: p.max_aq_depth }),
          ...(p.c2h_success !== undefined && { c2hSuccess: p.c2h_success }),
        })
        return 'transport TCP'
      },
    },
    nvmf_create_subsystem: {
      subsystem: 'nvmf',
      params: subsystemParams,
      apply(p: z.infer<typeof subsystemParams>) {
        target.createSubsystem({ nqn: p.nqn, ...(p.serial_number !== undefined && { serial: p.serial_number }), ...(p.model_number !== undefined && { model: p.model_number }), allowAnyHost: p.allow_any_host ?? false, ...(p.max_namespaces !== undefined && { maxNamespaces: p.max_namespaces }) })
        return `subsystem ${p.nqn}`
      },
    },
    nvmf_subsystem_add_ns: {
      subsystem: 'nvmf',
      params: nsParams,
      apply(p: z.infer<typeof nsParams>) {
        if (p.namespace.uuid !== undefined || p.namespace.nguid !== undefined || p.namespace.eui64 !== undefined) throw new ParamError('namespace.uuid', 'the namespace IDs come from the bdev (its UUID); setting them is not supported')
        const nsid = subsystemOf(target, p.nqn).addNamespace({ bdev: p.namespace.bdev_name, ...(p.namespace.nsid !== undefined && { nsid: p.namespace.nsid }) })
        return `namespace ${nsid} of ${p.nqn}`
      },
    },
    nvmf_subsystem_add_listener: {
      subsystem: 'nvmf',
      params: listenerParams,
      async apply(p: z.infer<typeof listenerParams>) {
        const s = subsystemOf(target, p.nqn)
        const t = transport()
        let address = `TCP ${p.listen_address.traddr}:${p.listen_address.trsvcid}`
        // trsvcid 0 asks for any free port: the listener's address says which
        if (!target.hasListener(address)) address = (await t.listen(p.listen_address.traddr, p.listen_address.trsvcid)).address
        s.addListener(address)
        return `listener ${address} of ${p.nqn}`
      },
    },
    nvmf_subsystem_add_host: {
      subsystem: 'nvmf',
      params: hostParams,
      apply(p: z.infer<typeof hostParams>) {
        if (p.nqn === DISCOVERY_NQN) throw new ParamError('nqn', 'the discovery subsystem allows any host')
        subsystemOf(target, p.nqn).addHost(p.host)
        return `host ${p.host} of ${p.nqn}`
      },
    },
  }
  return { methods, transport: () => tcp }
}

function subsystemOf(target: NvmfTarget, nqn: string) {
  const s = target.subsystems.get(nqn)
  if (s === undefined) throw new ParamError('nqn', `no subsystem ${nqn} (nvmf_create_subsystem first)`)
  return s
}

/**
 * Applies an SPDK JSON configuration to a target and its bdevs: the bdev methods first, then
 * the nvmf ones (SPDK's subsystem order). Resolves to what was created and the TCP transport.
 */
export async function applyNvmfConfig(doc: unknown, o: { bdevs: Bdevs; target: NvmfTarget; baseDir?: string }): Promise<ConfigReport & { transport: TcpTransport | null }> {
  const m = nvmfConfigMethods(o.target)
  try {
    const r = await applyConfig(doc, { bdevs: o.bdevs, ...(o.baseDir !== undefined && { baseDir: o.baseDir }) }, m.methods)
    return { ...r, transport: m.transport() }
  } catch (e) {
    if (e instanceof BdevError && e.code === 'BDEV_CONFIG') throw new NvmfError('NVMF_CONFIG', e.message, { cause: e })
    throw e
  }
}
