// A real redis-server (Debian's package) as a child process of the test, on a free port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from './harness.js'

/** Why Redis scenarios cannot run here, or undefined when they can. */
export function redisUnavailable (): string | undefined {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) {
    return 'redis-server is not installed (Debian: apt-get install -y redis-server); skipping the shared rate-limit scenarios'
  }
  return undefined
}

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
  /** Starts it again on the same port (after stop). */
  start: () => Promise<void>
  /** SIGSTOP / SIGCONT: connected clients stay connected and get no answer, nothing is refused. */
  freeze: () => void
  thaw: () => void
}

/** `args`: more redis-server options (--tcp-backlog 0, ...). */
export async function startRedis (t: Test, args: string[] = []): Promise<RedisServer> {
  const port = await freePort()
  let proc: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const start = async (): Promise<void> => {
    // In memory only: nothing written to disk, nothing left behind.
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' })
    proc = child
    exited = new Promise(resolve => child.once('exit', () => resolve()))
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (await accepts(port)) return
      await sleep(50)
    }
    throw new Error(`redis-server did not listen on ${port} within 10 s`)
  }
  const running = (): boolean => proc !== undefined && proc.exitCode === null && proc.signalCode === null
  const stop = async (): Promise<void> => {
    if (!running()) return
    proc?.kill('SIGKILL')
    await exited
  }
  const freeze = (): void => { if (running()) proc?.kill('SIGSTOP') }
  const thaw = (): void => { if (running()) proc?.kill('SIGCONT') }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, freeze, thaw }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}
