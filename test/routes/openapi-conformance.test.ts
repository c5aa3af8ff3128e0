import { STATUS_CODES } from 'node:http'
import { dereference } from '@readme/openapi-parser'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { ADMIN, build, eachDatabase, json, newUser, signinAdmin, uniqueUser } from '../helper.js'

// Clients are generated from /documentation/json: what the server answers must be what the
// document says, status by status. The response schemas also serialize the bodies, so a body
// cannot break its own route's schema; what this catches is a status, a media type or a header
// the document does not have, an error answer that is not the route's, and statuses the
// document promises but no request produces.

interface MediaType { schema: object }
interface Response { headers?: Record<string, object>, content?: Record<string, MediaType> }
interface Operation { responses: Record<string, Response>, requestBody?: { content: Record<string, { schema: { properties: Record<string, { description?: string }> } }> } }
interface Document { paths: Record<string, Record<string, Operation>> }

// As a client's validator would read the document; `nullable` and `example` are OpenAPI's.
const ajv = new Ajv({ strict: false, allErrors: true })
addFormats.default(ajv)
const compiled = new Map<object, ValidateFunction>()
function validator (schema: object): ValidateFunction {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}

/** A request to a documented operation (`METHOD /path` as the document names it), and the status it must get. */
interface Case {
  op: string
  status: number
  /** For the path's `{id}`. */
  id?: number | string
  options?: Omit<InjectOptions, 'method' | 'url'>
  /** The token is what is refused: the answer must challenge for it (RFC 6750). */
  challenge?: boolean
}

function request ({ op, id = '', options = {} }: Pick<Case, 'op' | 'id' | 'options'>): InjectOptions {
  const [method, path] = op.split(' ') as [InjectOptions['method'], string]
  return { ...options, method, url: path.replace('{id}', String(id)) }
}

/** Everything the document says about this answer holds. */
function conforms (t: Test, doc: Document, { op, status, challenge }: Case, res: LightMyRequestResponse): void {
  const [method = '', path = ''] = op.split(' ')
  const label = `${op} -> ${res.statusCode}`
  t.equal(res.statusCode, status, label)
  const documented = doc.paths[path]?.[method.toLowerCase()]?.responses[String(res.statusCode)]
  if (documented === undefined) {
    t.fail(`${label}: status not documented`)
    return
  }
  const mediaType = String(res.headers['content-type'] ?? '').split(';')[0] ?? ''
  const content = documented.content ?? {}
  if (Object.keys(content).length === 0) {
    t.equal(res.body, '', `${label}: no body, as documented`)
  } else {
    const schema = content[mediaType]?.schema
    t.ok(schema, `${label}: ${mediaType} is documented (${Object.keys(content).join(', ')})`)
    const body: unknown = mediaType === 'application/json' ? json(res) : res.body
    const validate = validator(schema ?? {})
    t.ok(validate(body), `${label}: body matches the documented schema ${ajv.errorsText(validate.errors)}`)
    if (res.statusCode >= 400) t.match(body, { statusCode: res.statusCode, error: STATUS_CODES[res.statusCode] }, `${label}: the contract's error shape`)
  }
  // A challenge is documented as "when the token is refused"; every other header always comes.
  for (const header of Object.keys(documented.headers ?? {}).filter(name => name !== 'www-authenticate')) {
    t.ok(res.headers[header], `${label}: documented header ${header} is sent`)
  }
  if (challenge === true) {
    t.ok(documented.headers?.['www-authenticate'], `${label}: its challenge is documented`)
    t.match(res.headers['www-authenticate'], /^Bearer/, `${label}: and sent`)
  }
}

const OVERSIZED = `"${'x'.repeat(1024 * 1024)}"`
// Past the body limit, and a type that is not JSON: refused before the route looks at the body.
function bodyRefusals (op: string, headers: Record<string, string> = {}, id?: number): Case[] {
  return [
    { op, status: 413, id, options: { payload: OVERSIZED, headers: { ...headers, 'content-type': 'application/json' } } },
    { op, status: 415, id, options: { payload: 'hello', headers: { ...headers, 'content-type': 'text/plain' } } }
  ]
}

// Answered only under load, while shutting down or without a database: under-pressure.test.ts and
// database-outage.test.ts drive those 503s, rate-limit.test.ts the 429s (limits are off here).
const NOT_DRIVEN_HERE = new Set(['503', '429'])

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const doc = await dereference(json(await app.inject({ url: '/documentation/json' }))) as unknown as Document

  const admin = await signinAdmin(app)
  const user = await newUser(app)
  const moderator = await newUser(app, ['moderator'])
  const disabled = await newUser(app)
  const changer = await newUser(app)
  const managed = await newUser(app)
  const asAdmin = { authorization: `Bearer ${admin.accessToken}` }
  const asUser = { 'x-access-token': user.accessToken }
  const twoTokens = { authorization: 'Bearer one, Bearer two' }
  const crossSiteCookie = { cookie: 'refreshToken=abc', 'sec-fetch-site': 'cross-site', origin: 'https://elsewhere.example' }
  const missing = 2147483647
  t.equal((await app.inject(request({ op: 'PATCH /api/admin/users/{id}', id: disabled.id, options: { headers: asAdmin, payload: { disabled: true } } }))).statusCode, 200)

  const cases: Case[] = [
    { op: 'GET /health', status: 200 },
    { op: 'GET /ready', status: 200 },

    { op: 'POST /api/auth/signup', status: 201, options: { payload: uniqueUser() } },
    { op: 'POST /api/auth/signup', status: 400, options: { payload: { ...uniqueUser(), username: 'x' } } },
    { op: 'POST /api/auth/signup', status: 400, challenge: true, options: { payload: { ...uniqueUser(), roles: ['admin'] }, headers: twoTokens } },
    { op: 'POST /api/auth/signup', status: 401, challenge: true, options: { payload: { ...uniqueUser(), roles: ['admin'] }, headers: { 'x-access-token': 'not-a-token' } } },
    { op: 'POST /api/auth/signup', status: 403, options: { payload: { ...uniqueUser(), roles: ['admin'] } } },
    { op: 'POST /api/auth/signup', status: 409, options: { payload: { ...uniqueUser(), username: ADMIN.username } } },
    ...bodyRefusals('POST /api/auth/signup'),

    { op: 'POST /api/auth/signin', status: 200, options: { payload: { username: user.username, password: user.password } } },
    { op: 'POST /api/auth/signin', status: 400, options: { payload: { username: user.username } } },
    { op: 'POST /api/auth/signin', status: 401, options: { payload: { username: user.username, password: 'wrong-password' } } },
    { op: 'POST /api/auth/signin', status: 403, options: { payload: { username: disabled.username, password: disabled.password } } },
    ...bodyRefusals('POST /api/auth/signin'),

    { op: 'POST /api/auth/refreshtoken', status: 200, options: { payload: { refreshToken: user.refreshToken } } },
    { op: 'POST /api/auth/refreshtoken', status: 400, options: { payload: { token: 'x' } } },
    { op: 'POST /api/auth/refreshtoken', status: 401, options: { payload: { refreshToken: 'no-such-token' } } },
    { op: 'POST /api/auth/refreshtoken', status: 403, options: { headers: crossSiteCookie } },
    ...bodyRefusals('POST /api/auth/refreshtoken'),

    { op: 'POST /api/auth/signout', status: 200, options: { payload: { refreshToken: 'no-such-token' } } },
    { op: 'POST /api/auth/signout', status: 400, options: { payload: { token: 'x' } } },
    { op: 'POST /api/auth/signout', status: 403, options: { headers: crossSiteCookie } },
    ...bodyRefusals('POST /api/auth/signout'),

    { op: 'GET /api/auth/me', status: 200, options: { headers: asUser } },
    { op: 'GET /api/auth/me', status: 400, challenge: true, options: { headers: twoTokens } },
    { op: 'GET /api/auth/me', status: 401, challenge: true },

    { op: 'POST /api/auth/password', status: 200, options: { headers: { authorization: `Bearer ${changer.accessToken}` }, payload: { currentPassword: changer.password, newPassword: 'a fresh passphrase 42' } } },
    { op: 'POST /api/auth/password', status: 400, options: { headers: asUser, payload: { currentPassword: user.password, newPassword: 'aaaaaaaaaa' } } },
    { op: 'POST /api/auth/password', status: 401, challenge: true, options: { payload: { currentPassword: 'x', newPassword: 'a fresh passphrase 42' } } },
    // A wrong current password is no token problem: no challenge.
    { op: 'POST /api/auth/password', status: 401, options: { headers: asUser, payload: { currentPassword: 'wrong-password', newPassword: 'a fresh passphrase 42' } } },
    ...bodyRefusals('POST /api/auth/password', asUser),

    { op: 'GET /api/test/all', status: 200 },
    { op: 'GET /api/test/user', status: 200, options: { headers: asUser } },
    { op: 'GET /api/test/user', status: 400, challenge: true, options: { headers: twoTokens } },
    { op: 'GET /api/test/user', status: 401, challenge: true },
    { op: 'GET /api/test/mod', status: 200, options: { headers: { 'x-access-token': moderator.accessToken } } },
    { op: 'GET /api/test/mod', status: 400, challenge: true, options: { headers: twoTokens } },
    { op: 'GET /api/test/mod', status: 401, challenge: true, options: { headers: { authorization: 'Bearer not-a-token' } } },
    { op: 'GET /api/test/mod', status: 403, options: { headers: asUser } },
    { op: 'GET /api/test/admin', status: 200, options: { headers: asAdmin } },
    { op: 'GET /api/test/admin', status: 400, challenge: true, options: { headers: twoTokens } },
    { op: 'GET /api/test/admin', status: 401, challenge: true },
    { op: 'GET /api/test/admin', status: 403, options: { headers: { 'x-access-token': moderator.accessToken } } },

    { op: 'GET /api/admin/users', status: 200, options: { query: { limit: '2' }, headers: asAdmin } },
    { op: 'GET /api/admin/users', status: 400, options: { query: { limit: '0' }, headers: asAdmin } },
    { op: 'GET /api/admin/users', status: 401, challenge: true },
    { op: 'GET /api/admin/users', status: 403, options: { headers: asUser } },
    { op: 'GET /api/admin/users/{id}', status: 200, id: user.id, options: { headers: asAdmin } },
    { op: 'GET /api/admin/users/{id}', status: 400, id: 'abc', options: { headers: asAdmin } },
    { op: 'GET /api/admin/users/{id}', status: 401, challenge: true, id: user.id },
    { op: 'GET /api/admin/users/{id}', status: 403, id: user.id, options: { headers: asUser } },
    { op: 'GET /api/admin/users/{id}', status: 404, id: missing, options: { headers: asAdmin } },
    { op: 'PATCH /api/admin/users/{id}', status: 200, id: managed.id, options: { headers: asAdmin, payload: { disabled: false } } },
    { op: 'PATCH /api/admin/users/{id}', status: 400, id: managed.id, options: { headers: asAdmin, payload: { disabled: 'yes' } } },
    { op: 'PATCH /api/admin/users/{id}', status: 401, challenge: true, id: managed.id, options: { payload: { disabled: false } } },
    { op: 'PATCH /api/admin/users/{id}', status: 403, id: managed.id, options: { headers: asUser, payload: { disabled: false } } },
    { op: 'PATCH /api/admin/users/{id}', status: 404, id: missing, options: { headers: asAdmin, payload: { disabled: false } } },
    { op: 'PATCH /api/admin/users/{id}', status: 409, id: admin.id, options: { headers: asAdmin, payload: { disabled: true } } },
    ...bodyRefusals('PATCH /api/admin/users/{id}', asAdmin, missing),
    { op: 'PUT /api/admin/users/{id}/roles', status: 200, id: managed.id, options: { headers: asAdmin, payload: { roles: ['mod'] } } },
    { op: 'PUT /api/admin/users/{id}/roles', status: 400, id: managed.id, options: { headers: asAdmin, payload: { roles: ['root'] } } },
    { op: 'PUT /api/admin/users/{id}/roles', status: 401, challenge: true, id: managed.id, options: { payload: { roles: ['user'] } } },
    { op: 'PUT /api/admin/users/{id}/roles', status: 403, id: managed.id, options: { headers: asUser, payload: { roles: ['user'] } } },
    { op: 'PUT /api/admin/users/{id}/roles', status: 404, id: missing, options: { headers: asAdmin, payload: { roles: ['user'] } } },
    { op: 'PUT /api/admin/users/{id}/roles', status: 409, id: admin.id, options: { headers: asAdmin, payload: { roles: ['user'] } } },
    ...bodyRefusals('PUT /api/admin/users/{id}/roles', asAdmin, missing),
    { op: 'DELETE /api/admin/users/{id}', status: 400, id: managed.id, options: { headers: asAdmin, payload: { force: true } } },
    { op: 'DELETE /api/admin/users/{id}', status: 401, challenge: true, id: managed.id },
    { op: 'DELETE /api/admin/users/{id}', status: 403, id: managed.id, options: { headers: asUser } },
    { op: 'DELETE /api/admin/users/{id}', status: 404, id: missing, options: { headers: asAdmin } },
    { op: 'DELETE /api/admin/users/{id}', status: 409, id: admin.id, options: { headers: asAdmin } },
    ...bodyRefusals('DELETE /api/admin/users/{id}', asAdmin, missing),
    { op: 'DELETE /api/admin/users/{id}', status: 204, id: managed.id, options: { headers: asAdmin } },

    { op: 'GET /api/admin/audit', status: 200, options: { query: { limit: '5' }, headers: { 'x-access-token': admin.accessToken } } },
    { op: 'GET /api/admin/audit', status: 400, options: { query: { type: 'nothing' }, headers: asAdmin } },
    { op: 'GET /api/admin/audit', status: 401, challenge: true, options: { headers: { authorization: 'Bearer not-a-token' } } },
    { op: 'GET /api/admin/audit', status: 403, options: { headers: asUser } }
  ]

  t.test('every answer is documented for its operation: status, media type, body schema, headers', async (t) => {
    // In order: the table's later requests rely on the earlier ones (a deleted user, say).
    for (const testCase of cases) conforms(t, doc, testCase, await app.inject(request(testCase)))
  })

  // The other direction: a status the document lists and no request can produce is a branch
  // a generated client handles for nothing, or a test missing from the table above.
  t.test('every status the document lists is one a request above produces', async (t) => {
    const driven = new Set(cases.map(({ op, status }) => `${op} ${status}`))
    const listed = Object.entries(doc.paths).flatMap(([path, operations]) => Object.entries(operations).flatMap(([method, operation]) =>
      Object.keys(operation.responses).filter(status => !NOT_DRIVEN_HERE.has(status)).map(status => `${method.toUpperCase()} ${path} ${status}`)))
    t.same(listed.filter(entry => !driven.has(entry)), [], 'listed, never driven')
    t.same([...driven].filter(entry => !listed.includes(entry)), [], 'driven, never listed')
  })

  // A form or a client-side check built from the document accepts what its schema accepts; where
  // the server refuses more than the schema can say, the field's description has to say it.
  t.test('a body the documented schema accepts and the server refuses: the field\'s description says why', async (t) => {
    const refusals: Array<{ op: string, field: string, options: { payload: object, headers?: Record<string, string> }, says: RegExp[] }> = [
      { op: 'POST /api/auth/signup', field: 'password', options: { payload: { ...uniqueUser(), password: 'aaaaaaaaaa' } }, says: [/one character repeated/] },
      { op: 'POST /api/auth/signup', field: 'password', options: { payload: { ...uniqueUser(), password: 'password123' } }, says: [/common passwords/] },
      { op: 'POST /api/auth/signup', field: 'password', options: { payload: { ...uniqueUser(), password: '\u200b'.repeat(8) } }, says: [/spaces or invisible characters/] },
      { op: 'POST /api/auth/password', field: 'newPassword', options: { payload: { currentPassword: user.password, newPassword: 'aaaaaaaaaa' }, headers: asUser }, says: [/one character repeated/] },
      { op: 'POST /api/auth/signup', field: 'roles', options: { payload: { ...uniqueUser(), roles: ['root'] } }, says: [/`user`/, /`moderator`/, /`mod`/, /`admin`/] }
    ]
    for (const { op, field, options, says } of refusals) {
      const schema = doc.paths[op.split(' ')[1] ?? '']?.post?.requestBody?.content['application/json']?.schema
      t.ok(validator(schema ?? {})(options.payload), `${op} ${field}: the documented schema accepts it`)
      const res = await app.inject(request({ op, options }))
      t.equal(res.statusCode, 400, `${op} ${field}: refused`)
      t.match(json(res).message, field === 'roles' ? /Role does not exist/ : `body/${field}`, `${op} ${field}: naming the field`)
      for (const rule of says) t.match(schema?.properties[field]?.description, rule, `${op} ${field}: documented`)
    }
  })
})
