import { ConfigError, loadConfig, type Config } from './config.js'
import { connectDatabase } from './db/connect.js'
import { migrateToLatest } from './db/migrate.js'
import { startupProblem } from './startup-problem.js'

// `npm run db:migrate`: bring the configured database up to date, then exit.
let config: Config | undefined
try {
  config = loadConfig()
  const { db, kind } = await connectDatabase(config)
  try {
    const applied = await migrateToLatest(db)
    console.log(`${kind} database is up to date${applied.length > 0 ? `; applied: ${applied.join(', ')}` : ''}`)
  } finally {
    await db.destroy()
  }
} catch (err) {
  // As the server and the CLI say it: one line naming the setting (never DATABASE_URL's
  // password), or the whole error, stack included, for anything else.
  const problem = config === undefined ? undefined : startupProblem(err, config)
  if (err instanceof ConfigError) console.error(err.message)
  else console.error('rolegate db:migrate failed:', problem ?? err)
  process.exitCode = 1
}
