// Child-process plumbing for the benchmark: the servers run in their own processes so the
// load generator (autocannon, in this process) never shares an event loop with them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Child {
  name: string
  proc: ChildProcess
  pid: number
  /** Last few KB of the child's stdout + stderr, shown only when it fails to start. */
  output: () => string
  exited: () => boolean
}

const children = new Set<Child>()

/** Asks the OS for a free port. Tiny race until the child binds it; fine on a bench machine. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export function startChild (name: string, script: string, env: NodeJS.ProcessEnv, cwd: string, nodeFlags: readonly string[] = []): Child {
  // process.execPath, not a shell: the PID we sample and kill is node's own.
  const proc = spawn(process.execPath, [...nodeFlags, script], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  if (proc.pid === undefined) throw new Error(`could not spawn ${name} (${script})`)
  let tail = ''
  let exited = false
  // Drain both pipes (a full pipe would block the child) but keep only the tail for diagnostics.
  const keep = (chunk: Buffer): void => { tail = (tail + chunk.toString()).slice(-4000) }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  proc.once('exit', () => { exited = true })
  const child: Child = { name, proc, pid: proc.pid, output: () => tail, exited: () => exited }
  children.add(child)
  return child
}

/**
 * Sets the CPUs a process's main thread may run on (Linux `taskset`); threads it already
 * started (libuv's pool, where argon2 hashes) keep theirs. False when taskset is unavailable.
 */
export function pinMainThread (pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Polls `url` until it answers 200; bounded, and gives up early if the child died. */
export async function waitReady (child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exited()) {
      throw new Error(`${child.name} exited before it was ready (code ${child.proc.exitCode}):\n${child.output()}`)
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`${child.name} did not answer 200 on ${url} within ${timeoutMs / 1000} s:\n${child.output()}`)
}

/** Stops every child we started, by PID: SIGTERM, then SIGKILL if it lingers. */
export async function stopAll (): Promise<void> {
  await Promise.all([...children].map(async (child) => {
    children.delete(child)
    if (child.exited()) return
    child.proc.kill('SIGTERM')
    const deadline = Date.now() + 3000
    while (!child.exited() && Date.now() < deadline) await sleep(50)
    if (!child.exited()) child.proc.kill('SIGKILL')
  }))
}

/** Synchronous last resort for process 'exit': no awaiting possible there. */
export function killAllNow (): void {
  for (const child of children) {
    if (!child.exited()) child.proc.kill('SIGKILL')
  }
  children.clear()
}

/**
 * Samples a process's resident memory (VmRSS from /proc, Linux only) every `everyMs`
 * and remembers the maximum, so the report shows RSS under load rather than at rest.
 */
export function rssSampler (pid: number, everyMs = 200): { maxMb: () => number, lastMb: () => number, stop: () => void } {
  let maxKb = 0
  let lastKb = 0
  const sample = (): void => {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m?.[1] !== undefined) {
        lastKb = Number(m[1])
        maxKb = Math.max(maxKb, lastKb)
      }
    } catch {
      // no /proc (not Linux) or the process is gone: keep what we have
    }
  }
  sample()
  const timer = setInterval(sample, everyMs)
  timer.unref()
  return { maxMb: () => maxKb / 1024, lastMb: () => lastKb / 1024, stop: () => clearInterval(timer) }
}
