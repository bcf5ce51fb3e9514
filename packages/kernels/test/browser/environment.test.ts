// What the browser run must establish beyond the shared suites: that this is a browser
// page, and that the kernels run on both kinds of memory there.
import { expect, it } from 'vitest'
import { crc32c, createKernelMemory, createKernels, defaultKernels } from '../../src/index.js'

it('runs in a Chromium page', () => {
  expect(typeof window).toBe('object')
  expect(typeof document.createElement).toBe('function')
  expect(navigator.userAgent).toMatch(/Chrome\//)
})

it('runs the kernels on a shared memory and on an unshared one', async () => {
  expect(defaultKernels().shared).toBe(true)
  const unshared = await createKernels({ memory: createKernelMemory({ shared: false, scratchSlots: 1 }) })
  expect(unshared.shared).toBe(false)
  const data = new TextEncoder().encode('123456789')
  expect(unshared.crc32c(data)).toBe(0xe3069283)
  expect(crc32c(data)).toBe(0xe3069283)
  unshared.close()
})
