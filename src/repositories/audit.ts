import type { Insertable, Kysely, Transaction } from 'kysely'
import type { AuditEventInput, AuditEventType } from '../audit.js'
import type { AuditEventsTable, Database } from '../db/schema.js'

type Db = Kysely<Database> | Transaction<Database>

export interface AuditEvent {
  id: number
  at: Date
  type: string
  actorId: number | null
  userId: number | null
  ip: string | null
  detail: Record<string, unknown> | null
}

/** Appends one event; pass the action's transaction so the event commits or rolls back with it. */
export async function recordAuditEvent (db: Db, event: AuditEventInput): Promise<void> {
  await db.insertInto('audit_events').values(auditEventRow(event)).execute()
}

// audit_events.ip is varchar(64) (the 2026_11_25_000300 migration): room for any IPv6 address
// with a zone. Behind a trusted proxy (TRUST_PROXY) the client address is whatever
// X-Forwarded-For says, unchecked, and recording it must never fail the action it records: a
// longer value is kept cut to the column.
const AUDIT_IP_MAX_LENGTH = 64

/**
 * The row an event is stored as. Also for statements that write their change and its event
 * together, the event's insert as a data-modifying CTE (createUser, issueSigninRefreshToken): one
 * statement commits both or neither, in one round trip to the database.
 */
export function auditEventRow (event: AuditEventInput): Insertable<AuditEventsTable> {
  return {
    type: event.type,
    actor_id: event.actorId,
    user_id: event.userId,
    ip: event.ip === null ? null : event.ip.slice(0, AUDIT_IP_MAX_LENGTH),
    detail: event.detail === undefined ? null : JSON.stringify(event.detail, storableString)
  }
}

// jsonb refuses a lone surrogate and \u0000, both of which a hostile signin username may carry;
// the event must still be written, so such characters are stored as U+FFFD.
// eslint-disable-next-line no-control-regex -- NUL is exactly what must be matched here
const UNSTORABLE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/g
function storableString (_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.replace(UNSTORABLE, '\uFFFD') : value
}

/** Newest first, keyset-paginated on id (stable while events keep arriving). */
export async function listAuditEvents (
  db: Kysely<Database>,
  opts: { beforeId?: number, limit: number, userId?: number, type?: AuditEventType }
): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_events')
    .select(['id', 'at', 'type', 'actor_id', 'user_id', 'ip', 'detail'])
    .orderBy('id', 'desc')
    .limit(opts.limit)
  if (opts.beforeId !== undefined) query = query.where('id', '<', String(opts.beforeId))
  if (opts.userId !== undefined) query = query.where('user_id', '=', opts.userId)
  if (opts.type !== undefined) query = query.where('type', '=', opts.type)
  const rows = await query.execute()
  return rows.map(row => ({
    // bigint arrives as a string (pg) or a bigint (PGlite); audit ids stay far below 2^53.
    id: Number(row.id),
    at: row.at,
    type: row.type,
    actorId: row.actor_id,
    userId: row.user_id,
    ip: row.ip,
    detail: row.detail
  }))
}
