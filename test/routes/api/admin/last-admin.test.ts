import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import adminRoutes from '../../../../routes/api/admin/index.js'
import { appendRouteHook } from '../../../../src/route-hooks.js'
import { build, eachDatabase, json, newUser, signinAdmin, type Session } from '../../../helper.js'
import { waitForLockWaiters } from '../auth/sessions-helper.js'

// This file owns its app: the guard depends on how many active admins exist.
const bearer = (s: Session) => ({ authorization: `Bearer ${s.accessToken}` })

async function adminCount (app: FastifyInstance, admin: Session): Promise<number> {
  const res = await app.inject({ url: '/api/admin/users?limit=100', headers: bearer(admin) })
  return json(res).items.filter((u: { roles: string[], disabled: boolean }) => u.roles.includes('ROLE_ADMIN') && !u.disabled).length
}

const demote = (app: FastifyInstance, actor: Session, target: Session) =>
  app.inject({ method: 'PUT', url: `/api/admin/users/${target.id}/roles`, headers: bearer(actor), payload: { roles: ['user'] } })
const promote = (app: FastifyInstance, actor: Session, target: Session) =>
  app.inject({ method: 'PUT', url: `/api/admin/users/${target.id}/roles`, headers: bearer(actor), payload: { roles: ['admin'] } })
const disable = (app: FastifyInstance, actor: Session, target: Session, disabled = true) =>
  app.inject({ method: 'PATCH', url: `/api/admin/users/${target.id}`, headers: bearer(actor), payload: { disabled } })
const remove = (app: FastifyInstance, actor: Session, target: Session) =>
  app.inject({ method: 'DELETE', url: `/api/admin/users/${target.id}`, headers: bearer(actor) })

/** Exactly one of two racing requests wins; the loser is refused (403: lost its rights, 409: last admin). */
function exactlyOneWins (t: Test, results: LightMyRequestResponse[], okStatus = 200): void {
  const statuses = results.map(r => r.statusCode).sort()
  t.equal(statuses.filter(s => s === okStatus).length, 1, `one success: ${statuses.join(', ')}`)
  t.ok(statuses.every(s => s === okStatus || s === 403 || s === 409), `the other refused: ${statuses.join(', ')}`)
}

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const root = await signinAdmin(app)

  t.test('the only admin cannot be demoted, disabled or deleted', async (t) => {
    t.equal(await adminCount(app, root), 1)
    for (const res of [await demote(app, root, root), await disable(app, root, root), await remove(app, root, root)]) {
      t.equal(res.statusCode, 409)
      t.match(json(res), { error: 'Conflict', message: /last active admin/ })
    }
    const self = json(await app.inject({ url: `/api/admin/users/${root.id}`, headers: bearer(root) }))
    t.same(self.roles, ['ROLE_USER', 'ROLE_ADMIN'])
    t.equal(self.disabled, false)
    const keepsAdmin = await app.inject({ method: 'PUT', url: `/api/admin/users/${root.id}/roles`, headers: bearer(root), payload: { roles: ['moderator', 'admin'] } })
    t.equal(keepsAdmin.statusCode, 200, 'changing other roles of the last admin is fine')
    t.same(json(keepsAdmin).roles, ['ROLE_USER', 'ROLE_MODERATOR', 'ROLE_ADMIN'])
  })

  // Only disabling is refused: enabling the last active admin, already enabled, changes nothing.
  t.test('enabling the last active admin is not refused', async (t) => {
    t.equal(await adminCount(app, root), 1)
    const res = await disable(app, root, root, false)
    t.equal(res.statusCode, 200)
    t.match(json(res), { id: root.id, disabled: false })
    t.ok(json(res).roles.includes('ROLE_ADMIN'), 'still an admin')
  })

  t.test('a disabled admin does not count: the last active one stays protected', async (t) => {
    const other = await newUser(app, ['admin'])
    t.equal((await disable(app, root, other)).statusCode, 200)
    t.equal((await demote(app, root, root)).statusCode, 409)
    t.equal((await remove(app, root, other)).statusCode, 204, 'a disabled admin may be deleted')
    t.equal(await adminCount(app, root), 1)
  })

  t.test('with two admins, one may step down; then the other is the last', async (t) => {
    const other = await newUser(app, ['admin'])
    t.equal((await demote(app, other, other)).statusCode, 200)
    t.equal((await demote(app, root, root)).statusCode, 409)
    t.equal(await adminCount(app, root), 1)
  })

  for (const [name, act, restore] of [
    ['demote', demote, promote],
    ['disable', disable, (app: FastifyInstance, actor: Session, target: Session) => disable(app, actor, target, false)]
  ] as const) {
    t.test(`two admins who ${name} each other at the same moment: exactly one succeeds`, async (t) => {
      const other = await newUser(app, ['admin'])
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all([act(app, root, other), act(app, other, root)])
        exactlyOneWins(t, results)
        t.equal(await adminCount(app, results[0]?.statusCode === 200 ? root : other), 1, 'one active admin left')
        const winner = results[0]?.statusCode === 200 ? root : other
        const loser = winner === root ? other : root
        t.equal((await restore(app, winner, loser)).statusCode, 200)
      }
      t.equal((await demote(app, root, other)).statusCode, 200)
    })
  }

  t.test('two admins who delete each other at the same moment: exactly one succeeds', async (t) => {
    const a = await newUser(app, ['admin'])
    const b = await newUser(app, ['admin'])
    t.equal((await demote(app, a, root)).statusCode, 200, 'root steps aside so a and b are the only admins')
    const results = await Promise.all([remove(app, a, b), remove(app, b, a)])
    exactlyOneWins(t, results, 204)
    const survivor = results[0]?.statusCode === 204 ? a : b
    t.equal(await adminCount(app, survivor), 1)
    t.equal((await promote(app, survivor, root)).statusCode, 200)
    t.equal((await demote(app, root, survivor)).statusCode, 200)
  })

  // Root and `other` each stepped down at once: exactly one did, one active admin is left, and
  // root is made the only admin again for the tests after.
  const oneSteppedDown = async (t: Test, results: LightMyRequestResponse[], other: Session): Promise<void> => {
    exactlyOneWins(t, results)
    const remaining = results[0]?.statusCode === 200 ? other : root
    t.equal(await adminCount(app, remaining), 1, 'one active admin left')
    if (remaining === other) {
      t.equal((await promote(app, other, root)).statusCode, 200)
      t.equal((await demote(app, root, other)).statusCode, 200)
    }
  }

  t.test('two admins who each step down at the same moment: exactly one succeeds', async (t) => {
    const other = await newUser(app, ['admin'])
    await oneSteppedDown(t, await Promise.all([demote(app, root, root), demote(app, other, other)]), other)
  })

  // The same, made deterministic: the admin lock is held from here while both step-downs start,
  // so both must queue on it (a guard that takes no lock, or a shared one, leaves none waiting)
  // and, once it is free, run one after the other, the second counting admins after the first
  // committed. Real PostgreSQL only: the embedded database runs one transaction at a time.
  t.test('two admins who each step down while the admin lock is held: both wait, then exactly one succeeds', { skip: target.name === 'embedded' && 'real PostgreSQL only' }, async (t) => {
    const other = await newUser(app, ['admin'])
    const results: Array<Promise<LightMyRequestResponse>> = []
    await app.db.transaction().execute(async (trx) => {
      await trx.selectFrom('roles').select('id').where('name', '=', 'admin').forNoKeyUpdate().execute()
      results.push(demote(app, root, root), demote(app, other, other))
      await waitForLockWaiters(app, 2)
    })
    await oneSteppedDown(t, await Promise.all(results), other)
  })

  // The preHandler checks the caller's authority before the change's transaction starts; the
  // change reads it again under the admin lock. An admin demoted in between must not go on to
  // make anyone an admin. The real admin routes, mounted a second time under /test-held with a
  // hook of the test's own that holds a request there: a route's own preHandler runs after the
  // subtree's authority check.
  t.test('an admin demoted after the authority check, before the change, is refused 403', async (t) => {
    let arrived!: () => void
    const atGate = new Promise<void>(resolve => { arrived = resolve })
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const held = await build(t, target, {
      beforeReady: (app) => {
        void app.register(async (scope) => {
          scope.addHook('onRoute', (route) => {
            appendRouteHook(route, 'preHandler', async () => { arrived(); await gate })
          })
          await scope.register(adminRoutes, { prefix: '/test-held/admin' })
        })
      }
    })
    const heldRoot = await signinAdmin(held)
    const demoted = await newUser(held, ['admin'])
    const accomplice = await newUser(held)
    const pending = held.inject({
      method: 'PUT', url: `/test-held/admin/users/${accomplice.id}/roles`, headers: bearer(demoted), payload: { roles: ['admin'] }
    })
    await atGate
    t.equal((await demote(held, heldRoot, demoted)).statusCode, 200)
    open()
    const res = await pending
    t.same(json(res), { statusCode: 403, error: 'Forbidden', message: 'Require Admin Role!' })
    const after = json(await held.inject({ url: `/api/admin/users/${accomplice.id}`, headers: bearer(heldRoot) }))
    t.same(after.roles, ['ROLE_USER'], 'nobody was made an admin')
  })

  // The same, when the demotion is not yet committed as the change starts: the change then
  // waits for the admin lock the demotion holds, and only a check made under that lock sees the
  // demotion. The lock is held from here first, so the two queue in a known order: the demotion,
  // then the demoted admin's change. Real PostgreSQL only: the embedded database runs one
  // transaction at a time.
  t.test('an admin demoted while its change waits for the admin lock is refused 403', { skip: target.name === 'embedded' && 'real PostgreSQL only' }, async (t) => {
    const demoted = await newUser(app, ['admin'])
    const accomplice = await newUser(app)
    let demotion: Promise<LightMyRequestResponse> | undefined
    let promotion: Promise<LightMyRequestResponse> | undefined
    await app.db.transaction().execute(async (trx) => {
      await trx.selectFrom('roles').select('id').where('name', '=', 'admin').forNoKeyUpdate().execute()
      demotion = demote(app, root, demoted)
      await waitForLockWaiters(app, 1)
      promotion = promote(app, demoted, accomplice)
      await waitForLockWaiters(app, 2)
    })
    t.equal((await demotion)?.statusCode, 200, 'the demotion went first')
    t.same(json(await promotion as LightMyRequestResponse), { statusCode: 403, error: 'Forbidden', message: 'Require Admin Role!' })
    const after = json(await app.inject({ url: `/api/admin/users/${accomplice.id}`, headers: bearer(root) }))
    t.same(after.roles, ['ROLE_USER'], 'nobody was made an admin')
  })

  t.test('a refused change leaves no audit event', async (t) => {
    const events = async () => json(await app.inject({ url: `/api/admin/audit?userId=${root.id}&limit=100`, headers: bearer(root) })).items
    const before = await events()
    t.equal(await adminCount(app, root), 1)
    t.equal((await disable(app, root, root)).statusCode, 409)
    t.equal((await demote(app, root, root)).statusCode, 409)
    t.same(await events(), before)
  })
})
