import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { startupProblem } from '../../src/startup-problem.js'
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

// The same restart on the embedded database, which keeps its data only in a DATA_DIR: the test
// above restarts only against PostgreSQL, and an in-memory database has nothing to restart on.
t.test('embedded in DATA_DIR: a restart with another ADMIN_PASSWORD keeps the admin and its password', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const base = { NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }
  const env = { ...base, ADMIN_USERNAME: ADMIN.username, ADMIN_EMAIL: ADMIN.email }
  const first = await buildApp(loadConfig({ ...env, ADMIN_PASSWORD: ADMIN.password }, false))
  t.equal((await post(first, '/api/auth/signin', { username: ADMIN.username, password: ADMIN.password })).statusCode, 200)
  await first.close()

  const again = await buildApp(loadConfig({ ...env, ADMIN_PASSWORD: 'another-password-2' }, false))
  t.teardown(async () => { await again.close() })
  t.equal((await post(again, '/api/auth/signin', { username: ADMIN.username, password: ADMIN.password })).statusCode, 200)
  t.equal((await post(again, '/api/auth/signin', { username: ADMIN.username, password: 'another-password-2' })).statusCode, 401)
  const count = await again.db.selectFrom('users').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(count.n), 1)
})

// The contract: create the ADMIN_USERNAME admin at start if no user of that name exists. With
// ADMIN_EMAIL already another user's, the insert hit the email index, the start took that for
// "created concurrently elsewhere", logged so at info, and ran without the admin it was asked for.
t.test('an ADMIN_EMAIL that another user has stops the start, naming ADMIN_EMAIL', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const env = { NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }
  const first = await buildApp(loadConfig(env, false))
  const taken = { username: 'someone', email: 'someone@example.com', password: 'a long unusual passphrase' }
  t.equal((await post(first, '/api/auth/signup', taken)).statusCode, 201)
  await first.close()

  // The name in another case is the same user: that start goes on, touching nothing.
  const admin = { ADMIN_USERNAME: 'SOMEONE', ADMIN_EMAIL: 'SomeOne@example.com', ADMIN_PASSWORD: 'another long passphrase' }
  const same = await buildApp(loadConfig({ ...env, ...admin }, false))
  t.equal((await post(same, '/api/auth/signin', { username: 'someone', password: taken.password })).statusCode, 200)
  t.equal((await post(same, '/api/auth/signin', { username: 'someone', password: admin.ADMIN_PASSWORD })).statusCode, 401)
  await same.close()

  const failure = await buildApp(loadConfig({ ...env, ...admin, ADMIN_USERNAME: 'newadmin' }, false))
    .then(async (app) => { await app.close() }, (err: unknown) => err)
  t.type(failure, ConfigError, 'the start stops')
  t.match((failure as Error).message, /^Invalid configuration: ADMIN_EMAIL /)
  t.equal(startupProblem(failure, { host: '127.0.0.1', port: 8080, databaseUrl: undefined, dataDir }), (failure as Error).message,
    'printed as one line, like the other configuration errors')
})
