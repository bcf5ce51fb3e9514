#!/usr/bin/env node
// accel-perf: one workload of @ipukit/accel at a queue depth for a while; prints ops/s,
// MB/s and latency percentiles (or JSON). Runs on the built package (dist/). The command
// line users run is `ipukit accel-perf` (apps/ipukit), with the same flags.
//
//   node bench/accel-perf.mjs -w crc32c -s 4096 -q 128 -t 2 --workers 2
//   node bench/accel-perf.mjs -w write-path -s 65536 -q 32 --driver ipu --verify --json
import { parseArgs } from 'node:util'
import { createPhysicalMemory } from '@ipukit/memory'
import { formatPerf, PERF_WORKLOADS, runAccelPerf } from '@ipukit/accel'

const usage = `usage: accel-perf -w WORKLOAD [-s BYTES] [-q DEPTH] [-t SECONDS] [--workers N] [--module NAME] [--driver ipu] [--verify] [--json]
workloads: ${PERF_WORKLOADS.join(', ')}`

function fail(message) {
  process.stderr.write(`accel-perf: ${message}\n${usage}\n`)
  process.exit(2)
}

let values
try {
  ;({ values } = parseArgs({
    options: {
      workload: { type: 'string', short: 'w' },
      size: { type: 'string', short: 's', default: '4096' },
      depth: { type: 'string', short: 'q', default: '32' },
      time: { type: 'string', short: 't', default: '1' },
      workers: { type: 'string', default: '0' },
      module: { type: 'string', short: 'm' },
      driver: { type: 'string' },
      verify: { type: 'boolean', default: false },
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
if (values.workload === undefined) fail('-w/--workload is required')
const num = (name, v, lo, hi) => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < lo || n > hi) fail(`--${name} must be a number from ${lo} to ${hi}, got '${v}'`)
  return n
}
const size = num('size', values.size, 1, 131072)
const depth = num('depth', values.depth, 1, 1024)
const seconds = num('time', values.time, 0.01, 3600)
const workers = num('workers', values.workers, 0, 64)
if (values.driver !== undefined && values.driver !== 'ipu') fail(`--driver must be ipu, got '${values.driver}'`)

const physical = createPhysicalMemory({ hostSize: 16 << 20, ipuSize: 256 << 20, kernels: { scratchSlots: Math.max(8, workers + 2) } })
try {
  const r = await runAccelPerf(physical, {
    workload: values.workload,
    transferSize: size,
    queueDepth: depth,
    seconds,
    workers,
    ...(values.module !== undefined && { module: values.module }),
    driver: values.driver ?? null,
    verify: values.verify,
  })
  process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatPerf(r)}\n`)
  if (r.failed > 0) process.exitCode = 1
} catch (e) {
  fail(e.message)
}
