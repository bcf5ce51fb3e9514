// The nvme-tcp bdev: a remote namespace attached as <name>n1, at the bottom of a stack.
// crypto -> nvme-tcp: what reaches the target's RAM disk is OpenSSL's AES-XTS of the data
// (tweak = LBA), read back through the stack decrypted; the sequence ran into the PDU data
// buffer (one cipher pass, no copy); without a sequence the caller's buffers go to the socket
// as they are. Also flush, write zeroes, unmap, large I/O split at MDTS, and detach.
import { createCipheriv } from 'node:crypto'
import { Bdevs, createCryptoBdev, createDifBdev, createMallocBdev, NvmeStatus } from '@ipukit/bdev'
import { IoVecList } from '@ipukit/memory'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { attachNvmeController, detachNvmeController, type NvmeTcpBdev } from '../src/index.js'
import { random, SUBNQN, type TargetFixture, targetFixture } from './helpers.js'

let f: TargetFixture
let ini: Bdevs
beforeAll(async () => {
  f = await targetFixture({ blocks: 16384, blockSize: 512 })
  ini = new Bdevs(f.accel, { ioCount: 256 })
})
afterAll(async () => {
  await ini.close()
  await f.close()
})

const ram = () => (f.bdevs.get('ram0') as unknown as { address: number }).address

function xts(key: Uint8Array, data: Uint8Array, bs: number, lba: number): Uint8Array {
  const out = new Uint8Array(data.length)
  for (let b = 0; b < data.length / bs; b++) {
    const iv = Buffer.alloc(16)
    iv.writeBigUInt64LE(BigInt(lba + b))
    const c = createCipheriv('aes-256-xts', key, iv)
    out.set(Buffer.concat([c.update(data.subarray(b * bs, (b + 1) * bs)), c.final()]), b * bs)
  }
  return out
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

describe('nvme-tcp bdev', () => {
  it('attaches Nvme0n1 with the namespace geometry; reads and writes straight from the caller buffers', async () => {
    const names = await attachNvmeController(ini, { name: 'Nvme0', traddr: '127.0.0.1', trsvcid: f.port, subnqn: SUBNQN, ddgst: true, hdgst: true })
    expect(names).toEqual(['Nvme0n1'])
    const b = ini.get('Nvme0n1') as NvmeTcpBdev
    expect({ blocks: b.blockCount, bs: b.blockSize, module: b.module }).toEqual({ blocks: 16384, bs: 512, module: 'nvme' })
    expect(b.maxIoBlocks).toBe(256) // MDTS 128 KiB
    const ch = ini.channel()
    const d = ini.open('Nvme0n1', { write: true })
    const at = f.pm.ipuAllocator.alloc(1 << 20)
    const data = random(300 * 512, 5)
    f.pm.bytes.set(data, at)
    const io = (fn: (cb: (arg: null, st: number) => void) => number) => new Promise<number>((r) => expect(fn((_, st) => r(st))).toBe(0))
    // 300 blocks: split in two at MDTS by the bdev layer
    expect(await io((cb) => d.writev(ch, new IoVecList(1).push(at, data.length), null, 100, 300, cb, null))).toBe(NvmeStatus.Success)
    expect(same(f.pm.bytes.subarray(ram() + 100 * 512, ram() + 400 * 512), data)).toBe(true)
    f.pm.bytes.fill(0, at + (1 << 19), at + (1 << 19) + data.length)
    expect(await io((cb) => d.readv(ch, new IoVecList(2).push(at + (1 << 19), 1000 * 0 + 512 * 10).push(at + (1 << 19) + 5120, data.length - 5120), null, 100, 300, cb, null))).toBe(NvmeStatus.Success)
    expect(same(f.pm.bytes.subarray(at + (1 << 19), at + (1 << 19) + data.length), data)).toBe(true)
    // write zeroes, unmap (DSM deallocate on the RAM disk reads zeros), flush
    expect(await io((cb) => d.writeZeroes(ch, 100, 8, cb, null))).toBe(NvmeStatus.Success)
    expect(f.pm.bytes.subarray(ram() + 100 * 512, ram() + 108 * 512).every((x) => x === 0)).toBe(true)
    expect(await io((cb) => d.unmap(ch, 200, 16, cb, null))).toBe(NvmeStatus.Success)
    expect(f.pm.bytes.subarray(ram() + 200 * 512, ram() + 216 * 512).every((x) => x === 0)).toBe(true)
    expect(await io((cb) => d.flush(ch, 0, 16384, cb, null))).toBe(NvmeStatus.Success)
    d.close()
    ch.close()
    await detachNvmeController(ini, 'Nvme0')
    expect(ini.get('Nvme0n1')).toBeUndefined()
    f.pm.ipuAllocator.free(at)
  })

  it('crypto over nvme-tcp: the target stores OpenSSL XTS of the data; the encrypt runs into the PDU data buffer (no copy)', async () => {
    await attachNvmeController(ini, { name: 'Nvme1', traddr: '127.0.0.1', trsvcid: f.port, subnqn: SUBNQN })
    const key = random(64, 9)
    f.accel.keys.create({ name: 'k', key: key.subarray(0, 32), key2: key.subarray(32) })
    createCryptoBdev(ini, { name: 'crypt', base: 'Nvme1n1', key: 'k' })
    const ch = ini.channel()
    const d = ini.open('crypt', { write: true })
    const at = f.pm.ipuAllocator.alloc(1 << 20)
    const data = random(64 * 512, 7)
    f.pm.bytes.set(data, at)
    const io = (fn: (cb: (arg: null, st: number) => void) => number) => new Promise<number>((r) => expect(fn((_, st) => r(st))).toBe(0))
    const before = f.accel.stats()
    expect(await io((cb) => d.writev(ch, new IoVecList(1).push(at, data.length), null, 64, 64, cb, null))).toBe(NvmeStatus.Success)
    const after = f.accel.stats()
    expect(same(f.pm.bytes.subarray(ram() + 64 * 512, ram() + 128 * 512), xts(key, data, 512, 64))).toBe(true)
    // the caller's plaintext is untouched
    expect(same(f.pm.bytes.subarray(at, at + data.length), data)).toBe(true)
    // one encrypt, its output written straight into the PDU data buffer: the initiator's copy
    // is elided. (The one copy that runs is the target's, on the same accel framework here:
    // its RAM disk taking the received data.)
    const ops = (s: typeof before, op: string) => Object.values(s.opcodes[op] ?? {}).reduce((n, m) => n + m.executed, 0)
    expect(ops(after, 'encrypt') - ops(before, 'encrypt')).toBe(1)
    expect(ops(after, 'copy') - ops(before, 'copy')).toBe(1)
    expect(after.sequences.elided - before.sequences.elided).toBe(1)
    f.pm.bytes.fill(0, at + (1 << 19), at + (1 << 19) + data.length)
    expect(await io((cb) => d.readv(ch, new IoVecList(1).push(at + (1 << 19), data.length), null, 64, 64, cb, null))).toBe(NvmeStatus.Success)
    expect(same(f.pm.bytes.subarray(at + (1 << 19), at + (1 << 19) + data.length), data)).toBe(true)
    d.close()
    ch.close()
    await ini.unregister('crypt')
    await detachNvmeController(ini, 'Nvme1')
    f.pm.ipuAllocator.free(at)
  })

  it('a namespace with PI: the bdev has its type, guard width and location from Identify, and a dif bdev over it protects end to end', async () => {
    // (the 32b and 64b guard formats need 4 KiB blocks)
    for (const [format, mdSize, bs] of [[16, 8, 512], [32, 16, 4096], [64, 16, 4096]] as const) {
      const nqn = `${SUBNQN}-pi${format}`
      createMallocBdev(f.bdevs, { name: `pi${format}`, blockCount: 256, blockSize: bs, mdSize, pi: { type: 1, format, location: 'last' } })
      const sub = f.target.createSubsystem({ nqn, allowAnyHost: true })
      sub.addNamespace({ bdev: `pi${format}` })
      sub.addListener(f.address)
      await attachNvmeController(ini, { name: `Pi${format}`, traddr: '127.0.0.1', trsvcid: f.port, subnqn: nqn })
      const b = ini.get(`Pi${format}n1`)!
      expect({ md: b.mdSize, pi: b.pi }).toEqual({ md: mdSize, pi: { type: 1, format, location: 'last' } })
      createDifBdev(ini, { name: `dif${format}`, base: `Pi${format}n1` })
      const ch = ini.channel()
      const d = ini.open(`dif${format}`, { write: true })
      const at = f.pm.ipuAllocator.alloc(16 * bs)
      const data = random(16 * bs, format)
      f.pm.bytes.set(data, at)
      const io = (fn: (cb: (arg: null, st: number) => void) => number) => new Promise<number>((r) => expect(fn((_, st) => r(st))).toBe(0))
      expect(await io((cb) => d.writev(ch, new IoVecList(1).push(at, data.length), null, 8, 16, cb, null))).toBe(NvmeStatus.Success)
      f.pm.bytes.fill(0, at, at + data.length)
      expect(await io((cb) => d.readv(ch, new IoVecList(1).push(at, data.length), null, 8, 16, cb, null))).toBe(NvmeStatus.Success)
      expect(same(f.pm.bytes.subarray(at, at + data.length), data)).toBe(true)
      // a byte of block 10's data flipped on the target: the guard catches it on the way back
      const remote = (f.bdevs.get(`pi${format}`) as unknown as { address: number }).address
      const flip = remote + 10 * (bs + mdSize) + 100
      f.pm.bytes[flip] = f.pm.bytes[flip]! ^ 0xff
      expect(await io((cb) => d.readv(ch, new IoVecList(1).push(at, data.length), null, 8, 16, cb, null))).toBe(NvmeStatus.GuardCheckError)
      d.close()
      ch.close()
      f.pm.ipuAllocator.free(at)
      await ini.unregister(`dif${format}`)
      await detachNvmeController(ini, `Pi${format}`)
    }
  })

  it('refuses a bad name, a second controller of the same name, and an unreachable target with clear errors', async () => {
    await expect(attachNvmeController(ini, { name: 'bad name', traddr: '127.0.0.1', trsvcid: f.port, subnqn: SUBNQN })).rejects.toThrow(/name must be/)
    await attachNvmeController(ini, { name: 'Nvme2', traddr: '127.0.0.1', trsvcid: f.port, subnqn: SUBNQN })
    await expect(attachNvmeController(ini, { name: 'Nvme2', traddr: '127.0.0.1', trsvcid: f.port, subnqn: SUBNQN })).rejects.toThrow(/is attached/)
    await detachNvmeController(ini, 'Nvme2')
    await expect(attachNvmeController(ini, { name: 'Nvme3', traddr: '127.0.0.1', trsvcid: 1, subnqn: SUBNQN, connectTimeoutMs: 500 })).rejects.toThrow(/ECONNREFUSED|closed/)
  })

  it('a Connect the target refuses: the attach fails and holds no connection', async () => {
    const nqn = `${SUBNQN}-guarded`
    const sub = f.target.createSubsystem({ nqn, hosts: ['nqn.2026-12.io.ipukit:someone-else'] })
    sub.addNamespace({ bdev: 'ram0' })
    sub.addListener(f.address)
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
    // the refused connection of the test before may still be closing: settle first
    await new Promise((r) => setTimeout(r, 300))
    const before = sockets()
    await expect(attachNvmeController(ini, { name: 'Nvme4', traddr: '127.0.0.1', trsvcid: f.port, subnqn: nqn, hostnqn: 'nqn.2026-12.io.ipukit:me' })).rejects.toThrow(/Connect Invalid Host|refused|184h/i)
    // both ends of the connection (the target runs in this process too) close
    const until = Date.now() + 3000
    while (sockets() > before && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    expect(sockets()).toBe(before)
    expect(ini.get('Nvme4n1')).toBeUndefined()
  })
})
