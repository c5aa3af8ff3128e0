import { readdirSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { setPriority } from 'node:os'

/**
 * Linux only: gives every thread of this process but the event loop a lower scheduling
 * priority (nice `niceness`), so that on a machine with as many cores as hashing threads an
 * argon2 storm cannot take CPU time from the event loop: cheap requests are answered first and
 * the hashes use whatever is left, which is all of it when the loop is idle. The other threads
 * are libuv's pool (argon2, file I/O) and V8's background helpers. Returns how many were set.
 */
export async function lowerWorkerThreadPriority (niceness = 10): Promise<number> {
  if (process.platform !== 'linux') return 0
  // libuv starts all of its pool threads on the first task it is given.
  await stat('.')
  let changed = 0
  for (const entry of readdirSync('/proc/self/task')) {
    const tid = Number(entry)
    if (tid === process.pid) continue
    try {
      setPriority(tid, niceness)
      changed++
    } catch {
      // A thread that just ended, or a platform that refuses: the defaults are still correct.
    }
  }
  return changed
}
