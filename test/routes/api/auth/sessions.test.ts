import { createHash } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { hashRefreshToken } from '../../../../src/refresh-token.js'
import { build, eachDatabase, json, newUser, post, signin, signinAdmin, type Session } from '../../../helper.js'
import { clearsCookie, refresh, refreshCookie, rolesIn, setTokenRow, signout, waitForLockWaiters } from './sessions-helper.js'

// Refresh-token rotation with reuse detection (RFC 9700, 4.14) and signout, over HTTP.
eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('a refresh returns a new pair and the old refresh token stops working', async (t) => {
    const s = await newUser(app)
    const res = await refresh(app, s.refreshToken)
    t.equal(res.statusCode, 200)
    const body = json(res)
    t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType'])
    t.equal(body.tokenType, 'Bearer')
    t.equal(body.expiresIn, 900)
    t.not(body.refreshToken, s.refreshToken)
    t.ok(Buffer.from(body.refreshToken, 'base64url').length >= 32, 'at least 256 random bits')
    const me = await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${body.accessToken}` } })
    t.equal(me.statusCode, 200, 'the new access token works')
    t.equal(refreshCookie(res)?.value, body.refreshToken, 'the cookie follows the rotation')

    const again = await refresh(app, body.refreshToken)
    t.equal(again.statusCode, 200, 'the new refresh token works, and so on')
  })

  t.test('reusing a rotated token is 401 and kills the newer token of that sign-in', async (t) => {
    const s = await newUser(app)
    const second = json(await refresh(app, s.refreshToken)).refreshToken
    const reuse = await refresh(app, s.refreshToken)
    t.equal(reuse.statusCode, 401)
    t.match(json(reuse), { statusCode: 401, error: 'Unauthorized', message: /already used/ })
    t.ok(clearsCookie(reuse), 'the reuse answer clears the cookie')
    t.equal((await refresh(app, second)).statusCode, 401, 'the legitimate successor is revoked too')
    t.equal((await refresh(app, s.refreshToken)).statusCode, 401, 'and the reused one stays dead')
  })

  t.test('revoking one sign-in leaves the same user\'s other sign-ins alone', async (t) => {
    const s = await newUser(app)
    const other = await signin(app, s.username, s.password)
    const third = await signin(app, s.username, s.password)
    await refresh(app, s.refreshToken)
    t.equal((await refresh(app, s.refreshToken)).statusCode, 401, 'reuse in the first sign-in')
    t.equal((await signout(app, third.refreshToken)).statusCode, 200, 'signout of the third')
    const res = await refresh(app, other.refreshToken)
    t.equal(res.statusCode, 200, 'the second sign-in still refreshes')
    t.equal((await refresh(app, third.refreshToken)).statusCode, 401)
  })

  t.test('unknown, malformed and missing refresh tokens', async (t) => {
    const unknown = await refresh(app, 'x'.repeat(43))
    t.equal(unknown.statusCode, 401)
    t.match(json(unknown).message, /Invalid or expired refresh token/)
    const none = await refresh(app)
    t.equal(none.statusCode, 401)
    t.equal(json(none).message, 'No refresh token provided!')
    const empty = await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: '' } })
    t.equal(empty.statusCode, 400)
    const wrongType = await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: 42 } })
    t.equal(wrongType.statusCode, 400)
    t.match(json(wrongType).message, /refreshToken/)
    const extra = await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: 'a', token: 'b' } })
    t.equal(extra.statusCode, 400)
    // An oversized cookie is a token that cannot be one of ours (never read, never a 5xx): the
    // client did send one, so the answer says it is invalid, not missing.
    const huge = await refresh(app, 'y'.repeat(600), 'cookie')
    t.equal(huge.statusCode, 401, 'an oversized cookie is refused, not a 5xx')
    t.match(json(huge).message, /Invalid or expired refresh token/, 'as an invalid token, not a missing one')
    t.ok(clearsCookie(huge), 'and the unusable cookie is cleared')
    const emptyCookie = await refresh(app, '', 'cookie')
    t.equal(json(emptyCookie).message, 'No refresh token provided!', 'an empty cookie is no token')
  })

  // A refresh cookie that can never work again is cleared, so the browser stops sending it and
  // the client goes back to signing in. A dead token in the body says nothing about the cookie.
  t.test('a refresh refused for the cookie\'s token clears the cookie; one refused for the body\'s does not', async (t) => {
    const fromCookie = await refresh(app, 'x'.repeat(43), 'cookie')
    t.equal(fromCookie.statusCode, 401)
    t.ok(clearsCookie(fromCookie), 'unknown token in the cookie: cleared')
    const s = await newUser(app)
    t.equal((await signout(app, s.refreshToken)).statusCode, 200)
    const revoked = await refresh(app, s.refreshToken, 'cookie')
    t.equal(revoked.statusCode, 401)
    t.ok(clearsCookie(revoked), 'revoked token in the cookie: cleared')
    const fromBody = await app.inject({
      method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: 'x'.repeat(43) }, cookies: { refreshToken: s.refreshToken }
    })
    t.equal(fromBody.statusCode, 401)
    t.notOk(refreshCookie(fromBody), 'unknown token in the body: the cookie is left alone')
  })

  t.test('signin sets the refresh token as an HttpOnly, SameSite=Strict cookie on /api/auth', async (t) => {
    const s = await newUser(app)
    const res = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: { username: s.username, password: s.password } })
    const cookie = refreshCookie(res)
    t.ok(cookie, 'Set-Cookie: refreshToken')
    t.equal(cookie?.value, json(res).refreshToken)
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.sameSite, 'Strict')
    t.equal(cookie?.path, '/api/auth')
    t.equal(cookie?.secure, true, 'Secure outside development')
    t.equal(cookie?.maxAge, 7 * 24 * 3600, 'lives as long as the refresh token')
  })

  t.test('refresh works from the cookie alone, with no body', async (t) => {
    const s = await newUser(app)
    const res = await refresh(app, s.refreshToken, 'cookie')
    t.equal(res.statusCode, 200)
    const body = json(res)
    const cookie = refreshCookie(res)
    t.equal(cookie?.value, body.refreshToken)
    t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/api/auth', secure: true })
    t.equal((await refresh(app, s.refreshToken, 'cookie')).statusCode, 401, 'the old cookie is refused')
    t.equal((await refresh(app, body.refreshToken, 'cookie')).statusCode, 401, 'and its reuse killed the new one')
  })

  t.test('a browser-style cookie refresh with an empty JSON body works too', async (t) => {
    const s = await newUser(app)
    const res = await app.inject({
      method: 'POST',
      url: '/api/auth/refreshtoken',
      headers: { 'content-type': 'application/json' },
      cookies: { refreshToken: s.refreshToken }
    })
    t.equal(res.statusCode, 200)
    const bad = await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', headers: { 'content-type': 'application/json' }, payload: '{"refreshToken":' })
    t.equal(bad.statusCode, 400, 'broken JSON is still a 400')
    const unsafe = await app.inject({ method: 'POST', url: '/api/auth/refreshtoken', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{}}' })
    t.same(json(unsafe), { statusCode: 400, error: 'Bad Request', message: 'body must not contain a "__proto__" key' }, 'as is a __proto__ key, named')
  })

  t.test('signout revokes the sign-in, clears the cookie and is idempotent', async (t) => {
    const s = await newUser(app)
    const next = json(await refresh(app, s.refreshToken)).refreshToken
    const res = await signout(app, next)
    t.equal(res.statusCode, 200)
    t.same(json(res), { message: "You've been signed out!" })
    t.ok(clearsCookie(res), 'the cookie is cleared')
    t.match(refreshCookie(res), { path: '/api/auth', httpOnly: true, sameSite: 'Strict' })
    t.equal((await refresh(app, next)).statusCode, 401, 'the signed-out token is dead')

    t.equal((await signout(app, next)).statusCode, 200, 'signing out twice')
    t.equal((await signout(app, 'never-issued-token')).statusCode, 200, 'an unknown token')
    const none = await signout(app)
    t.equal(none.statusCode, 200, 'no token at all')
    t.ok(clearsCookie(none))
  })

  t.test('signout with an empty refreshToken is a signout without a token: 200', async (t) => {
    const url = '/api/auth/signout'
    const empty = await app.inject({ method: 'POST', url, payload: { refreshToken: '' } })
    t.equal(empty.statusCode, 200)
    t.same(json(empty), { message: "You've been signed out!" })
    t.ok(clearsCookie(empty), 'the cookie is cleared, as without a token')
    // As with no refreshToken in the body, the cookie names the sign-in.
    const s = await newUser(app)
    const withCookie = await app.inject({ method: 'POST', url, payload: { refreshToken: '' }, cookies: { refreshToken: s.refreshToken } })
    t.equal(withCookie.statusCode, 200)
    t.equal((await refresh(app, s.refreshToken)).statusCode, 401, 'the cookie\'s sign-in is revoked')
    // Only the empty string changed: wrong types, unknown properties and oversized tokens stay 400.
    for (const payload of [{ refreshToken: 42 }, { refreshToken: null }, { refreshToken: '', extra: 1 }, { token: 'x' }, { refreshToken: 'r'.repeat(513) }]) {
      const res = await app.inject({ method: 'POST', url, payload })
      t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 60))
      t.match(json(res).message, /body/)
    }
  })

  t.test('signout with the cookie alone', async (t) => {
    const s = await newUser(app)
    const res = await signout(app, s.refreshToken, 'cookie')
    t.equal(res.statusCode, 200)
    t.ok(clearsCookie(res))
    t.equal((await refresh(app, s.refreshToken)).statusCode, 401)
  })

  t.test('concurrent refreshes of one token rotate it at most once', async (t) => {
    const s = await newUser(app)
    const results = await Promise.all(Array.from({ length: 5 }, async () => await refresh(app, s.refreshToken)))
    const ok = results.filter(r => r.statusCode === 200)
    t.equal(ok.length, 1, 'exactly one rotation')
    t.ok(results.every(r => r.statusCode === 200 || r.statusCode === 401), 'the others are 401, never 5xx')
    // The losers present a token that is already used: by the reuse rule that revokes the
    // sign-in, so the winner's refresh token is dead as well. Never two valid successors.
    const successors = await Promise.all(ok.map(async r => (await refresh(app, json(r).refreshToken)).statusCode))
    t.same(successors, [401])
  })

  // The embedded database runs one transaction at a time, so this interleaving exists only on
  // a real server: a revocation must not miss the successor a concurrent rotation commits.
  const setDisabled = async (s: Session, disabled: boolean): Promise<LightMyRequestResponse> => await app.inject({
    method: 'PATCH', url: `/api/admin/users/${s.id}`, payload: { disabled }, headers: { authorization: `Bearer ${(await signinAdmin(app)).accessToken}` }
  })
  const revokers: Record<string, { revoke: (s: Session) => Promise<LightMyRequestResponse>, status: number, reopen?: (s: Session) => Promise<LightMyRequestResponse> }> = {
    signout: { revoke: async (s) => await signout(app, s.refreshToken), status: 200 },
    'reuse of the rotated token': { revoke: async (s) => await refresh(app, s.refreshToken), status: 401 },
    'password change': {
      revoke: async (s) => await post(app, '/api/auth/password',
        { currentPassword: s.password, newPassword: 'another-good-password' }, { authorization: `Bearer ${s.accessToken}` }),
      status: 200
    },
    // While the account stays disabled every token is refused anyway: the successor a missed
    // revocation leaves behind shows only once the account is enabled again. The disable must
    // wait for the user row the refresh holds, then revoke.
    disable: { revoke: async (s) => await setDisabled(s, true), status: 200, reopen: async (s) => await setDisabled(s, false) }
  }
  for (const [name, { revoke, status, reopen }] of Object.entries(revokers)) {
    t.test(`a ${name} racing a refresh of the same sign-in leaves no live token`, { skip: target.name === 'embedded' && 'real PostgreSQL only' }, async (t) => {
      const s = await newUser(app)
      const current = json(await refresh(app, s.refreshToken)).refreshToken
      let rotation: Promise<LightMyRequestResponse> | undefined
      let revocation: Promise<LightMyRequestResponse> | undefined
      // Hold the current token's row so the refresh queues first, the revocation behind it.
      await app.db.transaction().execute(async (trx) => {
        await trx.selectFrom('refresh_tokens').select('id').where('token_hash', '=', hashRefreshToken(current)).forUpdate().execute()
        rotation = refresh(app, current)
        await waitForLockWaiters(app, 1)
        revocation = revoke(s)
        await waitForLockWaiters(app, 2)
      })
      const [rotated, revoked] = await Promise.all([rotation, revocation])
      t.equal(rotated?.statusCode, 200, 'the refresh got in first')
      t.equal(revoked?.statusCode, status, `then the ${name}`)
      if (reopen !== undefined) t.equal((await reopen(s)).statusCode, 200, 'enabled again')
      t.equal((await refresh(app, json(rotated as LightMyRequestResponse).refreshToken)).statusCode, 401, 'its successor was revoked too')
    })
  }

  // API.md: refresh tokens are stored only as hashes, so a leaked table hands out no sessions.
  t.test('a refresh token is stored only as its SHA-256, never as itself', async (t) => {
    const s = await newUser(app)
    const rows = await app.db.selectFrom('refresh_tokens').select('token_hash').where('user_id', '=', s.id).execute()
    const sha256 = createHash('sha256').update(s.refreshToken).digest('hex')
    t.same(rows.map(r => Buffer.from(r.token_hash).toString('hex')), [sha256])
  })

  t.test('an expired refresh token is 401', async (t) => {
    const s = await newUser(app)
    await setTokenRow(app, s.refreshToken, { expires_at: new Date(Date.now() - 1000) })
    const res = await refresh(app, s.refreshToken)
    t.equal(res.statusCode, 401)
    t.match(json(res).message, /Invalid or expired refresh token/)
  })

  t.test('roles in a refreshed access token come from the database', async (t) => {
    const s = await newUser(app)
    t.same(rolesIn(app, s.accessToken), ['user'])
    await app.db.insertInto('user_roles').values({ user_id: s.id, role_id: 2 }).execute()
    const res = await refresh(app, s.refreshToken)
    t.same(rolesIn(app, json(res).accessToken), ['user', 'moderator'])
    const mod = await app.inject({ url: '/api/test/mod', headers: { 'x-access-token': json(res).accessToken } })
    t.equal(mod.statusCode, 200, 'the new role takes effect at the refresh')
  })

  t.test('tokens of deleted and disabled users are refused', async (t) => {
    const deleted = await newUser(app)
    await app.db.deleteFrom('users').where('id', '=', deleted.id).execute()
    t.equal((await refresh(app, deleted.refreshToken)).statusCode, 401, 'deleted user')

    const disabled = await newUser(app)
    await app.db.updateTable('users').set({ disabled: true }).where('id', '=', disabled.id).execute()
    t.equal((await refresh(app, disabled.refreshToken)).statusCode, 401, 'disabled user')
  })
})
