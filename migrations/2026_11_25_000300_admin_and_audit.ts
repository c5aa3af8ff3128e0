import { sql, type Kysely } from 'kysely'

// Frozen in time: never import application code here, and never edit after release.
export async function up (db: Kysely<any>): Promise<void> {
  // The admin user list searches by username / email prefix (`lower(x) like 'q%'`). The unique
  // indexes on lower(x) use the database collation, which cannot serve LIKE prefixes outside
  // the C locale; text_pattern_ops indexes can, whatever the locale.
  await sql`create index users_username_prefix_idx on users (lower(username) text_pattern_ops)`.execute(db)
  await sql`create index users_email_prefix_idx on users (lower(email) text_pattern_ops)`.execute(db)

  // Who did what to whom. No foreign keys on purpose: the history of a deleted user stays.
  await db.schema.createTable('audit_events')
    .addColumn('id', 'bigint', col => col.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    .addColumn('type', 'varchar(40)', col => col.notNull())
    .addColumn('actor_id', 'integer')
    .addColumn('user_id', 'integer')
    .addColumn('ip', 'varchar(64)')
    .addColumn('detail', 'jsonb')
    .execute()
  // Newest first, optionally for one user or one type: each filter walks its own index.
  await db.schema.createIndex('audit_events_user_idx').on('audit_events').columns(['user_id', 'id']).execute()
  await db.schema.createIndex('audit_events_type_idx').on('audit_events').columns(['type', 'id']).execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute()
  await sql`drop index users_email_prefix_idx`.execute(db)
  await sql`drop index users_username_prefix_idx`.execute(db)
}
