// The `dma-engine` module: copies by the IPU's DMA engine (@ipukit/pcie's DmaEngine), the
// only module that reads and writes host memory directly, as a real IPU's engine does. A
// buffer in a function's bus-master domain (pcie BusMasterDomain) is moved by that
// function's engine, through its IOMMU context and charged to the links it crosses; local
// memory is the engine's local side. Copies between two functions' domains are not one
// DMA and are refused (NotSupported).
import { defer, IoVecList, type MemoryDomain } from '@ipukit/memory'
import { BusMasterDomain, DmaEngine, type PciFabric, type PciFunction } from '@ipukit/pcie'
import type { Accel } from './accel.js'
import { D, DescriptorView } from './descriptor.js'
import type { AccelModule, TaskDone } from './module.js'
import { AccelStatus, type Opcode } from './opcodes.js'
import type { AccelTask } from './task.js'

export class DmaEngineModule implements AccelModule {
  readonly name = 'dma-engine'
  readonly priority = 30
  readonly usesDescriptors = false
  readonly fabric: PciFabric
  readonly #home: PciFunction | undefined
  readonly #engines = new Map<PciFunction, DmaEngine>()
  #view: DescriptorView | undefined
  readonly #src = new IoVecList(512)
  readonly #dst = new IoVecList(512)
  #done: TaskDone | undefined

  /** `home`: the function whose engine runs local-to-local copies (default: the first that asks). */
  constructor(fabric: PciFabric, home?: PciFunction) {
    this.fabric = fabric
    this.#home = home
  }

  init(accel: Accel): void {
    this.#view = new DescriptorView(accel.physical.memory)
    if (this.fabric.physical !== accel.physical) throw new RangeError('the dma-engine fabric runs on another physical memory than the accel framework')
  }

  supportsOpcode(op: Opcode): boolean {
    return op === 'copy'
  }

  canAccess(domain: MemoryDomain): boolean {
    return domain instanceof BusMasterDomain && domain.fabric === this.fabric
  }

  #engine(fn: PciFunction): DmaEngine {
    let e = this.#engines.get(fn)
    if (e === undefined) this.#engines.set(fn, (e = new DmaEngine(fn)))
    return e
  }

  #local(task: AccelTask, which: 'src' | 'dst', out: IoVecList): IoVecList {
    const v = this.#view!
    const list = v.get(task.desc, which === 'src' ? D.srcList : D.dstList) >>> 2
    const n = v.get(task.desc, which === 'src' ? D.srcCount : D.dstCount)
    out.clear()
    for (let i = 0; i < n; i++) out.push(v.u32[list + 2 * i]!, v.u32[list + 2 * i + 1]!)
    return out
  }

  submit(task: AccelTask, done: TaskDone): void {
    this.#done = done
    const sd = task.src.domain
    const dd = task.dst.domain
    const sRemote = sd instanceof BusMasterDomain ? sd : null
    const dRemote = dd instanceof BusMasterDomain ? dd : null
    if (sRemote !== null && dRemote !== null && sRemote.fn !== dRemote.fn) return defer(done, task, AccelStatus.NotSupported)
    const fn = sRemote?.fn ?? dRemote?.fn ?? this.#home ?? this.fabric.functions.find((f) => f.kind === 'endpoint')
    if (fn === undefined) return defer(done, task, AccelStatus.NotSupported)
    const e = this.#engine(fn)
    const srcDom = sRemote !== null ? e.bus : e.local
    const dstDom = dRemote !== null ? e.bus : e.local
    const src = sRemote !== null ? task.src.iovs! : this.#local(task, 'src', this.#src)
    const dst = dRemote !== null ? task.dst.iovs! : this.#local(task, 'dst', this.#dst)
    const rc = e.copy(dstDom, dst, srcDom, src, copied, this)
    if (rc !== AccelStatus.Ok) return defer(done, task, rc)
    this.#current.push(task)
  }

  readonly #current: AccelTask[] = []

  /** @internal the engine completed the oldest outstanding copy (completions are in order) */
  completed(status: number): void {
    const t = this.#current.shift()!
    this.#done!(t, status)
  }
}

function copied(m: DmaEngineModule, status: number): void {
  m.completed(status)
}
