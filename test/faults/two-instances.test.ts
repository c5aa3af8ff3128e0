import t from 'tap'
import { migrations } from '../../migrations/index.js'
import { ADMIN } from '../helper.js'
import { errorLines, newAccount, postgresUnavailable, send, startPostgres, startRolegate } from './harness.js'

// Two rolegate processes behind one load balancer, on one PostgreSQL: they start together
// without tripping over each other, and behave as one service for sessions.
const skip = postgresUnavailable()

t.test('two instances on one database', { skip: skip ?? false, timeout: 90_000 }, async (t) => {
  const pg = await startPostgres(t)
  const env = {
    DATABASE_URL: pg.url(),
    ADMIN_USERNAME: ADMIN.username,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password
  }
  // Started at the same moment on an empty database: both migrate and both bootstrap the admin.
  const [a, b] = await Promise.all([startRolegate(t, env, 'instance A'), startRolegate(t, env, 'instance B')])

  t.test('they migrate once, without error', async (t) => {
    t.same(errorLines(a.output()), [], 'instance A logged no error')
    t.same(errorLines(b.output()), [], 'instance B logged no error')
    const appliedBy = [a, b].map(i => migrationsAppliedBy(i.output()))
    t.same(appliedBy.flat().sort(), Object.keys(migrations).sort(), 'between them, each migration was applied by one instance only')
    const applied = await pg.query('select name from kysely_migration order by name')
    t.same(applied.map(r => r.name), Object.keys(migrations).sort(), 'each migration recorded exactly once')
    const admins = await pg.query('select id from users where lower(username) = lower($1)', [ADMIN.username])
    t.equal(admins.length, 1, 'the bootstrap admin exists once')
    for (const instance of [a, b]) t.equal((await send(instance, 'GET', '/ready')).status, 200)
  })

  t.test('a session signed in on one refreshes on the other', async (t) => {
    const account = newAccount('two')
    t.equal((await send(a, 'POST', '/api/auth/signup', account)).status, 201)
    const signin = await send(a, 'POST', '/api/auth/signin', { username: account.username, password: account.password })
    t.equal(signin.status, 200)
    const refreshed = await send(b, 'POST', '/api/auth/refreshtoken', { refreshToken: signin.body.refreshToken })
    t.equal(refreshed.status, 200, 'B rotates the refresh token A issued')
    const again = await send(a, 'POST', '/api/auth/refreshtoken', { refreshToken: refreshed.body.refreshToken })
    t.equal(again.status, 200, 'and A rotates the one B issued')
    const me = await fetch(`${b.url}/api/auth/me`, { headers: { authorization: `Bearer ${String(again.body.accessToken)}` } })
    t.equal(me.status, 200, "B accepts A's access token")
    t.equal((await me.json() as { username: string }).username, account.username)
  })

  t.test('a reused refresh token is detected whichever instance sees it', async (t) => {
    for (const [first, second] of [[a, b], [b, a]] as const) {
      const account = newAccount('reuse')
      t.equal((await send(first, 'POST', '/api/auth/signup', account)).status, 201)
      const signin = await send(first, 'POST', '/api/auth/signin', { username: account.username, password: account.password })
      const rotated = await send(first, 'POST', '/api/auth/refreshtoken', { refreshToken: signin.body.refreshToken })
      t.equal(rotated.status, 200)
      const replay = await send(second, 'POST', '/api/auth/refreshtoken', { refreshToken: signin.body.refreshToken })
      t.equal(replay.status, 401, 'the replayed token is refused on the other instance')
      t.match(replay.body.message, /already used/, 'as a reuse')
      const current = await send(first, 'POST', '/api/auth/refreshtoken', { refreshToken: rotated.body.refreshToken })
      t.equal(current.status, 401, 'and the whole sign-in is revoked, on the first instance too')
    }
  })

  t.test('the same token refreshed on both at once rotates once', async (t) => {
    const account = newAccount('race')
    t.equal((await send(a, 'POST', '/api/auth/signup', account)).status, 201)
    const signin = await send(a, 'POST', '/api/auth/signin', { username: account.username, password: account.password })
    const both = await Promise.all([a, b].map(async i => await send(i, 'POST', '/api/auth/refreshtoken', { refreshToken: signin.body.refreshToken })))
    t.same(both.map(r => r.status).sort(), [200, 401], 'one rotation, one refusal')
  })

  t.test('the last-admin guard holds across instances', async (t) => {
    const call = async (instance: { url: string }, method: string, route: string, token: string, body?: unknown) => {
      const res = await fetch(`${instance.url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {})
      })
      return { status: res.status, body: await res.json() as Record<string, any> }
    }
    const root = (await send(a, 'POST', '/api/auth/signin', { username: ADMIN.username, password: ADMIN.password })).body
    const second = newAccount('admin2')
    t.equal((await call(a, 'POST', '/api/auth/signup', String(root.accessToken), { ...second, roles: ['admin'] })).status, 201)
    const other = (await send(b, 'POST', '/api/auth/signin', { username: second.username, password: second.password })).body
    // The only two admins demote each other at the same moment, each through another instance.
    const results = await Promise.all([
      call(a, 'PUT', `/api/admin/users/${String(other.id)}/roles`, String(root.accessToken), { roles: ['user'] }),
      call(b, 'PUT', `/api/admin/users/${String(root.id)}/roles`, String(other.accessToken), { roles: ['user'] })
    ])
    const statuses = results.map(r => r.status).sort()
    t.equal(statuses.filter(s => s === 200).length, 1, `exactly one demotion succeeds (${statuses.join(', ')})`)
    t.ok(statuses.every(s => s === 200 || s === 403 || s === 409), 'the other is refused')
    const admins = await pg.query("select ur.user_id from user_roles ur join roles r on r.id = ur.role_id join users u on u.id = ur.user_id where r.name = 'admin' and not u.disabled")
    t.equal(admins.length, 1, 'one active admin remains')
  })
})

/** The migrations an instance reports having applied in its 'database ready' log line. */
function migrationsAppliedBy (output: string): string[] {
  for (const line of output.split('\n')) {
    try {
      const entry = JSON.parse(line) as { msg?: string, migrationsApplied?: string[] }
      if (entry.msg === 'database ready') return entry.migrationsApplied ?? []
    } catch {}
  }
  return []
}
