// What the benchmark sends: the users and tokens it prepares, and one autocannon load per scenario.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { jsonHeaders, postJson, runLoad, type Load, type Measured } from './load.js'

export const scenarioNames = ['bare', 'all', 'user', 'admin', 'refresh', 'signin', 'signup', 'all_during_signin'] as const
export type ScenarioName = typeof scenarioNames[number]

export interface Fixture {
  runId: string
  /** Shared by every bench user: random, 16 chars, so never on a common-password list. */
  password: string
  usernames: string[]
  userToken: string
  adminToken: string
  /** Unused refresh tokens, one per sign-in; the refresh scenario consumes and replenishes them. */
  refreshTokens: string[]
}

export interface Connections {
  cheap: number
  hashing: number
  refresh: number
  probe: number
}

export function randomSecret (bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

/** Runs `fn` over `items` with at most `limit` in flight (enough to fill the hash thread pool). */
async function inBatches<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += limit) {
    out.push(...await Promise.all(items.slice(i, i + limit).map(fn)))
  }
  return out
}

async function signin (base: string, username: string, password: string): Promise<{ accessToken: string, refreshToken: string }> {
  const res = await postJson(`${base}/api/auth/signin`, { username, password })
  const { accessToken, refreshToken } = res.json
  if (res.status !== 200 || typeof accessToken !== 'string' || typeof refreshToken !== 'string') {
    throw new Error(`setup: signin of ${username} answered ${res.status} ${JSON.stringify(res.json)}`)
  }
  return { accessToken, refreshToken }
}

export async function prepare (base: string, runId: string, admin: { username: string, password: string },
  userCount: number, sessionCount: number, parallel: number): Promise<Fixture> {
  const password = randomSecret(12)
  const usernames = Array.from({ length: userCount }, (_, i) => `bu_${runId}_${i}`)
  await inBatches(usernames, parallel, async (username) => {
    const res = await postJson(`${base}/api/auth/signup`, { username, email: `${username}@example.com`, password })
    if (res.status !== 201) throw new Error(`setup: signup of ${username} answered ${res.status} ${JSON.stringify(res.json)}`)
  })
  const adminToken = (await signin(base, admin.username, admin.password)).accessToken
  const sessions = await inBatches(Array.from({ length: sessionCount }, (_, i) => usernames[i % userCount] ?? ''),
    parallel, async (username) => await signin(base, username, password))
  const userToken = sessions[0]?.accessToken
  if (userToken === undefined) throw new Error('setup: no user session')
  return { runId, password, usernames, userToken, adminToken, refreshTokens: sessions.map((s) => s.refreshToken) }
}

function content (base: string, path: string, body: string, conns: number, token?: string): Load {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` }
  return { url: base + path, connections: conns, expectStatus: 200, expectBody: body, request: { method: 'GET', headers } }
}

function signinLoad (base: string, fx: Fixture, conns: number): Load {
  const path = '/api/auth/signin'
  // Static bodies cycling over the pre-created users: no per-request work in the load generator.
  const requests = fx.usernames.map((username) => ({
    method: 'POST' as const, path, headers: jsonHeaders, body: JSON.stringify({ username, password: fx.password })
  }))
  return { url: base + path, connections: conns, expectStatus: 200, requests }
}

function signupLoad (base: string, fx: Fixture, conns: number): Load {
  const path = '/api/auth/signup'
  let n = 0
  return {
    url: base + path,
    connections: conns,
    expectStatus: 201,
    requests: [{
      method: 'POST',
      path,
      headers: jsonHeaders,
      // Every request a new account: a repeated name would measure the 409 path, not signup.
      setupRequest: (req) => {
        const username = `su_${fx.runId}_${n++}`
        return { ...req, body: JSON.stringify({ username, email: `${username}@example.com`, password: fx.password }) }
      }
    }]
  }
}

function refreshLoad (base: string, fx: Fixture, conns: number): Load {
  const path = '/api/auth/refreshtoken'
  // Rotation makes every refresh token single-use, so each request must send the token its
  // predecessor in the same chain received. autocannon resets its per-connection `context`
  // after each pass over `requests`, so it cannot carry the chain; a shared pool does the same
  // job: a request takes an unused token, its response puts the successor back. With
  // pipelining 1 at most `conns` tokens are in flight, and the fixture holds more than that.
  const pool = fx.refreshTokens
  return {
    url: base + path,
    connections: conns,
    expectStatus: 200,
    requests: [{
      method: 'POST',
      path,
      headers: jsonHeaders,
      // An empty pool means chains were lost to failures; the placeholder then fails visibly (401).
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ refreshToken: pool.shift() ?? 'pool-exhausted' }) }),
      onResponse: (status, body) => {
        if (status !== 200) return
        const next = (JSON.parse(body) as { refreshToken?: unknown }).refreshToken
        if (typeof next === 'string') pool.push(next)
      }
    }]
  }
}

/** Bare Fastify's `GET /`, the reference every cheap route is compared with. */
export function bareLoad (bareBase: string, c: Connections): Load {
  return content(bareBase, '/', '{"hello":"world"}', c.cheap)
}

export function scenarioLoads (bareBase: string, base: string, fx: Fixture, c: Connections): Record<Exclude<ScenarioName, 'all_during_signin'>, Load> {
  return {
    bare: bareLoad(bareBase, c),
    all: content(base, '/api/test/all', 'Public Content.', c.cheap),
    user: content(base, '/api/test/user', 'User Content.', c.cheap, fx.userToken),
    admin: content(base, '/api/test/admin', 'Admin Content.', c.cheap, fx.adminToken),
    refresh: refreshLoad(base, fx, c.refresh),
    signin: signinLoad(base, fx, c.hashing),
    signup: signupLoad(base, fx, c.hashing)
  }
}

/**
 * p99 of /api/test/all while a signin storm keeps the hash threads busy: the probe starts once
 * the storm is under way and ends before it, so every probe request meets a busy server.
 */
export async function allDuringSignin (base: string, fx: Fixture, c: Connections, warmS: number, measureS: number): Promise<{ probe: Measured, storm: Measured }> {
  const probe = content(base, '/api/test/all', 'Public Content.', c.probe)
  const storm = signinLoad(base, fx, c.hashing)
  await Promise.all([runLoad(probe, warmS), runLoad(storm, warmS)])
  const stormRun = runLoad(storm, measureS + 1)
  await sleep(500)
  const probeRun = await runLoad(probe, measureS)
  return { probe: probeRun, storm: await stormRun }
}
