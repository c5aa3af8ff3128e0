import type {} from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { MAX_REFRESH_TOKEN_LENGTH } from '../src/schemas/auth.js'

export const REFRESH_COOKIE = 'refreshToken'

declare module 'fastify' {
  interface FastifyInstance {
    setRefreshCookie: (reply: FastifyReply, token: string) => void
    clearRefreshCookie: (reply: FastifyReply) => void
    /** The refresh token from the body field (the tutorial's) or, failing that (absent or empty), the cookie. */
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
  app.decorate('refreshTokenOf', (request: FastifyRequest, fromBody: string | undefined) => {
    if (fromBody !== undefined && fromBody !== '') return fromBody
    const cookie = request.cookies[REFRESH_COOKIE]
    return typeof cookie === 'string' && cookie.length > 0 && cookie.length <= MAX_REFRESH_TOKEN_LENGTH ? cookie : undefined
  })
}, { name: 'refresh-cookie', dependencies: ['config'] })
