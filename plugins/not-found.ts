import fp from 'fastify-plugin'
import { send } from './errors.js'

// Unknown paths get the contract's 404 after the global rate limit, so a scanner probing paths
// spends the same per-IP budget as the API (the limiter shares the routes' counter). A
// preHandler on the not-found handler is how @fastify/rate-limit documents it; registered
// after rate-limit, whose limiter this is, so no route pays for it.
export default fp(async (app) => {
  const opts = app.config.rateLimit.enabled ? { preHandler: app.rateLimit() } : {}
  app.setNotFoundHandler(opts, async (request, reply) =>
    await send(reply, 404, `Route ${request.method}:${request.url.split('?')[0] ?? ''} not found`))
}, { name: 'not-found', dependencies: ['errors', 'rate-limit'] })
