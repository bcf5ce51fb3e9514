export interface FilterSpec {
  name: string
  crc: 'CRC-32C' | 'CRC-16/T10-DIF' | 'CRC-64/NVME'
  exponents: number[]
  note: string
}
export declare const FILTERS: FilterSpec[]
