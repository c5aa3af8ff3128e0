import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import { runTransaction } from '../db/serialization-retry.js'
import type { Role } from '../roles.js'
import { recordAuditEvent } from './audit.js'
import { revokeUserFamilies } from './refresh-tokens.js'
import { findUserById, rolesOf, type UserWithRoles } from './users.js'

type Db = Kysely<Database> | Transaction<Database>

/**
 * Users in id order after `afterId`, optionally those whose username or email starts with `q`.
 * A signup takes its id when its INSERT runs and shows at its COMMIT, so ids do not appear in
 * order: a page read while a lower id was still uncommitted would hand out a cursor past it, and
 * paging would skip that user for good. SHARE mode waits for every transaction writing `users`
 * and holds new ones (until this short read ends), so the page sees every id handed out so far
 * and any later signup gets a higher id: one that pages to come will reach.
 */
export async function listUsers (
  db: Kysely<Database>, opts: { afterId?: number, limit: number, q?: string }
): Promise<UserWithRoles[]> {
  return await runTransaction(db, async (trx) => {
    await sql`lock table users in share mode`.execute(trx)
    return await usersPage(trx, opts)
  })
}

async function usersPage (db: Transaction<Database>, opts: { afterId?: number, limit: number, q?: string }): Promise<UserWithRoles[]> {
  let query = db.selectFrom('users')
    .select(['users.id', 'users.username', 'users.email', 'users.disabled', 'users.created_at as createdAt', rolesOf.as('roles')])
    .orderBy('users.id')
    .limit(opts.limit)
  if (opts.afterId !== undefined) query = query.where('users.id', '>', opts.afterId)
  if (opts.q !== undefined && opts.q !== '') {
    // Same expressions as the text_pattern_ops indexes, so each side of the OR is an index scan.
    const prefix = escapeLike(opts.q.toLowerCase()) + '%'
    query = query.where(eb => eb.or([
      eb(sql<string>`lower(users.username)`, 'like', prefix),
      eb(sql<string>`lower(users.email)`, 'like', prefix)
    ]))
  }
  return await query.execute()
}

// `_` is legal in usernames and `%` in emails: both must match themselves, not anything.
function escapeLike (text: string): string {
  return text.replace(/[\\%_]/g, c => `\\${c}`)
}

/** True when the user exists, is not disabled and holds the admin role, as of now. */
export async function isActiveAdmin (db: Db, userId: number): Promise<boolean> {
  const row = await db.selectFrom('users')
    .innerJoin('user_roles', 'user_roles.user_id', 'users.id')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select('users.id')
    .where('users.id', '=', userId)
    .where('users.disabled', '=', false)
    .where('roles.name', '=', 'admin')
    .executeTakeFirst()
  return row !== undefined
}

async function countActiveAdmins (db: Db): Promise<number> {
  const row = await db.selectFrom('users')
    .innerJoin('user_roles', 'user_roles.user_id', 'users.id')
    .innerJoin('roles', 'roles.id', 'user_roles.role_id')
    .select(eb => eb.fn.countAll().as('n'))
    .where('users.disabled', '=', false)
    .where('roles.name', '=', 'admin')
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export type AdminChange =
  | { kind: 'done', user: UserWithRoles }
  | { kind: 'not_found' }
  | { kind: 'last_admin' }
  | { kind: 'actor_not_admin' }

/** Who asks for a change: an admin (checked again under the lock) or the operator's CLI (null). */
export interface ChangeContext { actorId: number | null, ip: string | null }

/**
 * Runs a change that may reduce the number of active admins, serialised with every other such
 * change: all of them first lock the `admin` row of `roles` (FOR NO KEY UPDATE, so plain
 * inserts of user_roles rows, which only take KEY SHARE, are not blocked). Under that lock the
 * actor's authority and the admin count are read fresh (READ COMMITTED takes a new snapshot
 * per statement), so two admins demoting each other at the same moment cannot both succeed.
 */
async function underAdminLock (
  db: Kysely<Database>, ctx: ChangeContext, targetId: number,
  change: (trx: Transaction<Database>, before: UserWithRoles, isLastActiveAdmin: () => Promise<boolean>) => Promise<AdminChange>
): Promise<AdminChange> {
  return await runTransaction(db, async (trx) => {
    await trx.selectFrom('roles').select('id').where('name', '=', 'admin').forNoKeyUpdate().execute()
    if (ctx.actorId !== null && !(await isActiveAdmin(trx, ctx.actorId))) return { kind: 'actor_not_admin' }
    const before = await findUserById(trx, targetId)
    if (before === undefined) return { kind: 'not_found' }
    const isLastActiveAdmin = async (): Promise<boolean> =>
      !before.disabled && before.roles.includes('admin') && (await countActiveAdmins(trx)) <= 1
    return await change(trx, before, isLastActiveAdmin)
  })
}

async function reload (trx: Transaction<Database>, id: number): Promise<AdminChange> {
  const user = await findUserById(trx, id)
  return user === undefined ? { kind: 'not_found' } : { kind: 'done', user }
}

/** Replaces the user's roles; refuses to take `admin` from the last active admin. */
export async function setUserRoles (db: Kysely<Database>, ctx: ChangeContext, targetId: number, roles: Role[]): Promise<AdminChange> {
  return await underAdminLock(db, ctx, targetId, async (trx, before, isLastActiveAdmin) => {
    if (!roles.includes('admin') && await isLastActiveAdmin()) return { kind: 'last_admin' }
    if (sameRoles(before.roles, roles)) return { kind: 'done', user: before }
    await trx.deleteFrom('user_roles').where('user_id', '=', targetId).execute()
    await trx.insertInto('user_roles')
      .columns(['user_id', 'role_id'])
      .expression(eb => eb.selectFrom('roles').select([eb.val(targetId).as('user_id'), 'roles.id']).where('roles.name', 'in', roles))
      .execute()
    await trx.updateTable('users').set({ updated_at: new Date() }).where('id', '=', targetId).execute()
    const after = await reload(trx, targetId)
    await recordAuditEvent(trx, {
      type: 'roles_changed', ...ctx, userId: targetId, detail: { before: before.roles, after: roles }
    })
    return after
  })
}

function sameRoles (a: readonly Role[], b: readonly Role[]): boolean {
  return a.length === b.length && a.every(role => b.includes(role))
}

/** Disables (revoking every refresh token) or enables a user; refuses to disable the last active admin. */
export async function setUserDisabled (db: Kysely<Database>, ctx: ChangeContext, targetId: number, disabled: boolean): Promise<AdminChange> {
  return await underAdminLock(db, ctx, targetId, async (trx, before, isLastActiveAdmin) => {
    if (disabled && await isLastActiveAdmin()) return { kind: 'last_admin' }
    // The user row first, then its tokens: the order every path that touches a user's tokens
    // takes (lockOwnerOf), so a refresh or a signin racing with this waits for it and sees the
    // account disabled, instead of committing a token the revocation below did not see.
    if (before.disabled !== disabled) {
      await trx.updateTable('users').set({ disabled, updated_at: new Date() }).where('id', '=', targetId).execute()
    } else {
      await trx.selectFrom('users').select('id').where('id', '=', targetId).forNoKeyUpdate().execute()
    }
    // Revoked even when already disabled: a disabled account must hold no live sign-in.
    if (disabled) await revokeUserFamilies(trx, targetId)
    if (before.disabled === disabled) return { kind: 'done', user: before }
    await recordAuditEvent(trx, { type: disabled ? 'user_disabled' : 'user_enabled', ...ctx, userId: targetId })
    return await reload(trx, targetId)
  })
}

/** Deletes a user (roles and refresh tokens go with it); refuses to delete the last active admin. */
export async function deleteUser (db: Kysely<Database>, ctx: ChangeContext, targetId: number): Promise<AdminChange> {
  return await underAdminLock(db, ctx, targetId, async (trx, before, isLastActiveAdmin) => {
    if (await isLastActiveAdmin()) return { kind: 'last_admin' }
    await trx.deleteFrom('users').where('id', '=', targetId).execute()
    // The row is gone; the event keeps who it was.
    await recordAuditEvent(trx, {
      type: 'user_deleted', ...ctx, userId: targetId, detail: { username: before.username, email: before.email, roles: before.roles }
    })
    return { kind: 'done', user: before }
  })
}
