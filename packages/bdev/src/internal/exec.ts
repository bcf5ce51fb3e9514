// How a bottom bdev (malloc, file, and the nvme-tcp bdev of @ipukit/nvmf) runs an I/O's
// accel sequence into its own buffers: a write appends a copy from the I/O's iovecs into
// them and finishes the sequence; a read, once its buffers hold the data, appends a copy
// from them into the I/O's iovecs, reverses the sequence (the layers appended top-down)
// and finishes it. Copy elision then lets the last transform write the buffers directly
// (dif_generate_copy into the RAM disk) or the first read them (dif_verify_copy from it).
import { AccelStatus, type AccelSequence } from '@ipukit/accel'
import type { IoVecList } from '@ipukit/memory'
import type { BdevIo } from '../bdev.js'
import { NvmeStatus } from '../status.js'

export type SequenceDone = (io: BdevIo, status: number) => void

/** The NVMe status of a failed sequence, from its failure (read inside the sequence's callback). */
export function accelToNvme(seq: AccelSequence, status: number, write: boolean): number {
  switch (status) {
    case AccelStatus.Ok:
      return NvmeStatus.Success
    case AccelStatus.Fault:
    case AccelStatus.RemoteIo:
      // a DMA the IOMMU or the fabric refused: the host's buffers
      return NvmeStatus.DataTransferError
    case AccelStatus.Io: {
      const op = seq.failure?.opcode
      // a PI check (the dif layer refines guard, app tag or ref tag from its holder)
      if (op !== undefined && op.startsWith('di')) return NvmeStatus.GuardCheckError
      return write ? NvmeStatus.WriteFault : NvmeStatus.UnrecoveredReadError
    }
    case AccelStatus.Miscompare:
      return NvmeStatus.CompareFailure
    case AccelStatus.Canceled:
      return NvmeStatus.AbortRequested
    default:
      return NvmeStatus.InternalError
  }
}

interface Pending {
  io: BdevIo
  local: IoVecList
  done: SequenceDone
}

function finished(p: Pending, status: number): void {
  const seq = p.io.seq!
  const nvme = accelToNvme(seq, status, p.io.type === 'write')
  p.io.seq = null
  p.done(p.io, nvme)
}

/**
 * Runs io's sequence with the copy between io.iovs and `local` (system memory); done(io,
 * status) follows, with an NVMe status. Waits on a later turn when the accel pools are empty.
 */
export function runSequence(io: BdevIo, local: IoVecList, done: SequenceDone): void {
  const ch = io.ch.accel
  if (io.seq === null) {
    const s = ch.sequence()
    if (s === null) return io.ch.retry(io, (again) => runSequence(again, local, done))
    io.seq = s
  }
  const seq = io.seq
  const rc = io.type === 'read' ? seq.appendCopy(io.iovs!, io.domain, local, null) : seq.appendCopy(local, null, io.iovs!, io.domain)
  if (rc !== AccelStatus.Ok) return io.ch.retry(io, (again) => runSequence(again, local, done))
  if (io.type === 'read') seq.reverse()
  const p = pendingOf(io, local, done)
  seq.finish(finished, p)
}

// one Pending per I/O object, made once and reused (no allocation per I/O)
const pendings = new WeakMap<BdevIo, Pending>()

function pendingOf(io: BdevIo, local: IoVecList, done: SequenceDone): Pending {
  let p = pendings.get(io)
  if (p === undefined) {
    p = { io, local, done }
    pendings.set(io, p)
  } else {
    p.local = local
    p.done = done
  }
  return p
}
