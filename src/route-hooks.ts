import type { RouteOptions } from 'fastify'

type RouteHook = 'onRequest' | 'preParsing' | 'preHandler' | 'onSend'

/**
 * Puts `handler` first in one of a route's hook lists, whatever form the route gave it (none,
 * one function, a list). For plugins that attach checks to chosen routes from an onRoute hook:
 * first in line, a refused request costs no other work.
 */
export function prependRouteHook (route: RouteOptions, hook: RouteHook, handler: unknown): void {
  const existing = route[hook] as unknown
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]
  ;(route as unknown as Record<string, unknown>)[hook] = [handler, ...list]
}
