import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import auditRoutes from './audit/index.js'
import userRoutes from './users/index.js'

// Everything under /api/admin is for admins only, so the subtree authenticates and checks
// fresh admin authority here, once, rather than trusting each route to remember it.
const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.authenticate)
  app.addHook('preHandler', app.requireActiveAdmin)

  await app.register(userRoutes, { prefix: '/users' })
  await app.register(auditRoutes, { prefix: '/audit' })
}

export default adminRoutes
