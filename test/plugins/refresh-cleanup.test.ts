import Fastify from 'fastify'
import fp from 'fastify-plugin'
import refreshCleanup from '../../plugins/refresh-cleanup.js'
import { issueRefreshToken } from '../../src/repositories/refresh-tokens.js'
import { build, eachDatabase, newUser } from '../helper.js'
import { setTokenRow } from '../routes/api/auth/sessions-helper.js'

// A sweep is capped so it never holds the database for long, and ran every ten minutes: at most
// 50,000 rows, ~83 a second, fewer than a busy service's refreshes make stale, so the table grew
// without bound (found by a soak). A sweep that stops at its cap is now followed by another soon.
eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('a sweep that stops at its cap is followed by another soon, until the backlog is gone', async (t) => {
    const s = await newUser(app)
    const stale = 12
    for (let i = 0; i < stale; i++) {
      const { token } = await issueRefreshToken(app.db, s.id, 3_600_000)
      await setTokenRow(app, token, { expires_at: new Date(Date.now() - 1000) })
    }
    const countStale = async (): Promise<number> => Number((await app.db.selectFrom('refresh_tokens')
      .select(eb => eb.fn.countAll().as('n')).where('user_id', '=', s.id).where('expires_at', '<', new Date()).executeTakeFirstOrThrow()).n)
    t.equal(await countStale(), stale)

    // The cleanup alone, on this app's database: one row a sweep, a sweep a second when there is
    // no backlog. At that pace the 12 rows take 12 s; catching up 20 ms apart, about 1.3 s.
    const cleanup = Fastify({ logger: false })
    await cleanup.register(fp(async (f) => { f.decorate('db', app.db) }, { name: 'db' }))
    await cleanup.register(refreshCleanup, { intervalMs: 1000, catchUpMs: 20, batch: 1, maxBatches: 1 })
    await cleanup.ready()
    const started = Date.now()
    while (await countStale() > 0 && Date.now() - started < 6000) await new Promise(resolve => setTimeout(resolve, 100))
    await cleanup.close()
    t.equal(await countStale(), 0, `the backlog is gone within 6 s (${Date.now() - started} ms), not one row a second`)
    t.equal(Number((await app.db.selectFrom('refresh_tokens').select(eb => eb.fn.countAll().as('n')).where('user_id', '=', s.id).executeTakeFirstOrThrow()).n), 1,
      'the live token from signup stays')
  })
})
