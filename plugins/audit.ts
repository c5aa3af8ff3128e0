import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Kysely, Transaction } from 'kysely'
import type { AuditEventInput, AuditEventType } from '../src/audit.js'
import type { Database } from '../src/db/schema.js'
import { recordAuditEvent } from '../src/repositories/audit.js'

export interface AuditOptions {
  /** The user the event is about (null when unknown, e.g. a failed signin for no such user). */
  userId: number | null
  /** Who acted; defaults to the authenticated caller, else the subject itself (self-service). */
  actorId?: number | null
  detail?: Record<string, unknown>
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Writes an audit event for this request (client IP = request.ip). Pass `db` = the action's
     * transaction to commit the event together with the action.
     */
    audit: (request: FastifyRequest, type: AuditEventType, options: AuditOptions, db?: Kysely<Database> | Transaction<Database>) => Promise<void>
    /** The event app.audit would write, for a statement that writes it beside its own change. */
    auditEvent: (request: FastifyRequest, type: AuditEventType, options: AuditOptions) => AuditEventInput
  }
}

// Why an awaited insert rather than a batching writer: an audit row is one small insert on
// indexed columns (well under a millisecond), while the requests that write one already cost
// an argon2 hash (~30 ms: signin, signin_failed, signup, password change) or a transaction of
// their own. Awaiting it adds a few percent at most and means an event the response reports
// as done is committed: a batching writer would lose its buffer on a crash, and would need
// flushing on close and back-pressure when the database is slow. Admin actions pass their
// transaction, so the action and its event commit (or roll back) together.
export default fp(async (app) => {
  const auditEvent = (request: FastifyRequest, type: AuditEventType, options: AuditOptions): AuditEventInput => ({
    type,
    actorId: options.actorId !== undefined ? options.actorId : (request.user?.id ?? options.userId),
    userId: options.userId,
    ip: request.ip,
    ...(options.detail !== undefined ? { detail: options.detail } : {})
  })
  app.decorate('auditEvent', auditEvent)
  app.decorate('audit', async (request: FastifyRequest, type: AuditEventType, options: AuditOptions, db?: Kysely<Database> | Transaction<Database>) => {
    await recordAuditEvent(db ?? app.db, auditEvent(request, type, options))
  })
}, { name: 'audit', dependencies: ['db', 'auth'] })
