import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import { buildApp, type BuildOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'

export interface DatabaseTarget { name: 'embedded' | 'postgres', url: string }

export const JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef'
export const ADMIN = { username: 'rootadmin', email: 'rootadmin@example.com', password: 'admin-password-1' }

/** The embedded database, in memory: for tests of behaviour that is the same on every database. */
export const embedded: DatabaseTarget = { name: 'embedded', url: 'memory://' }

/** The embedded database always; real PostgreSQL too when TEST_DATABASE_URL is set. */
export const databases: DatabaseTarget[] = [
  embedded,
  ...(process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== ''
    ? [{ name: 'postgres' as const, url: process.env.TEST_DATABASE_URL }]
    : [])
]

/** Checks `done` every `stepMs` until it holds or `boundMs` pass; the assertions after it say which. */
export async function waitUntil (done: () => boolean | Promise<boolean>, boundMs = 10_000, stepMs = 20): Promise<void> {
  const started = Date.now()
  while (!(await done()) && Date.now() - started < boundMs) await new Promise(resolve => setTimeout(resolve, stepMs))
}

/** Runs the same tests once per database target, as subtests named after it. */
export function eachDatabase (fn: (t: Test, target: DatabaseTarget) => Promise<void>): void {
  for (const target of databases) {
    void t.test(target.name, async (t) => { await fn(t, target) })
  }
}

/**
 * A fresh, empty database on the real server: tap runs test files in parallel, so each app
 * gets its own database, dropped at teardown.
 */
export async function freshPostgresDatabase (t: Test, serverUrl: string): Promise<string> {
  const name = `rolegate_t_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: serverUrl })
    await c.connect()
    await c.query(`drop database if exists ${name} with (force)`)
    await c.end()
  })
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

export interface BuildTestOptions extends BuildOptions {
  env?: Record<string, string>
  /** Reuse this database URL as it is (e.g. to restart on the same data). */
  databaseUrl?: string
  /** Runs on the built app before ready(), e.g. to add a hook that watches every route. */
  beforeReady?: (app: FastifyInstance) => void
}

/** Builds the app against `target`, with test defaults; closed when `t` ends. */
export async function build (t: Test, target: DatabaseTarget, options: BuildTestOptions = {}): Promise<FastifyInstance> {
  const databaseUrl = options.databaseUrl ??
    (target.name === 'postgres' ? await freshPostgresDatabase(t, target.url) : target.url)
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    JWT_SECRET,
    DATABASE_URL: databaseUrl,
    ADMIN_USERNAME: ADMIN.username,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    ...options.env
  }, false)
  const app = await buildApp(config, options.logger !== undefined ? { logger: options.logger } : {})
  t.teardown(async () => { await app.close() })
  options.beforeReady?.(app)
  await app.ready()
  return app
}

let counter = 0
/** A username (and matching email) no other test in this process uses. */
export function uniqueUser (prefix = 'u'): { username: string, email: string, password: string } {
  counter += 1
  const username = `${prefix}${process.pid}x${counter}`.slice(0, 32)
  return { username, email: `${username}@example.com`, password: `pw-${username}-secret` }
}

export function json<T = any> (res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T
}

export async function post (app: FastifyInstance, url: string, payload?: unknown, headers: InjectOptions['headers'] = {}): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url, payload: payload as InjectOptions['payload'], headers })
}

export interface Session {
  id: number
  username: string
  password: string
  accessToken: string
  refreshToken: string
}

export async function signin (app: FastifyInstance, username: string, password: string): Promise<Session> {
  const res = await post(app, '/api/auth/signin', { username, password })
  if (res.statusCode !== 200) throw new Error(`signin failed: ${res.statusCode} ${res.body}`)
  const body = json(res)
  return { id: body.id, username, password, accessToken: body.accessToken, refreshToken: body.refreshToken }
}

export async function signinAdmin (app: FastifyInstance): Promise<Session> {
  return await signin(app, ADMIN.username, ADMIN.password)
}

/** Signs up a new user (roles granted by the bootstrap admin when asked) and signs it in. */
export async function newUser (app: FastifyInstance, roles?: string[]): Promise<Session> {
  const user = uniqueUser()
  const headers = roles !== undefined ? { authorization: `Bearer ${(await signinAdmin(app)).accessToken}` } : {}
  const res = await post(app, '/api/auth/signup', { ...user, ...(roles !== undefined ? { roles } : {}) }, headers)
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`)
  return await signin(app, user.username, user.password)
}

/** A log stream whose lines (one JSON entry each) are kept, and the warnings' messages among them. */
export function capturedLog (): { lines: string[], stream: Writable, warnings: () => string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
  const warnings = (): string[] => lines.map(line => JSON.parse(line) as { level: number, msg: string }).filter(entry => entry.level === 40).map(entry => entry.msg)
  return { lines, stream, warnings }
}
