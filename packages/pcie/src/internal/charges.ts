// The costs of one DMA translation, held until the DMA is known to go ahead: per piece, a
// route code (which links, -1 for none), the memory region slot and the byte count.
// Typed arrays, grown when needed and reused, so a DMA allocates nothing.
export class Charges {
  path = new Int32Array(64)
  slot = new Int32Array(64)
  bytes = new Float64Array(64)
  n = 0
  add(path: number, slot: number, bytes: number): void {
    if (this.n === this.path.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(2 * a.length)
        b.set(a)
        return b
      }
      this.path = grow(this.path)
      this.slot = grow(this.slot)
      this.bytes = grow(this.bytes)
    }
    this.path[this.n] = path
    this.slot[this.n] = slot
    this.bytes[this.n] = bytes
    this.n++
  }
}
