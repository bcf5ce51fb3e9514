// Opcodes (SPDK include/spdk/accel.h, enum spdk_accel_opcode, with g_opcode_strings' names)
// and the data-path statuses of accel operations (negative errno values, as SPDK's).

/** The operations, by SPDK's names. */
export const OPCODES = [
  'copy',
  'fill',
  'dualcast',
  'compare',
  'crc32c',
  'copy_crc32c',
  'compress',
  'decompress',
  'encrypt',
  'decrypt',
  'xor',
  'dif_verify',
  'dif_verify_copy',
  'dif_generate',
  'dif_generate_copy',
  'dix_generate',
  'dix_verify',
] as const
export type Opcode = (typeof OPCODES)[number]

/** SPDK_ACCEL_OPC_* values (the index in OPCODES). */
export const Opc = {
  copy: 0,
  fill: 1,
  dualcast: 2,
  compare: 3,
  crc32c: 4,
  copy_crc32c: 5,
  compress: 6,
  decompress: 7,
  encrypt: 8,
  decrypt: 9,
  xor: 10,
  dif_verify: 11,
  dif_verify_copy: 12,
  dif_generate: 13,
  dif_generate_copy: 14,
  dix_generate: 15,
  dix_verify: 16,
} as const satisfies Record<Opcode, number>

/**
 * Descriptor operation codes beyond the opcodes: the fused pairs a platform driver runs as
 * one operation (one pass over the data).
 */
export const FusedOpc = {
  /** encrypt -> dif_generate_copy */
  encryptDifGenerateCopy: 32,
  /** dif_verify_copy -> decrypt */
  difVerifyCopyDecrypt: 33,
} as const

/** Outcomes of accel operations: 0 or a negative errno (SPDK's values). */
export const AccelStatus = {
  Ok: 0,
  /** a PI check failed (the DIF error holder says where); SPDK: -EIO */
  Io: -5,
  /** pool exhausted */
  NoMemory: -12,
  /** a memory domain faulted (IOMMU) */
  Fault: -14,
  /** bad arguments that reached the data path */
  Invalid: -22,
  /** compress output did not fit */
  NoSpace: -28,
  /** compare found a difference (-EILSEQ) */
  Miscompare: -84,
  /** the module or domain cannot do this */
  NotSupported: -95,
  /** a peer-to-peer route the fabric refuses */
  RemoteIo: -121,
  /** the sequence was aborted, or failed at an earlier step (-ECANCELED) */
  Canceled: -125,
} as const
export type AccelStatusCode = (typeof AccelStatus)[keyof typeof AccelStatus]

const NAMES = new Map<number, string>(Object.entries(AccelStatus).map(([k, v]) => [v, k]))

/** A status's name for logs ('Ok', 'Io', ...), or the number. */
export function accelStatusName(status: number): string {
  return NAMES.get(status) ?? String(status)
}

export function isOpcode(name: unknown): name is Opcode {
  return typeof name === 'string' && (OPCODES as readonly string[]).includes(name)
}
