import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { routeMethods } from '../src/route-hooks.js'
import { send } from './errors.js'
import { useSharedClasses } from './request-classes.js'

/**
 * The path the router (find-my-way) matched a request's target against, as it derives it: an
 * http or https absolute-form target (a proxy's) by its path ("/" when it has none), then
 * without the query or fragment, percent-decoded by decodeURI (an encoded slash is no
 * separator) except %25, which stays encoded. What a 404 or 405 names, too.
 */
function routedPath (url: string): string {
  const origin = /^https?:\/\/[^/?#]*/i.exec(url)
  const rest = origin === null ? url : url.slice(origin[0].length)
  const target = origin === null || rest.startsWith('/') ? rest : `/${rest}`
  const path = target.split(/[?#]/, 1)[0] ?? ''
  try {
    return decodeURI(path.replaceAll('%25', '%2525'))
  } catch {
    return path
  }
}

/** A route's path as a pattern over request paths: `:id` is one segment, a trailing slash optional. */
function pathPattern (url: string): RegExp {
  const segments = url.replace(/\/+$/, '').split('/').map(segment =>
    segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${segments.join('/')}/?$`)
}

// Unknown paths get the contract's 404 after the global rate limit, so a scanner probing paths
// spends the same per-IP budget as the API (the limiter shares the routes' counter).
//
// Both are answered at onRequest, before the body is read: a client posting to a mistyped path
// learns that, not that its JSON is broken (or too large, or gzipped), and a scanner's junk
// bodies are never parsed. setNotFoundHandler takes only preValidation and preHandler hooks,
// which run after the body; the not-found handler's other hooks are those of the instance that
// sets it, so it is set in a scope of its own whose onRequest hooks reach the not-found handler
// and no route. That scope starts with the hooks the app has at that moment: app.ts registers
// this plugin after every plugin with a global hook (the refusal hook of under-pressure, the
// security headers, CORS), and the tests of those hooks on unknown paths would notice otherwise.
export default fp(async (app) => {
  // The routes registered after this plugin (the API's; app.ts), for the 405 below. Wildcard
  // routes (CORS preflights answer OPTIONS on every path) say nothing about a path.
  const routes: Array<{ pattern: RegExp, methods: string[] }> = []
  app.addHook('onRoute', (route) => {
    if (route.url.includes('*')) return
    routes.push({ pattern: pathPattern(route.url), methods: routeMethods(route) })
  })

  async function answer (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = routedPath(request.url)
    // A path that exists, asked with another method: 405 with the methods it takes (RFC 9110
    // requires Allow), which names the client's mistake where a 404 says the path is wrong.
    const allowed = [...new Set(routes.filter(route => route.pattern.test(path)).flatMap(route => route.methods))].sort()
    if (allowed.length > 0) {
      void reply.header('allow', allowed.join(', '))
      return await send(reply, 405, `Method ${request.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`)
    }
    return await send(reply, 404, `Route ${request.method}:${path} not found`)
  }

  await app.register(async (notFound) => {
    // Unknown paths on the routes' classes, not a pair of this scope's own: one more shape at
    // every property site the 404s pass would turn some megamorphic (plugins/request-classes.ts).
    useSharedClasses(notFound)
    const limit = app.config.rateLimit.enabled ? app.rateLimit() : undefined
    // The limiter first (@fastify/rate-limit documents its hook for onRequest too).
    if (limit !== undefined) notFound.addHook('onRequest', limit)
    notFound.addHook('onRequest', answer)
    // The handler answers what reply.callNotFound() sends here: @fastify/cors does for a
    // preflight from an origin not allowed. That path runs only preHandler hooks, so the
    // limiter is one of them too; a request the hooks above answered never reaches it.
    notFound.setNotFoundHandler(limit === undefined ? {} : { preHandler: limit }, answer)
  })
}, { name: 'not-found', dependencies: ['errors', 'rate-limit'] })
