import { sql, type Kysely } from 'kysely'

// Frozen in time: never import application code here, and never edit after release.
// The cleanup finds revoked rows by revoked_at; without an index each of its batches read the
// whole table. Partial: most rows are never revoked, and those need no entry.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('refresh_tokens_revoked_idx').on('refresh_tokens').column('revoked_at')
    .where(sql.ref('revoked_at'), 'is not', null)
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refresh_tokens_revoked_idx').execute()
}
