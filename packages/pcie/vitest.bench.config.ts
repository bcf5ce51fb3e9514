import { defineConfig } from 'vitest/config'
import { sourceConditions } from '../../vitest.shared.js'

// Benchmarks run as one-test files, one file at a time, so nothing else shares the cores.
export default defineConfig({
  ...sourceConditions,
  test: {
    include: ['bench/**/*.bench.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
  },
})
