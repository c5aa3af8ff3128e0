import { sql, type Kysely } from 'kysely'
import type { Test } from 'tap'
import { loadConfig } from '../../../src/config.js'
import { connectDatabase } from '../../../src/db/connect.js'
import { MAX_PREPARED } from '../../../src/db/pipelined-pglite.js'
import { eachDatabase, freshPostgresDatabase, type DatabaseTarget } from '../../helper.js'

// The embedded database (src/db/pipelined-pglite.ts) runs each statement as one pipelined
// exchange against a cached prepared statement. Every case runs on both databases: what the
// application sees must not depend on which one it runs on.

interface Things { id: number, label: string, flag: boolean | null, at: Date | null, tags: string[] | null, doc: unknown, raw: Uint8Array | null }
type Db = Kysely<any>

async function open (t: Test, target: DatabaseTarget): Promise<Db> {
  const url = target.name === 'postgres' ? await freshPostgresDatabase(t, target.url) : target.url
  const { db } = await connectDatabase(loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' }, false))
  t.teardown(async () => { await db.destroy() })
  await sql`create table things (
    id serial primary key, label text unique not null, flag boolean, at timestamptz,
    tags text[], doc jsonb, raw bytea)`.execute(db)
  return db
}

eachDatabase(async (t, target) => {
  const db = await open(t, target)

  t.test('values go in and come back as the same JavaScript values', async (t) => {
    const at = new Date('2026-01-02T03:04:05.678Z')
    const raw = Buffer.from([0, 1, 2, 250, 255])
    const row = { label: 'a "quoted", {braced} \\ label', flag: true, at, tags: ['x', 'y "z"', 'null', ''], doc: { n: 1, s: 'two', list: [3] }, raw }
    await db.insertInto('things').values(row).execute()
    await db.insertInto('things').values({ label: 'nulls', flag: null, at: null, tags: null, doc: null, raw: null }).execute()
    const rows = await db.selectFrom('things').selectAll().orderBy('id').execute() as Things[]
    t.equal(rows.length, 2)
    const [first, second] = rows as [Things, Things]
    t.equal(typeof first.id, 'number')
    t.equal(first.label, row.label)
    t.equal(first.flag, true)
    t.ok(first.at instanceof Date && first.at.getTime() === at.getTime(), 'timestamptz is the same instant')
    t.same(first.tags, row.tags)
    t.same(first.doc, row.doc)
    t.same(Buffer.from(first.raw as Uint8Array), raw)
    t.same({ ...second, id: 0 }, { id: 0, label: 'nulls', flag: null, at: null, tags: null, doc: null, raw: null })
  })

  t.test('affected row counts are reported, zero included', async (t) => {
    const inserted = await db.insertInto('things').values([{ label: 'c1' }, { label: 'c2' }, { label: 'c3' }]).executeTakeFirst()
    t.equal(inserted.numInsertedOrUpdatedRows, 3n)
    const updated = await db.updateTable('things').set({ flag: false }).where('label', 'in', ['c1', 'c2']).executeTakeFirst()
    t.equal(updated.numUpdatedRows, 2n)
    const none = await db.updateTable('things').set({ flag: false }).where('label', '=', 'nobody').executeTakeFirst()
    t.equal(none.numUpdatedRows, 0n)
    const deleted = await db.deleteFrom('things').where('label', 'like', 'c%').executeTakeFirst()
    t.equal(deleted.numDeletedRows, 3n)
  })

  t.test('a failed statement reports its SQLSTATE and leaves the session usable', async (t) => {
    const insert = async (label: string): Promise<void> => { await db.insertInto('things').values({ label }).execute() }
    await insert('dup')
    await t.rejects(insert('dup'), { code: '23505', constraint: 'things_label_key' })
    await insert('dup2')
    t.equal((await db.selectFrom('things').select('label').where('label', 'like', 'dup%').execute()).length, 2)
    // A statement whose parse fails is not remembered as prepared: it fails the same way again.
    for (let i = 0; i < 2; i++) await t.rejects(sql`selec 1`.execute(db), { code: '42601' })
    t.same((await sql<{ one: number }>`select 1 as one`.execute(db)).rows, [{ one: 1 }])
  })

  t.test('more distinct statements than are kept prepared all run, old ones again too', async (t) => {
    const run = async (i: number): Promise<unknown> => (await sql<{ n: number }>`select ${sql.lit(i)}::int + ${i}::int as n`.execute(db)).rows[0]?.n
    const n = MAX_PREPARED + 20
    for (let i = 0; i < n; i++) t.equal(await run(i), 2 * i)
    for (let i = 0; i < 30; i++) t.equal(await run(i), 2 * i)
  })

  t.test('a statement prepared before its table changed is prepared again', async (t) => {
    await sql`create table shapes (id int)`.execute(db)
    await sql`insert into shapes values (1)`.execute(db)
    const select = sql<Record<string, unknown>>`select * from shapes`
    t.same((await select.execute(db)).rows, [{ id: 1 }])
    await sql`alter table shapes add column side int default 4`.execute(db)
    // PostgreSQL refuses a prepared statement whose result columns changed (0A000). The
    // embedded database's statement is prepared, so its next run is refused once, and the
    // statement is then dropped and prepared afresh; node-postgres prepares nothing.
    const again = await select.execute(db).then(() => undefined, (err: unknown) => err)
    if (target.name === 'embedded') t.match(again, { code: '0A000' }, 'the stale statement is refused once')
    else t.equal(again, undefined, 'no prepared statement, nothing stale')
    t.same((await select.execute(db)).rows, [{ id: 1, side: 4 }])
  })

  t.test('transactions commit, roll back, and abort on a failed statement', async (t) => {
    await db.transaction().execute(async (trx) => { await trx.insertInto('things').values({ label: 'kept' }).execute() })
    await t.rejects(db.transaction().execute(async (trx) => {
      await trx.insertInto('things').values({ label: 'discarded' }).execute()
      await trx.insertInto('things').values({ label: 'kept' }).execute()
    }), { code: '23505' })
    const labels = (await db.selectFrom('things').select('label').where('label', 'in', ['kept', 'discarded']).execute()).map(r => r.label)
    t.same(labels, ['kept'])
  })

  t.test('concurrent callers queue for the one session without mixing statements', async (t) => {
    const results = await Promise.all(Array.from({ length: 30 }, async (_, i) => i % 3 === 0
      ? await db.transaction().execute(async (trx) => {
        await trx.insertInto('things').values({ label: `tx${i}` }).execute()
        return (await trx.selectFrom('things').select('label').where('label', '=', `tx${i}`).executeTakeFirstOrThrow()).label
      })
      : (await sql<{ v: string }>`select ${`v${i}`}::text as v`.execute(db)).rows[0]?.v))
    t.same(results, Array.from({ length: 30 }, (_, i) => i % 3 === 0 ? `tx${i}` : `v${i}`))
  })
})
