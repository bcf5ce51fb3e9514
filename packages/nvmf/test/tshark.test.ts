// Interoperability with Wireshark's NVMe/TCP dissector: a host↔target run over loopback is
// captured with dumpcap and decoded by tshark with header and data digest checking on. The
// run must decode without a malformed packet or an expert warning/error, and tshark's own
// decoding must show what the run was meant to exercise: ICReq/ICResp with the digest bits,
// in-capsule writes, R2T + H2CData writes, C2HData with and without SUCCESS, CapsuleResp,
// good digests. tshark and dumpcap come from Debian's tshark package (scripts/ensure-debian.sh,
// which `npm test` runs): the test fails, rather than skips, without them.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { IoVecList } from '@ipukit/memory'
import { afterAll, describe, expect, it } from 'vitest'
import type { HostCompletion, NvmfHost } from '../src/index.js'
import { random, type TargetFixture, targetFixture } from './helpers.js'

const run = promisify(execFile)

function tool(name: string): string {
  try {
    return execFileSync(name, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!
  } catch (e) {
    throw new Error(`${name} is missing (${(e as Error).message.split('\n')[0]}): install Debian's tshark package (bash scripts/ensure-debian.sh, which npm test runs)`)
  }
}

const dir = mkdtempSync(join(tmpdir(), 'nvmf-tshark-'))
const open: TargetFixture[] = []
let dumpcap: ChildProcess | null = null
afterAll(async () => {
  if (dumpcap !== null && dumpcap.exitCode === null) dumpcap.kill('SIGKILL')
  for (const f of open) await f.close()
  if (process.env.KEEP_PCAP === undefined) rmSync(dir, { recursive: true, force: true })
})

/** dumpcap's stderr so far (its 'File:' line, then its statistics when it stops) */
let dumpcapLog = ''

/** Starts dumpcap on the loopback for one TCP port; resolves once it writes the file. */
function startCapture(port: number, file: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('dumpcap', ['-i', 'lo', '-f', `tcp port ${port}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    const timer = setTimeout(() => reject(new Error(`dumpcap did not start within 10 s: ${err}`)), 10_000)
    p.on('error', (e) => reject(new Error(`dumpcap failed to start (${e.message}): install Debian's tshark package`)))
    p.on('exit', (code) => reject(new Error(`dumpcap exited early (${code}): ${err}`)))
    p.stderr!.setEncoding('utf8').on('data', (s: string) => {
      err += s
      dumpcapLog = err
      if (/^File: /m.test(err)) {
        clearTimeout(timer)
        resolve(p)
      }
    })
  })
}

function stopCapture(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve()
    // 'close': after the exit and the end of stderr (its statistics)
    p.on('close', () => resolve())
    p.kill('SIGINT')
  })
}

function rw(h: NvmfHost, write: boolean, lba: number, at: number, len: number): Promise<HostCompletion> {
  return new Promise((resolve, reject) => {
    const rc = h.rw(0, write, 1, lba, len / 512, new IoVecList(1).push(at, len), (_: null, c) => resolve(c), null)
    if (rc !== 0) reject(new Error(`rc ${rc}`))
  })
}

// ---- reading tshark's JSON (-T json --no-duplicate-keys: a repeated layer or field is an array) ----

type Json = string | Json[] | { [k: string]: Json }
const list = (x: Json | undefined): Json[] => (x === undefined ? [] : Array.isArray(x) ? x : [x])
/** every value of field `key` anywhere under `o` */
function values(o: Json | undefined, key: string, out: string[] = []): string[] {
  if (o === undefined || typeof o === 'string') return out
  if (Array.isArray(o)) {
    for (const x of o) values(x, key, out)
    return out
  }
  for (const [k, v] of Object.entries(o)) {
    if (k === key) for (const x of list(v)) if (typeof x === 'string') out.push(x)
    values(v, key, out)
  }
  return out
}
const one = (o: Json | undefined, key: string): string | undefined => values(o, key)[0]
const num = (s: string | undefined): number => (s === undefined ? Number.NaN : Number(s))

interface Frame {
  n: number
  stream: number
  layers: { [k: string]: Json }
  pdus: Pdu[]
  nvme: Json[]
}
interface Pdu {
  frame: number
  stream: number
  type: number
  flags: number
  hlen: number
  pdo: number
  plen: number
  /** nvme-tcp.hdgst.status / ddgst.status: 0 Bad, 1 Good, 2 Unverified, 3 Not present, 4 Illegal */
  hd: string | undefined
  dd: string | undefined
  layer: Json
}

const T = { ICReq: 0, ICResp: 1, H2CTermReq: 2, C2HTermReq: 3, CapsuleCmd: 4, CapsuleResp: 5, H2CData: 6, C2HData: 7, R2T: 9 } as const
const F = { HDGST: 0x01, DDGST: 0x02, LAST: 0x04, SUCCESS: 0x08 } as const
const GOOD = '1'
/** expert severities (epan/proto.h PI_*): warning 0x00600000, error 0x00800000 */
const PI_WARN = 0x00600000

function parseFrames(json: string): Frame[] {
  const out: Frame[] = []
  for (const p of JSON.parse(json) as { _source: { layers: { [k: string]: Json } } }[]) {
    const layers = p._source.layers
    const n = num(one(layers.frame, 'frame.number'))
    const stream = num(one(layers.tcp, 'tcp.stream'))
    const pdus = list(layers['nvme-tcp']).map((l) => ({
      frame: n,
      stream,
      type: num(one(l, 'nvme-tcp.type')),
      flags: num(one(l, 'nvme-tcp.flags')),
      hlen: num(one(l, 'nvme-tcp.hlen')),
      pdo: num(one(l, 'nvme-tcp.pdo')),
      plen: num(one(l, 'nvme-tcp.plen')),
      hd: one(l, 'nvme-tcp.hdgst.status'),
      dd: one(l, 'nvme-tcp.ddgst.status'),
      layer: l,
    }))
    out.push({ n, stream, layers, pdus, nvme: list(layers.nvme) })
  }
  return out
}

const TSHARK_4_0_ARBITRATION_BUG = /Unregistered hf!/

describe('Wireshark interoperability', () => {
  it('tshark decodes a host↔target run with digests: nothing malformed, nothing flagged, everything exercised', async () => {
    const tsharkVersion = tool('tshark')
    tool('dumpcap')
    const f = await targetFixture()
    open.push(f)
    const port = f.port
    const pcap = join(dir, 'nvme-tcp.pcapng')
    dumpcap = await startCapture(port, pcap)

    // ---- the run: four hosts, one after the other (each an admin and an I/O connection) ----
    const pm = f.pm
    const buf = pm.ipuAllocator.alloc(65536)
    const back = pm.ipuAllocator.alloc(65536)
    const log = pm.ipuAllocator.alloc(4096)
    const hosts = [
      { hdgst: true, ddgst: true },
      { hdgst: true, ddgst: true, disableSqFlowControl: true },
      { hdgst: false, ddgst: false },
      { hdgst: true, ddgst: false, disableSqFlowControl: true },
    ]
    for (const [i, opts] of hosts.entries()) {
      // bring-up: ICReq/ICResp, Connect, Property Get CAP, Property Set CC, Property Get CSTS,
      // Identify (controller, namespace list, namespace), Set Features Number of Queues
      const h = await f.host(opts)
      // Get Features Arbitration (FID 01h): on purpose, tshark 4.0 trips over its CQE (below)
      expect((await h.admin((v) => (v.setUint8(0, 0x0a), v.setUint32(40, 0x01, true)))).status).toBe(0)
      // Keep Alive
      expect((await h.admin((v) => v.setUint8(0, 0x18))).status).toBe(0)
      // Get Log Page SMART / Health (LID 02h), 512 bytes (NUMDL 127)
      const glp = await h.admin((v) => (v.setUint8(0, 0x02), v.setUint32(4, 0xffffffff, true), v.setUint32(40, 0x02 | (127 << 16), true)), new IoVecList(1).push(log, 512), true)
      expect(glp.status).toBe(0)
      // writes in the capsule (512 B, 4 KiB = ICD) and by R2T + H2CData (64 KiB); reads back
      for (const len of [512, 4096, 65536]) {
        const data = random(len, len + i)
        pm.bytes.set(data, buf)
        expect((await rw(h, true, 64, buf, len)).status).toBe(0)
        pm.bytes.fill(0, back, back + len)
        expect((await rw(h, false, 64, back, len)).status).toBe(0)
        expect(Buffer.from(pm.bytes.subarray(back, back + len)).equals(Buffer.from(data))).toBe(true)
      }
      // in the capsule: the two Connects (their 1 KiB data) and the two small writes
      expect(h.stats.inCapsule).toBe(4)
      expect(h.stats.r2t).toBe(1)
      await h.close()
    }
    // let the last FIN/ACKs reach the capture, then stop dumpcap (SIGINT: it closes the file)
    await new Promise((r) => setTimeout(r, 250))
    await stopCapture(dumpcap)
    expect(statSync(pcap).size).toBeGreaterThan(100_000)
    // "Packets received/dropped on interface 'Loopback: lo': 256/0 (...)"
    const stats = /received\/dropped on interface .*: (\d+)\/(\d+) /.exec(dumpcapLog)
    expect(stats, `dumpcap's statistics: ${dumpcapLog}`).not.toBeNull()
    expect(Number(stats![2]), `dumpcap dropped packets: ${dumpcapLog}`).toBe(0)

    // ---- the analysis ----
    const base = ['-r', pcap, '-o', `nvme-tcp.subsystem_ports:${port}`, '-o', 'nvme-tcp.check_hdgst:TRUE', '-o', 'nvme-tcp.check_ddgst:TRUE', '-d', `tcp.port==${port},nvme-tcp`]
    const [flaggedOut, all] = await Promise.all([
      run('tshark', [...base, '-Y', `_ws.malformed || _ws.expert.severity >= ${PI_WARN}`, '-T', 'fields', '-e', 'frame.number'], { maxBuffer: 1 << 24 }),
      run('tshark', [...base, '-T', 'json', '--no-duplicate-keys', '-J', 'frame tcp nvme-tcp nvme _ws.malformed'], { maxBuffer: 1 << 28 }),
    ])
    const frames = parseFrames(all.stdout)
    const byNum = new Map(frames.map((x) => [x.n, x]))
    const pdus = frames.flatMap((x) => x.pdus)
    const count = (t: number, pred: (p: Pdu) => boolean = () => true) => pdus.filter((p) => p.type === t && pred(p)).length

    // the command each frame carries, by its frame number (a capsule holds one)
    const opcodeAt = (n: number) => one(byNum.get(n)?.nvme, 'nvme.cmd.opc')

    // 1. Nothing malformed, no expert warning or error, but for tshark 4.0's own bug on the
    // Get Features Arbitration CQE: packet-nvme.c decodes that CQE's DWORD0 with a list of
    // fields one of which it never registered (`tshark -G fields` shows only DWORD0, AB, LPW,
    // MPW and HPW under nvme.cqe.dword0.get_features.arb), so it stops right after Arbitration
    // Burst with "[Dissector bug, protocol NVMe/TCP: ./epan/proto.c:4056: failed assertion
    // "(guint)hfindex < gpa_hfinfo.len" (Unregistered hf!)]" (Error/Malformed), whatever the
    // bytes are: it is the same for a DWORD0 of 0 and on a connection without digests. (A bad
    // digest, by contrast, is no expert item in 4.0: only a status of Bad, checked in 3.)
    // A flagged frame is excused only if it is exactly that: its one NVMe/TCP PDU is a
    // CapsuleResp with a good header digest (checked before the CQE is decoded), the
    // dissector was inside nvme.cqe.dword0.get_features.arb, its message is that assertion
    // and nothing else is flagged in it, and the command it answers (nvme.cmd_pkt) is a Get
    // Features (0Ah) for FID 01h on the same connection.
    const flagged = flaggedOut.stdout.split('\n').filter(Boolean).map(Number)
    const excused: number[] = []
    const unexplained: string[] = []
    for (const n of flagged) {
      const fr = byNum.get(n)!
      const sev = values(fr.layers, '_ws.expert.severity').map(Number)
      const msgs = values(fr.layers, '_ws.expert.message')
      const bad = msgs.filter((_, i) => sev[i]! >= PI_WARN)
      const cmd = byNum.get(num(one(fr.nvme, 'nvme.cmd_pkt')))
      const isArbBug =
        bad.length === 1 &&
        TSHARK_4_0_ARBITRATION_BUG.test(bad[0]!) &&
        one(fr.layers, '_ws.malformed.dissector_bug') !== undefined &&
        fr.pdus.length === 1 &&
        fr.pdus[0]!.type === T.CapsuleResp &&
        (fr.pdus[0]!.hd === undefined || fr.pdus[0]!.hd === GOOD) &&
        one(fr.nvme, 'nvme.cqe.dword0.get_features.arb') !== undefined &&
        cmd !== undefined &&
        cmd.stream === fr.stream &&
        opcodeAt(cmd.n) === '0x0a' &&
        (num(one(cmd.nvme, 'nvme.cmd.get_features.dword10')) & 0xff) === 0x01
      if (isArbBug) excused.push(n)
      else unexplained.push(`frame ${n}: ${msgs.join('; ') || 'malformed'}`)
    }
    expect(unexplained, `tshark flagged frames of ${pcap} (KEEP_PCAP=1 keeps it)`).toEqual([])
    // tshark 4.0 (Debian 12's) flags each of them; a later tshark that no longer does is fine
    if (/^TShark \(Wireshark\) 4\.0\./.test(tsharkVersion)) expect(excused.length, 'one Get Features Arbitration CQE per host').toBe(hosts.length)
    else expect([0, hosts.length]).toContain(excused.length)

    // 2. What was captured: 4 hosts x (admin + I/O) connections
    const streams = [...new Set(pdus.map((p) => p.stream))].sort((a, b) => a - b)
    const summary: Record<string, number> = {}
    for (const [name, t] of Object.entries(T)) summary[name] = count(t)
    console.log(`${tsharkVersion}\nPDUs by type: ${JSON.stringify(summary)}; frames ${frames.length}; connections ${streams.length}; excused (tshark 4.0 Get Features Arbitration CQE bug): frames ${excused.join(', ')}`)
    expect(streams.length).toBe(2 * hosts.length)
    expect(count(T.H2CTermReq) + count(T.C2HTermReq), 'no TermReq').toBe(0)

    // per connection: the digests ICReq asked and ICResp granted, and Connect's CATTR.DFC
    const conn = new Map<number, { hd: boolean; dd: boolean; dfc: boolean; qid: number }>()
    for (const s of streams) {
      const req = pdus.filter((p) => p.stream === s && p.type === T.ICReq)
      const resp = pdus.filter((p) => p.stream === s && p.type === T.ICResp)
      expect([req.length, resp.length], `stream ${s}: one ICReq, one ICResp`).toEqual([1, 1])
      const asked = num(one(req[0]!.layer, 'nvme-tcp.icreq.digest'))
      const granted = num(one(resp[0]!.layer, 'nvme-tcp.icresp.digest'))
      expect(granted, `stream ${s}: ICResp grants the digests ICReq asked for`).toBe(asked)
      const connect = frames.find((x) => x.stream === s && one(x.layers, 'nvme.fabrics.cmd.fctype') === '0x01')!
      expect(connect, `stream ${s}: a Connect`).toBeDefined()
      conn.set(s, { hd: (granted & 1) !== 0, dd: (granted & 2) !== 0, dfc: num(one(connect.layers, 'nvme.fabrics.cmd.connect.cattr.dfc')) !== 0, qid: num(one(connect.layers, 'nvme.fabrics.cmd.connect.qid')) })
    }
    const want = hosts.flatMap((o) => [0, 1].map((qid) => `hd=${o.hdgst} dd=${o.ddgst} dfc=${o.disableSqFlowControl ?? false} qid=${qid}`)).sort()
    expect([...conn.values()].map((c) => `hd=${c.hd} dd=${c.dd} dfc=${c.dfc} qid=${c.qid}`).sort()).toEqual(want)

    // 3. Digests: every PDU after ICResp carries HDGST where granted, and tshark found it
    // good; every PDU with data carries DDGST where granted, good; never where not granted
    let goodH = 0
    let goodD = 0
    for (const p of pdus) {
      if (p.type === T.ICReq || p.type === T.ICResp) {
        expect(p.flags, `frame ${p.frame}: IC PDUs have no flags`).toBe(0)
        continue
      }
      const c = conn.get(p.stream)!
      const hasData = p.type === T.H2CData || p.type === T.C2HData || (p.type === T.CapsuleCmd && p.pdo > 0 && p.plen > p.pdo)
      expect((p.flags & F.HDGST) !== 0, `frame ${p.frame} (type ${p.type}): HDGST flag`).toBe(c.hd)
      expect((p.flags & F.DDGST) !== 0, `frame ${p.frame} (type ${p.type}): DDGST flag`).toBe(c.dd && hasData)
      if (c.hd) {
        expect(p.hd, `frame ${p.frame} (type ${p.type}): header digest`).toBe(GOOD)
        goodH++
      }
      if (c.dd && hasData) {
        expect(p.dd, `frame ${p.frame} (type ${p.type}): data digest`).toBe(GOOD)
        goodD++
      }
    }
    expect(goodH).toBeGreaterThan(50)
    expect(goodD).toBeGreaterThan(20)

    // 4. Admin commands (queue 0) the run meant to send, as tshark decoded them
    const adminOps = new Set<string>()
    const fabrics = new Set<string>()
    for (const x of frames) {
      for (const p of x.pdus) if (p.type === T.CapsuleCmd && conn.get(p.stream)!.qid === 0) {
        const op = opcodeAt(x.n)
        if (op !== undefined) adminOps.add(op === '0x09' || op === '0x0a' ? `${op}/fid ${num(one(x.nvme, op === '0x09' ? 'nvme.cmd.set_features.dword10' : 'nvme.cmd.get_features.dword10')) & 0xff}` : op)
        for (const t of values(x.layers, 'nvme.fabrics.cmd.fctype')) fabrics.add(t)
      }
    }
    // Connect 01h, Property Get 04h, Property Set 00h
    expect([...fabrics].sort()).toEqual(['0x00', '0x01', '0x04'])
    // Get Log Page 02h, Identify 06h, Set Features NQ 09h/07h, Get Features Arbitration 0Ah/01h, Keep Alive 18h
    for (const op of ['0x02', '0x06', '0x09/fid 7', '0x0a/fid 1', '0x18']) expect(adminOps, `admin opcode ${op}`).toContain(op)
    // every CQE tshark decoded says success
    const statuses = frames.flatMap((x) => values(x.layers, 'nvme.cqe.status').concat(values(x.layers, 'nvme.fabrics.cqe.sts')))
    expect(statuses.length).toBeGreaterThan(40)
    expect(statuses.filter((s) => Number(s) !== 0)).toEqual([])

    // 5. In-capsule writes: CapsuleCmd (Write, 01h) with data in the capsule, 512 B and 4 KiB
    const inCapsule = pdus.filter((p) => p.type === T.CapsuleCmd && p.pdo > 0 && opcodeAt(p.frame) === '0x01').map((p) => p.plen - p.pdo - (conn.get(p.stream)!.dd ? 4 : 0))
    expect(inCapsule.sort((a, b) => a - b)).toEqual([...Array(hosts.length).fill(512), ...Array(hosts.length).fill(4096)])

    // 6. R2T writes: a 64 KiB Write with no data in the capsule, R2T for 64 KiB, H2CData (LAST) of 64 KiB
    expect(pdus.filter((p) => p.type === T.CapsuleCmd && opcodeAt(p.frame) === '0x01' && p.plen === p.hlen + (conn.get(p.stream)!.hd ? 4 : 0)).length).toBe(hosts.length)
    const r2t = pdus.filter((p) => p.type === T.R2T)
    expect(r2t.map((p) => [num(one(p.layer, 'nvme-tcp.r2t.offset')), num(one(p.layer, 'nvme-tcp.r2t.length'))])).toEqual(Array(hosts.length).fill([0, 65536]))
    const h2c = pdus.filter((p) => p.type === T.H2CData)
    expect(h2c.map((p) => [num(one(p.layer, 'nvme-tcp.data.offset')), num(one(p.layer, 'nvme-tcp.data.length')), p.flags & (F.LAST | F.SUCCESS)])).toEqual(Array(hosts.length).fill([0, 65536, F.LAST]))
    for (const p of h2c) {
      const r = r2t.find((x) => x.stream === p.stream)!
      expect(one(p.layer, 'nvme-tcp.ttag'), `frame ${p.frame}: H2CData echoes the R2T's TTAG`).toBe(one(r.layer, 'nvme-tcp.ttag'))
      expect(one(p.layer, 'nvme-tcp.cmd.cid')).toBe(one(r.layer, 'nvme-tcp.cmd.cid'))
    }

    // 7. C2HData: SUCCESS exactly on the connections whose Connect set CATTR.DFC (SQ flow
    // control disabled), and then no CapsuleResp for that command; without SUCCESS elsewhere,
    // each followed by a CapsuleResp
    const c2h = pdus.filter((p) => p.type === T.C2HData)
    const cqeFor = new Set(frames.flatMap((x) => x.nvme.filter((l) => one(l, 'nvme.cqe.sqhd') !== undefined || one(l, 'nvme.cqe.dword0.get_features.arb') !== undefined).map((l) => `${x.stream}/${one(l, 'nvme.cmd_pkt')}`)))
    for (const p of c2h) {
      const c = conn.get(p.stream)!
      expect(p.flags & (F.LAST | F.SUCCESS), `frame ${p.frame}: C2HData LAST${c.dfc ? ' + SUCCESS (DFC)' : ' without SUCCESS'}`).toBe(c.dfc ? F.LAST | F.SUCCESS : F.LAST)
      const cmd = one(p.layer, 'nvme-tcp.cmd_pkt')
      expect(cmd, `frame ${p.frame}: tshark matched the C2HData to its command`).toBeDefined()
      expect(cqeFor.has(`${p.stream}/${cmd}`), `frame ${p.frame}: a CapsuleResp for the command in frame ${cmd}`).toBe(!c.dfc)
    }
    // Read (02h) on an I/O queue (02h on the admin queue is Get Log Page)
    const reads = (dfc: boolean, dd: boolean) => c2h.filter((p) => conn.get(p.stream)!.qid === 1 && conn.get(p.stream)!.dfc === dfc && conn.get(p.stream)!.dd === dd && opcodeAt(num(one(p.layer, 'nvme-tcp.cmd_pkt'))) === '0x02').length
    expect(reads(false, true), 'reads without SUCCESS, with data digests').toBe(3)
    expect(reads(true, true), 'reads with SUCCESS, with data digests').toBe(3)
    expect(reads(false, false)).toBe(3)
    expect(reads(true, false)).toBe(3)
    expect(count(T.CapsuleResp)).toBeGreaterThan(40)
  })
})
