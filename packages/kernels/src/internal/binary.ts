// The kernel module: decoding, the non-shared variant, and compilation (cached).
import wasmBase64, { KERNELS_WASM_SHA256 } from '../../build/kernels-wasm.js'
import { KernelsError } from '../errors.js'

export { KERNELS_WASM_SHA256 }

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

function readLeb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0
  let shift = 0
  for (;;) {
    const b = bytes[at++]
    if (b === undefined) throw new KernelsError('KERNELS_UNSUPPORTED', 'truncated kernel module')
    value += (b & 0x7f) * 2 ** shift
    if (b < 0x80) return [value, at]
    shift += 7
  }
}

/**
 * The module declares its imported memory shared (limits flag 0x03). Engines that refuse
 * shared memories outside cross-origin isolation still run the kernels single-threaded
 * on an ordinary memory, so the unshared variant is the same binary with that one flag
 * cleared (WebAssembly core spec §5.3.7 limits, §5.5.5 import section). The kernels use
 * no atomics, so nothing else depends on it.
 */
export function unsharedVariant(module: Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = Uint8Array.from(module)
  let at = 8
  while (at < bytes.length) {
    const id = bytes[at++]
    const [size, body] = readLeb(bytes, at)
    if (id === 2) {
      let [count, p] = readLeb(bytes, body)
      while (count-- > 0) {
        let len: number
        ;[len, p] = readLeb(bytes, p)
        p += len
        ;[len, p] = readLeb(bytes, p)
        p += len
        const kind = bytes[p++]
        if (kind === 0x02) {
          if (bytes[p] === 0x03) bytes[p] = 0x01
          return bytes
        }
        // only the memory import is expected; anything else means a different build
        throw new KernelsError('KERNELS_UNSUPPORTED', `unexpected import kind ${kind} in kernel module`)
      }
    }
    at = body + size
  }
  throw new KernelsError('KERNELS_UNSUPPORTED', 'kernel module has no memory import')
}

const compiled: { shared?: WebAssembly.Module; unshared?: WebAssembly.Module } = {}

function bytesFor(shared: boolean): Uint8Array<ArrayBuffer> {
  const bytes = decodeBase64(wasmBase64)
  return shared ? bytes : unsharedVariant(bytes)
}

function checkSupport(bytes: Uint8Array<ArrayBuffer>): void {
  if (typeof WebAssembly !== 'object' || !WebAssembly.validate(bytes)) {
    throw new KernelsError(
      'KERNELS_UNSUPPORTED',
      'this engine cannot run the kernels: WebAssembly with SIMD (and threads, for shared memory) is required',
    )
  }
}

/** Compiles synchronously; fine for this module's size (about 64 KiB) in Node and Chromium. */
export function compileSync(shared: boolean): WebAssembly.Module {
  const key = shared ? 'shared' : 'unshared'
  let m = compiled[key]
  if (m === undefined) {
    const bytes = bytesFor(shared)
    checkSupport(bytes)
    m = compiled[key] = new WebAssembly.Module(bytes)
  }
  return m
}

export async function compileAsync(shared: boolean): Promise<WebAssembly.Module> {
  const key = shared ? 'shared' : 'unshared'
  let m = compiled[key]
  if (m === undefined) {
    const bytes = bytesFor(shared)
    checkSupport(bytes)
    m = compiled[key] = await WebAssembly.compile(bytes)
  }
  return m
}
