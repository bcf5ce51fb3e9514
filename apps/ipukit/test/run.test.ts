// `ipukit run`, the real CLI in a child process: the acceptance run (512-byte blocks,
// AES-XTS-256, Type 1 PI with a 16b guard, a file's bytes) checked independently of ipukit
// from the target's file: every block decrypted with node:crypto and its PI recomputed
// bitwise; the report's one pass over the data; every bad flag (exit 2, one line, no
// stack); a target that is not there or refuses this host, or is not formatted as asked
// (exit 3); a full disk (exit 4); Ctrl-C (exit 130, nothing left running, what was written
// is in the file); and the heap growth the report gives.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createDecipheriv, randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatedData, type RunReport } from '../src/index.js'
import { APP, BIN, type CliTarget, ensureBuilt, expectUsageShape, runCli, startCliTarget } from './support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'ipukit-run-test-'))
const targets: CliTarget[] = []
beforeAll(() => {
  ensureBuilt()
}, 240_000)
afterAll(async () => {
  for (const t of targets) {
    t.child.kill('SIGTERM')
    await t.exited
  }
  rmSync(dir, { recursive: true, force: true })
})

/** CRC16 T10-DIF (poly 0x8BB7, init 0, not reflected), bit by bit: independent of the kernels. */
function crc16t10(data: Uint8Array): number {
  let crc = 0
  for (const byte of data) {
    crc ^= byte << 8
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8bb7) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The XTS tweak of a block: its LBA as a 16-byte little-endian number (as SPDK's crypto bdev). */
function tweak(lba: number): Buffer {
  const iv = Buffer.alloc(16)
  iv.writeBigUInt64LE(BigInt(lba), 0)
  return iv
}

function decryptBlock(key: Buffer, lba: number, block: Buffer): Buffer {
  const d = createDecipheriv('aes-256-xts', key, tweak(lba))
  return Buffer.concat([d.update(block), d.final()])
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as RunReport
const noStack = (s: string) => expect(s).not.toMatch(/^\s+at /m)

describe('ipukit run', () => {
  it('writes a file through AES-XTS-256 and Type 1 PI (512-byte blocks, 16b guard): the target file decrypts to it and every PI is right', async () => {
    // 3 MiB and a bit: the last block is the file's tail padded with zeros on the device
    const data = randomBytes(3 * 1024 * 1024 + 1000)
    const input = join(dir, 'input.bin')
    writeFileSync(input, data)
    const keyFile = join(dir, 'accept.key')
    const targetFile = join(dir, 'accept.img')
    const json = join(dir, 'accept.json')
    const r = await runCli(['run', '--input', input, '--block-size', '512', '--cipher', 'aes-xts-256', '--pi', 'type1', '--pi-format', '16', '--bs', '64K', '--qd', '16', '--key-file', keyFile, '--target-file', targetFile, '--json', json], { timeoutMs: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^verified: 3 MiB|verified: /m)
    const rep = readJson(json)
    expect(rep.verified).toBe(true)
    expect(rep.bytesWritten).toBe(data.length)
    expect(rep.bytesRead).toBe(data.length)
    expect(rep.config).toMatchObject({ blockSize: 512, metadataSize: 8, cipher: 'aes-xts-256', pi: 'type1', piFormat: 16, keyFile: keyFile, targetFile, input })
    // the key file is hex key1‖key2, private; the report names it and never holds the key
    const keyHex = readFileSync(keyFile, 'utf8').trim()
    expect(keyHex).toMatch(/^[0-9a-f]{128}$/)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const text = readFileSync(json, 'utf8')
    expect(text).not.toContain(keyHex.slice(0, 64))
    expect(text).not.toContain(keyHex.slice(64))
    for (const k of ['write', 'read'] as const) {
      expect(rep[k]!.bytesPerSec).toBeGreaterThan(0)
      expect(rep[k]!.iops).toBeGreaterThan(0)
      expect(rep[k]!.latencyUs.p99).toBeGreaterThanOrEqual(rep[k]!.latencyUs.p50)
    }

    // the remote file, independently: block i at i x 520, 512 bytes of ciphertext then 8 of PI
    const key = Buffer.from(keyHex, 'hex')
    const file = readFileSync(targetFile)
    const blocks = Math.ceil(data.length / 512)
    expect(file.length).toBeGreaterThanOrEqual(blocks * 520)
    const padded = Buffer.alloc(blocks * 512)
    data.copy(padded)
    let badData = 0
    let badPi = 0
    for (let lba = 0; lba < blocks; lba++) {
      const at = lba * 520
      const ct = file.subarray(at, at + 512)
      if (!decryptBlock(key, lba, ct).equals(padded.subarray(lba * 512, lba * 512 + 512))) badData++
      const pi = file.subarray(at + 512, at + 520)
      // guard (CRC16 of the block as stored: the ciphertext), app tag 0, ref tag = the LBA's low 32 bits
      if (pi.readUInt16BE(0) !== crc16t10(ct) || pi.readUInt16BE(2) !== 0 || pi.readUInt32BE(4) !== lba >>> 0) badPi++
    }
    expect({ badData, badPi }).toEqual({ badData: 0, badPi: 0 })
    // and the data really is encrypted: the ciphertext is not the data
    expect(file.subarray(0, 512).equals(padded.subarray(0, 512))).toBe(false)

    // one pass on the IPU: the accel read the host's data once and wrote the protected blocks once
    const w = rep.memory.write
    const host = Object.values(w.domains).filter((d) => d.type === 'host')
    const ipu = Object.values(w.domains).filter((d) => d.type !== 'host')
    expect(host.reduce((s, d) => s + d.read, 0)).toBe(blocks * 512)
    expect(host.reduce((s, d) => s + d.written, 0)).toBe(0)
    expect(ipu.reduce((s, d) => s + d.written, 0)).toBe(blocks * 520)
    expect(rep.memory.writePasses.hostRead).toBe(1)
    expect(rep.memory.writePasses.ipuWritten).toBeCloseTo(520 / 512, 10)
    // and the PCIe model agrees: the device read the data from host DRAM once (and a little more: SQEs, PRP lists)
    const dram = rep.memory.write.regions.host!
    expect(dram.read).toBeGreaterThanOrEqual(blocks * 512)
    expect(dram.read).toBeLessThan(blocks * 512 * 1.05)
    // the read phase the other way: the protected blocks read once, the host's memory written once
    const rd = rep.memory.read!
    expect(Object.values(rd.domains).filter((d) => d.type === 'host').reduce((s, d) => s + d.written, 0)).toBe(blocks * 512)
    expect(Object.values(rd.domains).filter((d) => d.type !== 'host').reduce((s, d) => s + d.read, 0)).toBe(blocks * 520)
    // fused: encrypt and DIF generate ran as one operation per I/O
    expect(rep.accel.sequences.fused).toBeGreaterThan(0)
    expect(rep.accel.opcodes.encrypt).toBeDefined()
    expect(rep.accel.opcodes.dif_generate_copy).toBeDefined()
    // the heap growth is reported for both threads
    expect(Number.isFinite(rep.heap.growthBytes)).toBe(true)
    expect(rep.heap.ios).toBe(rep.write.ios + rep.read!.ios)
    expect(Number.isFinite(rep.heap.hostThread!.growthBytes)).toBe(true)
    // the summary a user reads
    expect(r.stdout).toMatch(/passes over the data on the IPU, write: the host's data read 1\.0000x, the encrypted, protected blocks written 1\.0156x/)
    expect(r.stdout).toMatch(/^\s+write\s+[\d.]+\s+[\d,]+/m)
    expect(r.stdout).toMatch(/dif_generate_copy/)
  })

  it('the short default flow (generated data, 4 KiB blocks, AES-XTS-128, Type 3 PI with a 64b guard, on the IPU thread): verified, the key reused', async () => {
    const keyFile = join(dir, 'short.key')
    const targetFile = join(dir, 'short.img')
    const run = (extra: string[]) => runCli(['run', '--size', '8M', '--block-size', '4096', '--cipher', 'aes-xts-128', '--pi', 'type3', '--pi-format', '64', '--key-file', keyFile, '--target-file', targetFile, '--json', '-', ...extra], { timeoutMs: 120_000 })
    const a = await run([])
    expect(a.code).toBe(0)
    const ra = JSON.parse(a.stdout) as RunReport
    expect(ra.verified).toBe(true)
    expect(ra.config).toMatchObject({ metadataSize: 16, blockSize: 4096, piFormat: 64 })
    expect(a.stderr).toMatch(/verified: 8 MiB/) // the summary goes to stderr with --json -
    const key1 = readFileSync(keyFile, 'utf8')
    expect(key1.trim()).toMatch(/^[0-9a-f]{64}$/)
    const b = await run(['--no-host-thread', '--workers', '0', '--seed', '7'])
    expect(b.code).toBe(0)
    const rb = JSON.parse(b.stdout) as RunReport
    expect(rb.verified).toBe(true)
    expect(rb.config).toMatchObject({ hostThread: false, workers: 0 })
    expect(rb.heap.hostThread).toBeNull()
    expect(readFileSync(keyFile, 'utf8')).toBe(key1)
    // the file holds generated data of seed 7: block 5 decrypts to it (AES-XTS-128: a 32-byte key)
    const file = readFileSync(targetFile)
    const key = Buffer.from(key1.trim(), 'hex')
    const d = createDecipheriv('aes-128-xts', key, tweak(5))
    const plain = Buffer.concat([d.update(file.subarray(5 * 4112, 5 * 4112 + 4096)), d.final()])
    expect(plain.equals(generatedData(7, 5 * 4096, 4096))).toBe(true)
  })

  it('bad flags: exit 2, one line, no stack', async () => {
    const cases: [string[], RegExp][] = [
      [['--qd', '0'], /--qd/],
      [['--cipher', 'rot13'], /--cipher/],
      [['--pi', 'type4'], /--pi/],
      [['--block-size', '1024'], /--block-size/],
      [['--size', '12Q'], /--size/],
      [['--size', '1000'], /multiple of --block-size 512/],
      [['--bs', '256K'], /128 KiB/],
      [['--bs', '1000'], /multiple of --block-size/],
      [['--pi-format', '32'], /needs --block-size 4096/],
      [['--input', join(dir, 'nope.bin')], /no such file/],
      [['--input', join(dir, 'x.bin'), '--size', '1M'], /--input and --size/],
      [['--target', 'http://x/y'], /--target/],
      [['--target', 'nvme+tcp://127.0.0.1:1/n', '--target-file', join(dir, 't.img')], /--target-file/],
      [['--key-file', join(dir, 'bad.key')], /expected 128 hex digits/],
      [['--json', join(dir, 'no', 'such', 'dir', 'r.json')], /--json/],
      [['--frobnicate'], /unknown option/],
    ]
    writeFileSync(join(dir, 'bad.key'), 'not hex\n')
    writeFileSync(join(dir, 'x.bin'), 'x')
    const results = await Promise.all(cases.map(([args]) => runCli(['run', ...args], { timeoutMs: 60_000 })))
    results.forEach((r, i) => {
      const line = expectUsageShape(r)
      expect(line, cases[i]![0].join(' ')).toMatch(cases[i]![1])
    })
  })

  it('a port nobody listens on, a target that refuses this host, a namespace not formatted as asked: exit 3', async () => {
    const free = await new Promise<number>((res) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => res(p))
      })
    })
    const guarded = await startCliTarget(['--listen', '127.0.0.1:0', '--size', '4M', '--block-size', '512', '--md-size', '8', '--pi', 'type1', '--allow-host', 'nqn.2026-12.io.ipukit:someone-else', '--nqn', 'nqn.2026-12.io.ipukit:guarded'])
    const plain = await startCliTarget(['--listen', '127.0.0.1:0', '--size', '4M', '--block-size', '512', '--nqn', 'nqn.2026-12.io.ipukit:plain'])
    targets.push(guarded, plain)
    const key = join(dir, 'k3.key')
    const [a, b, c, d] = await Promise.all([
      runCli(['run', '--size', '1M', '--key-file', key, '--target', `nvme+tcp://127.0.0.1:${free}/nqn.2026-12.io.ipukit:x`]),
      runCli(['run', '--size', '1M', '--key-file', key, '--target', guarded.url]),
      runCli(['run', '--size', '1M', '--key-file', key, '--target', plain.url]),
      runCli(['run', '--size', '8M', '--key-file', key, '--pi', 'none', '--target', plain.url]),
    ])
    for (const r of [a, b, c, d]) {
      expect(r.code, r.stderr).toBe(r === d ? 4 : 3)
      noStack(r.stderr)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
    expect(a.stderr).toMatch(/refused|ECONNREFUSED/i)
    expect(b.stderr).toMatch(/refused the connection.*not allowed/)
    expect(c.stderr).toMatch(/formatted with no PI; asked for type 1/)
    expect(d.stderr).toMatch(/holds 4194304 bytes; the data needs 8388608/)
  })

  it('a full disk under the target file, at the start and in the middle of the run: exit 4 and why, nothing left running', async () => {
    const mnt = join(dir, 'full')
    mkdirSync(mnt)
    // a 1 MiB tmpfs; without the privilege to mount, a file size limit (RLIMIT_FSIZE: EFBIG)
    // is the same full disk to the target (the file bdev maps ENOSPC, EDQUOT and EFBIG alike)
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status === 0
    const run = (args: string[]) =>
      mounted
        ? runCli(args, { timeoutMs: 60_000 })
        : new Promise<{ code: number | null; stderr: string; stdout: string }>((res) => {
            const c = spawn('bash', ['-c', `ulimit -f 1024; exec "${process.execPath}" "${BIN}" "$@"`, 'bash', ...args], { cwd: APP })
            let stderr = ''
            let stdout = ''
            c.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
            c.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
            c.on('close', (code) => res({ code, stderr, stdout }))
          })
    try {
      // at the start: the target grows its file to the namespace's 4 MiB (and PI) with deallocated blocks, and the disk fills
      const grow = join(mnt, 'grow.img')
      const a = await run(['run', '--size', '4M', '--key-file', join(dir, 'k4.key'), '--target-file', grow])
      expect(a.code, a.stderr).toBe(4)
      noStack(a.stderr)
      expect(a.stderr.trim().split('\n')).toHaveLength(1)
      expect(a.stderr).toMatch(/no space .*(ENOSPC|EFBIG)/)
      expect(a.stdout).toBe('')
      rmSync(grow, { force: true })
      // in the middle: a sparse file of the full size is there already, so the writes past the first MiB fail (Capacity Exceeded)
      const sparse = join(mnt, 'sparse.img')
      writeFileSync(sparse, '')
      spawnSync('truncate', ['-s', String(8192 * 520), sparse])
      expect(statSync(sparse).size).toBe(8192 * 520)
      const b = await run(['run', '--size', '4M', '--key-file', join(dir, 'k4.key'), '--target-file', sparse])
      expect(b.code, b.stderr).toBe(4)
      noStack(b.stderr)
      expect(b.stderr.trim().split('\n')).toHaveLength(1)
      expect(b.stderr).toMatch(/the write of LBA \d+ failed: the target is out of space/)
      expect(b.stdout).toMatch(/FAILED: the write of LBA \d+ failed/)
      expect(b.stdout).not.toMatch(/^verified/m)
      expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(mnt)
    } finally {
      if (mounted) spawnSync('umount', [mnt])
    }
  })

  it('Ctrl-C: the summary of what was done, exit 130, the target gone and its file holding what was written', async () => {
    const keyFile = join(dir, 'int.key')
    const targetFile = join(dir, 'int.img')
    const json = join(dir, 'int.json')
    const child = spawn(process.execPath, [BIN, 'run', '--size', '512M', '--key-file', keyFile, '--target-file', targetFile, '--json', json], { cwd: APP, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
    const closed = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('close', (code, signal) => r({ code, signal })))
    // the write phase is under way once LBA 0 holds data: the target grows its file with
    // deallocated blocks (zeros, all-ones PI) first, then the run writes from LBA 0 on
    const t0 = Date.now()
    const written = () => {
      try {
        const fd = openSync(targetFile, 'r')
        const b = Buffer.alloc(512)
        readSync(fd, b, 0, 512, 0)
        closeSync(fd)
        return b.some((x) => x !== 0)
      } catch {
        return false
      }
    }
    while (!written() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50))
    expect(written()).toBe(true)
    child.kill('SIGINT')
    const end = await closed
    expect(end.code, stderr).toBe(130)
    noStack(stderr)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toMatch(/interrupted \(SIGINT\)/)
    expect(stdout).toMatch(/INTERRUPTED/)
    const rep = readJson(json)
    expect(rep.interrupted).toBe(true)
    expect(rep.verified).toBe(false)
    expect(rep.bytesWritten).toBeGreaterThan(0)
    expect(rep.bytesWritten).toBeLessThan(512 * 1024 ** 2)
    // nothing left running: no process has the file on its command line, the port is closed
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(targetFile)
    const port = (rep.config as { remote: { port: number } }).remote.port
    const refused = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), res(false)))
      s.once('error', () => res(true))
    })
    expect(refused).toBe(true)
    // what was written is in the file (the target flushed before it went): the last written I/O decrypts to the data
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex')
    const file = readFileSync(targetFile)
    const lastBlock = rep.bytesWritten / 512 - 1
    const at = lastBlock * 520
    expect(decryptBlock(key, lastBlock, file.subarray(at, at + 512)).equals(generatedData(1, lastBlock * 512, 512))).toBe(true)
    expect(decryptBlock(key, 0, file.subarray(0, 512)).equals(generatedData(1, 0, 512))).toBe(true)
  })
})
