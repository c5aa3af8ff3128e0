import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { validate } from '@readme/openapi-parser'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { build, eachDatabase, embedded, json, post, signinAdmin } from '../helper.js'

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

interface Parameter { in: string, name: string, required?: boolean, schema: Record<string, unknown> }
interface Operation { operationId?: string, parameters?: Parameter[], requestBody?: { required?: boolean }, responses: Record<string, { description?: string }>, security?: unknown }
interface Document { paths: Record<string, Record<string, Operation>> }

/** Every operation of the document, with a request line that reaches it (`{id}` as `id`). */
function operations (doc: Document, id: number): Array<{ method: InjectOptions['method'], url: string, op: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) =>
    ({ method: method.toUpperCase() as InjectOptions['method'], url: path.replace('{id}', String(id)), op })))
}

eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('/health and /ready answer 200', async (t) => {
    const health = await app.inject({ url: '/health' })
    t.equal(health.statusCode, 200)
    t.same(json(health), { status: 'ok' })
    const ready = await app.inject({ url: '/ready' })
    t.equal(ready.statusCode, 200)
    t.same(json(ready), { status: 'ready' })
  })

  // A path that exists, asked with a method it does not take: 405 and the Allow header (RFC
  // 9110 15.5.6), which tells a client its mistake where a 404 would say the path is wrong.
  t.test('a known path with the wrong method is a 405 naming the methods it takes', async (t) => {
    const cases: Array<[InjectOptions['method'], string, string]> = [
      ['PUT', '/api/auth/signin', 'POST'],
      ['GET', '/api/auth/signup', 'POST'],
      ['POST', '/api/test/all', 'GET, HEAD'],
      ['DELETE', '/api/admin/users/7/roles', 'PUT'],
      ['POST', '/api/admin/users/7/', 'DELETE, GET, HEAD, PATCH']
    ]
    for (const [method, url, allow] of cases) {
      const res = await app.inject({ method, url })
      t.equal(res.statusCode, 405, `${method} ${url}`)
      t.equal(res.headers.allow, allow, `${method} ${url}: Allow`)
      t.same(json(res), { statusCode: 405, error: 'Method Not Allowed', message: `Method ${method} is not allowed on ${url.split('?')[0] ?? ''} (allowed: ${allow})` })
      t.equal(res.headers['x-content-type-options'], 'nosniff')
    }
    t.equal((await app.inject({ method: 'PUT', url: '/api/nothing/here' })).statusCode, 404, 'an unknown path stays a 404')
  })

  // Whether the path exists is decided before the body is read: a client that posts to a
  // mistyped path learns that, not that its body is wrong, and a scanner's junk bodies are never
  // parsed. Each of these bodies would get a 400, 413 or 415 on a real route.
  t.test('an unknown path or a wrong method is a 404 or 405 whatever the body', async (t) => {
    const bodies: Array<[string, InjectOptions]> = [
      ['broken JSON', { payload: '{"username":', headers: { 'content-type': 'application/json' } }],
      ['a form', { payload: 'username=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
      ['another charset', { payload: '{}', headers: { 'content-type': 'application/json; charset=latin1' } }],
      ['invalid UTF-8', { payload: Buffer.from([0x7b, 0xff, 0x7d]), headers: { 'content-type': 'application/json' } }],
      ['a gzip body', { payload: gzipSync('{}'), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }],
      ['a __proto__ key', { payload: '{"__proto__":{}}', headers: { 'content-type': 'application/json' } }],
      ['over 1 MiB', { payload: `{"x":"${'x'.repeat(1024 * 1024)}"}`, headers: { 'content-type': 'application/json' } }]
    ]
    for (const [label, body] of bodies) {
      const missing = await app.inject({ ...body, method: 'POST', url: '/api/auth/sigin' })
      t.equal(missing.statusCode, 404, `unknown path, ${label}`)
      t.same(json(missing), { statusCode: 404, error: 'Not Found', message: 'Route POST:/api/auth/sigin not found' }, `unknown path, ${label}`)
      const wrong = await app.inject({ ...body, method: 'PUT', url: '/api/auth/signin' })
      t.equal(wrong.statusCode, 405, `wrong method, ${label}`)
      t.equal(wrong.headers.allow, 'POST', `wrong method, ${label}: Allow`)
      t.equal(wrong.headers['x-content-type-options'], 'nosniff', `wrong method, ${label}: headers`)
    }
  })

  t.test('unknown routes are a 404 in the JSON error shape', async (t) => {
    const res = await app.inject({ url: '/api/nothing/here?x=1' })
    t.equal(res.statusCode, 404)
    t.same(json(res), { statusCode: 404, error: 'Not Found', message: 'Route GET:/api/nothing/here not found' })
  })

  // Fastify meets these before any route or hook runs, and by default writes a body of its own
  // (with a `code` field, and 414 for the long parameter) without the security headers.
  t.test('a path that is not valid percent-encoding, or a path parameter over 200 characters, is a 400 in the contract shape', async (t) => {
    const cases: Array<[string, string]> = [
      ['/api/test/%ZZ', 'The URL path is not valid percent-encoding'],
      [`/api/admin/users/%E0%A4%A?q=${'x'.repeat(1000)}`, 'The URL path is not valid percent-encoding'],
      // A malformed id in a path is a 400 (API.md), however long.
      [`/api/admin/users/${'1'.repeat(201)}`, 'A path parameter is longer than 200 characters']
    ]
    for (const [url, message] of cases) {
      const res = await app.inject({ url })
      t.equal(res.statusCode, 400, url.slice(0, 40))
      t.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
      t.equal(res.headers['x-content-type-options'], 'nosniff')
      t.equal(res.headers['cache-control'], 'no-store')
      t.same(json(res), { statusCode: 400, error: 'Bad Request', message })
    }
    t.equal((await app.inject({ url: `/api/admin/users/${'1'.repeat(200)}` })).statusCode, 401, '200 characters still reach the route')
  })

  t.test('a body over 1 MiB is a 413 JSON', async (t) => {
    const res = await post(app, '/api/auth/signup', { username: 'x'.repeat(1024 * 1024 + 10), email: 'a@b.co', password: 'password-1' })
    t.equal(res.statusCode, 413)
    t.same(Object.keys(json(res)).sort(), ['error', 'message', 'statusCode'])
  })

  // Fastify's own message said only 'Unsupported Media Type', and curl sends a form by default.
  t.test('unsupported content types are a 415 JSON naming what was sent and what is accepted', async (t) => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', ';;;']) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: 'username=a&password=b', headers: { 'content-type': type } })
      t.equal(res.statusCode, 415, type)
      t.same(json(res), { statusCode: 415, error: 'Unsupported Media Type', message: `Content-Type must be application/json (got ${JSON.stringify(type)})` })
    }
    const long = `text/${'x'.repeat(1000)}`
    const echoed = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: 'x', headers: { 'content-type': long } })
    t.equal(json(echoed).message, `Content-Type must be application/json (got "${long.slice(0, 50)}...")`, 'a long header is cut short')
    const untyped = await app.inject({ method: 'POST', url: '/api/auth/signup', payload: Buffer.from('{"username":"a"}') })
    t.equal(untyped.headers['content-type'], 'application/json; charset=utf-8')
    t.same(json(untyped), { statusCode: 415, error: 'Unsupported Media Type', message: 'Content-Type must be application/json (the request has a body but no Content-Type)' })
  })

  // Bodies are read as sent; a compressed one used to be parsed as if it were not ('not valid
  // JSON' for gzip, or accepted as plain text under any other coding name).
  t.test('a request body with a content coding is a 415 naming it', async (t) => {
    const body = JSON.stringify({ username: 'nobody', password: 'wrong-password' })
    for (const [coding, payload] of [['gzip', gzipSync(body)], ['br', body], ['GZIP, identity', gzipSync(body)]] as const) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signin', payload, headers: { 'content-type': 'application/json', 'content-encoding': coding } })
      t.equal(res.statusCode, 415, coding)
      t.same(JSON.parse(res.body), { statusCode: 415, error: 'Unsupported Media Type', message: `Content-Encoding ${JSON.stringify(coding)} is not supported: send the body uncompressed` })
    }
    for (const coding of ['identity', 'Identity', '']) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: body, headers: { 'content-type': 'application/json', 'content-encoding': coding } })
      t.equal(res.statusCode, 401, `${JSON.stringify(coding)} is the body as sent`)
    }
    const get = await app.inject({ url: '/api/test/all', headers: { 'content-encoding': 'gzip' } })
    t.equal(get.statusCode, 200, 'a bodiless GET is not refused for the header')
    // DELETE takes no body but may be sent one: the same answer as the other methods (it was
    // 'body is not valid UTF-8 text', found by fuzzing).
    const admin = await signinAdmin(app)
    const del = await app.inject({ method: 'DELETE', url: '/api/admin/users/999999', payload: gzipSync('{}'), headers: { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json', 'content-encoding': 'gzip' } })
    t.same(json(del), { statusCode: 415, error: 'Unsupported Media Type', message: 'Content-Encoding "gzip" is not supported: send the body uncompressed' }, 'DELETE with a coded body')
  })

  t.test('malformed JSON is a 400 JSON', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/auth/signin', payload: '{"username":', headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 400)
    t.equal(json(res).statusCode, 400)
  })

  t.test('the OpenAPI document lists every route with schemas and the bearer scheme', async (t) => {
    const res = await app.inject({ url: '/documentation/json' })
    t.equal(res.statusCode, 200)
    const doc = json(res)
    t.equal(doc.openapi.slice(0, 2), '3.')
    t.equal(doc.info.version, packageJson.version, "the package's version")
    t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    t.equal(doc.components.securitySchemes.accessTokenHeader.name, 'x-access-token')
    const expected: Array<[string, string]> = [
      ['/api/auth/signup', 'post'], ['/api/auth/signin', 'post'], ['/api/auth/refreshtoken', 'post'],
      ['/api/auth/signout', 'post'], ['/api/auth/me', 'get'], ['/api/auth/password', 'post'],
      ['/api/test/all', 'get'], ['/api/test/user', 'get'], ['/api/test/mod', 'get'], ['/api/test/admin', 'get'],
      ['/health', 'get'], ['/ready', 'get']
    ]
    for (const [path, method] of expected) {
      const op = doc.paths[path]?.[method]
      t.ok(op, `${method} ${path} documented`)
      t.ok(op?.responses?.['200'] ?? op?.responses?.['201'], `${path} has a success response schema`)
    }
    t.ok(doc.paths['/api/auth/signup'].post.requestBody.content['application/json'].schema.properties.username)
    t.same(doc.paths['/api/test/admin'].get.security, [{ bearerAuth: [] }, { accessTokenHeader: [] }])
    t.ok(doc.paths['/api/test/admin'].get.responses['403'])
  })

  // Code generators and API tools refuse a document that breaks the OpenAPI schema, and a JSON
  // Schema keyword that OpenAPI 3.0 lacks (examples, say) passes every check above.
  t.test('the OpenAPI document is valid against the OpenAPI specification', async (t) => {
    const result = await validate(json((await app.inject({ url: '/documentation/json' }))))
    // Every message, so a failure says what is wrong and where in the document.
    t.same(result.valid ? [] : result.errors.map(e => e.message), [], 'no validation errors')
    t.same(result.warnings.map(w => w.message), [], 'no warnings')
    t.equal(result.specification, 'OpenAPI')
  })

  // Client generators name their methods after operationId; without one each makes up its own
  // from the path and method (`postApiAuthSignin`), and a regenerated client breaks on a rename.
  t.test('every operation has its own operationId', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    const ids = operations(doc, 1).map(({ method, url, op }) => {
      t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${String(method)} ${url}`)
      return op.operationId
    })
    t.equal(new Set(ids).size, ids.length, 'no two alike')
    t.equal(ids.length, 18)
  })

  // The page shows each answer's description: "Default Response" or "Error" told a reader nothing.
  t.test('every answer of every operation says what it means', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    for (const { method, url, op } of operations(doc, 1)) {
      for (const [status, response] of Object.entries(op.responses)) {
        t.notMatch(response.description, /^(Default Response|Error)?$/, `${String(method)} ${url} ${status}: ${String(response.description)}`)
      }
    }
  })

  // API.md: `limit` defaults to 20. A parameter with a default is filled in by validation, so
  // the client may leave it out; a generated client that thinks otherwise always sends it.
  t.test('the OpenAPI document marks a query parameter required only if a request without it is refused', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    for (const path of ['/api/admin/users', '/api/admin/audit']) {
      const limit = doc.paths[path]?.get?.parameters?.find(p => p.in === 'query' && p.name === 'limit')
      t.match(limit, { required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } }, `${path} limit`)
    }
    const admin = await signinAdmin(app)
    const authorization = `Bearer ${admin.accessToken}`
    for (const { method, url, op } of operations(doc, admin.id)) {
      for (const parameter of (op.parameters ?? []).filter(p => p.in === 'query')) {
        if (parameter.schema.default !== undefined) t.equal(parameter.required, false, `${url} ${parameter.name} has a default`)
        if (parameter.required !== true) continue
        const res = await app.inject({ method, url, headers: { authorization } })
        t.equal(res.statusCode, 400, `${method} ${url} without ${parameter.name}`)
      }
    }
  })

  // The refresh token may come from the cookie alone, so refresh and signout take no body at all.
  t.test('the OpenAPI document marks a request body required only if a request without one is refused', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    t.equal(doc.paths['/api/auth/refreshtoken']?.post?.requestBody?.required, false)
    t.equal(doc.paths['/api/auth/signout']?.post?.requestBody?.required, false)
    const admin = await signinAdmin(app)
    for (const { method, url, op } of operations(doc, admin.id)) {
      if (op.requestBody === undefined) continue
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${admin.accessToken}` } })
      if (op.requestBody.required === true) t.equal(res.statusCode, 400, `${method} ${url} without a body is refused`)
      else t.not(res.statusCode, 400, `${method} ${url} without a body is accepted`)
    }
  })

  // Signup works without a token, but an admin's token lets it grant roles (and a bad one is a 401).
  t.test('the OpenAPI document shows signup as optionally authenticated, with its 401', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    const signup = doc.paths['/api/auth/signup']?.post
    t.same(signup?.security, [{}, { bearerAuth: [] }, { accessTokenHeader: [] }])
    t.ok(signup?.responses['401'], '401 documented')
    const res = await post(app, '/api/auth/signup', { username: 'tokenless', email: 'tokenless@example.com', password: 'password-12345', roles: ['admin'] }, { authorization: 'Bearer not-a-token' })
    t.equal(res.statusCode, 401, 'the server does read the token')
  })

  // A 401 for a missing or refused token carries a challenge (RFC 6750); a client reading the
  // document should find that header where the 401 is.
  t.test('every 401 of a route that takes an access token shows its WWW-Authenticate header', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    let checked = 0
    for (const { method, url, op } of operations(doc, 1)) {
      const unauthorized = op.responses['401'] as { headers?: Record<string, { schema?: { type?: string } }> } | undefined
      const takesToken = JSON.stringify(op.security ?? []).includes('bearerAuth')
      t.equal(takesToken ? unauthorized?.headers?.['www-authenticate']?.schema?.type : unauthorized?.headers?.['www-authenticate'],
        takesToken ? 'string' : undefined, `${method} ${url}`)
      if (takesToken) checked++
    }
    t.ok(checked >= 10, `${checked} operations document a 401`)
    t.equal((await app.inject({ url: '/api/test/user' })).headers['www-authenticate'], 'Bearer', 'and the server sends it')
  })

  // A token header that holds two tokens (sent twice) is RFC 6750's invalid_request, a 400, on
  // every route that reads a token; a client reading the document should find that 400 there.
  t.test('every route that reads an access token documents the 400 it gives a repeated token header', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    let checked = 0
    for (const { method, url, op } of operations(doc, 2147483647)) {
      if (!JSON.stringify(op.security ?? []).includes('bearerAuth')) continue
      // Signup reads its optional token after validating the body, and only to grant roles; the
      // others read theirs before any body.
      const payload = url === '/api/auth/signup' ? { username: 'twice', email: 'twice@example.com', password: 'password-12345', roles: ['admin'] } : undefined
      const res = await app.inject({ method, url, payload, headers: { authorization: 'Bearer one, Bearer two' } })
      t.equal(res.statusCode, 400, `${method} ${url} answers 400`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_request"', `${method} ${url} challenges`)
      const documented = op.responses['400'] as { headers?: Record<string, { schema?: { type?: string } }> } | undefined
      t.equal(documented?.headers?.['www-authenticate']?.schema?.type, 'string', `${method} ${url} documents the 400 and its challenge`)
      checked++
    }
    t.ok(checked >= 10, `${checked} operations read a token`)
  })

  // Fastify reads a body on DELETE too, so the admin API's DELETE can answer these as well.
  t.test('the OpenAPI document lists 413 and 415 on exactly the routes that read a body', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    const authorization = `Bearer ${(await signinAdmin(app)).accessToken}`
    const bodies: Array<[string, string, string]> = [['413', 'application/json', `"${'x'.repeat(1024 * 1024)}"`], ['415', 'text/plain', 'hello']]
    // No such user: nothing is changed, whichever request gets through.
    for (const { method, url, op } of operations(doc, 2147483647)) {
      for (const [status, type, payload] of bodies) {
        const res = await app.inject({ method, url, payload, headers: { authorization, 'content-type': type } })
        t.equal(op.responses[status] !== undefined, res.statusCode === Number(status), `${method} ${url}: ${status} documented iff answered (${res.statusCode})`)
      }
    }
  })

  // The helper turns rate limits off: then no route can answer 429 (rate-limit.test.ts has them on).
  t.test('with RATE_LIMIT=off the OpenAPI document lists no 429', async (t) => {
    const doc = json<Document>(await app.inject({ url: '/documentation/json' }))
    const limited = operations(doc, 1).filter(({ op }) => op.responses['429'] !== undefined).map(({ method, url }) => `${method} ${url}`)
    t.same(limited, [])
  })

  t.test('the documentation page is served', async (t) => {
    const res = await app.inject({ url: '/documentation/' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /text\/html/)
  })
})

// The embedded database gone (closed under the app, as a crashed or stopped server is gone for
// a driver): /ready must say so, and requests that need it get the contract's 503 with
// Retry-After, never a 500. /health, which needs no database, keeps answering.
t.test('with the database gone, /ready and the routes that need it answer 503 with Retry-After', async (t) => {
  const app = await build(t, embedded)
  t.equal((await app.inject({ url: '/ready' })).statusCode, 200)
  await app.db.destroy()
  const ready = await app.inject({ url: '/ready' })
  t.equal(ready.statusCode, 503)
  t.same(json(ready), { statusCode: 503, error: 'Service Unavailable', message: 'Database is not reachable' })
  t.equal(ready.headers['retry-after'], '5')
  const signup = await post(app, '/api/auth/signup', { username: 'nodb_user', email: 'nodb@example.com', password: 'a long unusual passphrase' })
  t.equal(signup.statusCode, 503)
  t.same(json(signup), { statusCode: 503, error: 'Service Unavailable', message: 'Service temporarily unavailable, please retry' })
  t.equal(signup.headers['retry-after'], '5')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200)
})
