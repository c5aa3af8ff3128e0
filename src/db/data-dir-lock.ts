import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'

// Data directories this process holds, so that its own pid in a lock file can be told apart
// from a previous process that had the same pid (pid 1, restarted in a container).
const held = new Set<string>()

/**
 * Takes DATA_DIR for this process, or throws naming the process that has it. PGlite keeps
 * PostgreSQL's pages in the memory of the process that opened it: a second process on the same
 * directory (the CLI while the server runs) had its writes lost or overwrote the first's. The
 * CLI said it created a user, and the user never existed. The lock is a file holding the pid;
 * a process that is gone (a crash, kill -9) holds nothing, and its file is taken over.
 * Returns the release, for when the database closes.
 */
export function lockDataDir (dataDir: string): () => void {
  const dir = path.resolve(dataDir)
  const file = path.join(dir, 'rolegate.lock')
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      try { writeSync(fd, String(process.pid)) } finally { closeSync(fd) }
      held.add(file)
      return () => { release(file) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = holderOf(file)
    if (holder !== undefined && (holder === process.pid ? held.has(file) : isRunning(holder))) {
      throw Object.assign(new Error(`the embedded database in ${dir} is in use by process ${holder} (a rolegate server or CLI): stop it first, one process at a time opens it (if process ${holder} is not rolegate, delete ${file})`), { code: 'ERR_DATA_DIR_IN_USE' })
    }
    // Its process is gone (or the file is unreadable junk): take it over.
    try { unlinkSync(file) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
  }
  throw Object.assign(new Error(`could not take the lock ${file}: other processes keep taking it`), { code: 'ERR_DATA_DIR_IN_USE' })
}

function holderOf (file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function release (file: string): void {
  if (!held.delete(file)) return
  try {
    if (holderOf(file) === process.pid) unlinkSync(file)
  } catch {
    // Gone already: nothing to release.
  }
}
