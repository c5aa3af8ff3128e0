import { sql, type Kysely } from 'kysely'

// Frozen in time: never import application code here, and never edit after release.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('users')
    .addColumn('id', 'integer', col => col.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('username', 'varchar(32)', col => col.notNull())
    .addColumn('email', 'varchar(254)', col => col.notNull())
    .addColumn('password_hash', 'text', col => col.notNull())
    .addColumn('disabled', 'boolean', col => col.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', col => col.notNull().defaultTo(sql`now()`))
    .execute()
  // Uniqueness is the database's job (case-insensitive), so parallel signups cannot race.
  await sql`create unique index users_username_lower_key on users (lower(username))`.execute(db)
  await sql`create unique index users_email_lower_key on users (lower(email))`.execute(db)

  await db.schema.createTable('roles')
    .addColumn('id', 'integer', col => col.primaryKey())
    .addColumn('name', 'varchar(32)', col => col.notNull().unique())
    .execute()
  // The tutorial's ids, so data moved over from it keeps its meaning.
  await db.insertInto('roles').values([
    { id: 1, name: 'user' },
    { id: 2, name: 'moderator' },
    { id: 3, name: 'admin' }
  ]).execute()

  await db.schema.createTable('user_roles')
    .addColumn('user_id', 'integer', col => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role_id', 'integer', col => col.notNull().references('roles.id'))
    .addPrimaryKeyConstraint('user_roles_pkey', ['user_id', 'role_id'])
    .execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('user_roles').execute()
  await db.schema.dropTable('roles').execute()
  await db.schema.dropTable('users').execute()
}
