import { Kysely, sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { isSerializationFailure, MAX_ATTEMPTS, retrySerializationFailures, RetryingPostgresDialect, runTransaction } from '../../../src/db/serialization-retry.js'
import type { Database } from '../../../src/db/schema.js'
import { freshPostgresDatabase } from '../../helper.js'

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

// The dialect against a real server: `flaky(n)` raises a real 40001 the first n times it runs,
// counting its runs in a sequence, which a rollback does not undo.
const server = process.env.TEST_DATABASE_URL
t.test('a statement outside a transaction is run again; one inside is not, the transaction is', {
  skip: server === undefined || server === '' ? 'needs TEST_DATABASE_URL (the dialect is the pg driver\'s)' : false
}, async (t) => {
  const url = await freshPostgresDatabase(t, server!)
  const db = new Kysely<Database>({ dialect: new RetryingPostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) })
  t.teardown(async () => { await db.destroy() })
  await sql`create sequence runs`.execute(db)
  await sql`create function flaky (failures int) returns int language plpgsql as $$
    begin
      if nextval('runs') <= failures then
        raise exception 'could not serialize access' using errcode = '40001';
      end if;
      return 1;
    end $$`.execute(db)
  const runsSoFar = async (): Promise<number> =>
    Number((await sql<{ n: string }>`select last_value as n from runs`.execute(db)).rows[0]?.n)

  const answer = await sql<{ flaky: number }>`select flaky(2)`.execute(db)
  t.same(answer.rows, [{ flaky: 1 }], 'the single statement, until it succeeded')
  t.equal(await runsSoFar(), 3)

  await sql`alter sequence runs restart`.execute(db)
  let runs = 0
  // Sent again inside the aborted transaction, the statement would fail with 25P02, which is
  // not retried: only re-running the whole transaction gets through.
  const result = await runTransaction(db, async (trx) => {
    runs++
    return (await sql<{ flaky: number }>`select flaky(2)`.execute(trx)).rows[0]?.flaky
  })
  t.equal(result, 1)
  t.equal(runs, 3, 'the transaction ran again from its start')
  t.equal(await runsSoFar(), 3, 'the statement ran once per run of the transaction')
})
