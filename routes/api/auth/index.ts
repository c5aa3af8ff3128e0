import fastifyCookie from '@fastify/cookie'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HttpError } from '../../../src/errors.js'
import { findCredentialsByUsername, replacePasswordHash } from '../../../src/repositories/users.js'
import { issueSigninRefreshToken } from '../../../src/repositories/refresh-tokens.js'
import { toApiRole } from '../../../src/roles.js'
import { SigninBody, SigninResponse, SignupBody, SignupResponse } from '../../../src/schemas/auth.js'
import { errors, optionalBearerSecurity } from '../../../src/schemas/common.js'
import { registerUser } from '../../../src/signup.js'
import sessionRoutes from './sessions.js'

const INVALID_CREDENTIALS = 'Invalid username or password'
// Tries of a signin whose account changed between reading it and starting the session; a
// password that changes on every try is not one this password proves.
const MAX_SIGNIN_TRIES = 3

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Cookies (the refresh token's) only matter under /api/auth; see plugins/refresh-cookie.ts.
  await app.register(fastifyCookie)

  app.post('/signup', {
    schema: {
      tags: ['auth'],
      operationId: 'signup',
      summary: 'Create an account',
      description: 'Anonymous callers get the `user` role only; a caller with an admin access token may grant any roles.',
      security: optionalBearerSecurity,
      body: SignupBody,
      response: { 201: SignupResponse, ...errors(400, 401, 403, 409, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const id = await registerUser(app, request, request.body)
    return await reply.code(201).send({ message: 'User registered successfully!', id })
  })

  app.post('/signin', {
    schema: {
      tags: ['auth'],
      operationId: 'signin',
      summary: 'Sign in with username and password',
      description: 'Returns an access token and a refresh token; the refresh token is also set as an HttpOnly cookie on /api/auth.',
      body: SigninBody,
      response: { 200: SigninResponse, ...errors(400, 401, 403, 413, 415, 503) }
    }
  }, async (request, reply) => {
    const { username, password } = request.body
    // The session starts only if the account is still as it was read (issueSigninRefreshToken):
    // a password change, a disable or another signin's hash upgrade in the tens of milliseconds
    // the verification takes sends the signin round again, judged on what is stored then.
    let changedUserId: number | undefined
    for (let tries = 1; tries <= MAX_SIGNIN_TRIES; tries++) {
      const user = await findCredentialsByUsername(app.db, username)
      // Unknown user and wrong password take the same time and give the same answer.
      const valid = await app.passwords.verify(user?.passwordHash ?? null, password)
      if (user === undefined || !valid || user.disabled) {
        // The actor is whoever proved to be the user: after a wrong password, nobody known.
        const userId = user?.id ?? null
        await app.audit(request, 'signin_failed', { userId, actorId: valid ? userId : null, detail: { username, reason: valid ? 'disabled' : 'invalid_credentials' } })
      }
      if (user === undefined || !valid) throw new HttpError(401, INVALID_CREDENTIALS)
      if (user.disabled) throw new HttpError(403, 'Account is disabled')
      let passwordHash = user.passwordHash
      if (valid === 'outdated') {
        // Stored with older, weaker parameters, or before passwords were normalized: upgrade now
        // that we hold the plain password, unless the stored hash changed meanwhile.
        const upgraded = await app.passwords.hash(password)
        if (await replacePasswordHash(app.db, user.id, passwordHash, upgraded)) passwordHash = upgraded
      }
      // The session and its audit event in one statement (one round trip, committed together).
      const refreshToken = await issueSigninRefreshToken(app.db, { id: user.id, passwordHash }, app.config.refresh.ttlMs,
        app.auditEvent(request, 'signin', { userId: user.id }))
      if (refreshToken === undefined) {
        changedUserId = user.id
        continue
      }
      app.setRefreshCookie(reply, refreshToken)
      return {
        id: user.id,
        username: user.username,
        email: user.email,
        roles: user.roles.map(toApiRole),
        tokenType: 'Bearer' as const,
        ...app.signAccessToken(user),
        refreshToken
      }
    }
    // Refused like a wrong password, and recorded like every refused signin: the password was
    // right each time, so the actor is the user.
    await app.audit(request, 'signin_failed', { userId: changedUserId ?? null, actorId: changedUserId ?? null, detail: { username, reason: 'account_changed' } })
    throw new HttpError(401, INVALID_CREDENTIALS)
  })

  await app.register(sessionRoutes)
}

export default authRoutes
