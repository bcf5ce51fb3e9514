// The file bdev: the extended-LBA layout on disk, creation, growth and reopening; errors of
// the file system as NVMe statuses (a full disk, a read-only bdev); direct I/O where the file
// system allows it; and durability: a writer killed with SIGKILL loses no acknowledged block.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BdevError, createFileBdev, NvmeStatus } from '../src/index.js'
import { fixture, type Fixture, io, list, poolsFull, random, read, readBlocks, same, write, writeBlocks } from './helpers.js'

const here = dirname(fileURLToPath(import.meta.url))
let f: Fixture
let dir: string
beforeAll(async () => {
  f = await fixture()
  // a directory on the repository's file system (not always the same as the system's tmp)
  mkdirSync(join(here, '..', '.tmp'), { recursive: true })
  dir = mkdtempSync(join(here, '..', '.tmp', 'file-'))
})
afterAll(async () => {
  await f.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('file', () => {
  it('lays out block i at i x (blockSize + mdSize), data then metadata; creates, grows and reopens', async () => {
    const path = join(dir, 'layout.img')
    const b = await createFileBdev(f.bdevs, { name: 'lay', path, blockSize: 512, mdSize: 8, pi: { type: 1 }, blockCount: 100 })
    expect(statSync(path).size).toBe(100 * 520)
    // a new file's blocks are deallocated ones: zeros, all-ones PI
    const disk0 = readFileSync(path)
    expect(disk0.subarray(512, 520).every((x) => x === 0xff) && disk0.subarray(0, 512).every((x) => x === 0)).toBe(true)
    const d = f.bdevs.open('lay', { write: true })
    const data = random(7 * 520, 3)
    const src = list([f.local(0), 7 * 520])
    write(f.pm, src, data)
    expect(await writeBlocks(d, f.ch, src, null, 90, 7, { fua: true })).toBe(NvmeStatus.Success)
    expect(same(readFileSync(path).subarray(90 * 520, 97 * 520), data)).toBe(true)
    const dst = list([f.local(1 << 20), 3 * 520], [f.local(2 << 20), 4 * 520])
    expect(await readBlocks(d, f.ch, dst, null, 90, 7)).toBe(NvmeStatus.Success)
    expect(same(read(f.pm, dst), data)).toBe(true)
    expect(await io((cb) => d.flush(f.ch, 0, 100, cb, null))).toBe(NvmeStatus.Success)
    expect(await io((cb) => d.writeZeroes(f.ch, 91, 2, cb, null))).toBe(NvmeStatus.Success)
    expect(same(readFileSync(path).subarray(91 * 520, 93 * 520), Buffer.concat([disk0.subarray(0, 520), disk0.subarray(0, 520)]))).toBe(true)
    d.close()
    await f.bdevs.unregister('lay')
    expect(b.driverSpecific()).toEqual({ aio: { filename: path, readonly: false, direct: false } })
    // reopened without a size: the blocks the file holds; grown: the new ones initialized
    const again = await createFileBdev(f.bdevs, { name: 'lay', path, blockSize: 512, mdSize: 8, pi: { type: 1 } })
    expect(again.blockCount).toBe(100)
    await f.bdevs.unregister('lay')
    const grown = await createFileBdev(f.bdevs, { name: 'lay', path, blockSize: 512, mdSize: 8, pi: { type: 1 }, blockCount: 150 })
    expect(grown.blockCount).toBe(150)
    const disk = readFileSync(path)
    expect(same(disk.subarray(90 * 520, 97 * 520), new Uint8Array([...data.subarray(0, 520), ...disk0.subarray(0, 1040), ...data.subarray(3 * 520)]))).toBe(true)
    expect(same(disk.subarray(149 * 520, 150 * 520), disk0.subarray(0, 520))).toBe(true)
    await f.bdevs.unregister('lay')
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
  })

  it('turns the file system\'s errors into NVMe statuses: a full disk, a read-only bdev, a missing file', async () => {
    // /dev/full: reads give zeros, every write ENOSPC
    await createFileBdev(f.bdevs, { name: 'full', path: '/dev/full', blockSize: 4096, blockCount: 16 })
    const d = f.bdevs.open('full', { write: true })
    const buf = list([f.local(0), 4096])
    expect(await writeBlocks(d, f.ch, buf, null, 0, 1)).toBe(NvmeStatus.CapacityExceeded)
    expect(f.bdevs.get('full')).toMatchObject({ lastError: { code: 'ENOSPC', operation: 'write' } })
    expect(await readBlocks(d, f.ch, buf, null, 3, 1)).toBe(NvmeStatus.Success)
    expect(poolsFull(f)).toEqual({ ios: true, tasks: true, accelBuffers: true })
    d.close()
    await f.bdevs.unregister('full')
    const path = join(dir, 'ro.img')
    writeFileSync(path, new Uint8Array(8 * 512))
    await createFileBdev(f.bdevs, { name: 'ro', path, readonly: true })
    const r = f.bdevs.open('ro', { write: true })
    expect(await writeBlocks(r, f.ch, list([f.local(0), 512]), null, 0, 1)).toBe(NvmeStatus.InvalidOpcode)
    r.close()
    await f.bdevs.unregister('ro')
    await expect(createFileBdev(f.bdevs, { name: 'x', path: join(dir, 'missing', 'x.img') })).rejects.toThrow(BdevError)
    await expect(createFileBdev(f.bdevs, { name: 'x', path: join(dir, 'empty.img') })).rejects.toThrow(/cannot open/)
    writeFileSync(join(dir, 'tiny.img'), new Uint8Array(100))
    await expect(createFileBdev(f.bdevs, { name: 'x', path: join(dir, 'tiny.img') })).rejects.toThrow(/holds no whole block/)
    await expect(createFileBdev(f.bdevs, { name: 'x', path: join(dir, 'd.img'), blockSize: 512, mdSize: 8, blockCount: 4, direct: true })).rejects.toThrow(/multiple of 512/)
  })

  it('direct I/O: round trips where the file system supports O_DIRECT, a clear error where it does not', async () => {
    const path = join(dir, 'direct.img')
    let b
    try {
      b = await createFileBdev(f.bdevs, { name: 'dio', path, blockSize: 4096, blockCount: 64, direct: true })
    } catch (e) {
      expect(e).toMatchObject({ code: 'BDEV_FILE', message: expect.stringMatching(/does not support direct I\/O/) })
      return
    }
    expect(b.direct).toBe(true)
    const d = f.bdevs.open('dio', { write: true })
    const data = random(8 * 4096, 4)
    write(f.pm, list([f.local(0), data.length]), data)
    expect(await writeBlocks(d, f.ch, list([f.local(0), data.length]), null, 8, 8)).toBe(NvmeStatus.Success)
    expect(await readBlocks(d, f.ch, list([f.local(1 << 20), data.length]), null, 8, 8)).toBe(NvmeStatus.Success)
    expect(same(read(f.pm, list([f.local(1 << 20), data.length])), data)).toBe(true)
    d.close()
    await f.bdevs.unregister('dio')
  })

  it('loses no acknowledged write when the process is killed (SIGKILL) after a flush', async () => {
    const path = join(dir, 'durable.img')
    const blocks = 4096
    const child = spawn(process.execPath, [join(here, 'support', 'writer.mjs'), path, String(blocks)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let acked = -1
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        for (const m of c.toString().matchAll(/acked (\d+)/g)) acked = Number(m[1])
        // kill it in the middle of its run
        if (acked >= 200 && child.exitCode === null) child.kill('SIGKILL')
      })
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`the writer ended with ${code ?? signal}: ${stderr}`))))
    })
    expect(acked).toBeGreaterThanOrEqual(200)
    expect(acked).toBeLessThan(blocks - 1)
    const disk = readFileSync(path)
    for (let i = 0; i <= acked; i++) {
      const at = i * 4104
      expect([disk[at + 1], disk[at + 2], disk[at]]).toEqual([i & 0xff, (i >> 8) & 0xff, (i * 7) & 0xff])
    }
  })
})
