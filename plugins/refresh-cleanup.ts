import fp from 'fastify-plugin'
import { sweepStaleRefreshTokens } from '../src/repositories/refresh-tokens.js'

const INTERVAL_MS = 10 * 60_000

// Expired and revoked refresh-token rows do not pile up: bounded batches are deleted every ten
// minutes. Failures (database briefly away) are logged and retried at the next tick.
export default fp(async (app) => {
  let running: Promise<unknown> | undefined
  const timer = setInterval(() => {
    if (running !== undefined) return
    running = sweepStaleRefreshTokens(app.db)
      .then(n => { if (n > 0) app.log.info({ deleted: n }, 'stale refresh tokens deleted') })
      .catch((err: unknown) => { app.log.warn({ err }, 'refresh token cleanup failed') })
      .finally(() => { running = undefined })
  }, INTERVAL_MS)
  timer.unref()
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'refresh-cleanup', dependencies: ['db'] })
