import { Migrator, type Kysely, type MigrationProvider } from 'kysely'
import { migrations } from '../../migrations/index.js'

const provider: MigrationProvider = { getMigrations: async () => migrations }

// Brings the schema up to date. Kysely's migrator holds a PostgreSQL advisory lock while it
// runs, so two instances starting together migrate once and the second waits, then no-ops.
export async function migrateToLatest (db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider })
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) throw error
  return (results ?? []).filter(r => r.status === 'Success').map(r => r.migrationName)
}
