import { ADMIN, build, eachDatabase, json, post } from '../helper.js'

eachDatabase(async (t, target) => {
  t.test('ADMIN_* creates the admin once and never overwrites its password', async (t) => {
    const app = await build(t, target)
    const signin = await post(app, '/api/auth/signin', { username: ADMIN.username, password: ADMIN.password })
    t.equal(signin.statusCode, 200)
    t.same(json(signin).roles, ['ROLE_USER', 'ROLE_ADMIN'])

    // A restart with a different ADMIN_PASSWORD against the same database changes nothing.
    const url = target.name === 'postgres' ? (app.config.databaseUrl as string) : undefined
    if (url === undefined) return
    await app.close()
    const again = await build(t, target, { databaseUrl: url, env: { ADMIN_PASSWORD: 'another-password-2' } })
    t.equal((await post(again, '/api/auth/signin', { username: ADMIN.username, password: ADMIN.password })).statusCode, 200)
    t.equal((await post(again, '/api/auth/signin', { username: ADMIN.username, password: 'another-password-2' })).statusCode, 401)
    const count = await again.db.selectFrom('users').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
    t.equal(Number(count.n), 1)
  })
})
