// The `software` module: WASM kernels in the calling thread (SPDK's accel_sw), and deflate
// on node:zlib's thread pool. It supports every opcode and is everyone's fallback (priority
// -1). Completions are deferred: a task never completes inside submit().
import { defer } from '@ipukit/memory'
import type { Accel } from './accel.js'
import { Executor } from './executor.js'
import type { AccelCipher } from './keys.js'
import type { AccelModule, TaskDone } from './module.js'
import type { AccelTask } from './task.js'
import { Opc } from './opcodes.js'

export class SoftwareModule implements AccelModule {
  readonly name = 'software'
  readonly priority = -1
  readonly usesDescriptors = true
  #exec: Executor | undefined

  init(accel: Accel): void {
    this.#exec = new Executor(accel.physical.kernels)
  }

  supportsOpcode(): boolean {
    return true
  }

  canAccess(): boolean {
    return false
  }

  supportsCipher(cipher: AccelCipher, keyBits: number): boolean {
    return cipher === 'AES_XTS' && (keyBits === 128 || keyBits === 256)
  }

  /** Runs a descriptor now, in this thread (also used by `workers` for work too small to ship). */
  runNow(desc: number): number {
    return this.#exec!.run(desc)
  }

  submit(task: AccelTask, done: TaskDone): void {
    // compress and decompress go to node:zlib's thread pool; the rest runs here
    if (task.opcode === Opc.compress || task.opcode === Opc.decompress) this.#exec!.runAsync(task.desc, (st) => done(task, st))
    else defer(done, task, this.#exec!.run(task.desc))
  }
}
