// The `aesni` module: AES-XTS on node:crypto's AES-NI (OpenSSL), in the caller's thread.
// Calling OpenSSL's XTS once per data unit costs a cipher object and a call per 512 B or
// 4 KiB; instead a batch of data units goes through two ECB passes and two WASM passes:
//
//   T_0(u) = E_K2(iv + u)       one ECB call (key2) over the batch's tweaks
//   X      = P ^ T_j(u)         WASM SIMD: the tweak chain T_{j+1} = T_j * alpha, xored in,
//                               written into the staging area
//   Y      = E_K1(X)            one ECB call (key1) over the staging area
//   C      = Y ^ T_j(u)         WASM SIMD again, from the staging area into dst
//
// which is XTS bit for bit (data units of whole 16-byte blocks; others, with ciphertext
// stealing, run on the WASM cipher). A batch gathers the data units of every operation of
// one event-loop turn that shares a key and a direction, so many 4 KiB operations cost two
// OpenSSL calls as one 128 KiB operation does; the passes are the same, since the first
// xor has to write somewhere anyway. The ECB cipher objects live as long as the key.
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto'
import { MemOps } from '@ipukit/kernels'
import { defer } from '@ipukit/memory'
import type { Accel } from './accel.js'
import { D, DescriptorView } from './descriptor.js'
import type { AccelCipher, AccelCryptoKey } from './keys.js'
import type { AccelModule, TaskDone } from './module.js'
import { AccelStatus, Opc, type Opcode } from './opcodes.js'
import type { SoftwareModule } from './software-module.js'
import { TaskList } from './internal/task-list.js'
import type { AccelTask } from './task.js'

interface Ciphers {
  e1: Cipher
  d1: Decipher
  e2: Cipher
}

/**
 * Data units per ECB batch, and the bytes of a batch at most. update() returns a fresh
 * Buffer; from 128 KiB up the allocator maps (and faults in) new pages for every call,
 * which halves OpenSSL's throughput here (2.1 against 4.3 GB/s at 128 KiB), so a batch
 * stays just below.
 */
const MAX_UNITS = 1024
const MAX_BATCH = 128 * 1024 - 16

export class AesniModule implements AccelModule {
  readonly name = 'aesni'
  readonly priority = 20
  readonly usesDescriptors = true
  #view: DescriptorView | undefined
  #ops: MemOps | undefined
  #software: SoftwareModule | undefined
  #mem: Uint8Array = new Uint8Array(0)
  #done: TaskDone | undefined
  /** the batch's encrypted tweaks (16 bytes per data unit) and its staging area */
  #tweaks = 0
  #staging = 0
  /** the batch: its segments (a run of data units contiguous on both sides) */
  readonly #segSrc = new Float64Array(MAX_UNITS)
  readonly #segDst = new Float64Array(MAX_UNITS)
  readonly #segUnits = new Int32Array(MAX_UNITS)
  readonly #segLba = new Float64Array(MAX_UNITS)
  #segs = 0
  #units = 0
  #bytes = 0
  #unit = 0
  #key: AccelCryptoKey | null = null
  #decrypt = false
  /** the turn's operations, and their statuses */
  readonly #queue = new TaskList()
  #status = new Int32Array(64)
  #scheduled = false
  readonly #flush = (): void => this.#doFlush()
  /** operations that ran on the WASM cipher (data units not a multiple of 16, or larger than a batch) */
  fallbacks = 0
  /** ECB batches run (each is two OpenSSL calls) */
  batches = 0

  init(accel: Accel): void {
    const pm = accel.physical
    this.#view = new DescriptorView(pm.memory)
    this.#ops = new MemOps(pm.kernels)
    this.#software = accel.module('software') as SoftwareModule
    this.#tweaks = accel.allocShared(16 * MAX_UNITS)
    this.#staging = accel.allocShared(MAX_BATCH + 16)
    this.#mem = pm.bytes
  }

  supportsOpcode(op: Opcode): boolean {
    return op === 'encrypt' || op === 'decrypt'
  }

  canAccess(): boolean {
    return false
  }

  supportsCipher(cipher: AccelCipher, keyBits: number): boolean {
    return cipher === 'AES_XTS' && (keyBits === 128 || keyBits === 256)
  }

  #ciphers(key: AccelCryptoKey): Ciphers {
    let c = key.moduleState.get(this.name) as Ciphers | undefined
    if (c === undefined) {
      const half = key.material.length / 2
      const algo = `aes-${half * 8}-ecb`
      const k1 = key.material.subarray(0, half)
      const k2 = key.material.subarray(half)
      c = {
        e1: createCipheriv(algo, k1, null).setAutoPadding(false),
        d1: createDecipheriv(algo, k1, null).setAutoPadding(false),
        e2: createCipheriv(algo, k2, null).setAutoPadding(false),
      }
      key.moduleState.set(this.name, c)
    }
    return c
  }

  submit(task: AccelTask, done: TaskDone): void {
    const unit = task.blockSize
    if (unit % 16 !== 0 || unit > MAX_BATCH) {
      this.fallbacks++
      return defer(done, task, this.#software!.runNow(task.desc))
    }
    this.#done = done
    this.#queue.push(task)
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flush)
    }
  }

  #doFlush(): void {
    this.#scheduled = false
    const q = this.#queue
    const n = q.length
    if (this.#status.length < n) this.#status = new Int32Array(2 * n)
    const v = this.#view!
    for (let i = 0; i < n; i++) {
      let st: number
      try {
        st = this.#plan(q.at(i), v)
      } catch {
        st = AccelStatus.Invalid
      }
      this.#status[i] = st
    }
    try {
      this.#run()
    } catch {
      // an OpenSSL failure: nothing of the batch can be trusted
      for (let i = 0; i < n; i++) this.#status[i] = AccelStatus.Invalid
      this.#segs = this.#units = this.#bytes = 0
    }
    const done = this.#done!
    for (let i = 0; i < n; i++) {
      v.setI(q.at(i).desc, D.status, this.#status[i]!)
      done(q.at(i), this.#status[i]!)
    }
    q.removeFirst(n)
  }

  /** Adds an operation's data units to the batch (running batches as they fill). */
  #plan(task: AccelTask, v: DescriptorView): number {
    const unit = task.blockSize
    const decrypt = task.opcode === Opc.decrypt
    const key = task.key!
    const d = task.desc
    const u = v.u32
    const sL = v.get(d, D.srcList) >>> 2
    const sN = v.get(d, D.srcCount)
    const dL = v.get(d, D.dstList) >>> 2
    const dN = v.get(d, D.dstCount)
    let sTotal = 0
    let dTotal = 0
    for (let i = 0; i < sN; i++) sTotal += u[sL + 2 * i + 1]!
    for (let i = 0; i < dN; i++) dTotal += u[dL + 2 * i + 1]!
    if (sTotal < task.nbytes || dTotal < task.nbytes) return AccelStatus.Invalid
    // a batch holds one key, one direction and one data unit size
    if (this.#segs > 0 && (key !== this.#key || decrypt !== this.#decrypt || unit !== this.#unit)) this.#run()
    this.#key = key
    this.#decrypt = decrypt
    this.#unit = unit
    let si = 0
    let so = 0
    let di = 0
    let dO = 0
    let left = task.nbytes
    let lba = task.iv
    while (left > 0) {
      while (so >= u[sL + 2 * si + 1]!) {
        si++
        so = 0
      }
      while (dO >= u[dL + 2 * di + 1]!) {
        di++
        dO = 0
      }
      const sAvail = u[sL + 2 * si + 1]! - so
      const dAvail = u[dL + 2 * di + 1]! - dO
      let units = Math.floor(Math.min(sAvail, dAvail, left) / unit)
      if (units > 0) {
        // as many as the batch has room for; the rest goes into the next one
        const room = Math.min(MAX_UNITS - this.#units, Math.floor((MAX_BATCH - this.#bytes) / unit))
        if (room === 0) {
          this.#run()
          continue
        }
        if (units > room) units = room
        const k = this.#segs++
        this.#segSrc[k] = u[sL + 2 * si]! + so
        this.#segDst[k] = u[dL + 2 * di]! + dO
        this.#segUnits[k] = units
        this.#segLba[k] = lba
        this.#units += units
        this.#bytes += units * unit
        so += units * unit
        dO += units * unit
      } else {
        // a data unit straddles iovecs: run it alone in the staging area, gathered and scattered
        units = 1
        if (this.#segs > 0) this.#run()
        const st = this.#staging
        const m = this.#mem
        let need = unit
        let at = st
        while (need > 0) {
          while (so >= u[sL + 2 * si + 1]!) {
            si++
            so = 0
          }
          const k = Math.min(need, u[sL + 2 * si + 1]! - so)
          const a = u[sL + 2 * si]! + so
          m.copyWithin(at, a, a + k)
          at += k
          so += k
          need -= k
        }
        this.#segSrc[0] = st
        this.#segDst[0] = st
        this.#segUnits[0] = 1
        this.#segLba[0] = lba
        this.#segs = 1
        this.#units = 1
        this.#bytes = unit
        this.#run()
        need = unit
        at = st
        while (need > 0) {
          while (dO >= u[dL + 2 * di + 1]!) {
            di++
            dO = 0
          }
          const k = Math.min(need, u[dL + 2 * di + 1]! - dO)
          m.copyWithin(u[dL + 2 * di]! + dO, at, at + k)
          at += k
          dO += k
          need -= k
        }
      }
      left -= units * unit
      lba += units
    }
    return AccelStatus.Ok
  }

  /** Runs the batch: the two ECB calls and the two WASM passes over every segment. */
  #run(): void {
    const n = this.#segs
    if (n === 0) return
    const c = this.#ciphers(this.#key!)
    const ops = this.#ops!
    const m = this.#mem
    const T = this.#tweaks
    const S = this.#staging
    const unit = this.#unit
    let t = 0
    for (let k = 0; k < n; k++) {
      ops.tweakValues(T + 16 * t, this.#segUnits[k]!, this.#segLba[k]!)
      t += this.#segUnits[k]!
    }
    m.set(c.e2.update(m.subarray(T, T + 16 * t)), T)
    t = 0
    let off = 0
    for (let k = 0; k < n; k++) {
      const len = this.#segUnits[k]! * unit
      ops.tweakXor(this.#segSrc[k]!, S + off, len, unit, T + 16 * t)
      t += this.#segUnits[k]!
      off += len
    }
    m.set((this.#decrypt ? c.d1 : c.e1).update(m.subarray(S, S + off)), S)
    t = 0
    off = 0
    for (let k = 0; k < n; k++) {
      const len = this.#segUnits[k]! * unit
      ops.tweakXor(S + off, this.#segDst[k]!, len, unit, T + 16 * t)
      t += this.#segUnits[k]!
      off += len
    }
    this.batches++
    this.#segs = 0
    this.#units = 0
    this.#bytes = 0
  }
}
