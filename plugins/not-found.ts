import fp from 'fastify-plugin'
import { routeMethods } from '../src/route-hooks.js'
import { send } from './errors.js'

/** A route's path as a pattern over request paths: `:id` is one segment, a trailing slash optional. */
function pathPattern (url: string): RegExp {
  const segments = url.replace(/\/+$/, '').split('/').map(segment =>
    segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${segments.join('/')}/?$`)
}

// Unknown paths get the contract's 404 after the global rate limit, so a scanner probing paths
// spends the same per-IP budget as the API (the limiter shares the routes' counter). A
// preHandler on the not-found handler is how @fastify/rate-limit documents it; registered
// after rate-limit, whose limiter this is, so no route pays for it.
export default fp(async (app) => {
  // The routes registered after this plugin (the API's; app.ts), for the 405 below. Wildcard
  // routes (CORS preflights answer OPTIONS on every path) say nothing about a path.
  const routes: Array<{ pattern: RegExp, methods: string[] }> = []
  app.addHook('onRoute', (route) => {
    if (route.url.includes('*')) return
    routes.push({ pattern: pathPattern(route.url), methods: routeMethods(route) })
  })

  const opts = app.config.rateLimit.enabled ? { preHandler: app.rateLimit() } : {}
  app.setNotFoundHandler(opts, async (request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    // A path that exists, asked with another method: 405 with the methods it takes (RFC 9110
    // requires Allow), which names the client's mistake where a 404 says the path is wrong.
    const allowed = [...new Set(routes.filter(route => route.pattern.test(path)).flatMap(route => route.methods))].sort()
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '))
      return await send(reply, 405, `Method ${request.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`)
    }
    return await send(reply, 404, `Route ${request.method}:${path} not found`)
  })
}, { name: 'not-found', dependencies: ['errors', 'rate-limit'] })
