// Named crypto keys (SPDK accel_crypto_key_create / _get / _destroy). A key is created
// once and used by name by every encrypt and decrypt. AES-XTS only: key2 is required, as
// long as key1, and must differ from it (compared in constant time); the tweak mode is
// SIMPLE_LBA (the data unit's tweak is its LBA as a 16-byte little-endian integer, what
// OpenSSL's aes-*-xts IV and SPDK's software module use). Destroying a key zeroes its
// bytes and its key schedule.
import { timingSafeEqual } from 'node:crypto'
import { typeError, type Kernels, type Xts } from '@ipukit/kernels'
import { AccelError } from './errors.js'

export type AccelCipher = 'AES_XTS'
export type AccelTweakMode = 'SIMPLE_LBA'

export interface CryptoKeyParams {
  name: string
  /** default 'AES_XTS' (AES_CBC is not offered: no storage format here uses it) */
  cipher?: AccelCipher
  /** key1: 16 or 32 bytes, as bytes or hex */
  key: Uint8Array | string
  /** key2 (the tweak key): the same length as key1, and different from it */
  key2: Uint8Array | string
  tweakMode?: AccelTweakMode
}

/** A key in the registry. */
export class AccelCryptoKey {
  readonly name: string
  readonly cipher: AccelCipher
  readonly tweakMode: AccelTweakMode
  /** AES key bits of each half: 128 or 256 */
  readonly keyBits: 128 | 256
  /** @internal key1 ‖ key2 (zeroed on destroy) */
  readonly material: Uint8Array
  /** @internal the WASM key schedule, in the shared memory */
  readonly xts: Xts
  #destroyed = false
  /** @internal modules keep per-key state here (the aesni module's ECB ciphers) */
  readonly moduleState = new Map<string, unknown>()

  /** @internal */
  constructor(name: string, cipher: AccelCipher, tweakMode: AccelTweakMode, material: Uint8Array, kernels: Kernels) {
    this.name = name
    this.cipher = cipher
    this.tweakMode = tweakMode
    this.keyBits = material.length === 32 ? 128 : 256
    this.material = material
    this.xts = kernels.createXts(material)
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  /** @internal */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.xts.destroy()
    this.material.fill(0)
    this.moduleState.clear()
  }
}

function bytesOf(what: string, v: Uint8Array | string): Uint8Array {
  if (typeof v === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(v)) throw typeError(`${what} must be bytes or an even-length hex string`)
    return Uint8Array.from(v.match(/../g)!, (h) => Number.parseInt(h, 16))
  }
  if (!(v instanceof Uint8Array)) throw typeError(`${what} must be a Uint8Array or a hex string`)
  return Uint8Array.from(v)
}

export class KeyRegistry {
  readonly #keys = new Map<string, AccelCryptoKey>()
  readonly #kernels: Kernels
  /** @internal modules asked whether they can take a cipher and key size */
  readonly supports: (cipher: AccelCipher, keyBits: number) => string | undefined

  /** @internal */
  constructor(kernels: Kernels, supports: (cipher: AccelCipher, keyBits: number) => string | undefined) {
    this.#kernels = kernels
    this.supports = supports
  }

  /** accel_crypto_key_create: checks the parameters as SPDK does. */
  create(params: CryptoKeyParams): AccelCryptoKey {
    if (params === null || typeof params !== 'object') throw typeError('params must be an object')
    const { name } = params
    if (typeof name !== 'string' || name === '') throw typeError('name must be a non-empty string')
    if (this.#keys.has(name)) throw new AccelError('ACCEL_KEY_EXISTS', `a key named '${name}' exists (SPDK: -EEXIST)`)
    const cipher = params.cipher ?? 'AES_XTS'
    if (cipher !== 'AES_XTS') throw new AccelError('ACCEL_BAD_KEY', `cipher '${String(cipher)}' is not supported: AES_XTS is`)
    const tweakMode = params.tweakMode ?? 'SIMPLE_LBA'
    if (tweakMode !== 'SIMPLE_LBA') throw new AccelError('ACCEL_BAD_KEY', `tweak mode '${String(tweakMode)}' is not supported: SIMPLE_LBA is`)
    const k1 = bytesOf('key', params.key)
    if (params.key2 === undefined) throw new AccelError('ACCEL_BAD_KEY', 'AES_XTS needs key2')
    const k2 = bytesOf('key2', params.key2)
    try {
      if (k1.length !== 16 && k1.length !== 32) throw new AccelError('ACCEL_BAD_KEY', `AES_XTS keys are 16 or 32 bytes each, got ${k1.length}`)
      if (k2.length !== k1.length) throw new AccelError('ACCEL_BAD_KEY', `key2 must be as long as key (${k1.length} bytes), got ${k2.length}`)
      if (timingSafeEqual(k1, k2)) throw new AccelError('ACCEL_BAD_KEY', 'key and key2 must differ (IEEE 1619)')
      const refusal = this.supports(cipher, k1.length * 8)
      if (refusal !== undefined) throw new AccelError('ACCEL_BAD_KEY', refusal)
      const material = new Uint8Array(2 * k1.length)
      material.set(k1)
      material.set(k2, k1.length)
      const key = new AccelCryptoKey(name, cipher, tweakMode, material, this.#kernels)
      this.#keys.set(name, key)
      return key
    } finally {
      k1.fill(0)
      k2.fill(0)
    }
  }

  /** accel_crypto_key_get */
  get(name: string): AccelCryptoKey | undefined {
    return this.#keys.get(name)
  }

  /** The names of the keys, for listing (never their bytes). */
  names(): string[] {
    return [...this.#keys.keys()]
  }

  /** accel_crypto_key_destroy: zeroes the key and its schedule. */
  destroy(key: AccelCryptoKey | string): void {
    const k = typeof key === 'string' ? this.#keys.get(key) : key
    if (k === undefined || this.#keys.get(k.name) !== k) throw new AccelError('ACCEL_NO_KEY', `no key named '${typeof key === 'string' ? key : key.name}'`)
    this.#keys.delete(k.name)
    k.destroy()
  }

  /** @internal */
  destroyAll(): void {
    for (const k of this.#keys.values()) k.destroy()
    this.#keys.clear()
  }
}
