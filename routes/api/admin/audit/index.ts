import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { decodeCursor, page } from '../../../../src/cursor.js'
import { listAuditEvents, type AuditEvent } from '../../../../src/repositories/audit.js'
import { AuditEventItem, AuditPage, AuditQuery } from '../../../../src/schemas/admin.js'
import { bearerSecurity, errors } from '../../../../src/schemas/common.js'

function toItem (event: AuditEvent): typeof AuditEventItem.static {
  return { ...event, at: event.at.toISOString() }
}

const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', {
    schema: {
      tags: ['admin'],
      security: bearerSecurity,
      operationId: 'listAuditEvents',
      summary: 'Audit events, newest first',
      description: 'Who did what to whom, from which client IP and when. Filter by `userId` (the subject) and / or `type`; page with `nextCursor`.',
      querystring: AuditQuery,
      response: { 200: AuditPage, ...errors(400, 401, 403, 503) }
    }
  }, async (request) => {
    const { limit, cursor, userId, type } = request.query
    const beforeId = decodeCursor(cursor)
    const rows = await listAuditEvents(app.db, {
      limit: limit + 1,
      ...(beforeId !== undefined ? { beforeId } : {}),
      ...(userId !== undefined ? { userId } : {}),
      ...(type !== undefined ? { type } : {})
    })
    return page(rows, limit, toItem)
  })
}

export default auditRoutes
