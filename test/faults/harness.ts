// Plumbing for the fault suite: a throwaway PostgreSQL cluster the test owns (so it may kill it),
// rolegate as a real child process (so signals and crashes are real), and a tiny HTTP client
// that reports resets and refusals instead of hiding them behind retries.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import pg from 'pg'
import type { Test } from 'tap'
import ts from 'typescript'
import { SERVER_NODE_FLAGS } from '../../src/server-flags.js'
import { JWT_SECRET } from '../helper.js'

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '../..')
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'

/** Why the PostgreSQL fault scenarios cannot run here, or undefined when they can. */
export function postgresUnavailable (): string | undefined {
  if (!existsSync(path.join(PG_BIN, 'initdb'))) return `PostgreSQL 15 binaries not found in ${PG_BIN} (set PG_BIN)`
  if (process.getuid?.() !== 0) return 'the fault suite starts its own PostgreSQL with runuser and needs root'
  return undefined
}

/** Asks the OS for a free port (a small race until the child binds it). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

export interface Cluster {
  port: number
  /** postgres:// URL of database `name` (default rolegate). */
  url: (name?: string) => string
  stop: (mode: 'immediate' | 'fast') => Promise<void>
  start: () => Promise<void>
  query: (sql: string, params?: unknown[]) => Promise<any[]>
  /** SIGSTOP / SIGCONT the whole server: it hangs without refusing or closing anything. */
  freeze: () => Promise<void>
  thaw: () => Promise<void>
}

/** A fresh PostgreSQL 15 cluster with a `rolegate` database, removed when `t` ends. */
export async function startPostgres (t: Test): Promise<Cluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-fault-pg-'))
  const data = path.join(dir, 'data')
  await mkdir(data)
  const { uid, gid } = await postgresIds()
  await chown(dir, uid, gid)
  await chown(data, uid, gid)
  await chmod(data, 0o700)
  const port = await freePort()
  const asPostgres = async (...args: string[]): Promise<void> => {
    await run('runuser', ['-u', 'postgres', '--', ...args], { timeout: 60_000 })
  }
  await asPostgres(path.join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres')
  const pgCtl = path.join(PG_BIN, 'pg_ctl')
  const start = async (): Promise<void> => {
    await asPostgres(pgCtl, '-D', data, '-l', path.join(dir, 'pg.log'), '-w', '-t', '30', 'start', '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`)
  }
  const stop = async (mode: 'immediate' | 'fast'): Promise<void> => {
    await asPostgres(pgCtl, '-D', data, '-m', mode, '-w', 'stop')
  }
  await start()
  t.teardown(async () => {
    // A scenario that failed while the server was frozen must not leave pg_ctl waiting on it.
    for (const pid of await clusterPids(data).catch(() => [])) {
      try { process.kill(pid, 'SIGCONT') } catch {}
    }
    await stop('immediate').catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })
  const url = (name = 'rolegate'): string => `postgres://postgres@127.0.0.1:${port}/${name}`
  const query = async (sql: string, params: unknown[] = []): Promise<any[]> => {
    const client = new pg.Client({ connectionString: url() })
    await client.connect()
    try {
      return (await client.query(sql, params)).rows
    } finally {
      await client.end()
    }
  }
  const admin = new pg.Client({ connectionString: url('postgres') })
  await admin.connect()
  await admin.query('create database rolegate')
  await admin.end()
  const signalAll = async (signal: NodeJS.Signals): Promise<void> => {
    for (const pid of await clusterPids(data)) process.kill(pid, signal)
  }
  return { port, url, stop, start, query, freeze: async () => { await signalAll('SIGSTOP') }, thaw: async () => { await signalAll('SIGCONT') } }
}

/** The postmaster (first line of postmaster.pid) and its children, read from /proc. */
async function clusterPids (data: string): Promise<number[]> {
  const postmaster = Number((await readFile(path.join(data, 'postmaster.pid'), 'utf8')).split('\n')[0])
  const pids = [postmaster]
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    // Fields after the parenthesised command name: state, ppid, ...
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === postmaster) pids.push(Number(entry))
  }
  return pids
}

async function postgresIds (): Promise<{ uid: number, gid: number }> {
  const { stdout } = await run('id', ['-u', 'postgres'])
  const { stdout: g } = await run('id', ['-g', 'postgres'])
  return { uid: Number(stdout.trim()), gid: Number(g.trim()) }
}

let compiled: Promise<string> | undefined
/**
 * The server as plain JavaScript, transpiled file by file (type-checking is `npm run
 * typecheck`'s job): a child starts in about a second instead of the ~13 s a TypeScript loader
 * needs. Written under node_modules/.cache so imports resolve the project's packages.
 */
export async function compiledServer (t: Test): Promise<string> {
  compiled ??= (async () => {
    const out = path.join(ROOT, 'node_modules', '.cache', 'rolegate-faults', `${process.pid}-${userInfo().uid}`)
    for (const folder of ['src', 'plugins', 'routes', 'migrations']) await transpileTree(path.join(ROOT, folder), path.join(out, folder))
    await writeFile(path.join(out, 'package.json'), '{"type":"module"}')
    return out
  })()
  const out = await compiled
  // Compiled again by the next test that asks, once this one has removed it.
  t.teardown(async () => {
    compiled = undefined
    await rm(out, { recursive: true, force: true })
  })
  return path.join(out, 'src', 'server.cjs')
}

async function transpileTree (from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    if (entry.isDirectory()) {
      await transpileTree(source, path.join(to, entry.name))
    } else if (/\.c?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      // A .cts file (the server's entry) is CommonJS; NodeNext emits it so and keeps its import().
      const module = entry.name.endsWith('.cts') ? ts.ModuleKind.NodeNext : ts.ModuleKind.ESNext
      const { outputText } = ts.transpileModule(await readFile(source, 'utf8'), {
        compilerOptions: { module, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
        fileName: source
      })
      await writeFile(path.join(to, entry.name.replace(/\.ts$/, '.js').replace(/\.cts$/, '.cjs')), outputText)
    }
  }
}

export interface Instance {
  url: string
  proc: ChildProcess
  /** Everything the process logged so far (JSON lines on stdout, anything on stderr). */
  output: () => string
  alive: () => boolean
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string>
}

/** Starts rolegate in its own process and waits (bounded) until /health answers. */
export async function startRolegate (t: Test, env: Record<string, string>, name = 'rolegate'): Promise<Instance> {
  const server = await compiledServer(t)
  const port = await freePort()
  // A clean environment: nothing of tap's (coverage, loaders) leaks into the server under test.
  // tap also adds its own NODE_OPTIONS (an --import preload) to every child it sees spawned, so
  // the server is started through env(1) to drop it: a preload runs before the server's entry,
  // and the server would not start as it does in production (see thread-pool.test.ts). The
  // Node options are production's too (npm start).
  const proc = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, ...SERVER_NODE_FLAGS, server], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      JWT_SECRET,
      LOG_LEVEL: 'info',
      // These scenarios drive more signups from one client than the per-IP limit allows; the
      // limits have their own tests (test/security, test/faults/redis.test.ts).
      RATE_LIMIT: 'off',
      DATA_DIR: path.join(tmpdir(), `rolegate-fault-data-${port}`),
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const keep = (chunk: Buffer): void => { output += chunk.toString() }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  let alive = true
  const exited = new Promise<number | string>(resolve => {
    proc.once('exit', (code, signal) => { alive = false; resolve(code ?? signal ?? 'unknown') })
  })
  t.teardown(async () => {
    if (!alive) return
    proc.kill('SIGKILL')
    await exited
  })
  const instance: Instance = { url: `http://127.0.0.1:${port}`, proc, output: () => output, alive: () => alive, exited }
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (!alive) throw new Error(`${name} exited before it was ready:\n${output}`)
    const res = await send(instance, 'GET', '/health', undefined, 1000)
    if (res.status === 200) return instance
    await sleep(100)
  }
  throw new Error(`${name} did not answer /health within 30 s:\n${output}`)
}

export interface Outcome {
  /** HTTP status, or 0 when the request got no response. */
  status: number
  /** Network error code when status is 0 (ECONNREFUSED, ECONNRESET, TIMEOUT...). */
  error?: string
  headers: Record<string, string | string[] | undefined>
  body: any
  ms: number
}

/** One request on its own connection (no keep-alive, no retry), bounded by `timeoutMs`. */
export async function send (instance: { url: string }, method: string, route: string, body?: unknown, timeoutMs = 15_000): Promise<Outcome> {
  const started = performance.now()
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return await new Promise<Outcome>((resolve) => {
    const req = httpRequest(`${instance.url}${route}`, {
      method,
      agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      timeout: timeoutMs
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('error', (err: NodeJS.ErrnoException) => resolve(failed(err.code ?? err.message)))
      res.on('end', () => {
        let parsed: unknown = text
        try { parsed = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, ms: performance.now() - started })
      })
    })
    const failed = (error: string): Outcome => ({ status: 0, error, headers: {}, body: undefined, ms: performance.now() - started })
    req.on('timeout', () => { req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })) })
    req.on('error', (err: NodeJS.ErrnoException) => resolve(failed(err.code ?? err.message)))
    req.end(payload)
  })
}

let counter = 0
/** A signup body no other scenario in this process uses. */
export function newAccount (prefix: string): { username: string, email: string, password: string } {
  counter += 1
  const username = `${prefix}${process.pid}n${counter}`.slice(0, 32)
  return { username, email: `${username}@example.com`, password: `pw-${username}-secret` }
}

/** Lines the server logged at error level or above (pino: level >= 50). */
export function errorLines (output: string): string[] {
  return output.split('\n').filter(line => {
    try { return (JSON.parse(line) as { level?: number }).level! >= 50 } catch { return line.trim().length > 0 }
  })
}
