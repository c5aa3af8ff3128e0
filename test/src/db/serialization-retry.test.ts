import { Kysely, sql } from 'kysely'
import t from 'tap'
import { isSerializationFailure, MAX_ATTEMPTS, retrySerializationFailures, RetryingPostgresDialect, runTransaction } from '../../../src/db/serialization-retry.js'
import type { Database } from '../../../src/db/schema.js'

const failure = (code: string): Error => Object.assign(new Error(`sqlstate ${code}`), { code })

/** A function that fails with `errors` in turn, then answers 'done'; `calls()` counts its runs. */
function failingThen (...errors: Error[]): { work: () => Promise<string>, calls: () => number } {
  let calls = 0
  return {
    work: async () => {
      const err = errors[calls++]
      if (err !== undefined) throw err
      return 'done'
    },
    calls: () => calls
  }
}

t.test('serialization failures and deadlocks are run again, until one run succeeds', async (t) => {
  const { work, calls } = failingThen(failure('40001'), failure('40P01'), failure('40001'))
  t.equal(await retrySerializationFailures(work), 'done')
  t.equal(calls(), 4)
})

t.test('any other error is thrown at once', async (t) => {
  for (const code of ['23505', '57014', '08006', '40002', '25P02']) {
    const { work, calls } = failingThen(failure(code))
    await t.rejects(retrySerializationFailures(work), { code }, code)
    t.equal(calls(), 1, `${code}: run once`)
  }
  const { work, calls } = failingThen(new Error('no code'))
  await t.rejects(retrySerializationFailures(work), { message: 'no code' })
  t.equal(calls(), 1)
})

t.test('gives up after the attempts allowed, with the last failure', async (t) => {
  const { work, calls } = failingThen(...Array.from({ length: 3 }, () => failure('40001')))
  await t.rejects(retrySerializationFailures(work, 3), { code: '40001' })
  t.equal(calls(), 3)
  t.ok(MAX_ATTEMPTS > 1 && MAX_ATTEMPTS <= 20, 'a bounded number of tries by default')
})

// Each retry waits a random share of 5 ms doubled each time, at most 100 ms: the requests that
// collided spread out, and a request that gets no further gives up within ~0.75 s, not the
// ~10 s an uncapped doubling would wait over its tries.
t.test('retries wait between tries, within the bound', async (t) => {
  const random = Math.random
  Math.random = () => 1
  t.teardown(() => { Math.random = random })
  const { work, calls } = failingThen(...Array.from({ length: MAX_ATTEMPTS }, () => failure('40001')))
  const started = performance.now()
  await t.rejects(retrySerializationFailures(work), { code: '40001' })
  const waited = performance.now() - started
  t.equal(calls(), MAX_ATTEMPTS)
  t.ok(waited >= 700, `waited between tries, at the longest: ${Math.round(waited)} ms`)
  // 0.75 s by the schedule; the bound leaves room for a loaded machine's late timers, and is
  // still half of what an uncapped doubling waits (~10 s).
  t.ok(waited < 5000, `and ~0.75 s in all, far from the uncapped ~10 s: ${Math.round(waited)} ms`)
})

t.test('isSerializationFailure', async (t) => {
  t.ok(isSerializationFailure(failure('40001')))
  t.ok(isSerializationFailure(failure('40P01')))
  t.notOk(isSerializationFailure(failure('23505')))
  t.notOk(isSerializationFailure(undefined))
  t.notOk(isSerializationFailure({ code: 40001 }))
})

/**
 * A pg pool whose one client answers `fail` for the statements `failNext` says, and records
 * every statement it was sent: enough of pg for PostgresDialect.
 */
function fakePool (failNext: (text: string) => Error | undefined): { pool: any, sent: string[] } {
  const sent: string[] = []
  const client = {
    query: async (text: string) => {
      sent.push(text)
      const err = failNext(text)
      if (err !== undefined) throw err
      const command = text.split(' ')[0]!.toUpperCase()
      return { command, rowCount: 0, rows: [] }
    },
    release: () => {}
  }
  return { pool: { connect: async () => client, end: async () => {} }, sent }
}

t.test('a statement outside a transaction is run again; one inside is not, the transaction is', async (t) => {
  let failures = 0
  const { pool, sent } = fakePool(text => text.startsWith('select') && failures++ < 2 ? failure('40001') : undefined)
  const db = new Kysely<Database>({ dialect: new RetryingPostgresDialect({ pool }) })
  t.teardown(async () => { await db.destroy() })

  await sql`select 1`.execute(db)
  t.same(sent, ['select 1', 'select 1', 'select 1'], 'the single statement, until it succeeded')

  sent.length = 0
  failures = 0
  let runs = 0
  await runTransaction(db, async (trx) => {
    runs++
    await sql`select 2`.execute(trx)
  })
  t.equal(runs, 3, 'the transaction ran again from its start')
  t.same(sent, ['begin', 'select 2', 'rollback', 'begin', 'select 2', 'rollback', 'begin', 'select 2', 'commit'],
    'a statement inside a transaction is never sent again on its own')
})
