import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { build, eachDatabase, json, uniqueUser } from '../helper.js'

// Every test here turns the limits on (the helper's default is off) and isolates itself by
// client IP (inject's remoteAddress), so one test's counters never touch another's.
let ipCounter = 0
const nextIp = () => `10.1.${Math.floor(++ipCounter / 250)}.${ipCounter % 250 + 1}`

function from (ip: string, headers: Record<string, string> = {}) {
  return { remoteAddress: ip, headers }
}

async function signinFrom (app: FastifyInstance, ip: string, username: string, password: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/api/auth/signin', payload: { username, password }, ...from(ip) })
}

async function signupFrom (app: FastifyInstance, ip: string, headers: Record<string, string> = {}): Promise<{ res: LightMyRequestResponse, user: ReturnType<typeof uniqueUser> }> {
  const user = uniqueUser('rl')
  const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: user, ...from(ip, headers) })
  return { res, user }
}

// `limit` is the limit that refused: a 429's x-ratelimit-* headers describe it, not the global
// limit that let the request in (which said 1000, 987 remaining on a signin 429).
// `minRetryAfter`: a bound that only the refusing limit's own window reaches (a shorter window,
// the global one's minute say, would lift the lock sooner than its variable says).
function assert429 (t: Test, res: LightMyRequestResponse, maxRetryAfter: number, limit: number, minRetryAfter = 1): void {
  t.equal(res.statusCode, 429)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = json(res)
  t.same(Object.keys(body).sort(), ['error', 'message', 'statusCode'])
  t.equal(body.statusCode, 429)
  t.equal(body.error, 'Too Many Requests')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter >= minRetryAfter && retryAfter <= maxRetryAfter, `Retry-After ${String(res.headers['retry-after'])} within ${minRetryAfter}..${maxRetryAfter}`)
  t.equal(res.headers['x-ratelimit-limit'], String(limit), 'x-ratelimit-limit')
  t.equal(res.headers['x-ratelimit-remaining'], '0', 'x-ratelimit-remaining')
  t.equal(res.headers['x-ratelimit-reset'], res.headers['retry-after'], 'x-ratelimit-reset')
}

eachDatabase(async (t, target) => {
  const app = await build(t, target, {
    env: { RATE_LIMIT: 'on', TRUST_PROXY: 'true', RATE_LIMIT_SIGNUP_MAX: '2', RATE_LIMIT_REFRESH_MAX: '2' }
  })

  async function registered (): Promise<{ username: string, password: string }> {
    const { res, user } = await signupFrom(app, nextIp())
    t.equal(res.statusCode, 201)
    return user
  }

  t.test('10 wrong passwords from one client, then 429 with Retry-After even for the right one', async (t) => {
    const user = await registered()
    const ip = nextIp()
    for (let i = 0; i < 10; i++) {
      t.equal((await signinFrom(app, ip, user.username, 'wrong-password')).statusCode, 401, `failure ${i + 1}`)
    }
    // The signin window (RATE_LIMIT_SIGNIN_WINDOW, 15 minutes), not the global one (a minute).
    assert429(t, await signinFrom(app, ip, user.username, 'wrong-password'), 15 * 60, 10, 15 * 60 / 2)
    assert429(t, await signinFrom(app, ip, user.username, user.password), 15 * 60, 10, 15 * 60 / 2)
    t.equal(json(await signinFrom(app, ip, user.username.toUpperCase(), user.password)).statusCode, 429, 'usernames count case-insensitively')
    // Another client signs in to the same account: the per-client limit is not a lockout.
    t.equal((await signinFrom(app, nextIp(), user.username, user.password)).statusCode, 200)
    // The same client may still sign in to another account.
    const other = await registered()
    t.equal((await signinFrom(app, ip, other.username, other.password)).statusCode, 200)
  })

  t.test('unknown usernames are counted like wrong passwords', async (t) => {
    const ip = nextIp()
    for (let i = 0; i < 10; i++) t.equal((await signinFrom(app, ip, 'nobody-here', 'whatever-pw')).statusCode, 401)
    assert429(t, await signinFrom(app, ip, 'nobody-here', 'whatever-pw'), 15 * 60, 10)
  })

  t.test('successful signins are not counted', async (t) => {
    const user = await registered()
    const ip = nextIp()
    for (let i = 0; i < 15; i++) t.equal((await signinFrom(app, ip, user.username, user.password)).statusCode, 200)
  })

  t.test('40 wrong passwords for one account from many clients end in 429', async (t) => {
    const user = await registered()
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) statuses.push((await signinFrom(app, nextIp(), user.username, 'wrong-password')).statusCode)
    t.same(statuses.slice(0, 30), Array(30).fill(401), 'the first 30 (3 x the per-client limit) are answered')
    t.same(statuses.slice(30), Array(10).fill(429), 'then the account is refused from anywhere')
    const res = await signinFrom(app, nextIp(), user.username, user.password)
    assert429(t, res, 15 * 60, 30, 15 * 60 / 2)
  })

  t.test('10 wrong current passwords on a password change, then 429 for that account from any client', async (t) => {
    const user = await registered()
    const session = json(await signinFrom(app, nextIp(), user.username, user.password))
    const change = async (currentPassword: string, ip = nextIp(), token = session.accessToken as string) =>
      await app.inject({
        method: 'POST',
        url: '/api/auth/password',
        payload: { currentPassword, newPassword: 'a-new-long-passphrase-9' },
        ...from(ip, { authorization: `Bearer ${token}` })
      })
    // Invalid tokens are 401s too, but not guesses at this account's password: not counted.
    for (let i = 0; i < 12; i++) t.equal((await change('wrong-password', nextIp(), 'not-a-token')).statusCode, 401)
    for (let i = 0; i < 10; i++) {
      const res = await change('wrong-password')
      t.equal(res.statusCode, 401, `failure ${i + 1}`)
      t.equal(json(res).message, 'Current password is incorrect')
    }
    const refused = await change(user.password)
    assert429(t, refused, 15 * 60, 10)
    t.match(json(refused).message, /^Too many wrong current passwords/)
    // The password was not changed by the refused attempt, and signin is a separate count.
    t.equal((await signinFrom(app, nextIp(), user.username, user.password)).statusCode, 200)
    // Another account's password change is unaffected.
    const other = await registered()
    const otherToken = json(await signinFrom(app, nextIp(), other.username, other.password)).accessToken as string
    t.equal((await change(other.password, nextIp(), otherToken)).statusCode, 200)
  })

  t.test('signup is limited per client IP', async (t) => {
    const ip = nextIp()
    t.equal((await signupFrom(app, ip)).res.statusCode, 201)
    t.equal((await signupFrom(app, ip)).res.statusCode, 201)
    // The signup window (RATE_LIMIT_SIGNUP_WINDOW, an hour), not refresh's or the global minute.
    assert429(t, (await signupFrom(app, ip)).res, 3600, 2, 3600 / 2)
    t.equal((await signupFrom(app, nextIp())).res.statusCode, 201, 'another client is unaffected')
  })

  // A user fixing typos in a signup form must not be locked out for the window: requests that
  // fail validation (400) are left to the global limit.
  t.test('signups and refreshes that fail validation do not count against their limits', async (t) => {
    const ip = nextIp()
    for (let i = 0; i < 5; i++) {
      t.equal((await app.inject({ method: 'POST', url: '/api/auth/signup', payload: { username: 'x' }, ...from(ip) })).statusCode, 400)
    }
    t.equal((await signupFrom(app, ip)).res.statusCode, 201)
    t.equal((await signupFrom(app, ip)).res.statusCode, 201)
    assert429(t, (await signupFrom(app, ip)).res, 3600, 2)

    const user = await registered()
    const refreshIp = nextIp()
    const refresh = async (payload: unknown) => await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: payload as object, ...from(refreshIp) })
    for (let i = 0; i < 5; i++) t.equal((await refresh({ refreshToken: 42 })).statusCode, 400)
    let token = json(await signinFrom(app, nextIp(), user.username, user.password)).refreshToken as string
    for (let i = 0; i < 2; i++) {
      const res = await refresh({ refreshToken: token })
      t.equal(res.statusCode, 200)
      token = json(res).refreshToken
    }
    assert429(t, await refresh({ refreshToken: token }), 60, 2)
  })

  t.test('behind a trusted proxy, X-Forwarded-For is the client', async (t) => {
    const proxy = nextIp()
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await signupFrom(app, proxy, { 'x-forwarded-for': nextIp() })).res.statusCode)
    t.same(statuses, [201, 201, 201, 201], 'four clients behind one proxy each get their own limit')
  })

  // An IPv6 subscriber is handed a whole /64: counting each address apart would give a guesser
  // 2^64 clients. And an IPv4 client seen through a dual-stack socket is still that client.
  t.test('an IPv6 /64 is one client, and an IPv4-mapped address is its IPv4 client', async (t) => {
    const subnet = `2001:db8:${++ipCounter}:7`
    t.equal((await signupFrom(app, `${subnet}::1`)).res.statusCode, 201)
    t.equal((await signupFrom(app, `${subnet}:ffff:ffff:ffff:ffff`)).res.statusCode, 201)
    assert429(t, (await signupFrom(app, `${subnet}:1234::abcd`)).res, 3600, 2)
    t.equal((await signupFrom(app, `2001:db8:${++ipCounter}:7::1`)).res.statusCode, 201, 'the next /64 is another client')

    const ip = nextIp()
    t.equal((await signupFrom(app, ip)).res.statusCode, 201)
    t.equal((await signupFrom(app, `::ffff:${ip}`)).res.statusCode, 201)
    assert429(t, (await signupFrom(app, ip)).res, 3600, 2)

    const user = await registered()
    for (let i = 0; i < 10; i++) {
      t.equal((await signinFrom(app, `${subnet}::${i + 100}`, user.username, 'wrong-password')).statusCode, 401, `failure ${i + 1}`)
    }
    assert429(t, await signinFrom(app, `${subnet}::beef`, user.username, user.password), 15 * 60, 10)
  })

  t.test('refresh is limited per client IP', async (t) => {
    const user = await registered()
    const ip = nextIp()
    const refresh = async (token: string) => await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: token }, ...from(ip) })
    let token = json(await signinFrom(app, nextIp(), user.username, user.password)).refreshToken as string
    for (let i = 0; i < 2; i++) {
      const res = await refresh(token)
      t.equal(res.statusCode, 200)
      token = json(res).refreshToken
    }
    assert429(t, await refresh(token), 60, 2)
  })
})

eachDatabase(async (t, target) => {
  const app = await build(t, target, {
    env: { RATE_LIMIT: 'on', RATE_LIMIT_GLOBAL_MAX: '3', RATE_LIMIT_GLOBAL_WINDOW: '1s', RATE_LIMIT_SIGNIN_MAX: '2', RATE_LIMIT_SIGNIN_WINDOW: '1s', CORS_ORIGIN: 'https://app.example.com' }
  })

  t.test('a generous global limit covers every route, /api/test/* included', async (t) => {
    const ip = nextIp()
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/api/test/all', ...from(ip) })).statusCode, 200)
    const res = await app.inject({ url: '/api/test/user', ...from(ip) })
    assert429(t, res, 1, 3)
  })

  // As for signup and signin: a subscriber handed a /64 must not get 2^64 global budgets.
  t.test('the global limit counts an IPv6 /64 as one client', async (t) => {
    const subnet = `2001:db8:${++ipCounter}:9`
    for (let i = 1; i <= 3; i++) t.equal((await app.inject({ url: '/api/test/all', ...from(`${subnet}::${i}`) })).statusCode, 200)
    assert429(t, await app.inject({ url: '/api/test/all', ...from(`${subnet}:abcd::4`) }), 1, 3)
    t.equal((await app.inject({ url: '/api/test/all', ...from(`2001:db8:${++ipCounter}:9::1`) })).statusCode, 200, 'the next /64 is another client')
  })

  // A scanner hammering unknown paths, or the documentation, spends the same budget as the API.
  t.test('unknown paths and the documentation count against the global limit', async (t) => {
    for (const [url, status] of [['/no/such/route', 404], ['/documentation/json', 200], ['/documentation', 200]] as const) {
      const ip = nextIp()
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url, ...from(ip) })).statusCode)
      t.same(statuses, [status, status, status], url)
      assert429(t, await app.inject({ url, ...from(ip) }), 1, 3)
    }
    const ip = nextIp()
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/api/nope', payload: {}, ...from(ip) })).statusCode, 404)
    assert429(t, await app.inject({ url: '/api/test/all', ...from(ip) }), 1, 3)
  })

  // @fastify/cors hands a preflight from an origin not listed to the not-found handler, which
  // answers it as any OPTIONS without Origin (405 on a known path); it must not be a way around
  // the limit, and is counted once.
  t.test('preflights from an origin not allowed count against the global limit', async (t) => {
    const ip = nextIp()
    const preflight = from(ip, { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' })
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', ...preflight })).statusCode, 405)
    assert429(t, await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', ...preflight }), 1, 3)
  })

  // The admin subtree checks tokens for all its routes; the limit must come first, or requests
  // without a valid token (a token-guessing loop) would get unlimited 401s.
  t.test('requests to the admin API without a valid token meet the global limit', async (t) => {
    for (const headers of [{}, { authorization: 'Bearer not-a-token' }] as Array<Record<string, string>>) {
      const ip = nextIp()
      for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/api/admin/users', ...from(ip, headers) })).statusCode, 401)
      assert429(t, await app.inject({ url: '/api/admin/audit', ...from(ip, headers) }), 1, 3)
    }
  })

  t.test('a flood of invalid signups and refreshes still meets the global limit', async (t) => {
    for (const url of ['/api/auth/signup', '/api/auth/refreshtoken']) {
      const ip = nextIp()
      for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url, payload: { nope: 1 }, ...from(ip) })).statusCode, 400, url)
      assert429(t, await app.inject({ method: 'POST', url, payload: { nope: 1 }, ...from(ip) }), 1, 3)
    }
  })

  t.test('without TRUST_PROXY, X-Forwarded-For is ignored', async (t) => {
    const ip = nextIp()
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await app.inject({ url: '/api/test/all', ...from(ip, { 'x-forwarded-for': nextIp() }) })).statusCode)
    t.same(statuses, [200, 200, 200, 429], 'a forged header does not buy a new limit')
  })

  t.test('/health and /ready are never limited', async (t) => {
    const ip = nextIp()
    for (let i = 0; i < 10; i++) {
      t.equal((await app.inject({ url: '/health', ...from(ip) })).statusCode, 200)
      t.equal((await app.inject({ url: '/ready', ...from(ip) })).statusCode, 200)
    }
  })

  // Every route but /health and /ready answers 429 once its client is over a limit (the global
  // one, or signup's and refresh's own): the document says so there, and only there.
  // With an admin token: the admin subtree authenticates (its own onRequest hook) before a
  // route's limiter counts, so only an authenticated request can meet the limit there.
  t.test('the OpenAPI document lists 429 with Retry-After on exactly the routes that can answer it', async (t) => {
    const doc = json(await app.inject({ url: '/documentation/json' }))
    const token = json(await signinFrom(app, nextIp(), 'rootadmin', 'admin-password-1')).accessToken as string
    for (const [path, ops] of Object.entries<Record<string, { responses: Record<string, unknown> }>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const ip = nextIp()
        // No such user: nothing is changed, whichever request gets through.
        const request = { method: method.toUpperCase() as InjectOptions['method'], url: path.replace('{id}', '2147483647'), ...from(ip, { authorization: `Bearer ${token}` }) }
        let limited = false
        // Beyond the largest limit in force here (refresh: 60 a minute).
        for (let i = 0; i <= 60 && !limited; i++) limited = (await app.inject(request)).statusCode === 429
        t.equal(op.responses['429'] !== undefined, limited, `${request.method} ${path}: 429 ${limited ? 'answered' : 'never answered'}`)
        if (!limited) continue
        t.match(op.responses['429'], {
          headers: {
            'retry-after': { schema: { type: 'integer' } },
            // What assert429 checks on every answered 429: the limit that refused it.
            'x-ratelimit-limit': { schema: { type: 'integer' } },
            'x-ratelimit-remaining': { schema: { type: 'integer' } },
            'x-ratelimit-reset': { schema: { type: 'integer' } }
          },
          content: { 'application/json': { schema: { required: ['statusCode', 'error', 'message'] } } }
        }, `${path}: the contract's error shape, Retry-After and the x-ratelimit-* headers`)
      }
    }
  })

  t.test('the signin lock lifts when its window ends', async (t) => {
    const ip = nextIp()
    t.equal((await signinFrom(app, ip, 'rootadmin', 'wrong-password')).statusCode, 401)
    t.equal((await signinFrom(app, ip, 'rootadmin', 'wrong-password')).statusCode, 401)
    t.equal((await signinFrom(app, ip, 'rootadmin', 'admin-password-1')).statusCode, 429)
    await sleep(1100)
    t.equal((await signinFrom(app, ip, 'rootadmin', 'admin-password-1')).statusCode, 200)
  })
})
