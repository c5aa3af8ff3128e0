import type { LightMyRequestResponse } from 'fastify'
import { build, eachDatabase, json, newUser, post, signinAdmin, type Session } from '../../../helper.js'
import { afterNextVerifyOf, liveSessions, waitForLockWaiters } from './sessions-helper.js'

// A signin verifies the password (tens of milliseconds of argon2) and then starts the session.
// Whatever happens to the account in between must hold: a password change ends every sign-in
// and a disabled account holds none, so a signin that verified the old state must not come out
// with a live session, nor write an old password's hash over the new one. Each test runs the
// change at that exact moment, from inside the verification.
eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const verify = app.passwords.verify
  // Runs a change once, right after the next verification finished.
  const afterNextVerify = afterNextVerifyOf(t, app)

  t.test('a password change during a signin with the old password: 401, no live session, the new password kept', async (t) => {
    const user = await newUser(app)
    const newPassword = `${user.password} changed`
    afterNextVerify(async () => {
      const res = await post(app, '/api/auth/password', { currentPassword: user.password, newPassword }, { authorization: `Bearer ${user.accessToken}` })
      t.equal(res.statusCode, 200, 'the password change went through')
    })
    const signin = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    t.equal(signin.statusCode, 401, 'the old password is no longer the account\'s')
    t.equal(await liveSessions(app, user.id), 1, 'only the session the password change handed back is live')
    t.equal((await post(app, '/api/auth/signin', { username: user.username, password: newPassword })).statusCode, 200, 'the new password works')
  })

  t.test('a password change during a signin that upgrades the old hash: the upgrade does not undo the change', async (t) => {
    const user = await newUser(app)
    // A hash made with weaker parameters than the current ones: the signin will upgrade it.
    const weak = await (await import('argon2')).hash(user.password, { type: 2, memoryCost: 19456, timeCost: 1, parallelism: 1 })
    await app.db.updateTable('users').set({ password_hash: weak }).where('id', '=', user.id).execute()
    const newPassword = `${user.password} changed`
    afterNextVerify(async () => {
      const res = await post(app, '/api/auth/password', { currentPassword: user.password, newPassword }, { authorization: `Bearer ${user.accessToken}` })
      t.equal(res.statusCode, 200, 'the password change went through')
    })
    t.equal((await post(app, '/api/auth/signin', { username: user.username, password: user.password })).statusCode, 401)
    t.equal((await post(app, '/api/auth/signin', { username: user.username, password: user.password })).statusCode, 401, 'the old password stays refused')
    t.equal((await post(app, '/api/auth/signin', { username: user.username, password: newPassword })).statusCode, 200, 'the new password works')
  })

  t.test('an account disabled during a signin: 403, no live session', async (t) => {
    const user = await newUser(app)
    const admin = await signinAdmin(app)
    afterNextVerify(async () => {
      const res = await app.inject({ method: 'PATCH', url: `/api/admin/users/${user.id}`, payload: { disabled: true }, headers: { authorization: `Bearer ${admin.accessToken}` } })
      t.equal(res.statusCode, 200, 'disabled')
    })
    const signin = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    t.equal(signin.statusCode, 403, json(signin).message)
    t.equal(await liveSessions(app, user.id), 0, 'no live session')
  })

  // Each try verifies the password, then finds the stored hash replaced (here by a fresh hash of
  // the same password, as an upgrade writes): after the last try the signin gives up with a 401,
  // and that refusal is audited like every other.
  t.test('a signin whose account changes on every try: 401, no session, a signin_failed event', async (t) => {
    const user = await newUser(app)
    let changes = 0
    app.passwords.verify = async (...args) => {
      const result = await verify(...args)
      changes++
      await app.db.updateTable('users').set({ password_hash: await app.passwords.hash(user.password) }).where('id', '=', user.id).execute()
      return result
    }
    const signin = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    app.passwords.verify = verify
    t.equal(signin.statusCode, 401, json(signin).message)
    t.equal(changes, 3, 'three tries')
    t.equal(await liveSessions(app, user.id), 1, 'only the session the signup\'s signin started')
    const events = await app.db.selectFrom('audit_events').select(['type', 'detail']).where('user_id', '=', user.id).where('type', '=', 'signin_failed').execute()
    t.match(events, [{ detail: { username: user.username, reason: 'account_changed' } }])
    // The signin event is written with the session, in its statement: no session, no event.
    const signins = await app.db.selectFrom('audit_events').select('id').where('user_id', '=', user.id).where('type', '=', 'signin').execute()
    t.equal(signins.length, 1, 'one signin event: the signup\'s signin, none for the refused tries')
  })

  // The tests above run the change between the verification and the session's insert. Here the
  // change is still uncommitted when the insert runs: it has updated the user row and is held in
  // its revocation (a token row of the user is locked from here), so the signin read the old
  // hash, verified the old password and reaches its insert with the change in flight. The insert
  // must wait for the user row (FOR SHARE) and then find it changed; reading it without waiting,
  // it started a session the change's revocation, already under way, never saw. Real
  // PostgreSQL only: the embedded database runs one transaction at a time.
  const changes: Record<string, { run: (user: Session) => Promise<LightMyRequestResponse>, refused: number, live: number }> = {
    'password change': {
      run: async (user) => await post(app, '/api/auth/password', { currentPassword: user.password, newPassword: `${user.password} changed` }, { authorization: `Bearer ${user.accessToken}` }),
      refused: 401,
      live: 1 // the session the password change hands back
    },
    disable: {
      run: async (user) => await app.inject({ method: 'PATCH', url: `/api/admin/users/${user.id}`, payload: { disabled: true }, headers: { authorization: `Bearer ${(await signinAdmin(app)).accessToken}` } }),
      refused: 403,
      live: 0
    }
  }
  for (const [name, change] of Object.entries(changes)) {
    t.test(`a signin whose session insert meets an uncommitted ${name}: refused, no session outlives the change`, { skip: target.name === 'embedded' && 'real PostgreSQL only' }, async (t) => {
      const user = await newUser(app)
      let changed: Promise<LightMyRequestResponse> | undefined
      let signin: Promise<LightMyRequestResponse> | undefined
      await app.db.transaction().execute(async (trx) => {
        await trx.selectFrom('refresh_tokens').select('id').where('user_id', '=', user.id).forUpdate().execute()
        changed = change.run(user)
        await waitForLockWaiters(app, 1)
        let settled = false
        signin = post(app, '/api/auth/signin', { username: user.username, password: user.password }).finally(() => { settled = true })
        // The signin waits behind the change, or (the race lost) answers without waiting.
        await waitForLockWaiters(app, 2, () => settled)
      })
      t.equal((await changed)?.statusCode, 200, `the ${name} went through`)
      const res = await signin as LightMyRequestResponse
      t.equal(res.statusCode, change.refused, json(res).message)
      t.equal(await liveSessions(app, user.id), change.live, 'no session from the signin')
    })
  }

  t.test('two signins that both upgrade the same outdated hash both succeed', async (t) => {
    const user = await newUser(app)
    const weak = await (await import('argon2')).hash(user.password, { type: 2, memoryCost: 19456, timeCost: 1, parallelism: 1 })
    await app.db.updateTable('users').set({ password_hash: weak }).where('id', '=', user.id).execute()
    // The second signin verifies against the weak hash too, then finds it upgraded by the first.
    let second: Promise<unknown> | undefined
    afterNextVerify(async () => {
      second = post(app, '/api/auth/signin', { username: user.username, password: user.password })
      await new Promise(resolve => setTimeout(resolve, 50))
    })
    const first = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    t.equal(first.statusCode, 200)
    t.equal(((await second) as { statusCode: number }).statusCode, 200)
  })
})
