import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import fastifySymbols from 'fastify/lib/symbols.js'
import helmet, { type HelmetOptions } from 'helmet'
import { appendRouteHook } from '../src/route-hooks.js'

export const DOCS_PREFIX = '/documentation'

/**
 * Runs helmet once, at start, against a recording response and returns the headers it sets.
 * @fastify/helmet would run helmet (plus an async hook) on every request, which cost about 40%
 * of throughput here (ENVIRONMENT.md, "Measuring"); the headers never vary per request, so we
 * take helmet's maintained defaults once and per response only write the values they gave.
 */
export function helmetHeaders (options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: string | number | readonly string[]) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { Reflect.deleteProperty(headers, name.toLowerCase()) }
  }
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => {})
  return Object.freeze(headers)
}

// JSON responses: nothing to render, frame, sniff or cache. Three headers say all of it: a CSP
// that allows nothing and no framing, nosniff, and no-store. helmet's page-oriented extras are
// noise on an API, and every header is parsed by every client on every response (measured:
// each extra header line costs the load generator about as much as our own hook costs us).
// Left out on purpose: X-Frame-Options, which CSP frame-ancestors supersedes in every browser
// that honours either (and a JSON body has nothing to click), and Referrer-Policy, which only
// governs requests a document makes, and a JSON body makes none. The HTML documentation page
// keeps helmet's full page defaults, both of those included.
export const API_HEADERS = Object.freeze({
  ...helmetHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: false,
    referrerPolicy: false,
    crossOriginOpenerPolicy: false,
    // JSON with nosniff is already kept from cross-origin no-cors reads (CORB/ORB).
    crossOriginResourcePolicy: false,
    // HSTS belongs to whatever terminates TLS; rolegate itself speaks plain http.
    strictTransportSecurity: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  }),
  // Signin and refresh answers carry tokens: no shared or browser cache may keep them.
  'cache-control': 'no-store'
})

// The interactive documentation is an HTML page that loads its own scripts and styles from
// /documentation: helmet's defaults (self-only CSP with inline styles, which Swagger UI uses),
// minus upgrade-insecure-requests, which would break the page on plain-http development hosts,
// and minus HSTS, which is the TLS terminator's to send, as on the API: helmet's year with
// includeSubDomains, sent from behind TLS, would pin every subdomain of the deployer's domain.
const DOCS_HEADERS = helmetHeaders({
  contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  strictTransportSecurity: false
})

// Headers the docs page does not want at all (the API's no-store, for one).
const API_ONLY = Object.keys(API_HEADERS).filter(name => !(name in DOCS_HEADERS))

// The hook below writes these three by name; a header added above must be added there too.
if (Object.keys(API_HEADERS).join() !== 'content-security-policy,x-content-type-options,cache-control') {
  throw new Error('security-headers: API_HEADERS changed; update the hook that writes them')
}
const kReplyHeaders = fastifySymbols.kReplyHeaders
const API: Readonly<Record<string, string>> = API_HEADERS
const CSP = API['content-security-policy'] ?? ''
const NOSNIFF = API['x-content-type-options'] ?? ''
const NO_STORE = API['cache-control'] ?? ''

export default fp(async (app) => {
  // One synchronous hook; global, so it also covers 404s and errors. It looks at nothing in the
  // request: this runs on every request of every route. It writes into the reply's header
  // object (Fastify's kReplyHeaders, where reply.header() writes too) with three constant
  // names: reply.headers() goes through header(), whose one store site sees every header name
  // of the process and is megamorphic in V8. Measured in interleaved runs on /api/test/all:
  // +2-6% requests per second. If Fastify moved that object, every response would fail, and
  // the header tests with it.
  app.addHook('onRequest', (_request, reply, done) => {
    const headers: Record<string, string> = Reflect.get(reply, kReplyHeaders)
    headers['content-security-policy'] = CSP
    headers['x-content-type-options'] = NOSNIFF
    headers['cache-control'] = NO_STORE
    done()
  })
  // The documentation routes swap in the page's headers; route-level hooks run after the
  // global one above, and only on these rarely-hit routes.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(DOCS_PREFIX)) return
    appendRouteHook(route, 'onRequest', (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      for (const name of API_ONLY) reply.removeHeader(name)
      reply.headers(DOCS_HEADERS)
      done()
    })
  })
}, { name: 'security-headers' })
