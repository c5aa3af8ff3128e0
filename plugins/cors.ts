import fastifyCors from '@fastify/cors'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody } from '../src/errors.js'
import { prependRouteHook } from '../src/route-hooks.js'

const EXPOSED_HEADERS = ['retry-after', 'www-authenticate', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

/**
 * The CORS headers @fastify/cors gives an answer to `origin`, for the answers written before any
 * hook runs (routing errors, plugins/errors.ts): without them a browser script on a listed
 * origin cannot read why it was refused.
 */
export function corsHeaders (configured: '*' | string[] | undefined, origin: string | undefined): Record<string, string> {
  if (configured === undefined) return {}
  if (configured === '*') return origin === undefined ? {} : { 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSED_HEADERS.join(', ') }
  if (origin === undefined || !configured.includes(origin)) return { vary: 'Origin' }
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': EXPOSED_HEADERS.join(', '), vary: 'Origin' }
}

// Cross-origin access only for the origins listed in CORS_ORIGIN (comma-separated, or `*`;
// checked and normalised in src/config.ts). Credentials are allowed for listed origins so
// browsers can send the refresh cookie; with `*` they are not (browsers forbid credentials with
// a wildcard).
export default fp(async (app) => {
  const configured = app.config.corsOrigin
  if (configured === undefined) return
  const wildcard = configured === '*'
  const allowed = new Set(wildcard ? [] : configured)
  // @fastify/cors refuses a preflight without Access-Control-Request-Method (strictPreflight)
  // with a text/plain 'Invalid Preflight Request' sent from its own hook. On the OPTIONS route
  // it adds, the only route that answers preflights, that becomes the contract's JSON naming
  // the missing header: only OPTIONS requests run this. (Without Origin the request is no CORS
  // request and gets the answer it would get without CORS: 405 on a known path.)
  app.addHook('onRoute', (route) => {
    if (route.method === 'OPTIONS' && route.path === '*') prependRouteHook(route, 'onSend', preflightErrorAsJson)
  })
  await app.register(fastifyCors, {
    // A function, not the list: given a list, @fastify/cors sends Allow-Credentials (and any
    // other CORS header but Allow-Origin) to every request, disallowed origins included. false
    // leaves a request without CORS headers (a disallowed preflight falls through to the
    // not-found handler: 405 on a known path), as it does one without Origin, which is no CORS
    // request; true reflects its Origin. A Set lookup costs no more than the list's comparison
    // did.
    origin: (origin, callback) => { callback(null, origin === undefined ? false : wildcard ? '*' : allowed.has(origin)) },
    credentials: !wildcard,
    // Browsers hide all but a few response headers from cross-origin scripts: these tell a
    // client when to retry (429, 503) and why its token was refused.
    exposedHeaders: EXPOSED_HEADERS,
    allowedHeaders: ['content-type', 'authorization', 'x-access-token'],
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    // Seconds a browser may reuse a preflight's answer: one preflight per endpoint per ten
    // minutes instead of one before every call, and a CORS_ORIGIN change reaches browsers
    // within ten minutes.
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['config'] })

const CORS_PREFLIGHT_REFUSAL = 'Invalid Preflight Request'

async function preflightErrorAsJson (_request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if (reply.statusCode !== 400 || payload !== CORS_PREFLIGHT_REFUSAL) return payload
  void reply.type('application/json; charset=utf-8')
  return JSON.stringify(errorBody(400, 'A CORS preflight request needs an Access-Control-Request-Method header'))
}
