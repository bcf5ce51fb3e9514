// @ipukit/dif: the whole public surface.
export { createDifContext, DifContext, DIF_OK, piSizeOf, refTagBits } from './dif.js'
export type { DifCallOptions, DifChecks, DifContextOptions, DifFailure, DifOk, DifResult, DifType, PiFormat } from './dif.js'
export { DifStream } from './stream.js'
export type { InjectKind, InjectOptions, Injected } from './inject.js'
export type { IoVec, IoVecArrays, IoVecs } from './internal/iov.js'
export { DifError } from './errors.js'
export type { DifErrorCode } from './errors.js'
