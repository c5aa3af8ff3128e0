import fp from 'fastify-plugin'
import { vacuumEmbedded } from '../src/db/vacuum.js'
import { sweepStaleRefreshTokens } from '../src/repositories/refresh-tokens.js'

export interface RefreshCleanupOptions {
  /** Between sweeps that found no backlog. */
  intervalMs?: number
  /** After a sweep that stopped at its cap, with stale rows likely left. */
  catchUpMs?: number
  batch?: number
  maxBatches?: number
  /**
   * Embedded database: vacuum all of it once its oldest unfrozen transaction id is this old.
   * Half autovacuum_freeze_max_age's default, at which a real server would have started.
   */
  freezeAge?: number
}

// Expired and revoked refresh-token rows do not pile up: bounded batches are deleted every ten
// minutes. A sweep is capped (50 batches of 1000) so it never holds the database for long, but
// a cap per ten minutes is ~83 rows a second, fewer than a busy service's refreshes make stale:
// the table then grew without bound (found by a soak). A sweep that stops at its cap is followed
// by another soon, until one finds the backlog gone. Failures (database briefly away) are logged
// and retried at the next tick.
// On the embedded database, which has no autovacuum, each sweep ends with a VACUUM of what it
// needs (src/db/vacuum.ts); a real PostgreSQL server vacuums by itself.
export default fp<RefreshCleanupOptions>(async (app, opts) => {
  const { intervalMs = 10 * 60_000, catchUpMs = 10_000, batch = 1000, maxBatches = 50, freezeAge = 100_000_000 } = opts
  let running: Promise<unknown> | undefined
  let timer: NodeJS.Timeout | undefined
  let closing = false
  const schedule = (delayMs: number): void => {
    if (closing) return
    timer = setTimeout(sweep, delayMs)
    timer.unref()
  }
  function sweep (): void {
    running = sweepStaleRefreshTokens(app.db, batch, maxBatches)
      .then(async (n) => {
        if (app.dbKind !== 'postgres') await vacuumEmbedded(app.db, n, freezeAge)
        if (n > 0) app.log.info({ deleted: n }, 'stale refresh tokens deleted')
        return n === batch * maxBatches
      })
      .catch((err: unknown) => { app.log.warn({ err }, 'refresh token cleanup failed'); return false })
      .then((backlog) => { running = undefined; schedule(backlog ? catchUpMs : intervalMs) })
  }
  schedule(intervalMs)
  app.addHook('onClose', async () => {
    closing = true
    clearTimeout(timer)
    await running
  })
}, { name: 'refresh-cleanup', dependencies: ['db'] })
