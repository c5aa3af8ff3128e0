import type { preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'
import { isActiveAdmin } from '../src/repositories/admin-users.js'
import { hasRole } from '../src/roles.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler (after app.authenticate): 403 unless the caller is an admin right now, per the
     * database. Access tokens live up to ACCESS_TOKEN_TTL; the claims alone would let a demoted
     * or disabled admin keep administering until theirs expires.
     */
    requireActiveAdmin: preHandlerAsyncHookHandler
  }
}

const DENIED = 'Require Admin Role!'

export default fp(async (app) => {
  app.decorate('requireActiveAdmin', async function (request) {
    // Claims first: a token without the admin role never costs a query.
    if (!hasRole(request.user.roles, 'admin')) throw new HttpError(403, DENIED)
    if (!(await isActiveAdmin(app.db, request.user.id))) throw new HttpError(403, DENIED)
  } satisfies preHandlerAsyncHookHandler)
}, { name: 'admin-authority', dependencies: ['db', 'auth'] })
