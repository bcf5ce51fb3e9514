#!/usr/bin/env node
// Runs each bench/*.bench.ts of the package in the current directory in a process of its
// own (state a previous file left in the engine must not shape the next one's numbers),
// one after the other, then rewrites the package README's tables (report.mjs). Extra
// arguments select files by substring.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = process.cwd()
const filters = process.argv.slice(2)
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
for (const f of files) {
  const r = spawnSync('vitest', ['run', '--config', 'vitest.bench.config.ts', `bench/${f}`], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
const report = spawnSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'report.mjs')], { stdio: 'inherit', cwd: root })
process.exit(report.status ?? 1)
