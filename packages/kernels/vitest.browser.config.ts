import { playwright } from '@vitest/browser-playwright'
import { defineConfig } from 'vitest/config'
import { sourceConditions } from '../../vitest.shared.js'

// The kernel tests that need no Node APIs, run in headless Chromium from the system
// (Debian's chromium package; the test command installs it). Playwright never downloads
// a browser of its own here: it is pointed at the system binary.
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export default defineConfig({
  ...sourceConditions,
  // cross-origin isolation, so the page may share its memory with workers
  server: {
    headers: {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    },
  },
  test: {
    include: ['test/crc32c.test.ts', 'test/crc16-t10dif.test.ts', 'test/crc64-nvme.test.ts', 'test/filters.test.ts', 'test/aes-xts-vectors.test.ts', 'test/browser/**/*.test.ts'],
    testTimeout: 120_000,
    browser: {
      enabled: true,
      headless: true,
      provider: playwright({
        launchOptions: {
          executablePath,
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        },
      }),
      instances: [{ browser: 'chromium' }],
      screenshotFailures: false,
    },
  },
})
