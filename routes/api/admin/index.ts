import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HttpError } from '../../../src/errors.js'
import auditRoutes from './audit/index.js'
import userRoutes from './users/index.js'

// Everything under /api/admin is for admins only, so the subtree authenticates and checks
// fresh admin authority here, once, rather than trusting each route to remember it.
const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.authenticate)
  // Ajv's coercion reads URL integers like JavaScript's Number(): "0x10" becomes 16 and
  // "1e400" becomes Infinity, which then slips past `maximum` and fails in the database (a
  // 500). Integers in these URLs must be written as plain decimal digits.
  app.addHook('preValidation', async (request) => {
    rejectNonDecimal('params', request.params, ['id'])
    rejectNonDecimal('querystring', request.query, ['limit', 'userId'])
  })
  app.addHook('preHandler', app.requireActiveAdmin)

  await app.register(userRoutes, { prefix: '/users' })
  await app.register(auditRoutes, { prefix: '/audit' })
}

function rejectNonDecimal (part: string, values: unknown, names: string[]): void {
  for (const name of names) {
    const value = (values as Record<string, unknown> | undefined)?.[name]
    if (typeof value === 'string' && !/^-?[0-9]{1,20}$/.test(value)) {
      throw new HttpError(400, `${part}/${name} must be an integer written in decimal digits`)
    }
  }
}

export default adminRoutes
