import { sql } from 'kysely'
import { build, eachDatabase, json, post, signinAdmin, uniqueUser } from '../../../helper.js'

const error = (statusCode: number, errorName: string, message: string | RegExp) => ({ statusCode, error: errorName, message })

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const countUsers = async () => Number((await sql<{ n: string }>`select count(*) as n from users`.execute(app.db)).rows[0]?.n)

  t.test('signup creates a user with the user role', async (t) => {
    const user = uniqueUser()
    const res = await post(app, '/api/auth/signup', user)
    t.equal(res.statusCode, 201)
    t.match(res.headers['content-type'], /^application\/json/)
    const body = json(res)
    t.equal(body.message, 'User registered successfully!')
    t.type(body.id, 'number')
    const signin = json(await post(app, '/api/auth/signin', { username: user.username, password: user.password }))
    t.same(signin.roles, ['ROLE_USER'])
    t.equal(signin.id, body.id)
  })

  t.test('roles ["user"] is accepted from anyone', async (t) => {
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['user'] })
    t.equal(res.statusCode, 201)
  })

  t.test('an anonymous caller cannot ask for a higher role', async (t) => {
    for (const roles of [['admin'], ['moderator'], ['mod'], ['user', 'admin']]) {
      const before = await countUsers()
      const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles })
      t.equal(res.statusCode, 403, JSON.stringify(roles))
      t.match(json(res), error(403, 'Forbidden', /admin/i))
      t.equal(await countUsers(), before, 'nothing written')
    }
    // `Bearer ` with an unset token after it is still an anonymous caller, not a refused token.
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['admin'] }, { authorization: 'Bearer ' })
    t.equal(res.statusCode, 403, 'with an empty Bearer header')
  })

  t.test('roles [] grants user only, not every role', async (t) => {
    const user = uniqueUser()
    t.equal((await post(app, '/api/auth/signup', { ...user, roles: [] })).statusCode, 201)
    const signin = json(await post(app, '/api/auth/signin', { username: user.username, password: user.password }))
    t.same(signin.roles, ['ROLE_USER'])
  })

  t.test('an admin token may grant roles', async (t) => {
    const admin = await signinAdmin(app)
    const user = uniqueUser()
    for (const header of [{ authorization: `Bearer ${admin.accessToken}` }, { 'x-access-token': admin.accessToken }]) {
      const u = uniqueUser()
      const res = await post(app, '/api/auth/signup', { ...u, roles: ['mod', 'admin'] }, header)
      t.equal(res.statusCode, 201)
      const signin = json(await post(app, '/api/auth/signin', { username: u.username, password: u.password }))
      t.same(signin.roles, ['ROLE_USER', 'ROLE_MODERATOR', 'ROLE_ADMIN'])
    }
    const res = await post(app, '/api/auth/signup', { ...user, roles: ['moderator'] }, { authorization: 'Bearer not-a-token' })
    t.equal(res.statusCode, 401, 'an invalid token is not anonymous')
  })

  t.test('a demoted admin\'s unexpired token may no longer grant roles', async (t) => {
    const admin = await signinAdmin(app)
    const other = uniqueUser()
    await post(app, '/api/auth/signup', { ...other, roles: ['admin'] }, { authorization: `Bearer ${admin.accessToken}` })
    const otherToken = json(await post(app, '/api/auth/signin', { username: other.username, password: other.password })).accessToken
    await app.db.deleteFrom('user_roles').where('role_id', '=', 3)
      .where('user_id', '=', eb => eb.selectFrom('users').select('id').where('username', '=', other.username)).execute()
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['moderator'] }, { authorization: `Bearer ${otherToken}` })
    t.equal(res.statusCode, 403)
  })

  t.test('a moderator token may not grant roles', async (t) => {
    const admin = await signinAdmin(app)
    const mod = uniqueUser()
    await post(app, '/api/auth/signup', { ...mod, roles: ['moderator'] }, { authorization: `Bearer ${admin.accessToken}` })
    const modToken = json(await post(app, '/api/auth/signin', { username: mod.username, password: mod.password })).accessToken
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['moderator'] }, { authorization: `Bearer ${modToken}` })
    t.equal(res.statusCode, 403)
  })

  // Granting roles takes both an admin access token and an account that is still an active
  // admin: a moderator promoted since its token was issued holds no admin token until it refreshes.
  t.test('a moderator token of a since-promoted admin may not grant roles until it is refreshed', async (t) => {
    const admin = await signinAdmin(app)
    const mod = uniqueUser()
    const { id: modId } = json(await post(app, '/api/auth/signup', { ...mod, roles: ['moderator'] }, { authorization: `Bearer ${admin.accessToken}` }))
    const session = json(await post(app, '/api/auth/signin', { username: mod.username, password: mod.password }))
    await app.db.insertInto('user_roles').values({ user_id: modId, role_id: 3 }).execute()
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['moderator'] }, { authorization: `Bearer ${session.accessToken}` })
    t.equal(res.statusCode, 403, 'the token says moderator')
    const refreshed = json(await post(app, '/api/auth/refreshtoken', { refreshToken: session.refreshToken })).accessToken
    const granted = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['moderator'] }, { authorization: `Bearer ${refreshed}` })
    t.equal(granted.statusCode, 201, 'the refreshed token carries admin')
  })

  t.test('an unknown role is a 400 with the tutorial message', async (t) => {
    const res = await post(app, '/api/auth/signup', { ...uniqueUser(), roles: ['superuser'] })
    t.equal(res.statusCode, 400)
    t.same(json(res), error(400, 'Bad Request', 'Failed! Role does not exist = superuser'))
  })

  t.test('duplicate username or email is a 409, case-insensitively', async (t) => {
    const user = uniqueUser()
    t.equal((await post(app, '/api/auth/signup', user)).statusCode, 201)
    const sameName = await post(app, '/api/auth/signup', { ...uniqueUser(), username: user.username.toUpperCase() })
    t.equal(sameName.statusCode, 409)
    t.same(json(sameName), error(409, 'Conflict', 'Failed! Username is already in use!'))
    const sameEmail = await post(app, '/api/auth/signup', { ...uniqueUser(), email: user.email.toUpperCase() })
    t.equal(sameEmail.statusCode, 409)
    t.same(json(sameEmail), error(409, 'Conflict', 'Failed! Email is already in use!'))
  })

  t.test('parallel identical signups create exactly one account', async (t) => {
    const user = uniqueUser()
    const results = await Promise.all(Array.from({ length: 20 }, async () => await post(app, '/api/auth/signup', user)))
    const codes = results.map(r => r.statusCode).sort()
    t.equal(codes.filter(c => c === 201).length, 1)
    t.equal(codes.filter(c => c === 409).length, 19)
    const rows = await sql<{ n: string }>`select count(*) as n from users where lower(username) = lower(${user.username})`.execute(app.db)
    t.equal(Number(rows.rows[0]?.n), 1)
  })

  // Front ends show `message` to the person filling in the form: it says what is wanted in words,
  // not as ajv's regular expression or format name.
  t.test('a username or email in the wrong form gets a message in words', async (t) => {
    const valid = uniqueUser()
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...valid, username: 'has space' }, 'body/username may contain only the characters A-Z, a-z, 0-9, _, . and -'],
      [{ ...valid, username: 'émile' }, 'body/username may contain only the characters A-Z, a-z, 0-9, _, . and -'],
      [{ ...valid, email: 'not-an-email' }, 'body/email must be an email address'],
      [{ ...valid, email: 'a@exämple.com' }, 'body/email must be an email address']
    ]
    for (const [payload, message] of cases) {
      t.same(json(await post(app, '/api/auth/signup', payload)), { statusCode: 400, error: 'Bad Request', message }, JSON.stringify(payload))
    }
  })

  t.test('bad input is a 400 naming the problem, and writes nothing', async (t) => {
    const valid = uniqueUser()
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /body/i],
      [{}, /username/],
      [{ ...valid, username: 'ab' }, /username/],
      [{ ...valid, username: 'x'.repeat(33) }, /username/],
      [{ ...valid, username: 'has space' }, /username/],
      [{ ...valid, username: 123 }, /username/],
      [{ ...valid, email: 'not-an-email' }, /email/],
      [{ ...valid, email: `${'a'.repeat(250)}@example.com` }, /email/],
      [{ ...valid, password: 'short' }, /password/],
      [{ ...valid, password: 'p'.repeat(129) }, /password/],
      [{ ...valid, password: null }, /password/],
      [{ ...valid, roles: 'admin' }, /roles/],
      [{ ...valid, roles: [1] }, /roles/],
      [{ ...valid, isAdmin: true }, /isAdmin/],
      [[valid], /body/],
      ['just a string', /body/]
    ]
    const before = await countUsers()
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: JSON.stringify(payload) ?? '', headers: { 'content-type': 'application/json' } })
      t.equal(res.statusCode, 400, JSON.stringify(payload)?.slice(0, 80))
      t.match(json(res), error(400, 'Bad Request', message))
    }
    t.equal(await countUsers(), before)
  })

  // Valid JSON, refused so that no key can reach an object's prototype; Fastify's message
  // said the body was not valid JSON.
  t.test('a __proto__ or constructor.prototype key is a 400 that names it, and writes nothing', async (t) => {
    const valid = JSON.stringify(uniqueUser()).slice(1, -1)
    const cases: Array<[string, string]> = [
      [`{${valid},"__proto__":{"x":1}}`, 'body must not contain a "__proto__" key'],
      [`{${valid},"roles":[{"\\u005f_proto__":{"isAdmin":true}}]}`, 'body must not contain a "__proto__" key'],
      [`{${valid},"constructor":{"prototype":{"isAdmin":true}}}`, 'body must not contain a "constructor" key holding a "prototype" key'],
      [`{${valid},"roles":[{"constructor":{"prototype":null}}]}`, 'body must not contain a "constructor" key holding a "prototype" key'],
      [`{${valid},"__proto__":1`, "Body is not valid JSON but content-type is set to 'application/json'"]
    ]
    const before = await countUsers()
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload, headers: { 'content-type': 'application/json' } })
      t.same(json(res), error(400, 'Bad Request', message), payload)
    }
    t.equal(await countUsers(), before)
  })

  // RFC 8259 leaves a repeated key's meaning to each parser: one reads the first, another the
  // last, so a proxy or a log that reads a body one way and rolegate the other disagree about
  // who signed up. Refused, wherever the object; a key spelled with escapes is the same key.
  t.test('a key repeated in one object is a 400 that names it, and writes nothing', async (t) => {
    const user = uniqueUser()
    const valid = JSON.stringify(user).slice(1, -1)
    const cases: Array<[string, string]> = [
      [`{${valid},"username":"someone-else"}`, 'body must not repeat the key "username"'],
      [`{"password":"x",${valid}}`, 'body must not repeat the key "password"'],
      [`{${valid},"user\\u006eame":"someone-else"}`, 'body must not repeat the key "username"'],
      [`{${valid},"roles":[{"a":1,"b":{"c":[],"c":{}}}]}`, 'body must not repeat the key "c"']
    ]
    const before = await countUsers()
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload, headers: { 'content-type': 'application/json' } })
      t.same(json(res), error(400, 'Bad Request', message), payload)
    }
    t.equal(await countUsers(), before)
    // Equal keys in different objects, and key-like text inside a value, are no repetition.
    const fine = { ...uniqueUser(), password: 'a long "username": "pass"' }
    const accepted = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: JSON.stringify(fine), headers: { 'content-type': 'application/json' } })
    t.equal(accepted.statusCode, 201, accepted.body)
    const nested = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: `{${JSON.stringify(uniqueUser()).slice(1, -1)},"roles":[{"x":1},{"x":2}]}`, headers: { 'content-type': 'application/json' } })
    t.match(json(nested).message, /^body\/roles\/0 /, 'reaches validation: no repeated key there')
  })

  // No request body of ours nests deeper than two levels. A 1 MiB body nested half a million
  // deep held the event loop for 0.3-0.75 s (JSON.parse, then the key checks' second parse):
  // four at once stalled it past the overload limit, and everyone else got 503s (found by
  // fuzzing). Such a body is now refused by a scan that costs about what a flat one does.
  t.test('a body nested deeper than 32 levels is a 400 that says so, and writes nothing', async (t) => {
    const valid = JSON.stringify(uniqueUser()).slice(1, -1)
    const deep = (n: number, inner = '1') => '['.repeat(n) + inner + ']'.repeat(n)
    const before = await countUsers()
    const cases = [
      `{${valid},"roles":${deep(32)}}`,
      `{${valid},"roles":${deep(520_000, '{"constructor":{"prototype":1}}')}}`,
      deep(524_000),
      '{"a":'.repeat(33) + '1' + '}'.repeat(33)
    ]
    for (const payload of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload, headers: { 'content-type': 'application/json' } })
      t.same(json(res), error(400, 'Bad Request', 'body must not nest arrays and objects more than 32 deep'), payload.slice(0, 60))
    }
    t.equal(await countUsers(), before)
    // Brackets inside strings are text, and 32 levels are allowed: those reach validation.
    const text = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: { ...uniqueUser(), password: '[[[[' + '{'.repeat(40) + 'pass' }, headers: { 'content-type': 'application/json' } })
    t.equal(text.statusCode, 201, text.body)
    const allowed = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: `{${valid},"roles":${deep(31)}}`, headers: { 'content-type': 'application/json' } })
    t.match(json(allowed).message, /^body\/roles\/0 /, '32 levels reach validation')
  })

  // JSON is UTF-8 (RFC 8259). Bytes in another encoding, decoded as UTF-8 anyway, turn into
  // U+FFFD: a name other than the one sent, and passwords that differ only there colliding.
  t.test('a body that is not UTF-8, or declares another charset, is refused and writes nothing', async (t) => {
    const user = uniqueUser()
    const latin1 = Buffer.from(JSON.stringify({ ...user, password: 'correct horse b\u00e4ttery' }), 'latin1')
    const before = await countUsers()
    const invalid = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: latin1, headers: { 'content-type': 'application/json' } })
    t.same(json(invalid), error(400, 'Bad Request', 'body is not valid UTF-8 text'))
    for (const type of ['application/json; charset=iso-8859-1', 'application/json;charset="windows-1252"']) {
      const declared = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: latin1, headers: { 'content-type': type } })
      t.same(json(declared), error(415, 'Unsupported Media Type', `Content-Type charset must be utf-8 (got ${JSON.stringify(type.split('=')[1]?.replaceAll('"', ''))})`), type)
    }
    t.equal(await countUsers(), before)
    for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"']) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: JSON.stringify(uniqueUser()), headers: { 'content-type': type } })
      t.equal(res.statusCode, 201, type)
    }
    const bom = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: '\ufeff' + JSON.stringify({ ...user, password: 'correct horse b\u00e4ttery' }), headers: { 'content-type': 'application/json' } })
    t.equal(bom.statusCode, 201, 'UTF-8 with a byte order mark, as before')
  })

  t.test('a signup with no body at all is a 400, not a crash', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/auth/signup' })
    t.equal(res.statusCode, 400)
    t.match(json(res), error(400, 'Bad Request', /body/))
    t.equal((await app.inject({ url: '/health' })).statusCode, 200)
  })
})
