import { accessSync, constants, readdirSync } from 'node:fs'
import path from 'node:path'

// PGlite reports a file it may not write (a directory another user created, made read-only) as
// a bare `ErrnoError { errno: 2 }` after printing a line of its own, or aborts its WebAssembly
// with a stack, naming neither the file nor DATA_DIR. Node's error for the same file has a code
// and a path, which src/startup-problem.ts turns into one line naming DATA_DIR.

/**
 * Throws Node's error for the directory or its postgresql.conf if this process may not write
 * it: what PGlite writes first, creating the database or opening it (it rewrites the
 * configuration at every open).
 */
export function checkPgdataWritable (dir: string): void {
  accessSync(dir, constants.W_OK)
  try {
    accessSync(path.join(dir, 'postgresql.conf'), constants.W_OK)
  } catch (err) {
    // None yet: PGlite creates it in the directory, which it may write.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/**
 * Node's error for the first file or folder under the directory this process may not write,
 * if any: why PGlite failed to open it when the checks above passed (a file inside owned by
 * someone else). Walks the whole tree, so only after a failure.
 */
export function unwritableIn (dir: string): Error | undefined {
  try {
    for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) accessSync(path.join(dir, name), constants.W_OK)
  } catch (err) {
    return err as Error
  }
  return undefined
}
