import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { connectDatabase, type Connection } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrate.js'
import type { Database } from '../src/db/schema.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    /** `postgres` (a server, with its own autovacuum) or the embedded one (`embedded`, `memory`). */
    dbKind: Connection['kind']
  }
}

// Connects to real PostgreSQL (DATABASE_URL) or the embedded one, migrates to the latest
// schema before the server accepts requests, and closes the connection on shutdown.
export default fp(async (app) => {
  const { db, kind } = await connectDatabase(app.config)
  app.addHook('onClose', async () => {
    await db.destroy()
    // Operators (and the shutdown test) read this as "every connection was given back".
    app.log.info('database connections closed')
  })
  const applied = await migrateToLatest(db)
  app.log.info({ database: kind, migrationsApplied: applied }, 'database ready')
  app.decorate('db', db)
  app.decorate('dbKind', kind)
}, { name: 'db', dependencies: ['config'] })
