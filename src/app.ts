import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { loggerOptions, withRedaction } from './logger.js'
import configPlugin from '../plugins/config.js'
import connections from '../plugins/connections.js'
import validation from '../plugins/validation.js'
import errors, { clientErrorReply, frameworkErrorReply, MAX_PARAM_LENGTH } from '../plugins/errors.js'
import securityHeaders from '../plugins/security-headers.js'
import contentEncoding from '../plugins/content-encoding.js'
import rateLimit from '../plugins/rate-limit.js'
import notFound from '../plugins/not-found.js'
import underPressure from '../plugins/under-pressure.js'
import redis from '../plugins/redis.js'
import swagger from '../plugins/swagger.js'
import cors from '../plugins/cors.js'
import db from '../plugins/db.js'
import requestClasses from '../plugins/request-classes.js'
import passwords from '../plugins/passwords.js'
import auth from '../plugins/auth.js'
import refreshCookie from '../plugins/refresh-cookie.js'
import adminBootstrap from '../plugins/admin-bootstrap.js'
import refreshCleanup from '../plugins/refresh-cleanup.js'
import audit from '../plugins/audit.js'
import adminAuthority from '../plugins/admin-authority.js'
import healthRoutes from '../routes/health.js'
import authRoutes from '../routes/api/auth/index.js'
import testRoutes from '../routes/api/test/index.js'
import adminRoutes from '../routes/api/admin/index.js'

export const BODY_LIMIT = 1024 * 1024
const REQUEST_TIMEOUT_MS = 30_000

export interface BuildOptions {
  /** Overrides the logger built from config (tests pass a capturing stream). */
  logger?: FastifyServerOptions['logger']
}

// The whole application, in load order: framework settings, config and the database (first, see
// below), the other plugins, routes. Nothing else belongs here.
export async function buildApp (config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger !== undefined ? withRedaction(options.logger) : loggerOptions(config),
    trustProxy: config.trustProxy,
    bodyLimit: BODY_LIMIT,
    // Slow clients are bounded by Node's request timeout (30 s, headers included) and the
    // keep-alive timeout; a per-socket connectionTimeout on top would re-arm a timer on every
    // read and write. Node applies the larger of the headers and request timeouts to the whole
    // request, so the headers one (60 s by default) must not exceed it, and checks them only
    // every connectionsCheckingInterval (30 s by default): one timer, every second.
    requestTimeout: REQUEST_TIMEOUT_MS,
    // requireHostHeader: off so that an HTTP/1.1 request without Host gets the contract's 400
    // (plugins/under-pressure.ts) instead of Node's empty one. joinDuplicateHeaders: Node keeps
    // only the first of a repeated Authorization, Content-Type or Host and drops the rest, where
    // a proxy in front may read the last; joined, a repeat is seen and refused (plugins/auth.ts).
    // Only requests that repeat a header pay for it.
    http: { headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000, requireHostHeader: false, joinDuplicateHeaders: true },
    // Fastify's default, set here because README states it: longer than the 60 s idle timeout
    // of common load balancers, so the balancer closes first and never sends a request down a
    // connection this server has just closed.
    keepAliveTimeout: 72_000,
    // Requests during a graceful shutdown get our 503 (plugins/under-pressure.ts), not Fastify's.
    return503OnClosing: false,
    // The embedded database (WebAssembly PostgreSQL) can take well over Fastify's default 10 s
    // to open on a busy machine.
    pluginTimeout: 120_000,
    // compile: find-my-way turns the route table into generated code once all routes are
    // registered, instead of walking its tree for every request (same matching).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH, compile: true },
    // Malformed paths and over-long parameters, refused while routing, and requests the HTTP
    // parser refuses: the contract's shape and headers too.
    frameworkErrors: frameworkErrorReply,
    clientErrorHandler: clientErrorReply
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(configPlugin, { config })
  await app.register(connections)
  // The database first, before any plugin that sets handlers or hooks. This order was first
  // found to keep Node's per-request tick objects (process.nextTick) off V8's slow
  // property-definition path under load (perf: 3.5% of the event loop's samples against
  // 0.2-1.2%). The cause turned out to be full collections while no tick object was alive
  // (src/tick-shape.cts, which the server entry now runs first), and the order only moved when
  // those happened; it still did not prevent them. Kept: opening the database first costs
  // nothing, and plugins that need it find it open.
  await app.register(db)
  // Before any encapsulated plugin (routes, documentation): its hook must see every new context.
  await app.register(requestClasses)
  await app.register(validation)
  await app.register(errors)
  // Before every route, so its hook reaches all of them.
  await app.register(securityHeaders)
  // Before the routes, so its onRoute hook sees every route that takes a body.
  await app.register(contentEncoding)
  await app.register(cors)
  await app.register(redis)
  // After redis (its counters may live there), before the routes it attaches limits to.
  await app.register(rateLimit)
  // After rate-limit, so the documentation routes get the global limit.
  await app.register(swagger)
  await app.register(passwords)
  await app.register(auth)
  await app.register(refreshCookie)
  await app.register(adminBootstrap)
  await app.register(refreshCleanup)
  await app.register(audit)
  await app.register(adminAuthority)
  // Just before the routes: its event-loop clock starts after the startup work (the embedded
  // database's initialisation blocks the loop for seconds and must not count as overload).
  await app.register(underPressure)
  // After every plugin with a global hook (its scope for unknown paths starts with their hooks),
  // after rate-limit (whose limiter it uses), before the routes (which it collects for the 405).
  await app.register(notFound)

  await app.register(healthRoutes)
  await app.register(authRoutes, { prefix: '/api/auth' })
  await app.register(testRoutes, { prefix: '/api/test' })
  await app.register(adminRoutes, { prefix: '/api/admin' })
  return app
}
