// The `lspci -tv` tree, drawn the way pciutils' tree.c draws it.
import type { PciBus, PciFunction } from '../topology.js'

export const hex2 = (n: number) => n.toString(16).padStart(2, '0')
export const hex4 = (n: number) => n.toString(16).padStart(4, '0')

// lspci's tree.c: one line buffer; after a line is printed, '+' and '|' become '|' and
// everything else a space, so the next line inherits the branches still open.
function printLine(line: string[], p: number, out: string[]): void {
  out.push(line.slice(0, p).join('').trimEnd())
  for (let i = 0; i < p; i++) line[i] = line[i] === '+' || line[i] === '|' ? '|' : ' '
  line.length = p
}

export function renderBus(bus: PciBus, line: string[], p: number, out: string[]): void {
  const fns = bus.devices.flatMap((d) => d.functions)
  if (fns.length === 0) return printLine(line, p, out)
  if (fns.length === 1) {
    line[p] = '-'
    line[p + 1] = '-'
    return renderDev(fns[0]!, line, p + 2, out)
  }
  fns.forEach((f, i) => {
    line[p] = i === fns.length - 1 ? '\\' : '+'
    line[p + 1] = '-'
    renderDev(f, line, p + 2, out)
  })
}

function renderDev(f: PciFunction, line: string[], p: number, out: string[]): void {
  const put = (text: string) => {
    for (const ch of text) line[p++] = ch
  }
  put(`${hex2(f.device.number)}.${f.fn}`)
  if (f.secondary !== undefined) {
    const sec = f.secondary.number
    const sub = lastBus(f.secondary)
    put(sec === sub ? `-[${hex2(sec)}]-` : `-[${hex2(sec)}-${hex2(sub)}]-`)
    put('-')
    return renderBus(f.secondary, line, p, out)
  }
  put(`  ${f.name} [${hex4(f.vendorId)}:${hex4(f.deviceId)}]`)
  printLine(line, p, out)
}

function lastBus(bus: PciBus): number {
  let last = bus.number
  for (const d of bus.devices) for (const f of d.functions) if (f.secondary) last = Math.max(last, lastBus(f.secondary))
  return last
}
