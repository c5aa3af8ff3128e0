import type { FastifyInstance, FastifyRequest } from 'fastify'

// The audit event vocabulary, in one place: the writer, the query filter and the OpenAPI
// schema all read this list.
export const AUDIT_EVENT_TYPES = [
  'signup',
  'signin',
  'signin_failed',
  'refresh_reuse_detected',
  'signout',
  'password_changed',
  'roles_changed',
  'user_disabled',
  'user_enabled',
  'user_deleted'
] as const
export type AuditEventType = typeof AUDIT_EVENT_TYPES[number]

/** One event as written: `actorId` did `type` to `userId`, from `ip`. */
export interface AuditEventInput {
  type: AuditEventType
  actorId: number | null
  userId: number | null
  ip: string | null
  detail?: Record<string, unknown>
}

/** The id of a valid access token's holder, or undefined: never throws (the audit must not fail a request). */
export function callerIdOf (app: FastifyInstance, request: FastifyRequest): number | undefined {
  try {
    return app.optionalUser(request)?.id
  } catch {
    return undefined
  }
}
