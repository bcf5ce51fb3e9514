// --json PATH of run, perf and accel-perf: checked before the work (a report that could not
// be written is found before a long run, not after it), written after. A failure is one
// line naming the flag and why: usage (2), or no space (4).
import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { CliError } from './errors.js'

function fileError(command: string, path: string, e: unknown): CliError {
  const err = e as NodeJS.ErrnoException
  const why = err.code === 'ENOENT' ? 'its directory does not exist' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.code === 'EISDIR' ? 'a directory, not a file' : err.code === 'ENOSPC' ? 'no space left on the device' : err.message
  return new CliError(err.code === 'ENOSPC' ? 'CLI_NO_SPACE' : 'CLI_USAGE', `${command}: --json ${path}: cannot write it: ${why}`, { cause: e })
}

/** Throws the usage error now if `path` could not be written later. */
export function checkJsonPath(command: string, path: string): void {
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' })
      accessSync(path, constants.W_OK)
    } else accessSync(dirname(resolve(path)), constants.W_OK)
  } catch (e) {
    throw fileError(command, path, e)
  }
}

/** Writes `value` as indented JSON to `path` ('-': stdout). */
export function writeJson(command: string, path: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`
  if (path === '-') {
    process.stdout.write(text)
    return
  }
  try {
    writeFileSync(path, text)
  } catch (e) {
    throw fileError(command, path, e)
  }
}
