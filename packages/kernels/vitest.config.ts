import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['@ipukit/source'] },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/browser/**'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
