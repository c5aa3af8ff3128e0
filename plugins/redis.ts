import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection when REDIS_URL is set (rate-limit counters); else undefined. */
    redis: Redis | undefined
  }
}

const CONNECT_TIMEOUT_MS = 2000
const COMMAND_TIMEOUT_MS = 1000

// REDIS_URL: one connection shared by the plugins that keep cross-instance state there (the
// rate-limit store). Redis is an accelerator, never a reason to be down: the server starts
// while Redis is away, a command fails at once while disconnected and within a second on a
// connection that stops answering, instead of queueing, the client keeps
// reconnecting in the background, and its errors are logged, never thrown at the process.
export default fp(async (app) => {
  const url = app.config.rateLimit.redisUrl
  if (url === undefined) {
    app.decorate('redis', undefined)
    return
  }
  // Loaded only when configured: a server without Redis does not keep the client in memory.
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Commands issued while disconnected fail at once (the limits are then skipped) instead of
    // waiting for a reconnection attempt: that wait, about a second per limited request, took
    // the limited routes from ~120 to 2-5 requests/s while Redis was away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000)
  })
  let lastError = ''
  redis.on('error', (err: Error) => {
    // Reconnection repeats the same error every two seconds: log it when it changes.
    if (err.message === lastError) return
    lastError = err.message
    app.log.warn({ err: { message: err.message } }, 'redis connection error')
  })
  redis.on('ready', () => {
    if (lastError !== '') app.log.info('redis connection restored')
    lastError = ''
  })
  try {
    await redis.connect()
  } catch (err) {
    app.log.warn({ err: { message: (err as Error).message } }, 'redis not reachable at start; continuing and retrying in the background')
  }
  app.decorate('redis', redis)
  app.addHook('onClose', async () => {
    // QUIT waits for pending replies; with no connection there is nothing to wait for.
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect())
    else redis.disconnect()
  })
}, { name: 'redis', dependencies: ['config'] })
