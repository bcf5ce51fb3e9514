// The module and platform driver interfaces (SPDK include/spdk/accel_module.h).
//
// A module executes single operations. The framework hands it a task whose buffers it can
// reach: every buffer in a domain the module cannot access directly (`canAccess`) has been
// bounced into local memory first, and for modules that run descriptors the task's
// descriptor is written. The module completes the task with `done(task, status)`, never
// inside submit().
//
// A platform driver sees each sequence after copy elision and before anything runs, and
// claims groups of operations it executes itself (fused, or reaching remote memory through
// its DMA engine); the framework runs the rest on their modules.
import type { MemoryDomain } from '@ipukit/memory'
import type { Accel } from './accel.js'
import type { AccelCipher } from './keys.js'
import type { Opcode } from './opcodes.js'
import type { AccelTask } from './task.js'

export type TaskDone = (task: AccelTask, status: number) => void

export interface AccelModule {
  readonly name: string
  /** higher wins the opcodes several modules support (SPDK: software is -1) */
  readonly priority: number
  /** whether the module takes descriptors (./descriptor.ts) rather than domains and iovecs */
  readonly usesDescriptors: boolean
  supportsOpcode(opcode: Opcode): boolean
  /** a domain the module reads and writes without a bounce buffer (local memory needs none) */
  canAccess(domain: MemoryDomain): boolean
  /** a cipher and key size it can run (for key creation); undefined: no crypto */
  supportsCipher?(cipher: AccelCipher, keyBits: number): boolean
  init?(accel: Accel): Promise<void> | void
  fini?(): Promise<void> | void
  /** Executes the task; calls done(task, status) later. */
  submit(task: AccelTask, done: TaskDone): void
}

/** The fused operations a driver may claim (what the executor runs in one pass). */
export type DriverOperation =
  /** encrypt -> dif_generate_copy, one pass: ciphertext + PI */
  | 'encrypt+dif_generate_copy'
  /** dif_verify_copy -> decrypt, one pass */
  | 'dif_verify_copy+decrypt'
  /** copy -> crc32c of the copy, one pass (copy_crc32c) */
  | 'copy+crc32c'
  /** one operation, with remote buffers reached through the driver's DMA engine */
  | 'single'

/** What a driver sees of a sequence: its operations, read-only, and a way to claim them. */
export interface SequenceView {
  readonly length: number
  opcode(i: number): Opcode
  /** the domain of a buffer of operation i (null: local memory) */
  domain(i: number, which: 'src' | 'dst'): MemoryDomain | null
  /** whether operation i's `a` buffer is operation j's `b` buffer (same domain and iovecs) */
  same(i: number, a: 'src' | 'dst', j: number, b: 'src' | 'dst'): boolean
  /** data unit of a crypto operation; data block size of a DIF operation */
  unit(i: number): number
  /** the data bytes operation i works on (for DIF operations: blocks x data block size) */
  bytes(i: number): number
  /** claims operations i (and i + 1 for the pairs) as `op`, run on `module` (a descriptor module) */
  claim(i: number, op: DriverOperation, module: string): void
}

export interface AccelDriver {
  readonly name: string
  init?(accel: Accel): Promise<void> | void
  /** Called once per sequence, after copy elision and before execution. */
  examine(seq: SequenceView): void
  /** Domains the driver reaches directly in the groups it claims (its DMA engine's). */
  canAccess(domain: MemoryDomain): boolean
  /**
   * Translates a remote buffer of a claimed group into local iovecs, as its DMA engine
   * reading (access 1) or writing (2) them; returns a status. Charged as DMA traffic.
   */
  translate(domain: MemoryDomain, iovs: import('@ipukit/memory').IoVecList, out: import('@ipukit/memory').IoVecList, access: number): number
}
