#!/usr/bin/env node
// Rewrites the benchmark tables in the current package's README.md from its
// bench/results/*.json, between the markers <!-- bench:start --> and <!-- bench:end -->.
// Tables come in the order of each result's `order` field, then by name.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = process.cwd()
const dir = join(root, 'bench', 'results')
const results = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
  .sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || a.kernel.localeCompare(b.kernel))

const label = (n) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`)
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))

const parts = []
for (const r of results) {
  const names = r.sizes[0].rows.map((x) => x.name)
  const head = `| ${r.title} (${r.unit ?? 'MB/s'}, median (min–max)) | ${r.sizes.map((s) => s.label ?? label(s.bytes)).join(' | ')} |`
  const sep = `|---|${r.sizes.map(() => '---:').join('|')}|`
  const rows = names.map((name) => {
    const cells = r.sizes.map((s) => {
      const x = s.rows.find((y) => y.name === name)
      return x ? `${fmt(x.medianMBps)} (${fmt(x.minMBps)}–${fmt(x.maxMBps)})` : '–'
    })
    const kind = r.sizes[0].rows.find((y) => y.name === name).kind
    return `| ${kind === 'ipukit' ? `**${name}**` : kind === 'ceiling' ? `*${name}* (ceiling)` : name} | ${cells.join(' | ')} |`
  })
  const targets = r.targets.map((t) => `- ${t.text}: **${t.value.toFixed(2)}** (goal ${t.atMost || /allocat/.test(t.text) ? '≤' : '≥'} ${t.goal}): ${t.met ? 'met' : 'missed'}`)
  parts.push(
    [`#### ${r.title}`, '', head, sep, ...rows, '', ...targets, ...r.notes.map((n) => `- ${n}`), ''].join('\n'),
  )
}
const m = results[0]?.machine
const when = results.map((r) => r.date).sort().at(-1)?.slice(0, 10)
const header = m
  ? `Measured ${when} on ${m.cpu}, ${m.cores} vCPU, Node ${m.node} (V8 ${m.v8}); ${results[0].method.description ?? `${results[0].method.samples} interleaved samples of about ${results[0].method.sampleMs} ms per candidate and size, single thread`}. Raw numbers: \`bench/results/*.json\`.\n`
  : ''
const readme = join(root, 'README.md')
const text = readFileSync(readme, 'utf8')
const start = '<!-- bench:start -->'
const end = '<!-- bench:end -->'
const i = text.indexOf(start)
const j = text.indexOf(end)
if (i < 0 || j < i) throw new Error('README.md has no bench markers')
writeFileSync(readme, `${text.slice(0, i + start.length)}\n${header}\n${parts.join('\n')}${text.slice(j)}`)
console.log(`README.md: ${results.length} benchmark tables updated`)
