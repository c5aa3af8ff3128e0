import type {} from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'
import { MAX_REFRESH_TOKEN_LENGTH } from '../src/schemas/auth.js'

export const REFRESH_COOKIE = 'refreshToken'

declare module 'fastify' {
  interface FastifyInstance {
    setRefreshCookie: (reply: FastifyReply, token: string) => void
    clearRefreshCookie: (reply: FastifyReply) => void
    /**
     * The refresh token from the body field (the tutorial's) or, failing that (absent or empty),
     * the cookie; throws 403 when the cookie comes with a page of another origin not trusted.
     */
    refreshTokenOf: (request: FastifyRequest, fromBody: string | undefined) => string | undefined
  }
}

// The refresh token also travels as an HttpOnly cookie scoped to /api/auth, so browser
// clients never touch it from JavaScript. `Secure` everywhere but plain-http development
// (API.md): in development it follows the request, so a development server behind a TLS proxy
// (TRUST_PROXY, X-Forwarded-Proto) still never sends the token where https could not keep it.
// @fastify/cookie itself is registered by the /api/auth routes only: it adds an onRequest and
// an onSend hook, which every other route (the content routes above all) is better without.
export default fp(async (app) => {
  const base = { path: '/api/auth', httpOnly: true, sameSite: 'strict' as const }
  const development = app.config.env === 'development'
  const options = (reply: FastifyReply): typeof base & { secure: boolean } =>
    ({ ...base, secure: !development || reply.request.protocol === 'https' })
  const maxAge = Math.floor(app.config.refresh.ttlMs / 1000)

  app.decorate('setRefreshCookie', (reply: FastifyReply, token: string) => {
    void reply.setCookie(REFRESH_COOKIE, token, { ...options(reply), maxAge })
  })
  app.decorate('clearRefreshCookie', (reply: FastifyReply) => {
    void reply.clearCookie(REFRESH_COOKIE, options(reply))
  })

  // SameSite=Strict keeps the cookie from other sites, not from sibling subdomains: to a browser
  // a page on blog.example.com is the same site as api.example.com, and its form posts carry the
  // cookie, enough to rotate a user's refresh token or sign them out. Browsers label such a
  // request (Sec-Fetch-Site: same-site, or cross-site); it may use the cookie only from an origin
  // CORS_ORIGIN lists with credentials. Not judged by comparing Origin with Host: a proxy that
  // rewrites Host would make the API's own front end look foreign. A token in the body is no
  // ambient authority, and clients that send no Sec-Fetch-Site (not browsers, or old ones) are
  // served as before.
  const trusted = new Set(Array.isArray(app.config.corsOrigin) ? app.config.corsOrigin : [])
  const fromTrustedPage = (request: FastifyRequest): boolean => {
    const site = request.headers['sec-fetch-site']
    if (site !== 'same-site' && site !== 'cross-site') return true
    const origin = request.headers.origin
    return typeof origin === 'string' && trusted.has(origin.toLowerCase())
  }

  app.decorate('refreshTokenOf', (request: FastifyRequest, fromBody: string | undefined) => {
    if (fromBody !== undefined && fromBody !== '') return fromBody
    const cookie = request.cookies[REFRESH_COOKIE]
    if (typeof cookie !== 'string' || cookie.length === 0) return undefined
    if (!fromTrustedPage(request)) throw new HttpError(403, 'The refresh cookie is not accepted from this page: a page of another origin may use it only if CORS_ORIGIN lists that origin')
    return cookie.length <= MAX_REFRESH_TOKEN_LENGTH ? cookie : undefined
  })
}, { name: 'refresh-cookie', dependencies: ['config'] })
