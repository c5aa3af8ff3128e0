import { AUDIT_EVENT_TYPES } from '../../../../src/audit.js'
import { build, eachDatabase, json, newUser, post, signin, signinAdmin, uniqueUser, type Session } from '../../../helper.js'

const bearer = (s: Session) => ({ authorization: `Bearer ${s.accessToken}` })

interface Item { id: number, at: string, type: string, actorId: number | null, userId: number | null, ip: string | null, detail: any }

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const admin = await signinAdmin(app)
  const events = async (query: string): Promise<Item[]> => {
    const res = await app.inject({ url: `/api/admin/audit?${query}`, headers: bearer(admin) })
    if (res.statusCode !== 200) throw new Error(`audit query ${query}: ${res.statusCode} ${res.body}`)
    return json(res).items
  }

  t.test("a user's life, as the audit log tells it, newest first", async (t) => {
    const start = Date.now()
    const creds = uniqueUser('aud')
    const signup = await post(app, '/api/auth/signup', creds)
    const id: number = json(signup).id
    t.equal((await post(app, '/api/auth/signin', { username: creds.username, password: 'wrong-password' })).statusCode, 401)
    const session = await signin(app, creds.username, creds.password)
    const rotated = json(await post(app, '/api/auth/refreshtoken', { refreshToken: session.refreshToken }))
    t.equal((await post(app, '/api/auth/refreshtoken', { refreshToken: session.refreshToken })).statusCode, 401, 'reuse')
    const again = await signin(app, creds.username, creds.password)
    t.equal((await post(app, '/api/auth/password', { currentPassword: creds.password, newPassword: 'a-new-password-1' }, bearer(again))).statusCode, 200)
    const third = await signin(app, creds.username, 'a-new-password-1')
    t.equal((await post(app, '/api/auth/signout', { refreshToken: third.refreshToken })).statusCode, 200)
    const put = await app.inject({ method: 'PUT', url: `/api/admin/users/${id}/roles`, headers: bearer(admin), payload: { roles: ['moderator'] } })
    t.equal(put.statusCode, 200)
    for (const disabled of [true, false]) {
      t.equal((await app.inject({ method: 'PATCH', url: `/api/admin/users/${id}`, headers: bearer(admin), payload: { disabled } })).statusCode, 200)
    }
    t.equal((await post(app, '/api/auth/signin', { username: creds.username, password: 'a-new-password-1' })).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: `/api/admin/users/${id}`, headers: bearer(admin) })).statusCode, 204)

    const items = await events(`userId=${id}&limit=100`)
    t.same(items.map(e => e.type), [
      'user_deleted', 'signin', 'user_enabled', 'user_disabled', 'roles_changed', 'signout', 'signin',
      'password_changed', 'signin', 'refresh_reuse_detected', 'signin', 'signin_failed', 'signup'
    ])
    t.ok(rotated.refreshToken, 'the rotation itself succeeded')
    const find = (type: string) => items.find(e => e.type === type)
    for (const e of items) {
      t.equal(e.userId, id)
      t.equal(e.ip, '127.0.0.1', `${e.type} has the client IP`)
      t.ok(Date.parse(e.at) >= start - 5000 && Date.parse(e.at) <= Date.now() + 5000, `${e.type} has its time`)
      const byAdmin = ['roles_changed', 'user_disabled', 'user_enabled', 'user_deleted'].includes(e.type)
      // A wrong password proves nothing about who typed it: nobody known acted.
      t.equal(e.actorId, byAdmin ? admin.id : e.type === 'signin_failed' ? null : id, `${e.type} actor`)
    }
    t.same(find('signup')?.detail, { roles: ['user'] }, 'the signup records the roles it granted')
    t.same(find('roles_changed')?.detail, { before: ['user'], after: ['user', 'moderator'] })
    t.match(find('signin_failed')?.detail, { username: creds.username, reason: 'invalid_credentials' })
    t.match(find('user_deleted')?.detail, { username: creds.username, email: creds.email })
    t.type(find('refresh_reuse_detected')?.detail?.familyId, 'string')
    t.ok(items.every((e, i) => i === 0 || (items[i - 1] as Item).id > e.id), 'newest first')
  })

  t.test('failed signins are recorded for unknown users and disabled accounts too', async (t) => {
    const ghost = `ghost${Date.now()}`
    t.equal((await post(app, '/api/auth/signin', { username: ghost, password: 'whatever-123' })).statusCode, 401)
    const [unknown] = await events('type=signin_failed&limit=1')
    t.match(unknown, { userId: null, actorId: null, ip: '127.0.0.1', detail: { username: ghost, reason: 'invalid_credentials' } })

    const locked = await newUser(app)
    await app.inject({ method: 'PATCH', url: `/api/admin/users/${locked.id}`, headers: bearer(admin), payload: { disabled: true } })
    t.equal((await post(app, '/api/auth/signin', { username: locked.username, password: locked.password })).statusCode, 403)
    const [disabled] = await events(`type=signin_failed&userId=${locked.id}`)
    t.match(disabled, { userId: locked.id, detail: { reason: 'disabled' } })
    t.equal(disabled?.actorId, locked.id, 'a disabled account with the right password: the user itself tried')
  })

  t.test('a signup by an admin names the admin as the actor', async (t) => {
    const creds = uniqueUser('byadm')
    const res = await post(app, '/api/auth/signup', { ...creds, roles: ['moderator'] }, bearer(admin))
    const [event] = await events(`userId=${json(res).id}&type=signup`)
    t.match(event, { actorId: admin.id, userId: json(res).id })
    t.same(event?.detail, { roles: ['user', 'moderator'] }, 'with the roles the admin granted')
  })

  // The actor of a signup is read from the token if there is one; a stale or forged token on a
  // plain signup (clients that send their last token with every request) must not fail it.
  t.test('a plain signup carrying a token that does not verify still signs up, as its own actor', async (t) => {
    for (const headers of [{ authorization: 'Bearer not-a-token' }, { 'x-access-token': 'not-a-token' }]) {
      const res = await post(app, '/api/auth/signup', uniqueUser('stale'), headers)
      t.equal(res.statusCode, 201, JSON.stringify(headers))
      const id: number = json(res).id
      const [event] = await events(`userId=${id}&type=signup`)
      t.match(event, { actorId: id, userId: id }, 'the new user is the actor')
    }
  })

  t.test('the admin created at start (ADMIN_USERNAME) has its signup event', async (t) => {
    const [event] = await events(`userId=${admin.id}&type=signup`)
    t.match(event, { actorId: null, userId: admin.id, ip: null, detail: { via: 'bootstrap', roles: ['user', 'admin'] } })
  })

  t.test('paging through the audit log with a cursor, with filters', async (t) => {
    const someone = await newUser(app)
    for (let i = 0; i < 3; i++) await signin(app, someone.username, someone.password)
    const all = await events(`userId=${someone.id}&type=signin&limit=100`)
    t.equal(all.length, 4)
    const seen: Item[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const url: string = `/api/admin/audit?userId=${someone.id}&type=signin&limit=3${cursor !== null ? `&cursor=${cursor}` : ''}`
      const body: { items: Item[], nextCursor: string | null } = json(await app.inject({ url, headers: bearer(admin) }))
      seen.push(...body.items)
      cursor = body.nextCursor
      pages += 1
    } while (cursor !== null && pages < 5)
    t.equal(pages, 2)
    t.same(seen.map(e => e.id), all.map(e => e.id))
    t.ok((await events('type=signup&limit=5')).every(e => e.type === 'signup'))
    const unfiltered = await events('')
    t.ok(unfiltered.length > 0 && unfiltered.length <= 20)
  })

  t.test('a signout is recorded when it revokes a sign-in, not for every idempotent repeat', async (t) => {
    const s = await newUser(app)
    const signout = async (payload: Record<string, string>, cookies?: Record<string, string>) =>
      (await app.inject({ method: 'POST', url: '/api/auth/signout', payload, cookies })).statusCode
    t.equal(await signout({ refreshToken: s.refreshToken }), 200)
    t.equal(await signout({ refreshToken: s.refreshToken }), 200, 'again with the same token')
    t.equal(await signout({}, { refreshToken: s.refreshToken }), 200, 'and with it as the cookie')
    t.equal((await events(`userId=${s.id}&type=signout`)).length, 1, 'one sign-in ended, one event')

    const other = await signin(app, s.username, s.password)
    t.equal(await signout({ refreshToken: other.refreshToken }), 200)
    t.equal((await events(`userId=${s.id}&type=signout`)).length, 2, 'another sign-in ended is another event')

    // On a real server these race; on the embedded database they queue. Either way one wins.
    const raced = await signin(app, s.username, s.password)
    const codes = await Promise.all(Array.from({ length: 5 }, async () => await signout({ refreshToken: raced.refreshToken })))
    t.same(codes, [200, 200, 200, 200, 200])
    t.equal((await events(`userId=${s.id}&type=signout`)).length, 3, 'concurrent signouts of one sign-in: one event')
  })

  // As for signouts: the log tells what changed, not every repeat of a request that changed nothing.
  t.test('an admin change that changes nothing records no event', async (t) => {
    const s = await newUser(app)
    const patch = async (disabled: boolean) => (await app.inject({ method: 'PATCH', url: `/api/admin/users/${s.id}`, headers: bearer(admin), payload: { disabled } })).statusCode
    const put = async (roles: string[]) => (await app.inject({ method: 'PUT', url: `/api/admin/users/${s.id}/roles`, headers: bearer(admin), payload: { roles } })).statusCode
    t.equal(await patch(false), 200, 'enabling a user who is enabled')
    t.equal(await put(['user']), 200, 'the roles the user has')
    t.equal(await patch(true), 200)
    t.equal(await patch(true), 200, 'disabling again')
    t.equal(await put(['moderator']), 200)
    t.equal(await put(['mod', 'user']), 200, 'the same roles, written another way')
    t.same((await events(`userId=${s.id}&limit=100`)).map(e => e.type), ['roles_changed', 'user_disabled', 'signin', 'signup'])
  })

  // Behind a trusted proxy the client address is what X-Forwarded-For says, unchecked; it must
  // never make the action fail (it did: a 500, and a signout that revoked nothing).
  t.test('a forwarded client address too long for the audit column still signs up, in and out', async (t) => {
    const proxied = await build(t, target, { env: { TRUST_PROXY: 'loopback' } })
    const forwarded = 'f'.repeat(65)
    const headers = { 'x-forwarded-for': forwarded }
    const creds = uniqueUser('xff')
    const signup = await post(proxied, '/api/auth/signup', creds, headers)
    t.equal(signup.statusCode, 201)
    t.equal((await post(proxied, '/api/auth/signin', { username: creds.username, password: 'wrong-password' }, headers)).statusCode, 401)
    const signedIn = await post(proxied, '/api/auth/signin', { username: creds.username, password: creds.password }, headers)
    t.equal(signedIn.statusCode, 200)
    const refreshToken: string = json(signedIn).refreshToken
    t.equal((await post(proxied, '/api/auth/signout', { refreshToken }, headers)).statusCode, 200)
    t.equal((await post(proxied, '/api/auth/refreshtoken', { refreshToken })).statusCode, 401, 'the signout revoked the sign-in')
    const audit = await proxied.inject({ url: `/api/admin/audit?userId=${json(signup).id as number}`, headers: bearer(await signinAdmin(proxied)) })
    const items: Item[] = json(audit).items
    t.same(items.map(e => e.type), ['signout', 'signin', 'signin_failed', 'signup'])
    t.ok(items.every(e => e.ip === forwarded.slice(0, 64)), 'the address as forwarded, cut to the column')
  })

  t.test('bad audit queries are 400', async (t) => {
    // 2147483648: past PostgreSQL's integer, the type of user ids; must not reach the query.
    for (const query of ['type=nope', 'userId=0', 'userId=abc', 'userId=1e400', 'userId=2147483648', 'userId=99999999999', 'limit=0', 'limit=101', 'cursor=%24%24', `cursor=${Buffer.from('x').toString('base64url')}`]) {
      const res = await app.inject({ url: `/api/admin/audit?${query}`, headers: bearer(admin) })
      t.equal(res.statusCode, 400, query)
      t.match(json(res).message, /querystring/)
    }
    // Ajv's own words for a value outside a list were 'must be equal to constant'.
    const unknownType = await app.inject({ url: '/api/admin/audit?type=nope', headers: bearer(admin) })
    t.equal(json(unknownType).message, `querystring/type must be one of ${AUDIT_EVENT_TYPES.join(', ')}`, 'an unknown type names the known ones')
  })
})
