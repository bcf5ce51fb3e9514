import { defineConfig } from 'vitest/config'

// Benchmarks run as one-test files, one file at a time, so nothing else shares the cores.
// They measure the built packages (dist/), what users run and what the worker threads load:
// no source conditions here, and the bench imports ../dist. The workspace packages' dist/
// are external: Node loads them itself, as a user's program would. Inlined, they would run
// through vitest's module runner, whose import bindings are getters on every access: the
// host <-> controller loop measured 35 % slower that way.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    server: { deps: { external: [/\/packages\/[^/]+\/dist\//] } },
  },
})
