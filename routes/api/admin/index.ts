import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { appendRouteHook } from '../../../src/route-hooks.js'
import auditRoutes from './audit/index.js'
import userRoutes from './users/index.js'

// Everything under /api/admin is for admins only, so the subtree authenticates and checks
// fresh admin authority here, once, rather than trusting each route to remember it. The token
// check goes on each route, after the rate limit the route already has: as a hook of this
// context it would run before it, and requests without a valid token would never be limited.
const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRoute', (route) => { appendRouteHook(route, 'onRequest', app.authenticate) })
  app.addHook('preHandler', app.requireActiveAdmin)

  await app.register(userRoutes, { prefix: '/users' })
  await app.register(auditRoutes, { prefix: '/audit' })
}

export default adminRoutes
