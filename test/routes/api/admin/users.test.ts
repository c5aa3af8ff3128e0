import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import { build, eachDatabase, json, newUser, post, signin, signinAdmin, uniqueUser, type Session } from '../../../helper.js'
import { waitForLockWaiters } from '../auth/sessions-helper.js'

class Rollback extends Error {}

async function until (condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('condition not met in 10 s')
}

async function lockWaiters (app: FastifyInstance): Promise<number> {
  const { rows } = await sql<{ waiting: number }>`select count(*)::int as waiting from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'`.execute(app.db)
  return rows[0]?.waiting ?? 0
}

const bearer = (s: Session) => ({ authorization: `Bearer ${s.accessToken}` })

async function signupPrefixed (app: FastifyInstance, prefix: string, n: number): Promise<number[]> {
  const ids: number[] = []
  for (let i = 0; i < n; i++) {
    const user = uniqueUser(prefix)
    const res = await post(app, '/api/auth/signup', user)
    ids.push(json(res).id)
  }
  return ids
}

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const admin = await signinAdmin(app)
  const user = await newUser(app)
  const moderator = await newUser(app, ['moderator'])
  const get = async (url: string, s: Session = admin) => await app.inject({ url, headers: bearer(s) })

  t.test('only signed-in admins reach the admin API', async (t) => {
    const routes = [
      { method: 'GET' as const, url: '/api/admin/users' },
      { method: 'GET' as const, url: `/api/admin/users/${user.id}` },
      { method: 'PUT' as const, url: `/api/admin/users/${user.id}/roles`, payload: { roles: ['admin'] } },
      { method: 'PATCH' as const, url: `/api/admin/users/${user.id}`, payload: { disabled: true } },
      { method: 'DELETE' as const, url: `/api/admin/users/${user.id}` },
      { method: 'GET' as const, url: '/api/admin/audit' }
    ]
    for (const route of routes) {
      const anonymous = await app.inject(route)
      t.equal(anonymous.statusCode, 401, `anonymous ${route.method} ${route.url}`)
      t.equal(anonymous.headers['www-authenticate'], 'Bearer')
      for (const s of [user, moderator]) {
        const res = await app.inject({ ...route, headers: { 'x-access-token': s.accessToken } })
        t.equal(res.statusCode, 403, `${s.username} ${route.method} ${route.url}`)
        t.equal(json(res).message, 'Require Admin Role!')
      }
    }
    t.equal((await get(`/api/admin/users/${user.id}`)).statusCode, 200, 'the user was left alone')
    const viaLegacyHeader = await app.inject({ url: '/api/admin/users', headers: { 'x-access-token': admin.accessToken } })
    t.equal(viaLegacyHeader.statusCode, 200)
  })

  t.test('a user as admins see it: roles in ROLE_ form, never a hash', async (t) => {
    const res = await get(`/api/admin/users/${moderator.id}`)
    t.equal(res.statusCode, 200)
    const body = json(res)
    t.same(Object.keys(body).sort(), ['createdAt', 'disabled', 'email', 'id', 'roles', 'username'])
    t.same(body.roles, ['ROLE_USER', 'ROLE_MODERATOR'])
    t.equal(body.username, moderator.username)
    t.equal(body.disabled, false)
    t.ok(!Number.isNaN(Date.parse(body.createdAt)))
    t.notMatch(res.body, /argon2|password/i)
  })

  t.test('malformed ids are 400, unknown ids 404, never 5xx', async (t) => {
    for (const id of ['abc', '0', '-1', '1.5', '99999999999', '2147483648', '1e400', '-1e400', '%20', '0x10', '1.0', '+5', ' 5', 'null', '1'.repeat(30)]) {
      for (const route of [
        { method: 'GET' as const, url: `/api/admin/users/${id}` },
        { method: 'PUT' as const, url: `/api/admin/users/${id}/roles`, payload: { roles: ['user'] } },
        { method: 'PATCH' as const, url: `/api/admin/users/${id}`, payload: { disabled: false } },
        { method: 'DELETE' as const, url: `/api/admin/users/${id}` }
      ]) {
        const res = await app.inject({ ...route, headers: bearer(admin) })
        t.equal(res.statusCode, 400, `${route.method} ${route.url}`)
        t.match(json(res).message, /params\/id/)
      }
    }
    for (const route of [
      { method: 'GET' as const, url: '/api/admin/users/2147483647' },
      { method: 'PUT' as const, url: '/api/admin/users/2147483647/roles', payload: { roles: ['user'] } },
      { method: 'PATCH' as const, url: '/api/admin/users/2147483647', payload: { disabled: true } },
      { method: 'DELETE' as const, url: '/api/admin/users/2147483647' }
    ]) {
      const res = await app.inject({ ...route, headers: bearer(admin) })
      t.equal(res.statusCode, 404, `${route.method} ${route.url}`)
      t.same(json(res), { statusCode: 404, error: 'Not Found', message: 'User not found' })
    }
  })

  t.test('paging through users with a cursor visits each exactly once, even while users are added', async (t) => {
    const prefix = `pg${Math.random().toString(36).slice(2, 6)}`
    const ids = await signupPrefixed(app, prefix, 5)
    const seen: number[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await get(`/api/admin/users?limit=2&q=${prefix}${cursor !== null ? `&cursor=${cursor}` : ''}`)
      t.equal(res.statusCode, 200)
      const body = json(res)
      t.ok(body.items.length <= 2)
      seen.push(...body.items.map((u: { id: number }) => u.id))
      cursor = body.nextCursor
      // A user signing up mid-way lands on a later page, not in a gap or twice.
      if (pages === 0) ids.push(...await signupPrefixed(app, prefix, 1))
      pages += 1
    } while (cursor !== null && pages < 10)
    t.same(seen, ids, 'every matching user, in id order, once')
    t.equal(pages, 3)

    const all = json(await get('/api/admin/users'))
    t.ok(all.items.length <= 20, 'default page size is 20')
    t.ok(all.items.every((u: { username: string }) => typeof u.username === 'string'))
  })

  // Ids are handed out when a signup's INSERT runs but show at its COMMIT: a signup that commits
  // after a higher id did (a slow commit, or a wait on the unique index as here) is exactly the
  // user paging must not step over. Real PostgreSQL only: the embedded one runs one statement at
  // a time.
  t.test('a signup that commits after a later id is on a later page, not skipped', { skip: target.name === 'embedded' && 'real PostgreSQL only' }, async (t) => {
    const prefix = `late${Math.random().toString(36).slice(2, 6)}`
    const ids = await signupPrefixed(app, prefix, 1)
    const late = uniqueUser(prefix)
    const seen: number[] = []
    const nextPage = async (cursor: string | null): Promise<string | null> => {
      const res = await get(`/api/admin/users?limit=2&q=${prefix}${cursor !== null ? `&cursor=${cursor}` : ''}`)
      t.equal(res.statusCode, 200)
      seen.push(...json(res).items.map((u: { id: number }) => u.id))
      return json(res).nextCursor
    }
    let lateSignup: Promise<LightMyRequestResponse> | undefined
    let firstPage: Promise<string | null> | undefined
    await app.db.transaction().execute(async (trx) => {
      // An uncommitted signup of the same name: the API's signup of it takes its id, then waits.
      await trx.insertInto('users').values({ username: late.username, email: `held-${late.email}`, password_hash: 'x' }).execute()
      lateSignup = post(app, '/api/auth/signup', late)
      await waitForLockWaiters(app, 1)
      ids.push(...await signupPrefixed(app, prefix, 2))
      let settled = false
      firstPage = nextPage(null).finally(() => { settled = true })
      // Either the page is answered at once, not waiting for the pending signup, or it waits.
      await until(async () => settled || await lockWaiters(app) >= 2)
      throw new Rollback()
    }).catch((err: unknown) => { if (!(err instanceof Rollback)) throw err })
    const created = await lateSignup as LightMyRequestResponse
    t.equal(created.statusCode, 201, 'the held back signup went through once the other was rolled back')
    ids.splice(1, 0, json(created).id)
    let cursor = await firstPage as string | null
    for (let pages = 1; cursor !== null && pages < 10; pages++) cursor = await nextPage(cursor)
    t.same(seen, ids, 'every user, the late one included, in id order, once')
  })

  t.test('q matches a case-insensitive prefix of the username or the email, wildcards literally', async (t) => {
    const base = `Qs${Math.random().toString(36).slice(2, 6)}`
    const a = { username: `${base}_a`, email: `first.${base}@example.com`, password: 'password-123' }
    const b = { username: `${base}xa`, email: `second.${base}@example.com`, password: 'password-123' }
    for (const u of [a, b]) t.equal((await post(app, '/api/auth/signup', u)).statusCode, 201)
    const names = async (q: string) => json(await get(`/api/admin/users?q=${encodeURIComponent(q)}`)).items.map((u: { username: string }) => u.username)
    t.same(await names(base.toUpperCase()), [a.username, b.username])
    t.same(await names(`${base}_`), [a.username], '_ is not a wildcard')
    t.same(await names(`first.${base.toLowerCase()}`), [a.username], 'email prefix')
    t.same(await names('%'), [], '% is not a wildcard')
    t.same(await names(`${base}\\`), [])
    t.same(await names('nobody-has-this-prefix'), [])
  })

  t.test('prefix search is served by the prefix indexes', async (t) => {
    const plan = await app.db.transaction().execute(async (trx) => {
      await sql`set local enable_seqscan = off`.execute(trx)
      const res = await sql<{ 'QUERY PLAN': string }>`explain select id from users where lower(username) like 'abc%' or lower(email) like 'abc%' order by id limit 21`.execute(trx)
      return res.rows.map(r => r['QUERY PLAN']).join('\n')
    })
    t.match(plan, /users_username_prefix_idx/)
    t.match(plan, /users_email_prefix_idx/)
  })

  t.test('bad paging parameters are 400', async (t) => {
    const bad = ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'limit=1e400', 'limit=0x10', 'limit=-5', 'limit=', 'cursor=!!!', `cursor=${Buffer.from('abc').toString('base64url')}`,
      `cursor=${Buffer.from('0').toString('base64url')}`, `cursor=${Buffer.from('-3').toString('base64url')}`,
      `cursor=${Buffer.from('99999999999').toString('base64url')}`, `cursor=${'A'.repeat(65)}`, `q=${'a'.repeat(255)}`]
    for (const query of bad) {
      const res = await get(`/api/admin/users?${query}`)
      t.equal(res.statusCode, 400, query)
      t.match(json(res).message, /querystring/, query)
    }
    t.equal((await get('/api/admin/users?limit=100')).statusCode, 200)
  })

  // A misspelled or array-style filter must not silently return the unfiltered list: an admin
  // acting on "the users matching q" would act on everyone.
  t.test('unknown query parameters are a 400 naming them, on both admin lists', async (t) => {
    for (const [url, name] of [['/api/admin/users?qq=alice', 'qq'], ['/api/admin/users?q[]=a', 'q[]'], ['/api/admin/audit?type[]=signin', 'type[]'],
      ['/api/admin/audit?user=1', 'user'], ['/api/admin/audit?userid=1', 'userid']] as const) {
      t.same(json(await get(url)), { statusCode: 400, error: 'Bad Request', message: `querystring/${name} is not allowed (unknown property)` }, url)
    }
    t.equal((await get('/api/admin/audit?type=signin&userId=1&limit=5')).statusCode, 200, 'the known ones still work')
  })

  // ?type=signin&type=signup reaches the validator as a list; ajv then said only 'must be
  // string', which reads as if the value were of the wrong kind.
  t.test('a query parameter given twice is a 400 saying so, on both admin lists', async (t) => {
    for (const [url, name] of [['/api/admin/users?q=a&q=b', 'q'], ['/api/admin/users?limit=5&limit=6', 'limit'],
      ['/api/admin/audit?type=signin&type=signup', 'type'], ['/api/admin/audit?userId=1&userId=1&userId=2', 'userId']] as const) {
      t.same(json(await get(url)), { statusCode: 400, error: 'Bad Request', message: `querystring/${name} must be given once` }, url)
    }
  })

  t.test('a NUL in q, which PostgreSQL cannot hold, is a 400 naming q', async (t) => {
    for (const q of ['%00', 'ab%00c']) {
      t.same(json(await get(`/api/admin/users?q=${q}`)), { statusCode: 400, error: 'Bad Request', message: 'querystring/q must not contain NUL (\\u0000) characters' }, q)
    }
  })

  t.test('promoting a user to moderator opens /api/test/mod after signing in again', async (t) => {
    const someone = await newUser(app)
    const res = await app.inject({ method: 'PUT', url: `/api/admin/users/${someone.id}/roles`, headers: bearer(admin), payload: { roles: ['mod'] } })
    t.equal(res.statusCode, 200)
    t.same(json(res).roles, ['ROLE_USER', 'ROLE_MODERATOR'])
    const before = await app.inject({ url: '/api/test/mod', headers: bearer(someone) })
    t.equal(before.statusCode, 403, 'the old token still carries the old roles')
    const again = await signin(app, someone.username, someone.password)
    const after = await app.inject({ url: '/api/test/mod', headers: bearer(again) })
    t.equal(after.statusCode, 200)
    t.equal(after.body, 'Moderator Content.')

    const demoted = await app.inject({ method: 'PUT', url: `/api/admin/users/${someone.id}/roles`, headers: bearer(admin), payload: { roles: [] } })
    t.same(json(demoted).roles, ['ROLE_USER'], 'user is always kept')
  })

  t.test('role bodies are validated', async (t) => {
    const url = `/api/admin/users/${user.id}/roles`
    const cases = [
      { payload: { roles: ['superuser'] }, message: /Failed! Role does not exist = superuser/ },
      { payload: {}, message: /body\/roles is required/ },
      { payload: { roles: ['user'], extra: 1 }, message: /extra is not allowed/ },
      { payload: { roles: 'admin' }, message: /body\/roles/ },
      { payload: { roles: [1] }, message: /body\/roles\/0/ }
    ]
    for (const c of cases) {
      const res = await app.inject({ method: 'PUT', url, headers: bearer(admin), payload: c.payload })
      t.equal(res.statusCode, 400)
      t.match(json(res).message, c.message)
    }
    t.same(json(await get(`/api/admin/users/${user.id}`)).roles, ['ROLE_USER'], 'unchanged')
  })

  t.test('disabling a user kills their refresh token and signin answers 403; enabling restores signin', async (t) => {
    const victim = await newUser(app)
    const patch = async (payload: unknown) => await app.inject({ method: 'PATCH', url: `/api/admin/users/${victim.id}`, headers: bearer(admin), payload: payload as object })
    const res = await patch({ disabled: true })
    t.equal(res.statusCode, 200)
    t.equal(json(res).disabled, true)
    const refresh = await post(app, '/api/auth/refreshtoken', { refreshToken: victim.refreshToken })
    t.equal(refresh.statusCode, 401)
    const again = await post(app, '/api/auth/signin', { username: victim.username, password: victim.password })
    t.equal(again.statusCode, 403)
    t.equal((await patch({ disabled: true })).statusCode, 200, 'disabling twice is fine')

    for (const bad of [{}, { disabled: 'yes' }, { disabled: true, roles: [] }]) {
      t.equal((await patch(bad)).statusCode, 400)
    }
    const enabled = await patch({ disabled: false })
    t.equal(json(enabled).disabled, false)
    t.equal((await post(app, '/api/auth/signin', { username: victim.username, password: victim.password })).statusCode, 200)
    t.equal(refresh.statusCode, 401)
  })

  // An account can be disabled outside the API (an operator's UPDATE) with its sign-ins still
  // live. Disabling it through the API then still revokes them: they must not come back to
  // life when the account is enabled again.
  t.test('disabling an account already disabled still revokes its refresh tokens', async (t) => {
    const victim = await newUser(app)
    await app.db.updateTable('users').set({ disabled: true }).where('id', '=', victim.id).execute()
    const patch = async (disabled: boolean) => await app.inject({ method: 'PATCH', url: `/api/admin/users/${victim.id}`, headers: bearer(admin), payload: { disabled } })
    t.equal((await patch(true)).statusCode, 200)
    t.equal(json(await patch(false)).disabled, false)
    t.equal((await post(app, '/api/auth/refreshtoken', { refreshToken: victim.refreshToken })).statusCode, 401, 'the old sign-in stays ended')
    t.equal((await post(app, '/api/auth/signin', { username: victim.username, password: victim.password })).statusCode, 200, 'a new one works')
  })

  t.test('deleting a user removes the account', async (t) => {
    const doomed = await newUser(app)
    const res = await app.inject({ method: 'DELETE', url: `/api/admin/users/${doomed.id}`, headers: bearer(admin) })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.equal((await get(`/api/admin/users/${doomed.id}`)).statusCode, 404)
    t.equal((await post(app, '/api/auth/signin', { username: doomed.username, password: doomed.password })).statusCode, 401)
    t.equal((await post(app, '/api/auth/refreshtoken', { refreshToken: doomed.refreshToken })).statusCode, 401)
    t.equal((await app.inject({ method: 'DELETE', url: `/api/admin/users/${doomed.id}`, headers: bearer(admin) })).statusCode, 404)
  })

  // DELETE takes no body. One with properties is refused like any unknown property (the
  // contract: never silently dropped), before anything is deleted; an empty one is no body,
  // also when a client labels every request application/json.
  t.test('a delete with a body is refused before deleting; an empty body is none', async (t) => {
    const kept = await newUser(app)
    const del = async (payload: string | undefined) => await app.inject({
      method: 'DELETE', url: `/api/admin/users/${kept.id}`, payload, headers: { ...bearer(admin), 'content-type': 'application/json' }
    })
    t.same(json(await del('{"hard":true}')), { statusCode: 400, error: 'Bad Request', message: 'body/hard is not allowed (unknown property)' })
    for (const payload of ['[]', '"x"', '0', 'null', '[{"a":1}]']) {
      t.same(json(await del(payload)), { statusCode: 400, error: 'Bad Request', message: 'body is not allowed: this request takes no body' }, payload)
    }
    t.equal((await get(`/api/admin/users/${kept.id}`)).statusCode, 200, 'still there')
    t.equal((await del('')).statusCode, 204, 'an empty body labelled JSON')
    const other = await newUser(app)
    const res = await app.inject({ method: 'DELETE', url: `/api/admin/users/${other.id}`, payload: '{}', headers: { ...bearer(admin), 'content-type': 'application/json' } })
    t.equal(res.statusCode, 204, 'an empty object holds no unknown property')
  })

  t.test("a demoted or disabled admin's unexpired token cannot administer", async (t) => {
    for (const change of [{ roles: ['user'] }, { disabled: true }]) {
      const other = await newUser(app, ['admin'])
      t.equal((await get('/api/admin/users', other)).statusCode, 200)
      const res = 'roles' in change
        ? await app.inject({ method: 'PUT', url: `/api/admin/users/${other.id}/roles`, headers: bearer(admin), payload: change })
        : await app.inject({ method: 'PATCH', url: `/api/admin/users/${other.id}`, headers: bearer(admin), payload: change })
      t.equal(res.statusCode, 200)
      const denied = await get('/api/admin/users', other)
      t.equal(denied.statusCode, 403, JSON.stringify(change))
      t.equal(json(denied).message, 'Require Admin Role!')
      const deleteAttempt = await app.inject({ method: 'DELETE', url: `/api/admin/users/${user.id}`, headers: bearer(other) })
      t.equal(deleteAttempt.statusCode, 403)
    }
    t.equal((await get(`/api/admin/users/${user.id}`)).statusCode, 200)
  })

  t.test('the OpenAPI document describes the admin API with bearer security', async (t) => {
    const doc = json(await app.inject({ url: '/documentation/json' }))
    const ops = [
      doc.paths['/api/admin/users/']?.get ?? doc.paths['/api/admin/users']?.get,
      doc.paths['/api/admin/users/{id}'].get,
      doc.paths['/api/admin/users/{id}'].patch,
      doc.paths['/api/admin/users/{id}'].delete,
      doc.paths['/api/admin/users/{id}/roles'].put,
      doc.paths['/api/admin/audit/']?.get ?? doc.paths['/api/admin/audit']?.get
    ]
    for (const op of ops) {
      t.ok(op, 'documented')
      t.same(op.tags, ['admin'])
      t.same(op.security, [{ bearerAuth: [] }, { accessTokenHeader: [] }])
      t.ok(op.responses['403'], 'documents 403')
    }
    t.ok(doc.tags.some((tag: { name: string }) => tag.name === 'admin'))
  })
})
