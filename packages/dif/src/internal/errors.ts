// Argument errors name the parameter and the rule (code as Node's: ERR_INVALID_ARG_TYPE,
// ERR_OUT_OF_RANGE). Data-path failures are never thrown: they are DifResult values.

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' })
}

export function rangeError(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' })
}

export function checkInt(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw typeError(`${name} must be a number`)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`)
  }
}

/** An unsigned integer of `bits` bits, as a number (if safe) or a bigint; returned as given. */
export function checkUint(name: string, value: unknown, bits: number): number | bigint {
  const max = (1n << BigInt(bits)) - 1n
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0 || BigInt(value) > max) {
      throw rangeError(`${name} must be an integer in [0, 2^${bits} - 1], got ${value}`)
    }
    return value
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value > max) throw rangeError(`${name} must be in [0, 2^${bits} - 1], got ${value}`)
    return value
  }
  throw typeError(`${name} must be a number or a bigint`)
}
