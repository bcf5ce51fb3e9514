// Shared by every package's vitest configs: resolve workspace packages to their TypeScript
// sources (the "@ipukit/source" export condition), so tests and benchmarks never need a
// prior build of the packages they import, in Node (SSR) and in the browser alike.
import { defaultClientConditions, defaultServerConditions, type UserConfig } from 'vite'

export const sourceConditions: Pick<UserConfig, 'resolve' | 'ssr'> = {
  resolve: { conditions: ['@ipukit/source', ...defaultClientConditions] },
  ssr: { resolve: { conditions: ['@ipukit/source', ...defaultServerConditions] } },
}
