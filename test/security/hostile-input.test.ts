import fc from 'fast-check'
import { sql } from 'kysely'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { build, eachDatabase, json, newUser, post, signin, signinAdmin, uniqueUser } from '../helper.js'

// Property-based hostile traffic against every route: whatever arrives, the answer is never a
// 5xx, every error is the contract's JSON shape, nothing is written for a rejected request, and
// the server keeps serving. FUZZ_RUNS raises or lowers the runs per route (default 150).
const RUNS = Number(process.env.FUZZ_RUNS ?? 150)

const ROUTES: Array<[InjectOptions['method'], string]> = [
  ['POST', '/api/auth/signup'],
  ['POST', '/api/auth/signin'],
  ['POST', '/api/auth/refreshtoken'],
  ['POST', '/api/auth/signout'],
  ['GET', '/api/auth/me'],
  ['POST', '/api/auth/password'],
  ['GET', '/api/test/all'],
  ['GET', '/api/test/user'],
  ['GET', '/api/test/mod'],
  ['GET', '/api/test/admin'],
  ['GET', '/health'],
  ['GET', '/ready'],
  // The admin API (another branch); until it lands these are 404s, afterwards they are fuzzed too.
  ['GET', '/api/admin/users'],
  ['GET', '/api/admin/users/:id'],
  ['PUT', '/api/admin/users/:id/roles'],
  ['PATCH', '/api/admin/users/:id'],
  ['DELETE', '/api/admin/users/:id'],
  ['GET', '/api/admin/audit']
]

const nasty = fc.constantFrom(
  '', ' ', '\u0000', 'a\u0000b', '\uD800', '\uDFFF', 'x\uDBFFy', '\u202Eadmin', '\uFEFF', '👩‍💻'.repeat(40),
  "' OR '1'='1", "admin'--", '"; DROP TABLE users; --', '1; SELECT pg_sleep(10)', '%', '_', '\\', '$1', '$' + '{jndi:ldap://x}',
  '../../etc/passwd', '<script>alert(1)</script>', '__proto__', 'constructor', 'ROLE_ADMIN', 'admin', 'mod',
  'x'.repeat(129), 'y'.repeat(5000), 'z'.repeat(300_000), 'rootadmin', 'ROOTADMIN', 'NaN', '-1', '0', '1e309'
)
const text = fc.oneof(nasty, fc.string(), fc.string({ unit: 'binary', maxLength: 64 }), fc.string({ unit: 'grapheme', maxLength: 40 }))
const leaf = fc.oneof(text, fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.constantFrom(0, -1, 2 ** 31, Number.MAX_SAFE_INTEGER + 2))
const field = fc.constantFrom('username', 'email', 'password', 'roles', 'refreshToken', 'currentPassword', 'newPassword', 'disabled', 'limit', 'cursor', 'id', 'toString', 'valueOf', 'hasOwnProperty')
const value = fc.letrec(tie => ({
  any: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('any'), { maxLength: 5 }),
  object: fc.dictionary(fc.oneof(field, fc.string({ maxLength: 10 })), tie('any'), { maxKeys: 6 })
})).any
// Bodies shaped like the real ones, with one or more fields wrong, plus anything at all.
const nearMiss = fc.record({
  username: fc.oneof(text, leaf, fc.constant(undefined)),
  email: fc.oneof(text, fc.constant('a@b.co'), fc.constant(undefined)),
  password: fc.oneof(text, leaf, fc.constant(undefined)),
  roles: fc.oneof(fc.array(text, { maxLength: 10 }), leaf, fc.constant(undefined))
}, { requiredKeys: [] })
const rawJson = fc.constantFrom(
  '{"__proto__":{"isAdmin":true},"username":"x","password":"password-123"}',
  '{"constructor":{"prototype":{"isAdmin":true}}}',
  '{"username":"a","username":"b"}',
  '['.repeat(20_000) + ']'.repeat(20_000),
  '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000),
  '{"username": "x", "password": ', 'null', 'true', '"just a string"', '123', '', '{', '}{', '\u0000', '{"a":1}garbage',
  '{"refreshToken":"' + 'r'.repeat(600) + '"}', '{"username":"\\ud800","password":"\\u0000\\u0000\\u0000\\u0000\\u0000"}'
)
// The other routes' body shapes with hostile values.
const shaped = fc.oneof(
  fc.record({ username: fc.oneof(text, leaf), password: fc.oneof(text, leaf) }, { requiredKeys: [] }),
  fc.record({ refreshToken: fc.oneof(text, leaf) }, { requiredKeys: [] }),
  fc.record({ currentPassword: fc.oneof(text, leaf), newPassword: fc.oneof(text, leaf) }, { requiredKeys: [] }),
  fc.record({ roles: fc.oneof(fc.array(text, { maxLength: 10 }), leaf), disabled: leaf }, { requiredKeys: [] })
)
const body = fc.oneof(
  value.map(v => JSON.stringify(v) ?? ''),
  nearMiss.map(v => JSON.stringify(v)),
  shaped.map(v => JSON.stringify(v)),
  rawJson,
  fc.uint8Array({ maxLength: 256 }).map(bytes => Buffer.from(bytes)),
  fc.constant(undefined)
)
// Mostly JSON, so most requests get past the parser into validation and the handlers.
const contentType = fc.oneof(
  { arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8'), weight: 7 },
  {
    arbitrary: fc.constantFrom('APPLICATION/JSON', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz', 'application/xml', 'application/octet-stream', 'application/json-patch+json', ';;;', 'a/b/c', undefined),
    weight: 3
  }
)
// Header values must be what an HTTP parser lets through: no control characters but tab.
const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '')
const jwtish = fc.tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 60 }))
  .map(parts => parts.join('.').replace(/=/g, ''))
const token = fc.oneof(
  jwtish,
  fc.string({ maxLength: 100 }).map(headerSafe),
  fc.constantFrom('eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwicm9sZXMiOlsiYWRtaW4iXX0.', 'null', 'undefined', '[object Object]', '.', '..', 'a'.repeat(10_000))
)
// Garbage tokens in both headers, or (half the time) a real user's or admin's token, so the
// bodies of protected routes are fuzzed too.
const authHeaders = (validTokens: string[]) => fc.oneof(
  fc.record({
    authorization: fc.option(fc.oneof(token.map(v => `Bearer ${v}`), token, fc.constantFrom('Bearer', 'Bearer ', 'Basic YTpi', 'bearer  x y')), { nil: undefined }),
    'x-access-token': fc.option(token, { nil: undefined }),
    cookie: fc.option(token.map(v => `refreshToken=${v}`), { nil: undefined })
  }, { requiredKeys: [] }),
  fc.constantFrom(...validTokens).chain(valid => fc.constantFrom<Record<string, string>>({ authorization: `Bearer ${valid}` }, { 'x-access-token': valid }))
)
// Broken percent-encoding and an over-long parameter are refused while routing, before any hook.
const pathParam = fc.oneof(fc.constantFrom('1', '0', '-1', '1.5', 'abc', '99999999999999999999999', '1%00', '%27%20OR%201=1', '..%2F..',
  '%ZZ', '1%', '%E0%A4%A', '%C0%AF', '9'.repeat(201)), fc.nat().map(String))
const query = fc.option(fc.dictionary(fc.constantFrom('limit', 'cursor', 'q', 'userId', 'type', '__proto__'), text.map(s => s.slice(0, 200)), { maxKeys: 3 }), { nil: undefined })

async function countRows (app: FastifyInstance): Promise<{ users: number, tokens: number }> {
  const [u, r] = await Promise.all([
    app.db.selectFrom('users').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(),
    app.db.selectFrom('refresh_tokens').select(eb => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  ])
  return { users: Number(u.n), tokens: Number(r.n) }
}

// Every column of every row a request could write (the audit log aside: it records refusals on
// purpose), so an UPDATE shows as well as an INSERT or a DELETE.
async function contentOf (app: FastifyInstance): Promise<string> {
  const digest = (table: string, order: string) =>
    sql`(select md5(coalesce(string_agg(t::text, ',' order by ${sql.raw(order)}), '')) from ${sql.table(table)} t)`
  const { rows } = await sql<{ users: string, roles: string, tokens: string }>`select
    ${digest('users', 't.id')} as users,
    ${digest('user_roles', 't.user_id, t.role_id')} as roles,
    ${digest('refresh_tokens', 't.id')} as tokens`.execute(app.db)
  return JSON.stringify(rows[0])
}

function assertContractAnswer (t: Test, res: LightMyRequestResponse, what: string): boolean {
  if (res.statusCode >= 500) {
    t.fail(`${what} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
    return false
  }
  if (res.statusCode < 400) return true
  let parsed: unknown
  try { parsed = JSON.parse(res.body) } catch { parsed = undefined }
  const b = parsed as { statusCode?: unknown, error?: unknown, message?: unknown } | undefined
  const ok = /^application\/json/.test(String(res.headers['content-type'])) && b !== undefined &&
    b.statusCode === res.statusCode && typeof b.error === 'string' && typeof b.message === 'string' &&
    Object.keys(b).length === 3
  if (!ok) t.fail(`${what} answered ${res.statusCode} outside the error shape: ${res.body.slice(0, 300)}`)
  return ok
}

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const valid = [(await newUser(app)).accessToken, (await signinAdmin(app)).accessToken]

  for (const [method, pattern] of ROUTES) {
    t.test(`${method} ${pattern}: hostile requests get a 4xx in the contract shape and write nothing`, async (t) => {
      const before = await countRows(app)
      let created = 0
      let deleted = 0
      // The tables are read around every request, so this check runs whatever the fuzzer
      // reaches: only a successful write request may change users, roles or refresh tokens.
      let content = await contentOf(app)
      const writtenBy: string[] = []
      await fc.assert(fc.asyncProperty(body, contentType, authHeaders(valid), pathParam, query, async (payload, type, auth, id, q) => {
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(auth)) if (v !== undefined) headers[k] = headerSafe(v)
        if (type !== undefined) headers['content-type'] = type
        const options: InjectOptions = { method, url: pattern.replace(':id', id), headers }
        if (q !== undefined) options.query = q
        if (payload !== undefined && method !== 'GET') options.payload = payload
        const res = await app.inject(options)
        // FUZZ_DEBUG=1 prints every answer, to see what the generators reach.
        if (process.env.FUZZ_DEBUG !== undefined) console.error(pattern, res.statusCode, res.statusCode >= 400 ? json(res).message.slice(0, 60) : '')
        if (res.statusCode === 201) created++
        if (res.statusCode === 204 && method === 'DELETE') deleted++
        const now = await contentOf(app)
        if ((res.statusCode >= 300 || method === 'GET') && now !== content) {
          writtenBy.push(`${method} ${options.url as string}: ${res.statusCode} ${res.body.slice(0, 100)}`)
        }
        content = now
        return assertContractAnswer(t, res, `${method} ${options.url as string}`)
      }), { numRuns: RUNS, endOnFailure: true })
      const after = await countRows(app)
      t.equal(after.users - before.users, created - deleted, 'users created or deleted only by successful requests')
      t.same(writtenBy, [], 'nothing written by a rejected request or a GET')
      t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'still serving')
    })
  }

  t.test('a NUL character, which PostgreSQL cannot store, is a 400 naming the field (found by this suite)', async (t) => {
    for (const payload of [{ username: 'a\u0000b', password: 'whatever-pw' }, { username: '\u0000', password: '\u0000' }]) {
      const res = await post(app, '/api/auth/signin', payload)
      t.equal(res.statusCode, 400)
      t.equal(json(res).message, 'body/username must not contain NUL (\\u0000) characters')
    }
  })

  t.test('after all that, the server still does real work', async (t) => {
    const user = await newUser(app)
    t.equal((await app.inject({ url: '/api/test/user', headers: { 'x-access-token': user.accessToken } })).body, 'User Content.')
    t.equal((await app.inject({ url: '/ready' })).statusCode, 200)
  })

  t.test('20 parallel identical signups: exactly one account', async (t) => {
    const user = uniqueUser('par')
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await post(app, '/api/auth/signup', user)))
    const statuses = answers.map(r => r.statusCode).sort()
    t.same(statuses, [201, ...Array(19).fill(409)])
    for (const res of answers.filter(r => r.statusCode === 409)) t.equal(json(res).message, 'Failed! Username is already in use!')
    const rows = await app.db.selectFrom('users').select('id').where(eb => eb(eb.fn('lower', ['username']), '=', user.username.toLowerCase())).execute()
    t.equal(rows.length, 1)
  })

  t.test('10 parallel refreshes of one token: exactly one succeeds', async (t) => {
    const user = await newUser(app)
    const session = await signin(app, user.username, user.password)
    const answers = await Promise.all(Array.from({ length: 10 }, async () =>
      await post(app, '/api/auth/refreshtoken', { refreshToken: session.refreshToken })))
    t.same(answers.map(r => r.statusCode).sort(), [200, ...Array(9).fill(401)])
    for (const res of answers) assertContractAnswer(t, res, 'parallel refresh')
  })

  t.test('without CORS_ORIGIN, no origin gets cross-origin permission', async (t) => {
    for (const origin of ['https://evil.example', 'null', 'http://localhost:3000']) {
      const res = await app.inject({ url: '/api/test/all', headers: { origin } })
      t.equal(res.statusCode, 200)
      t.notOk(res.headers['access-control-allow-origin'], origin)
    }
  })
})
