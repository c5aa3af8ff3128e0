import { build, eachDatabase, json, newUser, post, signinAdmin, type Session } from '../../../helper.js'
import { afterNextVerifyOf, liveSessions, refresh } from './sessions-helper.js'

// A password change verifies the current password (tens of milliseconds of argon2), then
// replaces the hash in a transaction that ends every sign-in and hands back a new one. What
// happens to the account in between must hold: the replacement is made only if the hash is
// still the one verified and the account still active, else the request is judged again on
// what is stored. Each test runs the other change at that exact moment, from inside the
// verification, as signin-races.test.ts does for signins.
eachDatabase(async (t, target) => {
  const app = await build(t, target)
  // Runs a change once, right after the next verification finished.
  const afterNextVerify = afterNextVerifyOf(t, app)
  const changePassword = async (user: Session, currentPassword: string, newPassword: string) =>
    await post(app, '/api/auth/password', { currentPassword, newPassword }, { authorization: `Bearer ${user.accessToken}` })
  const signinStatus = async (user: Session, password: string): Promise<number> =>
    (await post(app, '/api/auth/signin', { username: user.username, password })).statusCode

  t.test('two password changes from the same current password: the one that verified a replaced hash is refused, the other kept whole', async (t) => {
    const user = await newUser(app)
    const first = `${user.password} first`
    const second = `${user.password} second`
    let firstToken: string | undefined
    afterNextVerify(async () => {
      const res = await changePassword(user, user.password, first)
      t.equal(res.statusCode, 200, 'the first change went through')
      firstToken = json(res).refreshToken
    })
    const res = await changePassword(user, user.password, second)
    t.same(json(res), { statusCode: 401, error: 'Unauthorized', message: 'Current password is incorrect' }, 'the current password is no longer the account\'s')
    t.equal(await liveSessions(app, user.id), 1, 'only the first change\'s session is live')
    t.equal((await refresh(app, firstToken as string)).statusCode, 200, 'and it works')
    t.equal(await signinStatus(user, first), 200, 'the first change\'s password signs in')
    t.equal(await signinStatus(user, second), 401, 'the second\'s does not')
  })

  // A signin's upgrade of an outdated hash writes a new hash of the same password: the change
  // then finds the hash it verified replaced, and must verify again and go through, not refuse
  // a current password that is still right.
  t.test('a password change during which the hash is rewritten for the same password goes through', async (t) => {
    const user = await newUser(app)
    const newPassword = `${user.password} changed`
    afterNextVerify(async () => {
      await app.db.updateTable('users').set({ password_hash: await app.passwords.hash(user.password) }).where('id', '=', user.id).execute()
    })
    const res = await changePassword(user, user.password, newPassword)
    t.equal(res.statusCode, 200, json(res).message)
    t.equal(await signinStatus(user, newPassword), 200, 'the new password signs in')
    t.equal(await signinStatus(user, user.password), 401, 'the old one does not')
  })

  t.test('an account disabled during a password change: 401, the password unchanged, no live session', async (t) => {
    const user = await newUser(app)
    const admin = await signinAdmin(app)
    const patch = async (disabled: boolean) => await app.inject({
      method: 'PATCH', url: `/api/admin/users/${user.id}`, payload: { disabled }, headers: { authorization: `Bearer ${admin.accessToken}` }
    })
    afterNextVerify(async () => {
      t.equal((await patch(true)).statusCode, 200, 'disabled')
    })
    const res = await changePassword(user, user.password, `${user.password} changed`)
    t.equal(res.statusCode, 401, json(res).message)
    t.equal(await liveSessions(app, user.id), 0, 'no live session')
    t.equal((await patch(false)).statusCode, 200, 'enabled again')
    t.equal(await liveSessions(app, user.id), 0, 'none came back')
    t.equal(await signinStatus(user, user.password), 200, 'the password is the one it was')
    t.equal(await signinStatus(user, `${user.password} changed`), 401, 'not the one asked for while disabled')
  })
})
