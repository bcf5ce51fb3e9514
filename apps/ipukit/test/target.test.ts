// `ipukit target`, run as the real CLI in child processes: a file namespace with metadata and
// PI that perf writes to and reads back; SIGTERM and SIGINT stop it with exit code 0 and the
// file holds what was written (data, and the PI the controller generated); an SPDK JSON
// configuration; flags that are wrong (exit 2, one line, no stack), a port in use (1), a file
// that cannot be created (2) or grown (4); and startEmbeddedTarget, which leaves no process.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEmbeddedTarget } from '../src/index.js'
import { BIN, ensureBuilt, expectUsageShape, runCli, startCliTarget } from './support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'ipukit-target-test-'))
beforeAll(() => ensureBuilt(), 180_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('ipukit target', () => {
  it('serves a file namespace with metadata and Type 1 PI; perf writes and reads it; SIGTERM: exit 0, the file flushed', async () => {
    const file = join(dir, 'pi.img')
    const blocks = 2048
    const t = await startCliTarget(['--listen', '127.0.0.1:0', '--file', file, '--size', String(blocks * 4096), '--md-size', '8', '--pi', 'type1', '--nqn', 'nqn.2026-12.io.ipukit:pi'])
    expect(t.listening).toMatchObject({ level: 'info', address: '127.0.0.1', nqn: 'nqn.2026-12.io.ipukit:pi', namespace: { blocks, blockSize: 4096, mdSize: 8, pi: 'type1', piFormat: 16, file } })
    expect(t.port).toBeGreaterThan(0)
    // created at its full size at once, in the extended-LBA layout
    expect(statSync(file).size).toBe(blocks * (4096 + 8))
    const write = await runCli(['perf', '-r', t.url, '-w', 'write', '-t', '0.5', '-q', '8', '--json', '-'])
    expect(write.code, write.stderr).toBe(0)
    const w = JSON.parse(write.stdout)
    expect(w.write.ios).toBeGreaterThan(0)
    expect(w.failed).toBe(0)
    expect(w.namespace).toMatchObject({ blockSize: 4096, mdSize: 8, pi: { type: 1, format: 16 } })
    expect(w.options.metadata).toBe('PRACT=1,PRCHK=GUARD|REFTAG')
    const read = await runCli(['perf', '-r', t.url, '-w', 'randread', '-t', '0.5', '--json', '-'])
    expect(read.code, read.stderr).toBe(0)
    const r = JSON.parse(read.stdout)
    // every read checked the guard and the ref tag of what was written (or the all-ones escape of what was not)
    expect(r.read.ios).toBeGreaterThan(0)
    expect(r.failed).toBe(0)

    t.child.kill('SIGTERM')
    const end = await t.exited
    expect(end).toEqual({ code: 0, signal: null })
    const msgs = t.logs.map((e) => e.msg)
    expect(msgs[0]).toBe('listening')
    expect(msgs.filter((m) => m === 'controller created').length).toBe(2)
    expect(msgs.filter((m) => m === 'controller destroyed').length).toBe(2)
    expect(msgs.slice(-2)).toEqual(['stopping', 'stopped'])
    expect(t.logs.find((e) => e.msg === 'controller created')).toMatchObject({ cntlid: 1, subnqn: 'nqn.2026-12.io.ipukit:pi', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    expect(t.logs.at(-1)).toMatchObject({ reason: 'SIGTERM', controllers: 2 })
    expect(t.stderr()).toBe('')

    // sequential writes from LBA 0 (wrapping around): each block holds the pattern of one of perf's 8 slots (a5h ^ slot), and the PI the controller generated
    const b = readFileSync(file)
    expect(b.length).toBe(blocks * 4104)
    for (const lba of [0, 1]) {
      const at = lba * 4104
      const x0 = b[at]!
      expect(x0 ^ 0xa5).toBeLessThan(8)
      expect(b.subarray(at, at + 4096).every((x) => x === x0)).toBe(true)
      const pi = b.subarray(at + 4096, at + 4104)
      expect(pi.readUInt16BE(0)).not.toBe(0xffff) // a guard, not the deallocated escape
      expect(pi.readUInt16BE(2)).toBe(0) // app tag
      expect(pi.readUInt32BE(4)).toBe(lba) // Type 1: ref tag = the LBA
    }
  })

  it('SIGINT stops it too (exit 0); a RAM namespace; the allowlist is in the listening line', async () => {
    const t = await startCliTarget(['--listen', '127.0.0.1:0', '--size', '4M', '--block-size', '512', '--allow-host', 'nqn.2026-12.io.ipukit:h1', '--allow-host', 'nqn.2026-12.io.ipukit:h2'])
    expect(t.listening).toMatchObject({ nqn: 'nqn.2026-12.io.ipukit:target', namespace: { file: null, blocks: 8192, blockSize: 512, mdSize: 0, pi: 'none' }, allowHosts: ['nqn.2026-12.io.ipukit:h1', 'nqn.2026-12.io.ipukit:h2'] })
    t.child.kill('SIGINT')
    expect(await t.exited).toEqual({ code: 0, signal: null })
    expect(t.logs.at(-1)).toMatchObject({ msg: 'stopped', reason: 'SIGINT' })
  })

  it('--config: an SPDK JSON configuration (transport, malloc bdev, subsystem, namespace, listener on port 0)', async () => {
    const config = join(dir, 'spdk.json')
    const nqn = 'nqn.2016-06.io.spdk:cnode1'
    writeFileSync(
      config,
      JSON.stringify({
        subsystems: [
          { subsystem: 'bdev', config: [{ method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 8192, block_size: 512 } }, { method: 'bdev_wait_for_examine' }] },
          {
            subsystem: 'nvmf',
            config: [
              { method: 'nvmf_create_transport', params: { trtype: 'TCP', max_queue_depth: 64, in_capsule_data_size: 4096 } },
              { method: 'nvmf_create_subsystem', params: { nqn, allow_any_host: true, serial_number: 'SPDK00000000000001' } },
              { method: 'nvmf_subsystem_add_ns', params: { nqn, namespace: { bdev_name: 'Malloc0', nsid: 1 } } },
              { method: 'nvmf_subsystem_add_listener', params: { nqn, listen_address: { trtype: 'TCP', adrfam: 'IPv4', traddr: '127.0.0.1', trsvcid: '0' } } },
            ],
          },
        ],
      }),
    )
    const t = await startCliTarget(['--config', config])
    expect(t.listening).toMatchObject({ nqn, address: '127.0.0.1', subsystems: [{ nqn, namespaces: [{ nsid: 1, bdev: 'Malloc0' }], allowAnyHost: true }] })
    // SPDK's transport ID syntax for -r
    const r = await runCli(['perf', '-r', `trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:${t.port} subnqn:${nqn}`, '-w', 'randrw', '-o', '512', '-t', '0.3', '--json', '-'])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.namespace).toMatchObject({ blocks: 8192, blockSize: 512, mdSize: 0 })
    expect(j.read.ios).toBeGreaterThan(0)
    expect(j.write.ios).toBeGreaterThan(0)
    t.child.kill('SIGTERM')
    expect((await t.exited).code).toBe(0)

    // a configuration that is wrong: exit 2 naming the method and the parameter
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, readFileSync(config, 'utf8').replace('"bdev_name":"Malloc0"', '"bdev_name":"Malloc9"'))
    const e = await runCli(['target', '--config', bad])
    expect(expectUsageShape(e)).toMatch(/^ipukit: --config .*bad\.json: subsystems\[1\]\.config\[2\] \(nvmf_subsystem_add_ns\): no bdev 'Malloc9'$/)
  })

  it('wrong flags: exit 2, one line naming the flag, no stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['--size', '12Q'], /--size <bytes>.*'12Q' is invalid/],
      [['--block-size', '1024'], /--block-size <bytes>.*expected one of 512, 4096/],
      [['--pi', 'type4'], /--pi <type>.*expected one of none, type1/],
      [['--pi', 'type1', '--md-size', '4'], /--pi type1 with --pi-format 16 needs --md-size of at least 8/],
      [['--pi', 'type1', '--pi-format', '64', '--block-size', '512'], /--pi-format 64 needs --block-size 4096/],
      [['--pi-format', '32'], /--pi-format needs --pi type1, type2 or type3/],
      [['--size', '1000'], /--size 1000 is not a whole number of 4096-byte blocks/],
      [['--listen', 'localhost:4420'], /--listen localhost:4420: the host must be an IP address/],
      [['--listen', '127.0.0.1:99999'], /--listen <host:port>.*the port must be from 0 to 65535/],
      [['--nqn', 'not-an-nqn'], /--nqn 'not-an-nqn' is not of the form/],
      [['--allow-host', 'nope'], /--allow-host 'nope' is not of the form/],
      [['--config', '/nonexistent/x.json'], /--config \/nonexistent\/x\.json: cannot read it: ENOENT/],
      [['--config', 'x.json', '--file', 'y', '--pi', 'type1'], /--config cannot be combined with --file, --pi/],
      [['--file', join(dir, 'no', 'such', 'dir', 'ns.img'), '--size', '1M'], /--file .*ns\.img: cannot open or create it: no such file or directory \(ENOENT\)/],
      [['--frobnicate'], /unknown option '--frobnicate'/],
    ]
    const runs = await Promise.all(cases.map(([a]) => runCli(['target', ...a])))
    for (const [i, r] of runs.entries()) expect(expectUsageShape(r), cases[i]![0].join(' ')).toMatch(cases[i]![1])
  })

  it('a port in use: exit 1 with a clear message; no space for the file: exit 4', async () => {
    const s = net.createServer()
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
    const port = (s.address() as net.AddressInfo).port
    const r = await runCli(['target', '--listen', `127.0.0.1:${port}`, '--size', '1M'])
    s.close()
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toBe(`ipukit: cannot listen on 127.0.0.1:${port}: the address is already in use (another target? --listen HOST:0 picks a free port)`)
    // a file size limit (RLIMIT_FSIZE) makes growing the file fail as a full disk would
    const big = join(dir, 'big.img')
    const q = spawnSync('bash', ['-c', `ulimit -f 1024; exec "${process.execPath}" "${BIN}" target --listen 127.0.0.1:0 --file "${big}" --size 16M`], { encoding: 'utf8', timeout: 20_000 })
    expect(q.status, q.stderr).toBe(4)
    expect(q.stderr.trim()).toMatch(/^ipukit: --file .*big\.img: no space to create or grow it: file too large \(EFBIG\)$/)
  })
})

describe('startEmbeddedTarget', () => {
  it('starts `ipukit target` in a child on a free port with a temporary file, and stop() leaves no process and no file', async () => {
    const entries: Record<string, unknown>[] = []
    const t = await startEmbeddedTarget({ size: 8 << 20, blockSize: 4096, mdSize: 16, pi: 'type2', piFormat: 64, nqn: 'nqn.2026-12.io.ipukit:embedded', onLog: (e) => entries.push(e) })
    expect(t).toMatchObject({ host: '127.0.0.1', nqn: 'nqn.2026-12.io.ipukit:embedded' })
    expect(t.port).toBeGreaterThan(0)
    expect(alive(t.pid)).toBe(true)
    expect(statSync(t.file!).size).toBe(2048 * (4096 + 16))
    expect(t.listening).toMatchObject({ namespace: { pi: 'type2', piFormat: 64, mdSize: 16 } })
    const r = await runCli(['perf', '-r', t.url, '-w', 'randwrite', '-t', '0.3', '--json', '-'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ failed: 0, namespace: { pi: { type: 2, format: 64 } } })
    await t.stop()
    await t.stop() // idempotent
    expect(alive(t.pid)).toBe(false)
    expect(() => statSync(t.file!)).toThrow()
    expect(entries.map((e) => e.msg)).toEqual(['listening', 'controller created', 'controller destroyed', 'stopping', 'stopped'])
  })

  it('a target that cannot start: the error carries its message and exit code; keepFile and a given file stay', async () => {
    await expect(startEmbeddedTarget({ size: 1000, blockSize: 4096 })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/exited \(code 2\) before it listened: --size 1000 is not a whole number of 4096-byte blocks/) })
    const file = join(dir, 'kept.img')
    const t = await startEmbeddedTarget({ file, size: 1 << 20, ram: false })
    expect(t.file).toBe(file)
    await t.stop()
    expect(statSync(file).size).toBe(1 << 20)
  })
})
