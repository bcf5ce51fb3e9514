// polycrc ships no types; this is the part the CRC16 benchmark uses.
declare module 'polycrc' {
  type CrcFn = (data: Uint8Array | string) => number
  const polycrc: {
    crc(width: number, poly: number, init: number, xorout: number, reflect: boolean): CrcFn
  }
  export default polycrc
}
