import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import { runTransaction } from '../db/serialization-retry.js'
import type { AuditEventInput } from '../audit.js'
import { hashRefreshToken, newRefreshToken } from '../refresh-token.js'
import { auditEventRow, recordAuditEvent } from './audit.js'

type Db = Kysely<Database> | Transaction<Database>

/**
 * Issues a refresh token: the first of a new family (one per sign-in) unless `familyId` names
 * the family a rotation continues. A signin's goes through issueSigninRefreshToken instead.
 */
export async function issueRefreshToken (
  db: Db, userId: number, ttlMs: number, { familyId = randomUUID() }: { familyId?: string } = {}
): Promise<{ token: string, familyId: string }> {
  const token = newRefreshToken()
  await db.insertInto('refresh_tokens').values({
    user_id: userId,
    family_id: familyId,
    token_hash: hashRefreshToken(token),
    expires_at: new Date(Date.now() + ttlMs),
    used_at: null,
    revoked_at: null
  }).execute()
  return { token, familyId }
}

/**
 * A signin's session and its audit event, in one statement, only if the user's password hash is
 * still `passwordHash` (the one the password was verified against) and the account still
 * active; undefined otherwise, for the caller to judge again. The user row is read FOR SHARE:
 * a password change or a disable holds that row locked while it revokes the user's sign-ins, so
 * this statement either commits before that revocation runs (which then revokes it too) or waits
 * for it and finds the row changed. Without it, a signin that verified the old password while
 * the password was being changed came out with a session the change never saw.
 */
export async function issueSigninRefreshToken (
  db: Kysely<Database>, user: { id: number, passwordHash: string }, ttlMs: number, event: AuditEventInput
): Promise<string | undefined> {
  const token = newRefreshToken()
  const e = auditEventRow(event)
  // Casts: a parameter in a SELECT list has no column to take its type from.
  const inserted = await sql<{ id: string }>`
    with owner as (
      select id from users
      where id = ${user.id} and password_hash = ${user.passwordHash} and not disabled
      for share
    ), event as (
      insert into audit_events (type, actor_id, user_id, ip, detail)
      select ${e.type}::varchar, ${e.actor_id ?? null}::integer, ${e.user_id ?? null}::integer, ${e.ip ?? null}::varchar, ${e.detail ?? null}::jsonb
      from owner
    )
    insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
    select id, ${randomUUID()}::uuid, ${hashRefreshToken(token)}::bytea, ${new Date(Date.now() + ttlMs)}::timestamptz
    from owner
    returning id`.execute(db)
  return inserted.rows.length > 0 ? token : undefined
}

export type RotationResult =
  | { kind: 'rotated', userId: number, token: string, familyId: string }
  | { kind: 'reused', userId: number, familyId: string }
  | { kind: 'invalid' }

/**
 * Locks the user row owning `tokenHash` (undefined when no such token). Every path that rotates
 * or revokes a user's tokens takes this lock first, in this order, so they serialize per user:
 * a revocation's UPDATE then runs after a concurrent rotation committed and sees its successor
 * (otherwise READ COMMITTED would let that successor escape a signout or reuse revocation),
 * and the shared lock order cannot deadlock. NO KEY UPDATE still lets foreign-key checks pass.
 */
async function lockOwnerOf (trx: Transaction<Database>, tokenHash: Buffer): Promise<{ id: number, disabled: boolean } | undefined> {
  return await trx.selectFrom('users').select(['id', 'disabled'])
    .where('id', '=', eb => eb.selectFrom('refresh_tokens').select('user_id').where('token_hash', '=', tokenHash))
    .forNoKeyUpdate()
    .executeTakeFirst()
}

/**
 * Exchanges a refresh token for the next one of its family, in one transaction. Rows are
 * locked (owner first, then the token), so two concurrent refreshes of one token rotate it at
 * most once: the second sees it used. A used token presented again outside the grace window
 * means it was copied: the whole family is revoked (RFC 9700, section 4.14.2).
 */
export async function rotateRefreshToken (
  db: Kysely<Database>, token: string, opts: { ttlMs: number, reuseIntervalMs: number }
): Promise<RotationResult> {
  const tokenHash = hashRefreshToken(token)
  return await runTransaction(db, async (trx): Promise<RotationResult> => {
    const owner = await lockOwnerOf(trx, tokenHash)
    if (owner === undefined || owner.disabled) return { kind: 'invalid' }
    const row = await trx.selectFrom('refresh_tokens')
      .select(['id', 'user_id', 'family_id', 'expires_at', 'used_at', 'revoked_at'])
      .where('token_hash', '=', tokenHash)
      .forUpdate()
      .executeTakeFirst()
    if (row === undefined || row.revoked_at !== null) return { kind: 'invalid' }
    const now = Date.now()
    if (row.used_at !== null) {
      if (now - row.used_at.getTime() < opts.reuseIntervalMs && row.expires_at.getTime() > now) {
        const next = await issueRefreshToken(trx, row.user_id, opts.ttlMs, { familyId: row.family_id })
        return { kind: 'rotated', userId: row.user_id, ...next }
      }
      await revokeFamily(trx, row.family_id)
      return { kind: 'reused', userId: row.user_id, familyId: row.family_id }
    }
    if (row.expires_at.getTime() <= now) return { kind: 'invalid' }
    await trx.updateTable('refresh_tokens').set({ used_at: new Date(now) }).where('id', '=', row.id).execute()
    const next = await issueRefreshToken(trx, row.user_id, opts.ttlMs, { familyId: row.family_id })
    return { kind: 'rotated', userId: row.user_id, ...next }
  })
}

// Expired rows are refused anyway and left to the cleanup: revoking only live ones keeps these
// updates off the rows the cleanup deletes, so the two never wait on each other.
// Returns how many tokens this call revoked.
async function revokeFamily (db: Db, familyId: string): Promise<number> {
  const result = await db.updateTable('refresh_tokens')
    .set({ revoked_at: new Date() })
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * Revokes the sign-in the token belongs to; unknown tokens are ignored (signout is idempotent).
 * `eventFor` gives the audit event to commit with the revocation, written only when this call
 * revoked a token: a repeat finds nothing left to revoke, and so does a concurrent twin (the
 * owner's lock queues it, and its UPDATE then sees the first one's revocation), so one sign-in
 * ended is one event.
 */
export async function revokeFamilyOfToken (
  db: Kysely<Database>, token: string, eventFor: (userId: number) => AuditEventInput
): Promise<void> {
  const tokenHash = hashRefreshToken(token)
  await runTransaction(db, async (trx) => {
    if (await lockOwnerOf(trx, tokenHash) === undefined) return
    const row = await trx.selectFrom('refresh_tokens')
      .select(['family_id', 'user_id'])
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst()
    if (row === undefined) return
    if (await revokeFamily(trx, row.family_id) > 0) await recordAuditEvent(trx, eventFor(row.user_id))
  })
}

/**
 * Revokes every sign-in of a user except, optionally, one family. Call it in a transaction that
 * already holds the user row's lock (e.g. after updating the user), for the reason given at
 * lockOwnerOf: a refresh racing with it must not keep a live successor.
 */
export async function revokeUserFamilies (db: Db, userId: number, exceptFamilyId?: string): Promise<void> {
  let query = db.updateTable('refresh_tokens')
    .set({ revoked_at: new Date() })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', new Date())
  if (exceptFamilyId !== undefined) query = query.where('family_id', '!=', exceptFamilyId)
  await query.execute()
}

/**
 * Deletes expired rows, and revoked rows once they are a day old, at most `batch` at a time so
 * a cleanup never holds long locks. An expired or deleted token is refused just like a revoked one.
 *
 * Each step goes through an index, so a batch costs about its own rows however many live ones
 * the table holds. As `id in (select ... where expires_at < now or revoked_at < a day ago)` the
 * planner read the whole table twice a batch (no index served revoked_at, and a hash join fed
 * the deletion): ~200 ms of the embedded database's event loop a batch at 200k live rows. Each
 * kind of stale row is read in its index's order instead: ORDER BY with LIMIT also keeps a plan
 * made without the values (the embedded database's prepared statements may settle on one) on
 * the index. `= any(array(...))` deletes by primary key. Revoked rows that have expired are left
 * to the first half, so none counts twice and a short batch means none is left. The derived
 * tables are there because Kysely puts no parentheses around a union's branches, which their
 * own ORDER BY and LIMIT need.
 */
export async function deleteStaleRefreshTokens (db: Kysely<Database>, batch = 1000): Promise<number> {
  const now = new Date()
  const dayAgo = new Date(now.getTime() - 86_400_000)
  const result = await db.deleteFrom('refresh_tokens')
    .where('id', '=', (eb) => {
      const expired = eb.selectFrom(eb.selectFrom('refresh_tokens').select('id')
        .where('expires_at', '<', now)
        .orderBy('expires_at').limit(batch).as('expired')).select('id')
      const revoked = eb.selectFrom(eb.selectFrom('refresh_tokens').select('id')
        .where('revoked_at', '<', dayAgo).where('expires_at', '>=', now)
        .orderBy('revoked_at').limit(batch).as('revoked')).select('id')
      return eb.fn.any(eb.fn<string[]>('array', [expired.unionAll(revoked).limit(batch)]))
    })
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

/**
 * Runs batches until one comes back short or `maxBatches` ran: every refresh writes a row, so a
 * single batch per cleanup tick could fall behind a busy service. Each batch is its own statement.
 */
export async function sweepStaleRefreshTokens (db: Kysely<Database>, batch = 1000, maxBatches = 50): Promise<number> {
  let total = 0
  for (let i = 0; i < maxBatches; i++) {
    const deleted = await deleteStaleRefreshTokens(db, batch)
    total += deleted
    if (deleted < batch) break
  }
  return total
}
