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
// while Redis is away, a command fails at once while disconnected instead of queueing, a
// connection that stops answering is dropped after a second, the client keeps reconnecting in
// the background, and an outage is logged once, never thrown at the process.
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
    // A connected Redis that stops answering (hung, paused, a network path silently dropping)
    // only timed commands out, one command timeout per limited request for as long as it hung.
    // Dropping the connection when nothing arrives within the command timeout turns a hang
    // into a disconnection, which the offline queue setting above already makes cheap. The
    // reconnection's handshake and ready check are commands too: against a hung server they
    // time out the same way, so the client never reports ready until Redis answers.
    socketTimeout: COMMAND_TIMEOUT_MS,
    // Commands in flight when the connection drops fail then, not a command timeout later
    // after waiting to be sent again: their requests have been answered, limits skipped, by then.
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000)
  })
  // One warning when Redis goes, one line when it is back: while it is away every reconnection
  // attempt fails again, and the reasons alternate (socket timeout, failed ready check).
  let away = false
  redis.on('error', (err: Error) => {
    if (away) {
      app.log.debug({ err: { message: err.message } }, 'redis still unavailable')
      return
    }
    away = true
    app.log.warn({ err: { message: err.message } }, 'REDIS_URL not answering: rate limits are skipped until Redis answers again')
  })
  redis.on('ready', () => {
    if (away) app.log.info('redis connection restored: rate limits apply again')
    away = false
  })
  try {
    await redis.connect()
  } catch (err) {
    // The connection's own error has usually said it already, with the reason ('Connection is
    // closed.' here): one warning for one outage.
    if (!away) app.log.warn({ err: { message: (err as Error).message } }, 'REDIS_URL not reachable at start: rate limits are skipped until Redis answers')
    away = true
  }
  app.decorate('redis', redis)
  app.addHook('onClose', async () => {
    // QUIT waits for pending replies; with no connection there is nothing to wait for.
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect())
    else redis.disconnect()
  })
}, { name: 'redis', dependencies: ['config'] })
