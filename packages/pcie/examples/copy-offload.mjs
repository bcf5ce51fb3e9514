#!/usr/bin/env node
// The copy-offload scenario as a command (later `ipukit topo`): copy N MiB from nvme0's
// namespace to nvme1's through host DRAM, then peer to peer through nvme0's CMB, and print
// what each cost the fabric.
//
//   node examples/copy-offload.mjs [--mib 64] [--layout switch|root-ports]
//                                  [--host-bridge 8086:2020] [--cpu intel|amd:25] [--json]
import { parseArgs } from 'node:util'
import { copyOffload, formatCopyOffload } from '@ipukit/pcie'

const usage = 'usage: copy-offload [--mib N] [--layout switch|root-ports] [--host-bridge vvvv:dddd] [--cpu intel|amd:FAMILY|other] [--json]'

function fail(message) {
  process.stderr.write(`copy-offload: ${message}\n${usage}\n`)
  process.exit(2)
}

let values
try {
  ;({ values } = parseArgs({
    options: {
      mib: { type: 'string', default: '64' },
      layout: { type: 'string', default: 'switch' },
      'host-bridge': { type: 'string', default: '8086:2020' },
      cpu: { type: 'string', default: 'intel' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }))
} catch (e) {
  fail(e.message)
}
if (values.help) {
  process.stdout.write(`${usage}\n`)
  process.exit(0)
}
const mib = Number(values.mib)
if (!Number.isInteger(mib) || mib < 1 || mib > 1024) fail(`--mib must be a whole number of MiB from 1 to 1024, got '${values.mib}'`)
if (values.layout !== 'switch' && values.layout !== 'root-ports') fail(`--layout must be switch or root-ports, got '${values.layout}'`)
const hb = /^([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(values['host-bridge'])
if (!hb) fail(`--host-bridge must be vendor:device in hex, like 8086:2020, got '${values['host-bridge']}'`)
const cpuMatch = /^(intel|amd|other)(?::(\d+))?$/.exec(values.cpu)
if (!cpuMatch) fail(`--cpu must be intel, amd:FAMILY or other, got '${values.cpu}'`)
const cpu = { vendor: cpuMatch[1], family: cpuMatch[2] === undefined ? (cpuMatch[1] === 'amd' ? 0x19 : 6) : Number(cpuMatch[2]) }

try {
  const result = copyOffload({ mib, layout: values.layout, hostBridge: { vendorId: Number.parseInt(hb[1], 16), deviceId: Number.parseInt(hb[2], 16) }, cpu })
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatCopyOffload(result)}\n`)
} catch (e) {
  fail(e.message)
}
