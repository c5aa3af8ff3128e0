import argon2 from 'argon2'
import { build, eachDatabase, json, post, uniqueUser } from '../../../helper.js'

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const user = uniqueUser()
  const { id } = json(await post(app, '/api/auth/signup', user))

  t.test('signin returns the tutorial shape plus tokens', async (t) => {
    const res = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    t.equal(res.statusCode, 200)
    const body = json(res)
    t.same(Object.keys(body).sort(), ['accessToken', 'email', 'expiresIn', 'id', 'refreshToken', 'roles', 'tokenType', 'username'])
    t.match(body, { id, username: user.username, email: user.email, roles: ['ROLE_USER'], tokenType: 'Bearer', expiresIn: 900 })
    t.ok(body.refreshToken.length >= 43, 'refresh token carries >= 256 bits')
    const claims = app.jwt.decode<Record<string, unknown>>(body.accessToken)
    t.match(claims, { sub: String(id), roles: ['user'], iss: 'rolegate', aud: 'rolegate' })
    t.equal((claims?.exp as number) - (claims?.iat as number), 900)
    const header = JSON.parse(Buffer.from(body.accessToken.split('.')[0], 'base64url').toString())
    t.equal(header.alg, 'HS256')
  })

  t.test('signin is case-insensitive on the username', async (t) => {
    const res = await post(app, '/api/auth/signin', { username: user.username.toUpperCase(), password: user.password })
    t.equal(res.statusCode, 200)
    t.match(json(res), { id, username: user.username }, 'the account as it was registered, not the spelling typed')
  })

  t.test('unknown user and wrong password give the same 401', async (t) => {
    const wrong = await post(app, '/api/auth/signin', { username: user.username, password: 'wrong-password' })
    const unknown = await post(app, '/api/auth/signin', { username: 'nobody-here', password: 'wrong-password' })
    const malformed = await post(app, '/api/auth/signin', { username: 'no such user!', password: 'x' })
    for (const res of [wrong, unknown, malformed]) {
      t.equal(res.statusCode, 401)
      t.same(json(res), { statusCode: 401, error: 'Unauthorized', message: 'Invalid username or password' })
    }
    t.same(wrong.headers['content-type'], unknown.headers['content-type'])
  })

  t.test('a disabled account gets 403, but only after a correct password', async (t) => {
    const u = uniqueUser()
    await post(app, '/api/auth/signup', u)
    await app.db.updateTable('users').set({ disabled: true }).where('username', '=', u.username).execute()
    const right = await post(app, '/api/auth/signin', { username: u.username, password: u.password })
    t.equal(right.statusCode, 403)
    t.equal(json(right).statusCode, 403)
    const wrong = await post(app, '/api/auth/signin', { username: u.username, password: 'wrong-password' })
    t.equal(wrong.statusCode, 401)
  })

  // PostgreSQL cannot hold a NUL in text: the username is refused before the query, by name.
  // Passwords may hold one: they reach the database only as an argon2 hash, and accounts
  // created with one must keep signing in.
  t.test('a NUL in the username is a 400 naming the field; a NUL in a password works', async (t) => {
    for (const username of ['ali\u0000ce', '\u0000']) {
      const res = await post(app, '/api/auth/signin', { username, password: 'whatever-password' })
      t.same(json(res), { statusCode: 400, error: 'Bad Request', message: 'body/username must not contain NUL (\\u0000) characters' })
    }
    const nul = { ...uniqueUser('nul'), password: 'correct\u0000horse-battery' }
    t.equal((await post(app, '/api/auth/signup', nul)).statusCode, 201)
    t.equal((await post(app, '/api/auth/signin', { username: nul.username, password: nul.password })).statusCode, 200)
  })

  // The same typed password reaches us as different code points depending on the platform and
  // keyboard: é as one (NFC) or as e plus a combining accent (NFD), digits full-width from an
  // East Asian input method. Passwords are normalized (NFKC, as NIST SP 800-63B asks) before
  // they are hashed or checked, so each of these signs in whichever way it was typed.
  t.test('a password signs in however its characters were composed', async (t) => {
    const typed = 'Crème brûlée 42'
    const forms = [typed.normalize('NFC'), typed.normalize('NFD')]
    t.not(forms[0], forms[1], 'two different strings')
    for (const [signupForm, signinForm] of [[0, 1], [1, 0]] as const) {
      const u = { ...uniqueUser('nf'), password: forms[signupForm] ?? '' }
      t.equal((await post(app, '/api/auth/signup', u)).statusCode, 201)
      const res = await post(app, '/api/auth/signin', { username: u.username, password: forms[signinForm] })
      t.equal(res.statusCode, 200, `signed up ${signupForm === 0 ? 'NFC' : 'NFD'}, signed in ${signinForm === 0 ? 'NFC' : 'NFD'}`)
    }
    const wide = { ...uniqueUser('nf'), password: 'Ｓｅｃｒｅｔ－Ｐａｓｓ－４２' }
    t.equal((await post(app, '/api/auth/signup', wide)).statusCode, 201)
    t.equal((await post(app, '/api/auth/signin', { username: wide.username, password: 'Secret-Pass-42' })).statusCode, 200, 'full-width signs in as ASCII')
    t.equal((await post(app, '/api/auth/signin', { username: wide.username, password: 'secret-pass-42' })).statusCode, 401, 'case still counts')
    // Full-width "password123" is that common password.
    const common = await post(app, '/api/auth/signup', { ...uniqueUser('nf'), password: 'ｐａｓｓｗｏｒｄ１２３' })
    t.equal(common.statusCode, 400, 'the common-password check sees the normalized form')
  })

  // Accounts whose hash was made from the password as sent, before passwords were normalized,
  // keep signing in with it, and their first signin stores the normalized form's hash: from
  // then on the password signs in however it is composed, and with one hash, not two.
  t.test('a hash made before normalization still verifies the password as it was sent, and is upgraded', async (t) => {
    const u = { ...uniqueUser('nf'), password: 'Crème brûlée 43'.normalize('NFD') }
    const { id: legacyId } = json(await post(app, '/api/auth/signup', u))
    const legacy = await argon2.hash(u.password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 })
    await app.db.updateTable('users').set({ password_hash: legacy }).where('id', '=', legacyId).execute()
    t.equal((await post(app, '/api/auth/signin', { username: u.username, password: 'Crème brûlée 44'.normalize('NFD') })).statusCode, 401, 'a wrong one is still wrong')
    const storedHash = async (): Promise<string> => (await app.db.selectFrom('users').select('password_hash').where('id', '=', legacyId).executeTakeFirstOrThrow()).password_hash
    t.equal(await storedHash(), legacy, 'a failed signin changes nothing')
    t.equal((await post(app, '/api/auth/signin', { username: u.username, password: u.password })).statusCode, 200)
    const upgraded = await storedHash()
    t.not(upgraded, legacy, 'upgraded at the signin')
    t.ok(await argon2.verify(upgraded, u.password.normalize('NFKC')), 'now the hash of the normalized form')
    t.equal((await post(app, '/api/auth/signin', { username: u.username, password: u.password.normalize('NFC') })).statusCode, 200, 'and composed either way it signs in')
  })

  // A stored hash argon2 cannot read (damaged by hand, restored from a bad backup) must not
  // become a 500 or a way in: it matches no password.
  t.test('a corrupt stored password hash refuses the password like a wrong one, never a 5xx', async (t) => {
    const u = uniqueUser()
    const { id: corruptId } = json(await post(app, '/api/auth/signup', u))
    const { accessToken } = json(await post(app, '/api/auth/signin', { username: u.username, password: u.password }))
    await app.db.updateTable('users').set({ password_hash: 'not-an-argon2-hash' }).where('id', '=', corruptId).execute()
    const res = await post(app, '/api/auth/signin', { username: u.username, password: u.password })
    t.same(json(res), { statusCode: 401, error: 'Unauthorized', message: 'Invalid username or password' })
    const change = await post(app, '/api/auth/password', { currentPassword: u.password, newPassword: 'brand-new-password' }, { authorization: `Bearer ${accessToken}` })
    t.same(json(change), { statusCode: 401, error: 'Unauthorized', message: 'Current password is incorrect' })
  })

  t.test('bad signin bodies are 400 JSON', async (t) => {
    for (const payload of [{}, { username: user.username }, { username: 1, password: 2 }, { username: 'a', password: 'b', extra: 1 }]) {
      const res = await post(app, '/api/auth/signin', payload)
      t.equal(res.statusCode, 400, JSON.stringify(payload))
      t.equal(json(res).error, 'Bad Request')
    }
  })
})
