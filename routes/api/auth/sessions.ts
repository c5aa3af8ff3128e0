import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { INVALID_TOKEN } from '../../../plugins/auth.js'
import { REFRESH_COOKIE } from '../../../plugins/refresh-cookie.js'
import { runTransaction } from '../../../src/db/serialization-retry.js'
import { HttpError } from '../../../src/errors.js'
import { jsonBodyParser } from '../../../src/json-body.js'
import { assertAcceptablePassword } from '../../../src/password-policy.js'
import { findCredentialsById, findUserById, replacePasswordHash } from '../../../src/repositories/users.js'
import { issueRefreshToken, revokeFamilyOfToken, revokeUserFamilies, rotateRefreshToken } from '../../../src/repositories/refresh-tokens.js'
import { toApiRole } from '../../../src/roles.js'
import { MeResponse, PasswordBody, RefreshBody, RefreshCookie, SignoutBody, SignoutResponse, TokenPairResponse } from '../../../src/schemas/auth.js'
import { bearerSecurity, errors } from '../../../src/schemas/common.js'

// Tries of a password change whose account changed between reading it and writing the new
// hash (see the route).
const MAX_CHANGE_TRIES = 3

const INVALID_REFRESH = 'Invalid or expired refresh token. Please make a new signin request'

// Refresh, signout, me and password change: everything that lives on an existing sign-in.
const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { refresh } = app.config

  // The refresh token may come from the cookie alone, so an empty body is allowed here, also
  // when a browser client labels it `application/json` (Fastify's own parser refuses that).
  const parseJson = jsonBodyParser(app)
  // Replaces, for these routes only, the application-wide JSON parser (plugins/validation.ts).
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    if (body.length === 0) done(null, undefined)
    else parseJson(request, body, done)
  })
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {}
  })

  app.post('/refreshtoken', {
    schema: {
      tags: ['sessions'],
      operationId: 'refreshToken',
      summary: 'Exchange a refresh token for a new token pair (rotation)',
      description: 'Accepts `refreshToken` in the body or the `refreshToken` cookie. The presented token stops working; presenting it again revokes the whole sign-in. A browser page of another origin (a sibling subdomain included) may use the cookie only if CORS_ORIGIN lists it (403).',
      body: RefreshBody,
      cookies: RefreshCookie,
      response: { 200: TokenPairResponse, ...errors(400, 401, 403, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const token = app.refreshTokenOf(request, request.body.refreshToken)
    // A cookie whose token is refused can never work again: clear it, so the browser stops
    // sending it. A refused token from the body says nothing about the cookie.
    const refuse = (message: string): HttpError => {
      if (request.body.refreshToken === undefined && request.cookies[REFRESH_COOKIE] !== undefined) app.clearRefreshCookie(reply)
      return new HttpError(401, message)
    }
    // No token, unless a cookie was sent that cannot be one (over 512 characters): that is an
    // invalid token, and saying none was sent would send the client looking for the wrong bug.
    if (token === undefined) throw refuse((request.cookies[REFRESH_COOKIE] ?? '') === '' ? 'No refresh token provided!' : INVALID_REFRESH)
    const result = await rotateRefreshToken(app.db, token, refresh)
    if (result.kind === 'reused') {
      request.log.warn({ userId: result.userId, familyId: result.familyId }, 'refresh token reuse detected: sign-in revoked')
      await app.audit(request, 'refresh_reuse_detected', { userId: result.userId, detail: { familyId: result.familyId } })
      app.clearRefreshCookie(reply)
      throw new HttpError(401, 'Refresh token was already used: this sign-in has been revoked. Please make a new signin request')
    }
    if (result.kind === 'invalid') throw refuse(INVALID_REFRESH)
    // Roles come from the database, so a role change takes effect at the next refresh.
    const user = await findUserById(app.db, result.userId)
    if (user === undefined || user.disabled) throw refuse(INVALID_REFRESH)
    app.setRefreshCookie(reply, result.token)
    return { tokenType: 'Bearer' as const, ...app.signAccessToken(user), refreshToken: result.token }
  })

  app.post('/signout', {
    schema: {
      tags: ['sessions'],
      operationId: 'signout',
      summary: 'Sign out: revoke this sign-in and clear the refresh cookie',
      description: 'Idempotent: signing out twice, with an unknown token or with none (an empty `refreshToken` is none) still answers 200. A browser page of another origin (a sibling subdomain included) may use the refresh cookie only if CORS_ORIGIN lists it (403).',
      body: SignoutBody,
      cookies: RefreshCookie,
      response: { 200: SignoutResponse, ...errors(400, 403, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const token = app.refreshTokenOf(request, request.body.refreshToken)
    // Recorded only when this call ended the sign-in, not for each idempotent repeat.
    if (token !== undefined) await revokeFamilyOfToken(app.db, token, (userId) => app.auditEvent(request, 'signout', { userId }))
    app.clearRefreshCookie(reply)
    return { message: "You've been signed out!" }
  })

  app.get('/me', {
    schema: {
      tags: ['sessions'],
      operationId: 'me',
      summary: 'The signed-in user',
      security: bearerSecurity,
      response: { 200: MeResponse, ...errors(401, 503) }
    },
    onRequest: app.authenticate
  }, async (request) => {
    const user = await findUserById(app.db, request.user.id)
    if (user === undefined || user.disabled) throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
    return { ...user, roles: user.roles.map(toApiRole), createdAt: user.createdAt.toISOString() }
  })

  app.post('/password', {
    schema: {
      tags: ['sessions'],
      operationId: 'changePassword',
      summary: 'Change the password; ends every other sign-in',
      description: 'Checks the current password, then revokes all refresh tokens of the user and returns a fresh token pair for this client.',
      security: bearerSecurity,
      body: PasswordBody,
      response: { 200: TokenPairResponse, ...errors(400, 401, 413, 415, 503) }
    },
    onRequest: app.authenticate
  }, async (request, reply) => {
    assertAcceptablePassword(request.body.newPassword, 'body/newPassword')
    const passwordHash = await app.passwords.hash(request.body.newPassword)
    // As at signin: the hash is replaced only if it is still the one the current password was
    // verified against and the account still active; if another change, a disable or a
    // signin's hash upgrade came first, the request is judged again on what is stored then.
    for (let tries = 1; tries <= MAX_CHANGE_TRIES; tries++) {
      const user = await findCredentialsById(app.db, request.user.id)
      const valid = await app.passwords.verify(user?.passwordHash ?? null, request.body.currentPassword)
      if (user === undefined || user.disabled) throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
      if (!valid) throw new HttpError(401, 'Current password is incorrect')
      const refreshToken = await runTransaction(app.db, async (trx) => {
        if (!await replacePasswordHash(trx, user.id, user.passwordHash, passwordHash)) return undefined
        await revokeUserFamilies(trx, user.id)
        await app.audit(request, 'password_changed', { userId: user.id }, trx)
        return (await issueRefreshToken(trx, user.id, refresh.ttlMs)).token
      })
      if (refreshToken === undefined) continue
      app.setRefreshCookie(reply, refreshToken)
      return { tokenType: 'Bearer' as const, ...app.signAccessToken(user), refreshToken }
    }
    throw new HttpError(401, 'Current password is incorrect')
  })
}

export default sessionRoutes
