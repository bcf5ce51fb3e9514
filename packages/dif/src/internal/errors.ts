// Argument errors name the parameter and the rule (code as Node's: ERR_INVALID_ARG_TYPE,
// ERR_OUT_OF_RANGE). Data-path failures are never thrown: they are DifResult values.

import { rangeError, typeError } from '@ipukit/kernels'

export { checkInt, rangeError, typeError } from '@ipukit/kernels'

/** An unsigned integer of `bits` bits, as a number (if safe) or a bigint; returned as given. */
export function checkUint(name: string, value: unknown, bits: number): number | bigint {
  if (typeof value === 'number') {
    // no BigInt on the number path: this runs per request (2^bits - 1 is exact up to 53 bits)
    if (!Number.isSafeInteger(value) || value < 0 || (bits < 53 && value > 2 ** bits - 1)) {
      throw rangeError(`${name} must be an integer in [0, 2^${bits} - 1], got ${value}`)
    }
    return value
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value > (1n << BigInt(bits)) - 1n) throw rangeError(`${name} must be in [0, 2^${bits} - 1], got ${value}`)
    return value
  }
  throw typeError(`${name} must be a number or a bigint`)
}
