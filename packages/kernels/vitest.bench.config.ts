import { defineConfig } from 'vitest/config'

// Benchmarks run as one-test files, one file at a time, so nothing else shares the cores.
export default defineConfig({
  resolve: { conditions: ['@ipukit/source'] },
  test: {
    include: ['bench/**/*.bench.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
  },
})
