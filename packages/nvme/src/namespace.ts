// A namespace is a bdev (SPDK nvmf: subsystem namespaces are bdevs). Its LBA format is the
// bdev's geometry: data bytes, metadata bytes (extended LBA: the metadata follows each
// block's data, NVMe FLBAS.MSET = 1) and the PI type, format and location. Format NVM picks
// another of the namespace's LBA formats; a namespace that can rebuild its bdev (a RAM
// namespace, say) offers several, any other only its own.
import { type Bdev, type BdevDesc, BdevError, type BdevPi, type Bdevs } from '@ipukit/bdev'
import { createHash } from 'node:crypto'

/** One LBA format (Identify Namespace LBAF): data bytes and metadata bytes per block. */
export interface LbaFormat {
  dataSize: number
  mdSize: number
  /** relative performance, 0 best to 3 (Identify RP); default 0 */
  rp?: 0 | 1 | 2 | 3
}

export interface FormatRequest {
  /** the LBA format chosen, and its index */
  format: LbaFormat
  index: number
  /** PI settings asked (type 0: none) */
  pi: BdevPi
  /** Secure Erase Settings: 0 none, 1 user data erase, 2 cryptographic erase */
  secureErase: number
}

export interface NamespaceOptions {
  nsid: number
  /** the bdev behind it */
  bdev: string
  /** the LBA formats it offers (Format NVM); default: the bdev's own geometry alone */
  formats?: LbaFormat[]
  /** rebuilds the bdev in another format for Format NVM; resolves to the new bdev's name */
  format?: (request: FormatRequest) => Promise<string>
  /** IEEE EUI-64 and NGUID; defaults derived from the bdev's UUID */
  eui64?: Uint8Array
  nguid?: Uint8Array
}

export class NvmeNamespace {
  readonly nsid: number
  readonly formats: readonly LbaFormat[]
  readonly formatFn: ((r: FormatRequest) => Promise<string>) | undefined
  readonly bdevs: Bdevs
  readonly #onRemove: (ns: NvmeNamespace) => void
  #desc: BdevDesc
  /** the UUID, NGUID and EUI-64 (Identify's namespace identification descriptors) */
  uuid: string
  nguid: Uint8Array
  eui64: Uint8Array
  /** a Format NVM is running: I/O gets Format In Progress */
  formatting = false
  /** the bdev went away (hot remove): the namespace is going */
  removed = false
  /** @internal DIF contexts of this namespace's commands, by checks and tags */
  readonly difContexts = new Map<number, unknown>()

  /** @internal use NvmeController.addNamespace */
  constructor(bdevs: Bdevs, o: NamespaceOptions, onRemove: (ns: NvmeNamespace) => void) {
    if (!Number.isInteger(o.nsid) || o.nsid < 1 || o.nsid > 0xfffffffe) throw new BdevError('BDEV_BAD_ARGUMENT', `nsid must be 1 to 0xfffffffe, got ${o.nsid}`)
    this.nsid = o.nsid
    this.bdevs = bdevs
    this.#onRemove = onRemove
    this.#desc = this.#open(o.bdev)
    const b = this.#desc.bdev
    this.formats = o.formats ?? [{ dataSize: b.blockSize, mdSize: b.mdSize }]
    if (this.formats.length < 1 || this.formats.length > 64) throw new BdevError('BDEV_BAD_ARGUMENT', `namespace ${o.nsid}: 1 to 64 LBA formats, got ${this.formats.length}`)
    if (this.formatIndex() < 0) throw new BdevError('BDEV_BAD_ARGUMENT', `namespace ${o.nsid}: the bdev's format (${b.blockSize} + ${b.mdSize}) is not among its LBA formats`)
    this.formatFn = o.format
    this.uuid = b.uuid
    const ids = idsOf(b.uuid)
    this.nguid = o.nguid ?? ids.nguid
    this.eui64 = o.eui64 ?? ids.eui64
  }

  get desc(): BdevDesc {
    return this.#desc
  }

  get bdev(): Bdev {
    return this.#desc.bdev
  }

  /** The index of the bdev's geometry among the formats, or -1. */
  formatIndex(): number {
    const b = this.bdev
    return this.formats.findIndex((f) => f.dataSize === b.blockSize && f.mdSize === b.mdSize)
  }

  #open(name: string): BdevDesc {
    return this.bdevs.open(name, {
      write: true,
      onEvent: () => {
        this.removed = true
        this.#onRemove(this)
      },
    })
  }

  /** @internal switches to the bdev a Format NVM built (the old one is closed first: it may be the same bdev's replacement) */
  replace(name: string): void {
    if (!this.#desc.closed) this.#desc.close()
    this.#desc = this.#open(name)
    // the UUID stays, as the NGUID and EUI-64 do: they name the namespace for its life and are
    // preserved across a format (NVMe Base 2.0, Identify Namespace NGUID and EUI64)
    this.difContexts.clear()
  }

  close(): void {
    this.#desc.close()
  }
}

/** NGUID and EUI-64 from a UUID: stable, unique as the UUID is (a hash, not the UUID itself). */
function idsOf(uuid: string): { nguid: Uint8Array; eui64: Uint8Array } {
  const h = createHash('sha256').update(`ipukit namespace ${uuid}`).digest()
  const nguid = new Uint8Array(h.subarray(0, 16))
  const eui64 = new Uint8Array(h.subarray(16, 24))
  // a locally administered EUI-64 (no IEEE OUI of ours): the U/L bit set, not a group address
  eui64[0] = (eui64[0]! | 0x02) & 0xfe
  return { nguid, eui64 }
}
