import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Role } from '../roles.js'
import { auditEventRow } from './audit.js'

export interface UserWithRoles {
  id: number
  username: string
  email: string
  disabled: boolean
  createdAt: Date
  roles: Role[]
}

export interface UserCredentials extends UserWithRoles {
  passwordHash: string
}

// Roles in hierarchy order (role ids 1..3 follow it), as a plain text[].
export const rolesOf = sql<Role[]>`coalesce(
  (select array_agg(r.name::text order by r.id) from user_roles ur join roles r on r.id = ur.role_id where ur.user_id = users.id),
  '{}')`

function baseQuery (db: Kysely<Database>) {
  return db.selectFrom('users').select([
    'users.id', 'users.username', 'users.email', 'users.disabled',
    'users.created_at as createdAt', 'users.password_hash as passwordHash',
    rolesOf.as('roles')
  ])
}

/** How an account came to be, recorded as its `signup` audit event. */
export interface CreationRecord {
  /** Who created it: an admin's id, null for the command line; the new user itself when left out. */
  actorId?: number | null
  ip: string | null
  detail?: Record<string, unknown>
}

/**
 * Creates a user, its role rows and (given `record`) its `signup` audit event in one statement:
 * the role rows and the event are inserted by data-modifying CTEs, which PostgreSQL runs to
 * completion with the statement, so all commit or none does, as in a transaction, in one round
 * trip instead of five (BEGIN, three inserts, COMMIT): on the embedded database each exchange
 * is event-loop time taken from signups. Uniqueness of username and email is left to the
 * database's unique indexes: a duplicate raises 23505, which the error handler turns into 409,
 * so parallel identical signups cannot both succeed.
 */
export async function createUser (
  db: Kysely<Database>,
  user: { username: string, email: string, passwordHash: string, roles: Role[] },
  record?: CreationRecord
): Promise<number> {
  const withRoles = db
    .with('new_user', (q) => q.insertInto('users')
      .values({ username: user.username, email: user.email, password_hash: user.passwordHash })
      .returning('id'))
    .with('new_roles', (q) => q.insertInto('user_roles')
      .columns(['user_id', 'role_id'])
      .expression(eb => eb.selectFrom(['new_user', 'roles']).select(['new_user.id', 'roles.id as role_id']).where('roles.name', 'in', user.roles)))
  if (record === undefined) return (await withRoles.selectFrom('new_user').select('id').executeTakeFirstOrThrow()).id
  const { id } = await withRoles
    // The event's ids are the new user's, known only inside the statement.
    .with('new_event', (q) => q.insertInto('audit_events').values((eb) => ({
      ...auditEventRow({ type: 'signup', actorId: null, userId: null, ip: record.ip, ...(record.detail !== undefined ? { detail: record.detail } : {}) }),
      user_id: eb.selectFrom('new_user').select('new_user.id'),
      actor_id: record.actorId !== undefined ? record.actorId : eb.selectFrom('new_user').select('new_user.id')
    })))
    .selectFrom('new_user')
    .select('id')
    .executeTakeFirstOrThrow()
  return id
}

export async function findCredentialsByUsername (db: Kysely<Database>, username: string): Promise<UserCredentials | undefined> {
  return await baseQuery(db)
    .where(sql<string>`lower(users.username)`, '=', username.toLowerCase())
    .executeTakeFirst()
}

export async function findCredentialsById (db: Kysely<Database>, id: number): Promise<UserCredentials | undefined> {
  return await baseQuery(db).where('users.id', '=', id).executeTakeFirst()
}

export async function findUserById (db: Kysely<Database>, id: number): Promise<UserWithRoles | undefined> {
  const row = await findCredentialsById(db, id)
  if (row === undefined) return undefined
  const { passwordHash: _omit, ...user } = row
  return user
}

export async function usernameExists (db: Kysely<Database>, username: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('id')
    .where(sql<string>`lower(username)`, '=', username.toLowerCase())
    .executeTakeFirst()
  return row !== undefined
}

/**
 * Replaces the password hash if it is still `expected` (the one a password was just verified
 * against) and the account still active; false when either changed since it was read: a
 * concurrent password change, hash upgrade or disable, after which the caller judges again on
 * what is stored. The UPDATE waits for a concurrent change of the row and then re-checks its
 * condition, so an old password's hash is never written over a new one.
 */
export async function replacePasswordHash (db: Kysely<Database>, id: number, expected: string, passwordHash: string): Promise<boolean> {
  const result = await db.updateTable('users')
    .set({ password_hash: passwordHash, updated_at: new Date() })
    .where('id', '=', id)
    .where('password_hash', '=', expected)
    .where('disabled', '=', false)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
