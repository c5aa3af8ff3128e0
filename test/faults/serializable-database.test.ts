import { setTimeout as sleep } from 'node:timers/promises'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { build, json, post, signin, signinAdmin, uniqueUser, type Session } from '../helper.js'
import { postgresUnavailable, startPostgres, type Cluster } from './harness.js'

// A database whose operator set default_transaction_isolation = serializable: PostgreSQL then
// aborts concurrent transactions (and single statements) with 40001, and rolegate answered 503
// to requests that are nothing but ordinary concurrency. They must get their normal answers,
// and the reuse contract of refresh tokens must hold exactly.
const skip = postgresUnavailable()
const AT_ONCE = 20

t.test('a database whose transactions default to serializable', { skip: skip ?? false, timeout: 180_000 }, async (t) => {
  const cluster = await startPostgres(t)
  await cluster.query('alter database rolegate set default_transaction_isolation = serializable')
  const app = await build(t, { name: 'postgres', url: cluster.url() }, { databaseUrl: cluster.url() })
  const isolation = await sql<{ transaction_isolation: string }>`show transaction_isolation`.execute(app.db)
  t.equal(isolation.rows[0]?.transaction_isolation, 'serializable', 'the app\'s statements run serializable')
  const admin = await signinAdmin(app)
  const asAdmin = { authorization: `Bearer ${admin.accessToken}` }

  const signupUser = async (): Promise<Session> => {
    const user = uniqueUser('ser')
    const res = await post(app, '/api/auth/signup', user)
    if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`)
    return await signin(app, user.username, user.password)
  }
  const liveTokens = async (userId: number): Promise<number> => Number((await sql<{ n: string }>`
    select count(*) as n from refresh_tokens where user_id = ${userId} and revoked_at is null and used_at is null`.execute(app.db)).rows[0]?.n)
  const events = async (userId: number, type: string): Promise<number> => Number((await sql<{ n: string }>`
    select count(*) as n from audit_events where user_id = ${userId} and type = ${type}`.execute(app.db)).rows[0]?.n)

  t.test(`${AT_ONCE + 10} signups at once`, async (t) => {
    const users = Array.from({ length: AT_ONCE + 10 }, () => uniqueUser('sg'))
    const answers = await Promise.all(users.map(async user => await post(app, '/api/auth/signup', user)))
    t.same(statuses(answers), { 201: users.length })
  })

  t.test(`${AT_ONCE} signins of one user at once, then a refresh of each of its sessions at once`, async (t) => {
    const user = await signupUser()
    const signins = await Promise.all(Array.from({ length: AT_ONCE }, async () =>
      await post(app, '/api/auth/signin', { username: user.username, password: user.password })))
    t.same(statuses(signins), { 200: AT_ONCE })
    const refreshes = await Promise.all(signins.map(async res =>
      await post(app, '/api/auth/refreshtoken', { refreshToken: json(res).refreshToken })))
    t.same(statuses(refreshes), { 200: AT_ONCE })
    t.equal(new Set(refreshes.map(res => json(res).refreshToken)).size, AT_ONCE, 'each sign-in got its own successor')
    // The first sign-in's session, and one successor per refreshed sign-in.
    t.equal(await liveTokens(user.id), AT_ONCE + 1)
  })

  t.test(`one refresh token presented ${AT_ONCE} times at once: one rotation, then the sign-in revoked`, async (t) => {
    const user = await signupUser()
    const answers = await Promise.all(Array.from({ length: AT_ONCE }, async () =>
      await post(app, '/api/auth/refreshtoken', { refreshToken: user.refreshToken })))
    t.same(statuses(answers), { 200: 1, 401: AT_ONCE - 1 })
    t.equal(await liveTokens(user.id), 0, 'the whole family is revoked, the successor handed out included')
    t.equal(await events(user.id, 'refresh_reuse_detected'), 1, 'the reuse is recorded once')
    const successor = json(answers.find(res => res.statusCode === 200)!).refreshToken
    t.equal((await post(app, '/api/auth/refreshtoken', { refreshToken: successor })).statusCode, 401)
  })

  t.test(`signout and refresh of ${AT_ONCE / 2} sign-ins of one user, all at once`, async (t) => {
    const user = await signupUser()
    const sessions = [user, ...await Promise.all(Array.from({ length: AT_ONCE / 2 - 1 }, async () => await signin(app, user.username, user.password)))]
    const answers = await Promise.all(sessions.flatMap(session => [
      post(app, '/api/auth/signout', { refreshToken: session.refreshToken }),
      post(app, '/api/auth/refreshtoken', { refreshToken: session.refreshToken })
    ]))
    t.same(statuses(answers.filter((_, i) => i % 2 === 0)), { 200: sessions.length }, 'every signout')
    t.notOk(answers.some(res => ![200, 401].includes(res.statusCode)), 'each refresh rotated before the signout or was refused after it')
    t.equal(await liveTokens(user.id), 0, 'no sign-in survives its signout, a successor included')
    t.equal(await events(user.id, 'signout'), sessions.length, 'one event per sign-in ended')
  })

  t.test(`admin changes to ${AT_ONCE} users at once`, async (t) => {
    const users = await Promise.all(Array.from({ length: AT_ONCE }, signupUser))
    const answers = await Promise.all(users.map(async (user, i) => i % 2 === 0
      ? await app.inject({ method: 'PUT', url: `/api/admin/users/${user.id}/roles`, payload: { roles: ['user', 'moderator'] }, headers: asAdmin })
      : await app.inject({ method: 'PATCH', url: `/api/admin/users/${user.id}`, payload: { disabled: true }, headers: asAdmin })))
    t.same(statuses(answers), { 200: AT_ONCE })
    for (const [i, user] of users.entries()) {
      if (i % 2 === 0) {
        t.same(json(answers[i]!).roles, ['ROLE_USER', 'ROLE_MODERATOR'])
        t.equal(await events(user.id, 'roles_changed'), 1)
      } else {
        t.equal(json(answers[i]!).disabled, true)
        t.equal(await events(user.id, 'user_disabled'), 1)
        t.equal(await liveTokens(user.id), 0, 'a disabled account holds no sign-in')
      }
    }
  })

  t.test(`${AT_ONCE} signins of one user while an admin changes its roles ${AT_ONCE} times`, async (t) => {
    const user = await signupUser()
    const answers = await Promise.all([
      ...Array.from({ length: AT_ONCE }, async () => await post(app, '/api/auth/signin', { username: user.username, password: user.password })),
      ...Array.from({ length: AT_ONCE }, async (_, i) => await app.inject({
        method: 'PUT', url: `/api/admin/users/${user.id}/roles`, payload: { roles: i % 2 === 0 ? ['user', 'moderator'] : ['user'] }, headers: asAdmin
      }))
    ])
    t.same(statuses(answers), { 200: 2 * AT_ONCE })
  })

  // The same conflicts, one at a time and every time: a transaction elsewhere holds the user row
  // updated until the request waits for it, then commits, which under serializable aborts the
  // waiting statement with 40001.
  t.test('a signin whose session insert waited for a change of the user row', async (t) => {
    const user = await signupUser()
    const res = await afterWaitingForRowChange(t, cluster, user.id, async () =>
      await post(app, '/api/auth/signin', { username: user.username, password: user.password }))
    t.equal(res.statusCode, 200, 'the single statement is run again')
  })

  t.test('a refresh that waited for a change of the user row', async (t) => {
    const user = await signupUser()
    const res = await afterWaitingForRowChange(t, cluster, user.id, async () =>
      await post(app, '/api/auth/refreshtoken', { refreshToken: user.refreshToken }))
    t.equal(res.statusCode, 200, 'the transaction is run again')
    t.equal(await liveTokens(user.id), 1, 'rotated once')
  })
})

function statuses (answers: LightMyRequestResponse[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const res of answers) counts[res.statusCode] = (counts[res.statusCode] ?? 0) + 1
  return counts
}

/**
 * Updates user `userId` in a transaction of its own, starts `request`, waits until one of the
 * app's statements is blocked on that row's lock, then commits, and returns the answer.
 */
async function afterWaitingForRowChange (
  t: Test, cluster: Cluster, userId: number, request: () => Promise<LightMyRequestResponse>
): Promise<LightMyRequestResponse> {
  const other = new pg.Client({ connectionString: cluster.url() })
  await other.connect()
  t.teardown(async () => { await other.end() })
  await other.query('begin')
  await other.query('update users set updated_at = now() where id = $1', [userId])
  const answer = request()
  for (let tries = 0; ; tries++) {
    const [row] = await cluster.query("select count(*)::int as n from pg_stat_activity where datname = 'rolegate' and wait_event_type = 'Lock'")
    if (row.n > 0) break
    if (tries > 500) throw new Error('the request never waited for the row')
    await sleep(20)
  }
  await other.query('commit')
  return await answer
}
