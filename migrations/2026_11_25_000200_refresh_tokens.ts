import { sql, type Kysely } from 'kysely'

// Frozen in time: never import application code here, and never edit after release.
// Refresh tokens are stored only as SHA-256 hashes, grouped in a family per sign-in.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('refresh_tokens')
    .addColumn('id', 'bigint', col => col.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('user_id', 'integer', col => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('family_id', 'uuid', col => col.notNull())
    .addColumn('token_hash', 'bytea', col => col.notNull().unique())
    .addColumn('expires_at', 'timestamptz', col => col.notNull())
    .addColumn('created_at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('refresh_tokens_family_idx').on('refresh_tokens').column('family_id').execute()
  await db.schema.createIndex('refresh_tokens_user_idx').on('refresh_tokens').column('user_id').execute()
  await db.schema.createIndex('refresh_tokens_expires_idx').on('refresh_tokens').column('expires_at').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refresh_tokens').execute()
}
