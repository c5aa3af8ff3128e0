import fastifyRateLimit, { normalizeIP, type RateLimitOptions, type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../src/config.js'
import { HttpError } from '../src/errors.js'
import { prependRouteHook, routeMethods } from '../src/route-hooks.js'

// Routes that are never limited: orchestrators probe them, and a 429 there would get a healthy
// instance restarted.
export const NEVER_LIMITED: ReadonlySet<string> = new Set(['/health', '/ready'])
const SIGNIN = '/api/auth/signin'
// A password change checks the current password: someone holding a stolen access token could
// otherwise guess it at the global rate and keep the account for good.
const PASSWORD_CHANGE = '/api/auth/password'
// Failures for one account from every client together may reach this multiple of the per-client
// limit before that account's signins answer 429. Higher than the per-client limit, so one
// client cannot lock a user out, and bounded by the window: the lock lifts by itself.
export const ACCOUNT_FAILURE_FACTOR = 3
// Counters kept in memory per limit; large enough that a client cannot flush its own counter
// by spraying other keys within one window.
const LOCAL_CACHE_SIZE = 100_000

type Window = Config['rateLimit']['global']

/**
 * Where counters live: in memory for one instance, or in Redis when REDIS_URL is set, so every
 * limit, the signin failure counters included, holds across instances. If Redis is briefly
 * away, requests are served unlimited (skipOnError) rather than refused.
 */
function storeOptions (redis: Redis | undefined): Partial<RateLimitPluginOptions> {
  return redis === undefined
    ? { cache: LOCAL_CACHE_SIZE }
    : { redis, nameSpace: 'rolegate-rl-', skipOnError: true }
}

// A 429 describes the limit that refused it. The x-ratelimit-* headers the global limit set
// earlier in the request (1000, 987 remaining) would contradict a signin's or a signup's 429;
// the error handler writes these over them, so only refusals pay for it.
function tooManyRequests ({ max, ttl }: { max: number, ttl: number }, what = 'Too many requests'): HttpError {
  const seconds = String(Math.max(1, Math.ceil(ttl / 1000)))
  return new HttpError(429, `${what}, retry in ${seconds} seconds`, {
    'retry-after': seconds,
    'x-ratelimit-limit': String(max),
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': seconds
  })
}

// Whether the route's authenticate hook accepted a token. Read without the type's promise: on a
// 401 from that hook the request has no user.
function hasVerifiedUser (request: FastifyRequest): boolean {
  return (request as { user?: unknown }).user != null
}

function usernameKey (request: FastifyRequest): string {
  const username = (request.body as { username?: unknown } | undefined)?.username
  // Usernames are unique case-insensitively, so are their counters.
  return typeof username === 'string' ? username.toLowerCase() : ''
}

// Limits live here, not in route files: a generous global limit on every route, stricter ones
// per client IP on valid signups and refreshes, on signin a count of FAILED attempts per client IP +
// username and per username from anywhere, and on password change a count of wrong current
// passwords per account. Successes are not counted.
export default fp(async (app) => {
  const limits = app.config.rateLimit
  if (!limits.enabled) return

  await app.register(fastifyRateLimit, {
    ...storeOptions(app.redis),
    // Routes are attached one by one below, so /health and /ready get no hook at all.
    global: false,
    max: limits.global.max,
    timeWindow: limits.global.windowMs,
    // Named like every limiter's below: the address alone (which behind a trusting proxy is
    // whatever X-Forwarded-For says) could be spelled as another limiter's key in Redis.
    keyGenerator: (request) => `global:${normalizeIP(request.ip)}`,
    hook: 'onRequest',
    errorResponseBuilder: (_request, context) => tooManyRequests(context)
  })

  // Every limiter names its keys: in Redis, the limiters made here share one key space (the
  // plugin prefixes child stores by route, and these are not attached to a route yet).
  const perIp = (name: string, window: Window): RateLimitOptions => ({
    max: window.max,
    timeWindow: window.windowMs,
    cache: LOCAL_CACHE_SIZE,
    keyGenerator: (request) => `${name}:${normalizeIP(request.ip)}`
  })
  const globalLimit = app.rateLimit()
  // Counted at preHandler, once the body has passed validation: a user fixing typos in a form
  // must not use up an hour's signups. Invalid requests meet the global limit at onRequest.
  // Through createRateLimit, since a second app.rateLimit() hook in the same request would be
  // skipped (the plugin marks a request as limited once).
  const limitValidRequests = (limit: ReturnType<typeof app.createRateLimit>) => async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const state = await limit(request)
    // isAllowed: on the plugin's allow list, so not counted at all (not "under the limit").
    if (state.isAllowed) return
    if (state.isExceeded) throw tooManyRequests(state)
    // This route's own limit is the one a client meets first: its headers replace the global's.
    void reply.header('x-ratelimit-limit', state.max).header('x-ratelimit-remaining', state.remaining).header('x-ratelimit-reset', state.ttlInSeconds)
  }
  const signupLimit = limitValidRequests(app.createRateLimit(perIp('signup', limits.signup)))
  const refreshLimit = limitValidRequests(app.createRateLimit(perIp('refresh', limits.refresh)))

  const { max, windowMs } = limits.signin
  const failureCounter = (maxFailures: number, key: (request: FastifyRequest) => string) => {
    // `cache` sizes the in-memory store's map; createRateLimit passes it on but does not type it.
    const options: RateLimitOptions = { max: maxFailures, timeWindow: windowMs, cache: LOCAL_CACHE_SIZE, keyGenerator: key, skipOnError: true }
    return app.createRateLimit(options)
  }
  const signinCounters = [
    failureCounter(max, (request) => `signin-client:${normalizeIP(request.ip)}|${usernameKey(request)}`),
    failureCounter(max * ACCOUNT_FAILURE_FACTOR, (request) => `signin-account:${usernameKey(request)}`)
  ]
  // Keyed by the account the access token names (authenticate has run by preHandler): the
  // guesser holds that token, so a new IP buys nothing. The same window and count as a
  // client's signins, and like them the lock lifts by itself.
  const passwordCounters = [
    failureCounter(max, (request) => `password-account:${request.user.id}`)
  ]

  type Counter = ReturnType<typeof failureCounter>
  // Before the password is checked: refuse once any failure count has reached its limit.
  const refuseAfterTooManyFailures = (counters: Counter[], what: string) => async (request: FastifyRequest): Promise<void> => {
    for (const counter of counters) {
      const state = await counter(request, { increment: false })
      if (!state.isAllowed && state.remaining === 0) throw tooManyRequests(state, what)
    }
  }

  // Counted before the 401 leaves, so a client cannot race its next guess past the count.
  const countFailures = (counters: Counter[], isGuess = (_request: FastifyRequest) => true) => async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    if (reply.statusCode === 401 && isGuess(request)) {
      for (const counter of counters) await counter(request)
    }
    return payload
  }

  app.addHook('onRoute', (route) => {
    if (NEVER_LIMITED.has(route.url)) return
    const isPost = routeMethods(route).includes('POST')
    prependRouteHook(route, 'onRequest', globalLimit)
    if (isPost && route.url === '/api/auth/signup') prependRouteHook(route, 'preHandler', signupLimit)
    if (isPost && route.url === '/api/auth/refreshtoken') prependRouteHook(route, 'preHandler', refreshLimit)
    if (isPost && route.url === SIGNIN) {
      prependRouteHook(route, 'preHandler', refuseAfterTooManyFailures(signinCounters, 'Too many failed sign-in attempts'))
      prependRouteHook(route, 'onSend', countFailures(signinCounters))
    }
    if (isPost && route.url === PASSWORD_CHANGE) {
      // preHandler: after the route's own onRequest has verified the token. A 401 without a
      // verified token (request.user unset) is not a password guess and is not counted.
      prependRouteHook(route, 'preHandler', refuseAfterTooManyFailures(passwordCounters, 'Too many wrong current passwords'))
      prependRouteHook(route, 'onSend', countFailures(passwordCounters, hasVerifiedUser))
    }
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis'] })
