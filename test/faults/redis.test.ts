import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { freshPostgresDatabase, JWT_SECRET, post, uniqueUser } from '../helper.js'
import { freePort } from './harness.js'
import { redisUnavailable, startRedis } from './redis-server.js'

// With REDIS_URL, rate-limit counters live in Redis, so a limit holds across instances; Redis
// going away never takes rolegate down with it.
const skip = redisUnavailable()
const LIMIT = 3

interface Limited { app: FastifyInstance, hit: () => Promise<number> }

/** An instance with RATE_LIMIT=on and signups limited to LIMIT per client. */
async function instance (t: Test, redisUrl: string | undefined, env: Record<string, string> = {}): Promise<Limited> {
  const config = loadConfig({
    ...env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET,
    DATABASE_URL: await database(),
    RATE_LIMIT: 'on',
    RATE_LIMIT_SIGNUP_MAX: LIMIT,
    ...(redisUrl !== undefined ? { REDIS_URL: redisUrl } : {})
  }, false)
  const app = await buildApp(config)
  t.teardown(async () => { await app.close() })
  await app.ready()
  // The app's own rate-limit plugin is what is under test, not a stand-in.
  t.ok(app.hasDecorator('rateLimit'), 'the rate-limit plugin is registered')
  const hit = async () => (await post(app, '/api/auth/signup', uniqueUser('rl'))).statusCode
  return { app, hit }
}

let shared: Promise<string> | undefined
/**
 * Every instance here shares one database, as instances behind a load balancer do: a fresh one
 * on TEST_DATABASE_URL's server when set (dropped at the end), else each gets an in-memory one.
 */
async function database (): Promise<string> {
  const server = process.env.TEST_DATABASE_URL
  if (server === undefined || server === '') return 'memory://'
  // Dropped when the whole file ends (the root test), not when the first subtest does.
  shared ??= freshPostgresDatabase(t, server)
  return await shared
}

t.test('shared rate limits in Redis', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const redis = await startRedis(t)
  // One after the other: the embedded database's start is CPU-bound, in parallel it only slows both.
  const a = await instance(t, redis.url)
  const b = await instance(t, redis.url)

  t.test('two instances count against one limit', async (t) => {
    t.equal(a.app.redis?.status, 'ready', 'instance A is connected to Redis')
    const statuses = [await a.hit(), await b.hit(), await a.hit(), await b.hit(), await a.hit()]
    t.same(statuses.map(s => s < 300), [true, true, true, false, false], `${LIMIT} requests pass across both instances, then both refuse`)
    t.same(statuses.slice(LIMIT), [429, 429])
    t.ok(((await a.app.redis?.keys('*'))?.length ?? 0) > 0, 'the counters are keys in Redis')
  })

  // In Redis every limiter shares one key space. The global limit's key was the client address
  // alone, which behind a trusting proxy is whatever X-Forwarded-For says: spelled as another
  // limiter's key, 30 requests for public content locked an account that had failed no signin
  // (found by fuzzing).
  t.test('no client address can be spelled to count into another limit', async (t) => {
    const proxied = await instance(t, redis.url, { TRUST_PROXY: 'loopback' })
    const victim = uniqueUser('kim')
    t.equal((await post(proxied.app, '/api/auth/signup', victim, { 'x-forwarded-for': '10.44.0.9' })).statusCode, 201)
    for (let i = 0; i < 30; i++) {
      const res = await proxied.app.inject({ url: '/api/test/all', headers: { 'x-forwarded-for': `undefinedundefined-signin-account:${victim.username.toLowerCase()}` } })
      t.equal(res.statusCode, 200)
    }
    const signin = await post(proxied.app, '/api/auth/signin', { username: victim.username, password: victim.password }, { 'x-forwarded-for': '10.44.0.1' })
    t.equal(signin.statusCode, 200, `the account is not locked (got ${signin.statusCode} ${signin.body})`)
  })

  t.test('Redis going away does not take rolegate down, and it reconnects', async (t) => {
    await redis.stop()
    const started = Date.now()
    const during = await a.hit()
    t.ok(Date.now() - started < 3000, 'a limited route answers within the Redis command timeout')
    t.ok(during < 300, `requests are served (limits skipped) while Redis is down (got ${during})`)
    // Each used to wait for a reconnection attempt (about a second): a Redis outage took the
    // limited routes from ~120 to 2-5 requests/s (found by fuzzing). While it is away the
    // limits are skipped at once.
    const five = Date.now()
    for (let i = 0; i < 5; i++) t.ok(await a.hit() < 300, 'served while Redis is down')
    t.ok(Date.now() - five < 2500, `five limited requests while Redis is down took ${Date.now() - five} ms (each waited ~1 s)`)
    t.equal((await a.app.inject({ url: '/health' })).statusCode, 200)
    t.equal((await a.app.inject({ url: '/api/test/all' })).statusCode, 200)

    await redis.start()
    const deadline = Date.now() + 10_000
    while (a.app.redis?.status !== 'ready' && Date.now() < deadline) await sleep(100)
    t.equal(a.app.redis?.status, 'ready', 'the client reconnected by itself')
    // The restarted Redis is empty: a fresh window, counted across instances again.
    const statuses = [await b.hit(), await a.hit(), await b.hit(), await a.hit()]
    t.same(statuses.slice(LIMIT), [429], 'the shared limit holds again')
  })

  t.test('an instance starts and serves even when Redis is unreachable', async (t) => {
    const { app, hit } = await instance(t, `redis://127.0.0.1:${await freePort()}`)
    t.not(app.redis?.status, 'ready', 'started without a Redis connection')
    t.equal((await app.inject({ url: '/health' })).statusCode, 200)
    t.ok(await hit() < 300, 'limited routes are served (limits skipped) rather than failing')
  })
})

t.test('without REDIS_URL there is no Redis connection (counters stay in memory)', { timeout: 60_000 }, async (t) => {
  const { app } = await instance(t, undefined)
  t.equal(app.redis, undefined)
})
