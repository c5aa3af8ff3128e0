import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { CompiledQuery, sql } from 'kysely'
import refreshCleanup, { type RefreshCleanupOptions } from '../../plugins/refresh-cleanup.js'
import { deleteStaleRefreshTokens, issueRefreshToken, sweepStaleRefreshTokens } from '../../src/repositories/refresh-tokens.js'
import { build, capturedLog, eachDatabase, newUser, waitUntil } from '../helper.js'
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
    const cleanup = await cleanupOn(app, { intervalMs: 1000, catchUpMs: 20, batch: 1, maxBatches: 1 })
    const started = Date.now()
    await waitUntil(async () => await countStale() === 0, 6000, 100)
    await cleanup.close()
    t.equal(await countStale(), 0, `the backlog is gone within 6 s (${Date.now() - started} ms), not one row a second`)
    t.equal(Number((await app.db.selectFrom('refresh_tokens').select(eb => eb.fn.countAll().as('n')).where('user_id', '=', s.id).executeTakeFirstOrThrow()).n), 1,
      'the live token from signup stays')
  })

  // Each cleanup batch read the whole table, twice: no index served `revoked_at`, and `id in
  // (...)` let the planner scan the table again for the deletion itself. With 200k live tokens a
  // batch held the embedded database, and so the event loop, ~200 ms, and a sweep ~3 s (a soak
  // saw a 221 ms stall). The plans are checked rather than the time: both the plan made for the
  // values (real PostgreSQL; node-postgres sends unnamed statements) and the one made without
  // them, which the embedded database may settle on for its named prepared statements.
  t.test('a cleanup batch reads indexes, not every live token', async (t) => {
    const s = await newUser(app)
    const insertTokens = async (n: number, kind: string, expiresAt: string, revokedAt: string | null): Promise<void> => {
      await sql`insert into refresh_tokens (user_id, family_id, token_hash, expires_at, revoked_at)
        select ${s.id}, gen_random_uuid(), sha256((${kind} || g)::bytea), now() + ${expiresAt}::interval, ${revokedAt}::interval + now()
        from generate_series(1, ${n}::int) g`.execute(app.db)
    }
    // Enough live rows that reading them all costs the planner more than a few index pages.
    await insertTokens(5000, 'live', '7 days', null)
    await insertTokens(150, 'expired', '-1 hour', null)
    await insertTokens(150, 'revoked', '5 days', '-2 days')
    await insertTokens(150, 'both', '-1 hour', '-2 days')
    await insertTokens(150, 'recently-revoked', '5 days', '-1 hour')
    await sql`analyze refresh_tokens`.execute(app.db)

    const batch = await capturedStatement(app, async (db) => await deleteStaleRefreshTokens(db, 100))
    t.equal(batch.result, 100, 'a full batch while stale rows remain')
    const customPlan = await explain(app, batch.query)
    t.notMatch(customPlan, /Seq Scan on refresh_tokens\b/, 'planned for its values: no sequential scan')
    const genericPlan = await explainGeneric(app, batch.query)
    t.notMatch(genericPlan, /Seq Scan on refresh_tokens\b/, 'planned without its values: no sequential scan')

    t.equal(await sweepStaleRefreshTokens(app.db, 100), 350, 'the rest goes, a row both expired and revoked counted once')
    const left = await app.db.selectFrom('refresh_tokens').select(eb => eb.fn.countAll<string>().as('n'))
      .where('user_id', '=', s.id).executeTakeFirstOrThrow()
    t.equal(Number(left.n), 5000 + 150 + 1, 'live tokens, recently revoked ones and the signin\'s own stay')
    await app.db.deleteFrom('refresh_tokens').where('user_id', '=', s.id).execute()
  })

  // The embedded database runs without autovacuum (single-user PostgreSQL): the space of deleted
  // rows was never reused, so the table and its indexes grew by every token ever issued, however
  // many the cleanup deleted (and its transaction ids would run out some day, unfrozen).
  t.test('on the embedded database, a cleanup vacuums, so deleted tokens\' space is reused', {
    skip: target.name === 'postgres' && 'real PostgreSQL vacuums by itself (autovacuum)'
  }, async (t) => {
    const s = await newUser(app)
    const log = capturedLog()
    const cleanup = await cleanupOn(app, { intervalMs: 50 }, { level: 'info', stream: log.stream })
    const sweeps = (): number => log.lines.filter(line => line.includes('stale refresh tokens deleted')).length
    const tableBytes = async (): Promise<number> =>
      (await sql<{ bytes: number }>`select pg_total_relation_size('refresh_tokens')::int as bytes`.execute(app.db)).rows[0]?.bytes ?? NaN
    const sizes: number[] = []
    for (let round = 1; round <= 4; round++) {
      await sql`insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
        select ${s.id}, gen_random_uuid(), sha256((${`round-${round}-`} || g)::bytea), now() - interval '1 hour'
        from generate_series(1, 5000) g`.execute(app.db)
      await waitUntil(() => sweeps() >= round)
      t.equal(sweeps(), round, `round ${round}: swept`)
      sizes.push(await tableBytes())
    }
    await cleanup.close()
    // The first rounds leave the indexes some half-empty pages; from then on the space is reused.
    // Without a VACUUM each round added its 5000 rows' worth (~1.3 MB here) again.
    t.ok(Number(sizes[3]) <= Number(sizes[1]) * 1.1, `rounds 3 and 4 grow the table less than 10%: ${sizes.join(', ')} bytes after each round`)
    t.equal(await lastVacuum(app, 'users'), null, 'the rest of the database waits until its ids grow old (~100 ms a time)')
  })

  t.test('on the embedded database, a cleanup vacuums all of it once its transaction ids are old', {
    skip: target.name === 'postgres' && 'real PostgreSQL vacuums by itself (autovacuum)'
  }, async (t) => {
    const cleanup = await cleanupOn(app, { intervalMs: 20, freezeAge: 0 })
    await waitUntil(async () => await lastVacuum(app, 'users') !== null)
    await cleanup.close()
    t.not(await lastVacuum(app, 'users'), null, 'a table the cleanup never deletes from is vacuumed (and frozen) too')
  })

  // A VACUUM holds the embedded database, and so the event loop, a few ms: a sweep that deleted
  // nothing has no space to give back and leaves it out.
  t.test('on the embedded database, a sweep that deletes nothing does not vacuum', {
    skip: target.name === 'postgres' && 'real PostgreSQL vacuums by itself (autovacuum)'
  }, async (t) => {
    await sweepStaleRefreshTokens(app.db)
    const before = await lastVacuum(app, 'refresh_tokens')
    const sweeps = { count: 0 }
    const counting = app.db.withPlugin({
      transformQuery: ({ node }) => { if (node.kind === 'DeleteQueryNode') sweeps.count++; return node },
      transformResult: async ({ result }) => result
    })
    const cleanup = await cleanupOn(app, { intervalMs: 20 }, false, { db: counting })
    await waitUntil(() => sweeps.count >= 3)
    await cleanup.close()
    t.ok(sweeps.count >= 3, `swept ${sweeps.count} times`)
    t.same(await lastVacuum(app, 'refresh_tokens'), before, 'refresh_tokens was not vacuumed')
  })

  // The tests run on memory://, but the embedded database kept for good is DATA_DIR's (kind
  // `embedded`), just as single-user: only a server (`postgres`) vacuums by itself.
  t.test('a database in DATA_DIR is vacuumed by the cleanup too', {
    skip: target.name === 'postgres' && 'real PostgreSQL vacuums by itself (autovacuum)'
  }, async (t) => {
    const s = await newUser(app)
    const before = await lastVacuum(app, 'refresh_tokens')
    await sql`insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
      select ${s.id}, gen_random_uuid(), sha256(('data-dir-' || g)::bytea), now() - interval '1 hour'
      from generate_series(1, 100) g`.execute(app.db)
    const log = capturedLog()
    const cleanup = await cleanupOn(app, { intervalMs: 20 }, { level: 'info', stream: log.stream }, { kind: 'embedded' })
    await waitUntil(() => log.lines.some(line => line.includes('stale refresh tokens deleted')))
    await cleanup.close()
    const after = await lastVacuum(app, 'refresh_tokens')
    t.ok(after !== null && (before === null || after > before), `refresh_tokens vacuumed after the sweep (last ${String(before)}, now ${String(after)})`)
  })
})

async function lastVacuum (app: FastifyInstance, table: string): Promise<Date | null> {
  const { rows } = await sql<{ at: Date | null }>`select last_vacuum as at from pg_stat_user_tables where relname = ${table}`.execute(app.db)
  return rows[0]?.at ?? null
}

/** The cleanup alone, on this app's database (or `db`, as a database of `kind`). */
async function cleanupOn (
  app: FastifyInstance, opts: RefreshCleanupOptions, logger: FastifyServerOptions['logger'] = false,
  { kind = app.dbKind, db = app.db }: { kind?: FastifyInstance['dbKind'], db?: FastifyInstance['db'] } = {}
): Promise<FastifyInstance> {
  const cleanup = Fastify({ logger })
  await cleanup.register(fp(async (f) => {
    f.decorate('db', db)
    f.decorate('dbKind', kind)
  }, { name: 'db' }))
  await cleanup.register(refreshCleanup, opts)
  await cleanup.ready()
  return cleanup
}

/** Runs `fn` on a database that records the last statement it sent, as compiled. */
async function capturedStatement<T> (
  app: FastifyInstance, fn: (db: FastifyInstance['db']) => Promise<T>
): Promise<{ result: T, query: CompiledQuery }> {
  let query: CompiledQuery | undefined
  const spy = app.db.withPlugin({
    transformQuery: ({ node, queryId }) => { query = app.db.getExecutor().compileQuery(node, queryId); return node },
    transformResult: async ({ result }) => result
  })
  const result = await fn(spy)
  if (query === undefined) throw new Error('no statement was sent')
  return { result, query }
}

async function explain (app: FastifyInstance, query: CompiledQuery): Promise<string> {
  const { rows } = await app.db.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]))
  return rows.map(row => row['QUERY PLAN']).join('\n')
}

// PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): a prepared statement, planned generically on demand.
async function explainGeneric (app: FastifyInstance, query: CompiledQuery): Promise<string> {
  const literal = (value: unknown): string => value instanceof Date ? `'${value.toISOString()}'` : String(Number(value))
  return await app.db.connection().execute(async (db) => {
    await sql.raw(`prepare sweep_plan_probe as ${query.sql}`).execute(db)
    try {
      await sql`set plan_cache_mode = force_generic_plan`.execute(db)
      const { rows } = await sql.raw<{ 'QUERY PLAN': string }>(`explain execute sweep_plan_probe(${query.parameters.map(literal).join(', ')})`).execute(db)
      return rows.map(row => row['QUERY PLAN']).join('\n')
    } finally {
      await sql`reset plan_cache_mode`.execute(db)
      await sql`deallocate sweep_plan_probe`.execute(db)
    }
  })
}
