import { ConfigError, loadConfig } from './config.js'
import { connectDatabase } from './db/connect.js'
import { migrateToLatest } from './db/migrate.js'

// `npm run db:migrate`: bring the configured database up to date, then exit.
try {
  const config = loadConfig()
  const { db, kind } = await connectDatabase(config)
  try {
    const applied = await migrateToLatest(db)
    console.log(`${kind} database is up to date${applied.length > 0 ? `; applied: ${applied.join(', ')}` : ''}`)
  } finally {
    await db.destroy()
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exitCode = 1
}
