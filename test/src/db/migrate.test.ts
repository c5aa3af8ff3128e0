import { sql } from 'kysely'
import t from 'tap'
import { loadConfig } from '../../../src/config.js'
import { connectDatabase } from '../../../src/db/connect.js'
import { migrateToLatest } from '../../../src/db/migrate.js'
import { migrations } from '../../../migrations/index.js'
import { JWT_SECRET } from '../../helper.js'

const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET, DATABASE_URL: 'memory://' }, false)

// The server migrates before it accepts requests (plugins/db.ts): a migration that fails must
// stop the start with its error, not leave a server running on half a schema that answers 500s
// on whatever the missing part serves.
t.test('a migration that fails stops the migration with its error', async (t) => {
  const { db } = await connectDatabase(config)
  t.teardown(async () => { await db.destroy() })
  // Something in the way of the first migration, as a table made by hand would be.
  await sql`create table users (id integer)`.execute(db)
  await t.rejects(migrateToLatest(db), { code: '42P07', message: /relation "users" already exists/ })
})

t.test('migrations are applied once: all of them on a new database, none the next time', async (t) => {
  const { db } = await connectDatabase(config)
  t.teardown(async () => { await db.destroy() })
  t.same(await migrateToLatest(db), Object.keys(migrations), 'each, in order')
  t.same(await migrateToLatest(db), [], 'nothing left to apply')
})
