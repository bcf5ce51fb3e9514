// The copy-offload scenario: N MiB from nvme0's namespace to nvme1's, through host DRAM
// and peer to peer through nvme0's CMB. The accounting is the point: 2N bytes of host DRAM
// for (a), none for (b).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { copyOffload, formatCopyOffload } from '../src/index.js'

const MiB = 2 ** 20

describe('copy offload', () => {
  it('below one switch: (a) costs 2N of host DRAM and 2N on the uplink; (b) none of either, and the data arrives both ways', () => {
    const N = 8 * MiB
    const r = copyOffload({ mib: 8, chunk: 256 * 1024 })
    expect(r).toMatchObject({ bytes: N, layout: 'switch', mapType: 'BUS_ADDR', distance: 4 })
    const a = r.viaSystemMemory
    const b = r.peerToPeer
    expect([a.status, a.verified, b.status, b.verified]).toEqual(['Ok', true, 'Ok', true])
    expect(a.traffic.hostDram).toEqual({ read: N, write: N })
    expect(b.traffic.hostDram).toEqual({ read: 0, write: 0 })
    expect(a.traffic.links).toMatchObject({ nvme0: { up: N, down: 0 }, sw0: { up: N, down: N }, nvme1: { up: 0, down: N } })
    expect(b.traffic.links).toMatchObject({ nvme0: { up: N, down: 0 }, sw0: { up: 0, down: 0 }, nvme1: { up: 0, down: N } })
    // the CMB is written by nvme0 (no link) and read by nvme1 (through the switch)
    expect(b.traffic.memory['nvme0-cmb']).toMatchObject({ write: N, read: N })
    expect(a.traffic.dmas).toBe(2 * (N / (256 * 1024)))
    expect(b.traffic.rootComplexP2p).toBe(0)
  })

  it('on two root ports of an allowlisted host bridge: (b) goes through the root complex, still without host DRAM', () => {
    const N = 4 * MiB
    const r = copyOffload({ mib: 4, layout: 'root-ports' })
    expect(r).toMatchObject({ mapType: 'THRU_HOST_BRIDGE', distance: 4 })
    expect(r.viaSystemMemory.traffic.hostDram).toEqual({ read: N, write: N })
    expect(r.peerToPeer).toMatchObject({ status: 'Ok', verified: true })
    expect(r.peerToPeer.traffic.hostDram).toEqual({ read: 0, write: 0 })
    expect(r.peerToPeer.traffic.rootComplexP2p).toBe(N)
  })

  it('below a host bridge that is not allowlisted: find_many finds no provider, (b) fails with RemoteIo and moves nothing', () => {
    const r = copyOffload({ mib: 1, layout: 'root-ports', hostBridge: { vendorId: 0x8086, deviceId: 0x1234 } })
    expect(r.mapType).toBe('NOT_SUPPORTED')
    expect(r.viaSystemMemory).toMatchObject({ status: 'Ok', verified: true })
    expect(r.peerToPeer).toMatchObject({ status: 'RemoteIo', verified: false })
    expect(r.peerToPeer.traffic.dmas).toBe(0)
    // an AMD Zen CPU lifts the allowlist
    expect(copyOffload({ mib: 1, layout: 'root-ports', hostBridge: { vendorId: 0x1022, deviceId: 0x1480 }, cpu: { vendor: 'amd', family: 0x19 } }).peerToPeer.status).toBe('Ok')
  })

  it('prints a table with both columns', () => {
    const text = formatCopyOffload(copyOffload({ mib: 2 }))
    expect(text).toMatch(/host DRAM read\s+2 MiB\s+0 MiB/)
    expect(text).toMatch(/link sw0 up \(x16 gen4\)\s+2 MiB\s+0 MiB/)
    expect(() => copyOffload({ mib: 0 })).toThrow(RangeError)
    expect(() => copyOffload({ mib: 1, chunk: 3 * 4096 })).toThrow(/whole number/)
  })

  it('runs as a command (examples/copy-offload.mjs, on the built package) and refuses bad flags with exit code 2', () => {
    const script = fileURLToPath(new URL('../examples/copy-offload.mjs', import.meta.url))
    const ok = spawnSync(process.execPath, [script, '--mib', '2', '--json'], { encoding: 'utf8' })
    expect(ok.status).toBe(0)
    const r = JSON.parse(ok.stdout)
    expect(r.viaSystemMemory.traffic.hostDram).toEqual({ read: 2 * MiB, write: 2 * MiB })
    expect(r.peerToPeer.traffic.hostDram).toEqual({ read: 0, write: 0 })
    for (const args of [['--mib', 'x'], ['--layout', 'ring'], ['--host-bridge', '8086'], ['--cpu', 'arm'], ['--bogus']]) {
      const bad = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' })
      expect(bad.status, args.join(' ')).toBe(2)
      expect(bad.stderr).toMatch(/^copy-offload: .*\nusage: /)
    }
  })
})
