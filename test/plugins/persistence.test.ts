import { createHmac } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { json, post, uniqueUser } from '../helper.js'

// The embedded database in DATA_DIR keeps its data across restarts, and so does the generated
// development JWT secret (tokens issued before a restart stay valid).
t.test('data and the development secret survive a restart', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  // The overload check is on in development (1 s of event-loop delay); on a loaded test machine
  // a restart's first requests could be refused 503 by it, which is not what this test is about.
  const config = loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }, false)
  const user = uniqueUser()

  const first = await buildApp(config)
  t.equal((await post(first, '/api/auth/signup', user)).statusCode, 201)
  const token = json(await post(first, '/api/auth/signin', { username: user.username, password: user.password })).accessToken
  await first.close()

  const secretFile = path.join(dataDir, 'jwt-secret')
  t.equal((await stat(secretFile)).mode & 0o777, 0o600, 'secret file is private')
  t.ok((await readFile(secretFile, 'utf8')).trim().length >= 32)

  const second = await buildApp(config)
  t.teardown(async () => { await second.close() })
  const signin = await post(second, '/api/auth/signin', { username: user.username, password: user.password })
  t.equal(signin.statusCode, 200, 'the user is still there')
  const res = await second.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200, 'a token from before the restart is still valid')
})

// The README's way to rotate JWT_SECRET: access tokens signed with the old secret are refused,
// and clients carry on through their refresh tokens, which the secret does not sign.
t.test('a new JWT_SECRET refuses earlier access tokens, and sign-ins go on through refresh', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const configWith = (secret: string) => loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0', JWT_SECRET: secret }, false)
  const user = uniqueUser()

  const before = await buildApp(configWith('old-secret-0123456789abcdef0123456789'))
  t.equal((await post(before, '/api/auth/signup', user)).statusCode, 201)
  const { accessToken, refreshToken } = json(await post(before, '/api/auth/signin', { username: user.username, password: user.password }))
  await before.close()

  const after = await buildApp(configWith('new-secret-0123456789abcdef0123456789'))
  t.teardown(async () => { await after.close() })
  const old = await after.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${accessToken as string}` } })
  t.equal(old.statusCode, 401)
  t.equal(json(old).message, 'Unauthorized!', 'the old access token is an invalid one')
  const refreshed = await post(after, '/api/auth/refreshtoken', { refreshToken })
  t.equal(refreshed.statusCode, 200, 'its refresh token still works')
  const res = await after.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${json(refreshed).accessToken as string}` } })
  t.equal(res.statusCode, 200, 'and the access token it brings is signed with the new secret')
})

// PGlite holds PostgreSQL's pages in its own process: a second process on the same DATA_DIR
// (the CLI while the server runs) had its writes lost, or overwrote the server's. The CLI said
// "created user" and the user never existed (found by fuzzing).
t.test('one process at a time may open a data directory', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const config = loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }, false)
  const first = await buildApp(config)
  await t.rejects(buildApp(config), { message: new RegExp(`^the embedded database in ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${process.pid} `) }, 'refused while the first has it open')
  await first.close()
  const second = await buildApp(config)
  t.equal((await second.inject({ url: '/ready' })).statusCode, 200, 'open once the first has closed')
  await second.close()
  // A process that died holding it (a crash, a kill -9) leaves its mark: a process that is gone
  // holds nothing.
  await writeFile(path.join(dataDir, 'rolegate.lock'), '2147483646')
  const afterCrash = await buildApp(config)
  t.equal((await afterCrash.inject({ url: '/ready' })).statusCode, 200, 'a lock whose process is gone is taken over')
  await afterCrash.close()
  await t.rejects(stat(path.join(dataDir, 'rolegate.lock')), { code: 'ENOENT' }, 'closing removes the lock file')
  // A container restarts its server as pid 1 again: a lock left with our own pid by a process
  // before this one is no lock of ours, and is taken over too.
  await writeFile(path.join(dataDir, 'rolegate.lock'), String(process.pid))
  const samePid = await buildApp(config)
  t.equal((await samePid.inject({ url: '/ready' })).statusCode, 200, 'a lock left with this pid by an earlier process is taken over')
  await samePid.close()
})

// A development secret file someone shortened by hand was overwritten with a new secret, without
// a word (found by fuzzing): the start stops instead, and the file is left as it was.
t.test('a development secret file too short to use stops the start and is kept', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const file = path.join(dataDir, 'jwt-secret')
  await writeFile(file, 'my-own-short-secret\n')
  const config = loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }, false)
  await t.rejects(buildApp(config), { message: `${file} holds a JWT secret shorter than 32 characters: put a longer one there (openssl rand -hex 32), delete the file to have one generated, or set JWT_SECRET` })
  t.equal(await readFile(file, 'utf8'), 'my-own-short-secret\n', 'the file is as it was')
})

// The refusal above is for secrets shorter than 32 characters (the floor API.md sets for
// JWT_SECRET): a file of exactly 32 is used as it is, neither refused nor replaced.
t.test('a development secret file of exactly 32 characters is used as it is', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-data-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const file = path.join(dataDir, 'jwt-secret')
  const secret = '0123456789abcdef0123456789abcdef'
  await writeFile(file, `${secret}\n`)
  const config = loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DATA_DIR: dataDir, RATE_LIMIT: 'off', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }, false)
  const app = await buildApp(config)
  t.teardown(async () => { await app.close() })
  const user = uniqueUser()
  t.equal((await post(app, '/api/auth/signup', user)).statusCode, 201)
  const token: string = json(await post(app, '/api/auth/signin', { username: user.username, password: user.password })).accessToken
  const data = token.slice(0, token.lastIndexOf('.'))
  t.equal(token.slice(token.lastIndexOf('.') + 1), createHmac('sha256', secret).update(data).digest('base64url'), 'tokens are signed with it')
  t.equal(await readFile(file, 'utf8'), `${secret}\n`, 'the file is as it was')
})
