import type { FastifyInstance } from 'fastify'
import { build, eachDatabase, json, newUser, post, signin } from '../../../helper.js'
import { refresh, refreshCookie } from './sessions-helper.js'

async function changePassword (app: FastifyInstance, accessToken: string, body: Record<string, unknown>) {
  return await post(app, '/api/auth/password', body, { authorization: `Bearer ${accessToken}` })
}

// The current user and password change: both need an access token.
eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('/me returns the signed-in user, with either token header', async (t) => {
    const s = await newUser(app, ['moderator'])
    for (const headers of [{ authorization: `Bearer ${s.accessToken}` }, { 'x-access-token': s.accessToken }]) {
      const res = await app.inject({ url: '/api/auth/me', headers })
      t.equal(res.statusCode, 200)
      const body = json(res)
      t.same(Object.keys(body).sort(), ['createdAt', 'email', 'id', 'roles', 'username'])
      t.match(body, { id: s.id, username: s.username, email: `${s.username}@example.com`, roles: ['ROLE_USER', 'ROLE_MODERATOR'] })
      t.ok(Math.abs(Date.parse(body.createdAt) - Date.now()) < 60_000, 'createdAt is an ISO date of now')
    }
  })

  t.test('/me without a valid access token is 401', async (t) => {
    const none = await app.inject({ url: '/api/auth/me' })
    t.equal(none.statusCode, 401)
    t.same(json(none), { statusCode: 401, error: 'Unauthorized', message: 'No token provided!' })
    t.equal(none.headers['www-authenticate'], 'Bearer')
    const bad = await app.inject({ url: '/api/auth/me', headers: { authorization: 'Bearer nope' } })
    t.equal(json(bad).message, 'Unauthorized!')
    const s = await newUser(app)
    const refreshAsAccess = await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${s.refreshToken}` } })
    t.equal(refreshAsAccess.statusCode, 401, 'a refresh token is not an access token')
  })

  t.test('an expired access token says so, so clients know to refresh', async (t) => {
    const s = await newUser(app)
    const expired = app.jwt.sign({ sub: String(s.id), roles: ['user'] }, { clockTimestamp: Date.now() - 3_600_000 })
    for (const url of ['/api/auth/me', '/api/test/user']) {
      const res = await app.inject({ url, headers: { 'x-access-token': expired } })
      t.equal(res.statusCode, 401, url)
      t.same(json(res), { statusCode: 401, error: 'Unauthorized', message: 'Unauthorized! Access Token was expired!' })
    }
    const fresh = json(await refresh(app, s.refreshToken)).accessToken
    t.equal((await app.inject({ url: '/api/auth/me', headers: { 'x-access-token': fresh } })).statusCode, 200, 'after a refresh it works again')
  })

  t.test('/me for a deleted user is 401 even with an unexpired access token', async (t) => {
    const s = await newUser(app)
    await app.db.deleteFrom('users').where('id', '=', s.id).execute()
    const res = await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${s.accessToken}` } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', 'its token is refused like any invalid one')
  })

  t.test('password change refuses a wrong current password, a weak new one and no token', async (t) => {
    const s = await newUser(app)
    const wrong = await changePassword(app, s.accessToken, { currentPassword: 'not-my-password', newPassword: 'brand-new-password' })
    t.equal(wrong.statusCode, 401)
    t.match(json(wrong).message, /Current password is incorrect/)
    const weak = await changePassword(app, s.accessToken, { currentPassword: s.password, newPassword: 'short' })
    t.equal(weak.statusCode, 400)
    t.match(json(weak).message, /newPassword/)
    const missing = await changePassword(app, s.accessToken, { currentPassword: s.password })
    t.equal(missing.statusCode, 400)
    const extra = await changePassword(app, s.accessToken, { currentPassword: s.password, newPassword: 'brand-new-password', oldPassword: 'x' })
    t.equal(extra.statusCode, 400)
    const anonymous = await post(app, '/api/auth/password', { currentPassword: s.password, newPassword: 'brand-new-password' })
    t.equal(anonymous.statusCode, 401)
    t.equal((await signin(app, s.username, s.password)).id, s.id, 'nothing changed: the old password still signs in')
    t.equal((await refresh(app, s.refreshToken)).statusCode, 200, 'and no session was ended')
  })

  t.test('a disabled or deleted user cannot change the password with a still-valid access token', async (t) => {
    const disabled = await newUser(app)
    await app.db.updateTable('users').set({ disabled: true }).where('id', '=', disabled.id).execute()
    const res = await changePassword(app, disabled.accessToken, { currentPassword: disabled.password, newPassword: 'brand-new-password' })
    t.equal(res.statusCode, 401)
    t.equal(json(res).message, 'Unauthorized!')
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
    const me = await app.inject({ url: '/api/auth/me', headers: { 'x-access-token': disabled.accessToken } })
    t.equal(me.statusCode, 401, 'nor read /me')
    t.equal(me.headers['www-authenticate'], 'Bearer error="invalid_token"')

    const deleted = await newUser(app)
    await app.db.deleteFrom('users').where('id', '=', deleted.id).execute()
    const gone = await changePassword(app, deleted.accessToken, { currentPassword: deleted.password, newPassword: 'brand-new-password' })
    t.equal(gone.statusCode, 401)
  })

  t.test('password change returns a fresh pair and ends every other sign-in', async (t) => {
    const s = await newUser(app)
    const laptop = await signin(app, s.username, s.password)
    const phone = await signin(app, s.username, s.password)
    const bystander = await newUser(app)
    const newPassword = 'a-much-better-passphrase'

    const res = await changePassword(app, s.accessToken, { currentPassword: s.password, newPassword })
    t.equal(res.statusCode, 200)
    const body = json(res)
    t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType'])
    t.equal(refreshCookie(res)?.value, body.refreshToken, 'the cookie carries the new refresh token')

    t.equal((await refresh(app, laptop.refreshToken)).statusCode, 401, 'other sign-in: laptop')
    t.equal((await refresh(app, phone.refreshToken)).statusCode, 401, 'other sign-in: phone')
    t.equal((await refresh(app, body.refreshToken)).statusCode, 200, 'the new refresh token works')
    t.equal((await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${body.accessToken}` } })).statusCode, 200)
    t.equal((await refresh(app, bystander.refreshToken)).statusCode, 200, 'other users are not touched')

    const old = await post(app, '/api/auth/signin', { username: s.username, password: s.password })
    t.equal(old.statusCode, 401, 'the old password no longer signs in')
    t.equal((await signin(app, s.username, newPassword)).id, s.id, 'the new one does')
  })
})
