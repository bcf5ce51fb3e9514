import { defineConfig } from 'vitest/config'

// Benchmarks run as one-test files, one file at a time, so nothing else shares the cores.
// They measure the built packages (dist/), what users run and what the worker threads load:
// no source conditions here, and the bench imports ../dist.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
  },
})
