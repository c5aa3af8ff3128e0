import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifySymbols from 'fastify/lib/symbols.js'

const { kReply, kRequest, kHasBeenDecorated } = fastifySymbols

/**
 * Lets routes in different plugins share Fastify's Request and Reply classes.
 *
 * Fastify builds a Request and a Reply class for every encapsulated plugin (every routes file
 * here) and means to fall back to the parent's when that plugin decorates neither ("avoid
 * encapsulation if no decoration has been done", fastify/lib/route.js). It asks the class for
 * kHasBeenDecorated, though, and a child class inherits that property from its parent class
 * (the classes' prototype chain): once the root is decorated (by @fastify/jwt, here), every
 * child reads true and keeps a class of its own. Every request passes the same property sites
 * in Fastify's and Node's code, and with a class per routes file those sites saw one object
 * shape per file; past four, V8 gives a site up to its slow generic path (megamorphic) for
 * good. Measured with callgrind, 5,000 requests after warm-up: /api/test/all cost ~69,000
 * instructions per request on a server that had served only it, ~84,000 once the server had
 * also answered health, documentation, auth and admin requests.
 *
 * Each new context's classes start marked as undecorated here; a decorateRequest or
 * decorateReply in that context sets the mark to true on its class, as before (the /api/auth
 * routes, which register @fastify/cookie, keep theirs).
 */
export default fp(async (app) => {
  app.addHook('onRegister', (instance) => {
    Reflect.set(Reflect.get(instance, kRequest) as object, kHasBeenDecorated, false)
    Reflect.set(Reflect.get(instance, kReply) as object, kHasBeenDecorated, false)
  })
}, { name: 'request-classes' })

/**
 * Points `scope` at the Request and Reply classes its routes would get: the nearest it or an
 * ancestor decorated, as fastify/lib/route.js picks them for a route. Fastify does not do that
 * for a not-found handler, whose context takes the classes of the instance that sets it. Only
 * for a scope that decorates nothing: a decoration made in it afterwards would land on an
 * ancestor's class.
 */
export function useSharedClasses (scope: FastifyInstance): void {
  for (const key of [kRequest, kReply]) {
    let shared = Reflect.get(scope, key) as { parent?: object }
    while (Reflect.get(shared, kHasBeenDecorated) !== true && shared.parent !== undefined) shared = shared.parent
    Reflect.set(scope, key, shared)
  }
}
