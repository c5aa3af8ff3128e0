import type { RouteOptions } from 'fastify'

type RouteHook = 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler' | 'onSend'

/** A route's methods, whatever form the route gave them (one, or a list). */
export function routeMethods (route: RouteOptions): string[] {
  return Array.isArray(route.method) ? route.method : [route.method]
}

/** True for a route Fastify reads a request body for (DELETE too, though ours takes none). */
export function readsBody (route: RouteOptions): boolean {
  return routeMethods(route).some(method => BODY_METHODS.has(method))
}
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

// A route's hook list, whatever form the route gave it (none, one function, a list).
function hooksOf (route: RouteOptions, hook: RouteHook): unknown[] {
  const existing = route[hook] as unknown
  return existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]
}

/**
 * Puts `handler` first in one of a route's hook lists. For plugins that attach checks to chosen
 * routes from an onRoute hook: first in line, a refused request costs no other work.
 */
export function prependRouteHook (route: RouteOptions, hook: RouteHook, handler: unknown): void {
  ;(route as unknown as Record<string, unknown>)[hook] = [handler, ...hooksOf(route, hook)]
}

/**
 * Puts `handler` last in one of a route's hook lists: after what the route and the plugins
 * above it attached (a rate limit first of all), where a hook added to the plugin's context
 * would run before all of them.
 */
export function appendRouteHook (route: RouteOptions, hook: RouteHook, handler: unknown): void {
  ;(route as unknown as Record<string, unknown>)[hook] = [...hooksOf(route, hook), handler]
}
