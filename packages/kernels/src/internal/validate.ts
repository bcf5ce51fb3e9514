// Argument checks shared by every wrapper. Messages name the parameter and the rule.

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' })
}

export function rangeError(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' })
}

export function checkBytes(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw typeError(`${name} must be a Uint8Array`)
}

/** An integer in [min, max] given as a number. */
export function checkInt(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw typeError(`${name} must be a number`)
  if (!Number.isInteger(value)) throw rangeError(`${name} must be an integer, got ${value}`)
  if (value < min || value > max) throw rangeError(`${name} must be in [${min}, ${max}], got ${value}`)
}

export const U64_MAX = (1n << 64n) - 1n

/** A 64-bit unsigned value given as a bigint, or as a safe non-negative integer number. */
export function toU64(name: string, value: unknown, allowNumber: boolean): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) throw rangeError(`${name} must be in [0, 2^64 - 1], got ${value}`)
    return value
  }
  if (allowNumber && typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw rangeError(`${name} must be a non-negative safe integer or a bigint, got ${value}`)
    }
    return BigInt(value)
  }
  throw typeError(`${name} must be a ${allowNumber ? 'number or ' : ''}bigint`)
}
