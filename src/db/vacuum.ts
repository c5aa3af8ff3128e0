import { sql, type Kysely } from 'kysely'
import type { Database } from './schema.js'

/**
 * Autovacuum's work, for the embedded database, which runs PostgreSQL single-user and so has
 * none. Without it the space of deleted and updated rows is never reused (refresh_tokens grew by
 * every token ever issued, however many the cleanup deleted), and no row is ever frozen, so the
 * transaction ids would wrap around one day. Measured on a small database in DATA_DIR: ~2-7 ms
 * for refresh_tokens, ~90-120 ms for the whole database (the catalogs with it), all of it in
 * the event loop; hence the whole database only when its oldest unfrozen id is `freezeAge` old.
 */
export async function vacuumEmbedded (db: Kysely<Database>, tokensDeleted: number, freezeAge: number): Promise<void> {
  if (tokensDeleted > 0) await sql`vacuum refresh_tokens`.execute(db)
  const { rows } = await sql<{ age: number }>`select age(datfrozenxid) as age from pg_database where datname = current_database()`.execute(db)
  if ((rows[0]?.age ?? 0) >= freezeAge) await sql`vacuum`.execute(db)
}
