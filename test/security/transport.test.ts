import { execFileSync } from 'node:child_process'
import { STATUS_CODES } from 'node:http'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { build, capturedLog, eachDatabase, embedded, json, newUser } from '../helper.js'

const ALLOWED = 'https://app.example.com'

/**
 * Sends raw bytes on a new connection; everything the server writes back before it closes.
 * `halfClose`: then half-closes (FIN) and keeps reading.
 */
async function rawExchange (port: number, request: string, { halfClose = false } = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    let answer = ''
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfClose }, () => halfClose ? socket.end(request) : socket.write(request))
    socket.setEncoding('latin1').on('data', (chunk: string) => { answer += chunk })
    socket.on('close', () => resolve(answer)).on('error', reject)
  })
}

/** Sends the start of a request, then goes away: `reset` with a TCP RST, otherwise a FIN. */
async function abandon (port: number, request: string, reset: boolean): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request, () => {
      if (reset) socket.resetAndDestroy(); else socket.destroy()
    }))
    socket.on('data', () => {}).on('close', () => resolve()).on('error', () => {})
  })
}

/** A raw answer in the contract's shape, with the API's headers, closing the connection. */
function assertClosingContractAnswer (t: Test, answer: string, status: number, message: string, what: string): void {
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  const lines = head.split('\r\n')
  const reason = STATUS_CODES[status] ?? ''
  t.equal(lines[0], `HTTP/1.1 ${status} ${reason}`, what)
  const headers = new Map(lines.slice(1).map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  t.equal(headers.get('content-type'), 'application/json; charset=utf-8', `${what}: content type`)
  t.equal(headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`)
  t.equal(headers.get('cache-control'), 'no-store', `${what}: no-store`)
  t.equal(headers.get('connection'), 'close', `${what}: connection close`)
  t.equal(Number(headers.get('content-length')), Buffer.byteLength(body), `${what}: content length`)
  t.same(JSON.parse(body), { statusCode: status, error: reason, message }, `${what}: body`)
}

/** The port the app listens on, listening first if it does not yet. */
async function portOf (app: FastifyInstance): Promise<number> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  return typeof address === 'object' && address !== null ? address.port : 0
}

eachDatabase(async (t, target) => {
  // Warnings and errors are captured: operators are paged on some of them.
  const { lines: logged, stream } = capturedLog()
  const app = await build(t, target, { env: { CORS_ORIGIN: `${ALLOWED}, https://admin.example.com` }, logger: { level: 'warn', stream } })

  t.test('every API answer, errors and 404s included, carries the security headers', async (t) => {
    const user = await newUser(app)
    const answers = [
      await app.inject({ url: '/api/test/all' }),
      await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${user.accessToken}` } }),
      await app.inject({ url: '/api/test/admin' }),
      await app.inject({ method: 'POST', url: '/api/auth/signin', payload: { nope: 1 } }),
      await app.inject({ url: '/no/such/route' }),
      await app.inject({ url: '/health' })
    ]
    for (const res of answers) {
      t.equal(res.headers['x-content-type-options'], 'nosniff')
      t.notOk(res.headers['x-powered-by'])
      t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
      t.equal(res.headers['cache-control'], 'no-store')
      // Deliberately left to the HTML docs page (plugins/security-headers.ts): frame-ancestors
      // above already forbids framing, and a JSON body makes no requests to send a referrer on.
      t.equal(res.headers['x-frame-options'], undefined)
      t.equal(res.headers['referrer-policy'], undefined)
    }
  })

  t.test('the documentation page still works: its CSP allows its own scripts and styles', async (t) => {
    const page = await app.inject({ url: '/documentation' })
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-type'], /text\/html/)
    const csp = String(page.headers['content-security-policy'])
    t.match(csp, /script-src 'self'/)
    t.match(csp, /style-src 'self'[^;]*'unsafe-inline'/)
    t.notMatch(csp, /upgrade-insecure-requests/, 'works over plain http in development')
    t.equal(page.headers['x-content-type-options'], 'nosniff')
    // An HTML page: the legacy anti-framing header and a referrer policy do apply here.
    t.equal(page.headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(page.headers['referrer-policy'], 'no-referrer')
    t.equal(page.headers['cache-control'], undefined, 'the API-only no-store is swapped out')
    // HSTS is the TLS terminator's to send, as on the API: helmet's default (a year, with
    // includeSubDomains) from a docs page behind TLS would pin every subdomain of the
    // deployer's domain to https, whatever else is served there.
    t.equal(page.headers['strict-transport-security'], undefined)
    t.notMatch(page.body, /<script>(?!\s*<\/script>)/, 'no inline scripts that the CSP would block')
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map(m => m[1] ?? '')
    t.ok(assets.length >= 3)
    for (const asset of assets) {
      const res = await app.inject({ url: new URL(asset, 'http://localhost/documentation/').pathname })
      t.equal(res.statusCode, 200, `asset ${asset}`)
    }
    const openapi = await app.inject({ url: '/documentation/json' })
    t.equal(openapi.statusCode, 200)
  })

  t.test('a body over 1 MiB is a 413 in the contract shape', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/auth/signup',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ username: 'big', email: 'big@example.com', password: 'x'.repeat(1024 * 1024 + 10) })
    })
    t.equal(res.statusCode, 413)
    t.same(Object.keys(json(res)).sort(), ['error', 'message', 'statusCode'])
    t.equal(json(res).error, 'Payload Too Large')
  })

  // Node's HTTP parser refuses these before Fastify sees a request; Fastify's default answer
  // said only 'Client Error', without the security headers.
  t.test('requests the HTTP parser refuses get the contract shape, naming the problem, and the connection closes', async (t) => {
    const port = await portOf(app)
    const cases: Array<[string, string, number, string]> = [
      ['a control character in a header value', 'GET /api/test/all HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n', 400, 'Malformed HTTP request: Invalid header value char'],
      ['no HTTP at all', 'GARBAGE\r\n\r\n', 400, 'Malformed HTTP request: Invalid method encountered'],
      // An HTTP/2 client with prior knowledge: llhttp's reason, 'Pause on PRI/Upgrade', is its own.
      ['the HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400, 'HTTP/2 is not supported here: send HTTP/1.1 (or put a proxy that speaks HTTP/2 in front)'],
      ['Content-Length beside Transfer-Encoding', 'POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc', 400, "Malformed HTTP request: Transfer-Encoding can't be present with Content-Length"],
      // Node's limit counts the request line with the headers: a long URL meets it too.
      ['headers over 16 KiB', `GET /api/test/all HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'The request line and headers are larger than 16384 bytes'],
      ['a URL over 16 KiB', `GET /api/test/all?q=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'The request line and headers are larger than 16384 bytes']
    ]
    for (const [what, request, status, message] of cases) {
      assertClosingContractAnswer(t, await rawExchange(port, request), status, message, what)
    }
    t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'still serving')
  })

  // The router serves a path however it is written: percent-encoded, in absolute form (a proxy's
  // request target), with a fragment. The 405 must recognise the same paths, or
  // a wrong method there reads as a mistyped path (a 404 echoing the whole target).
  t.test('a path written another way that GET serves is a 405 for another method, not a 404', async (t) => {
    const port = await portOf(app)
    for (const target of ['/api/test/%61ll', 'http://x/api/test/all', '/api/test/all#x', '/api/test/all/?q=1']) {
      const request = (method: string): string => `${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`
      t.match(await rawExchange(port, request('GET')), /^HTTP\/1\.1 200 [^]*Public Content\.$/, `GET ${target}`)
      const answer = await rawExchange(port, request('POST'))
      t.match(answer, /^HTTP\/1\.1 405 [^]*\r\nallow: GET, HEAD\r\n[^]*"message":"Method POST is not allowed on \/api\/test\/all\/? \(allowed: GET, HEAD\)"/, `POST ${target}`)
    }
    // What the router does not serve stays a 404, whatever the method, naming the path it matched.
    const notRouted: Array<[string, string]> = [
      ['/api/test/%2561ll', '/api/test/%2561ll'], // %25 stays encoded, as find-my-way keeps it
      ['ftp://x/api/test/all', 'ftp://x/api/test/all'], // only http and https targets are routed by their path
      ['http://x?/api/test/all', '/'] // the path of this target is "/"
    ]
    for (const [target, path] of notRouted) {
      for (const method of ['GET', 'POST']) {
        const answer = await rawExchange(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
        t.match(answer, /^HTTP\/1\.1 404 /, `${method} ${target}`)
        t.ok(answer.endsWith(`"message":"Route ${method}:${path} not found"}`), `${method} ${target}: names ${path}`)
      }
    }
  })

  // Node decodes only chunked: a body under another transfer coding reached the JSON parser
  // still coded ('body is not valid UTF-8 text' for gzip). RFC 9112 (6.1) would have a 501; the
  // contract allows no 5xx for any input, so a 400 naming the header.
  t.test('a request body under a transfer coding other than chunked is a 400 naming it', async (t) => {
    const port = await portOf(app)
    const coded = gzipSync(JSON.stringify({ username: 'nobody', password: 'wrong-password' })).toString('latin1')
    const head = (coding: string): string => `POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n`
    const chunked = (body: string): string => `${Buffer.byteLength(body, 'latin1').toString(16)}\r\n${body}\r\n0\r\n\r\n`
    for (const coding of ['gzip, chunked', 'deflate,chunked', 'x-custom, identity, chunked']) {
      const answer = await rawExchange(port, head(coding) + chunked(coded))
      assertClosingContractAnswer(t, answer, 400, `Transfer-Encoding ${JSON.stringify(coding)} is not supported: send the body chunked or with a Content-Length`, coding)
    }
    const body = JSON.stringify({ username: 'nobody', password: 'wrong-password' })
    for (const coding of ['chunked', 'Chunked', 'identity, chunked']) {
      t.match(await rawExchange(port, head(coding) + chunked(body)), /^HTTP\/1\.1 401 /, `${coding}: the body as sent`)
    }
  })

  // When the last coding is not chunked the body has no length (RFC 9112 6.3: a 400, then the
  // connection closes). The route answered 400 with keep-alive, and Node's parser, reaching the
  // body, answered the same request a second time (found by fuzzing).
  t.test('a body whose last transfer coding is not chunked gets one 400, and the connection closes', async (t) => {
    const port = await portOf(app)
    const body = JSON.stringify({ username: 'nobody', password: 'wrong-password' })
    for (const coding of ['xchunked', 'gzip']) {
      const request = `POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: ${coding}\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
      const answer = await rawExchange(port, request)
      assertClosingContractAnswer(t, answer, 400, `Transfer-Encoding ${JSON.stringify(coding)} is not supported: send the body chunked or with a Content-Length`, coding)
    }
  })

  // Node answered any expectation but 100-continue with a bare 417: an empty body, none of the
  // API's headers. `Connection: close` so that Node's keep-alive answer ends the exchange too.
  t.test('an Expect header other than 100-continue is a 417 in the contract shape, naming it', async (t) => {
    const port = await portOf(app)
    const signin = 'POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n'
    const answer = await rawExchange(port, `${signin}Expect: 200-ok\r\n\r\n{}`)
    assertClosingContractAnswer(t, answer, 417, 'The Expect header "200-ok" is not supported (only 100-continue is)', 'Expect: 200-ok')
    const long = await rawExchange(port, `${signin}Expect: ${'x'.repeat(500)}\r\n\r\n{}`)
    t.match(long, `"message":"The Expect header \\"${'x'.repeat(50)}...\\" is not supported (only 100-continue is)"`, 'a long value is cut short')
    const proceed = await rawExchange(port, `${signin}Expect: 100-continue\r\n\r\n{}`)
    t.match(proceed, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 400 Bad Request\r\n/, '100-continue still reaches the route')
  })

  // Node hands CONNECT (a proxy tunnel request) to 'connect' listeners only; with none it closed
  // the connection without a word.
  t.test('CONNECT is a 405 in the contract shape: this is no proxy', async (t) => {
    const port = await portOf(app)
    const answer = await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
    assertClosingContractAnswer(t, answer, 405, 'CONNECT is not supported: this server is not a proxy', 'CONNECT')
    t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'still serving')
  })

  // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. Node answered it itself, before
  // any route: an empty body, none of the API's headers. HTTP/1.0 has no Host requirement.
  t.test('an HTTP/1.1 request without Host is a 400 in the contract shape, naming the header', async (t) => {
    const port = await portOf(app)
    for (const path of ['/api/test/all', '/no/such/path']) {
      const answer = await rawExchange(port, `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`)
      assertClosingContractAnswer(t, answer, 400, 'An HTTP/1.1 request must carry a Host header', `no Host on ${path}`)
    }
    const old = await rawExchange(port, 'GET /api/test/all HTTP/1.0\r\n\r\n')
    t.match(old, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nPublic Content\.$/, 'HTTP/1.0 without Host is still served')
    const empty = await rawExchange(port, 'GET /api/test/all HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n')
    t.match(empty, /^HTTP\/1\.1 200 OK\r\n/, 'an empty Host is a Host (RFC 9112: the URI has no authority)')
  })

  // Node kept the first of two Host or Content-Type headers and dropped the other, where a proxy
  // in front may read the last. The server joins repeats (joinDuplicateHeaders) and refuses
  // them: RFC 9112 3.2 makes two Host lines a 400; two content types are no content type.
  // Node reads a whole chunk of pipelined requests at once and each answer waits in memory until
  // those before it are written: 36 bytes asking for the 47 KB OpenAPI document, 1,800 to a 64 KB
  // read, from a client that never reads, held ~85 MB per connection (helper review). Past 32
  // answers waiting on one connection, a request is refused with a 429 that closes it.
  t.test('requests pipelined past 32 waiting answers on one connection are refused with a 429 that closes it', async (t) => {
    const port = await portOf(app)
    const get = 'GET /api/test/all HTTP/1.1\r\nHost: x\r\n\r\n'
    // Bodies end without a line break: the next status line follows the last body directly.
    const statuses = (answer: string): number[] => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
    const closing = get.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')
    const few = await rawExchange(port, get.repeat(9) + closing)
    t.same(statuses(few), Array(10).fill(200), 'ten pipelined requests are all served')
    const flood = await rawExchange(port, get.repeat(199) + closing)
    const seen = statuses(flood)
    const served = seen.filter(status => status === 200).length
    t.ok(served >= 32 && served < 200, `the first ones are served (${served})`)
    t.same(seen.slice(served), [429], 'then one 429, and the connection closes')
    const last = flood.slice(flood.lastIndexOf('HTTP/1.1 429'))
    t.match(last, /\r\nconnection: close\r\n/i)
    t.match(last, /\r\nretry-after: 1\r\n/i)
    t.match(last, /"message":"Too many requests pipelined on one connection \(at most 32 may wait for their answers\): send fewer at once, or open another connection"/)
    t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'still serving')
  })

  // The limit is the one the 429 names: the answer being written and 32 waiting behind it are
  // served, a 34th request read with them is the first refused.
  t.test('exactly 32 answers may wait behind the one being written', async (t) => {
    const port = await portOf(app)
    const get = 'GET /api/test/all HTTP/1.1\r\nHost: x\r\n\r\n'
    const statuses = (answer: string): number[] => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
    const closing = get.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')
    t.same(statuses(await rawExchange(port, get.repeat(32) + closing)), Array(33).fill(200), '33 pipelined requests are all served')
    t.same(statuses(await rawExchange(port, get.repeat(33) + closing)), [...Array(33).fill(200), 429], 'the 34th is refused')
  })

  // These two come before any route's own logic, so no operation lists them, not even /health,
  // which is never rate-limited and takes no input; a client reading the document should still
  // find them. (404, 405 and 417 are about no documented operation.)
  t.test('the OpenAPI document names the 400 and 429 any route can give at the HTTP level', async (t) => {
    const port = await portOf(app)
    const noHost = await rawExchange(port, 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')
    t.match(noHost, /^HTTP\/1\.1 400 /, '/health without Host')
    const get = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'
    const flood = await rawExchange(port, get.repeat(99) + get.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
    t.match(flood, /HTTP\/1\.1 429 /, '/health pipelined past the limit')
    const doc = json(await app.inject({ url: '/documentation/json' }))
    t.same(Object.keys(doc.paths['/health'].get.responses), ['200', '503'], 'not listed on the operation')
    t.match(doc.info.description, /400 [^,]*without a Host header/, 'the 400, in the description')
    t.match(doc.info.description, /429 \([^)]*\/health[^)]*\) when more than 32 requests are pipelined/, 'the 429, in the description')
  })

  t.test('a Host or Content-Type header sent twice is refused, naming the header', async (t) => {
    const port = await portOf(app)
    const twoHosts = await rawExchange(port, 'GET /api/test/all HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n')
    t.match(twoHosts, /^HTTP\/1\.1 400 Bad Request\r\n/)
    t.same(JSON.parse(twoHosts.split('\r\n\r\n')[1] ?? ''), { statusCode: 400, error: 'Bad Request', message: 'An HTTP/1.1 request must carry exactly one Host header' })
    const body = JSON.stringify({ username: 'x', password: 'y' })
    for (const second of ['application/json', 'text/plain']) {
      const answer = await rawExchange(port, `POST /api/auth/signin HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Type: ${second}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
      t.match(answer, /^HTTP\/1\.1 415 /, second)
      t.match(JSON.parse(answer.split('\r\n\r\n')[1] ?? ''), { message: `Content-Type must be sent once (got "application/json, ${second}")` }, second)
    }
  })

  // Node fails the request stream of such a request with 'aborted' and the code ECONNRESET, the
  // same code as a lost database connection: it was counted as a database outage (WARN, 503).
  t.test('a client that goes away mid-body is not logged as a database outage', async (t) => {
    const port = await portOf(app)
    const from = logged.length
    const head = 'POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
    await abandon(port, `${head}Content-Length: 100\r\n\r\n{"username"`, false)
    await abandon(port, `${head}Content-Length: 100\r\n\r\n{"username"`, true)
    const badChunk = await rawExchange(port, `${head}Transfer-Encoding: chunked\r\n\r\n5\r\n{"use\r\nZZ\r\n`)
    t.match(badChunk, /^HTTP\/1\.1 400 Bad Request\r\n/, 'a malformed chunk is a 400')
    // The aborted requests were settled before this later one, on a new connection, is answered.
    t.match(await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
    t.same(logged.slice(from), [], 'nothing at warn level or above')
  })

  t.test('request, header and idle timeouts are set', async (t) => {
    // A slow client (slowloris) cannot hold a connection open forever: a whole request, headers
    // included, must arrive within 30 s, and an idle keep-alive connection closes after 72 s,
    // the figures README states.
    t.equal(app.server.requestTimeout, 30_000)
    // Node applies the larger of the two to the whole request: a headers timeout above the
    // request timeout (Node's 60 s default) made a stalled body wait 60 s, not 30.
    t.equal(app.server.headersTimeout, 30_000)
    t.equal(app.server.keepAliveTimeout, 72_000)
    t.equal(app.initialConfig.bodyLimit, 1024 * 1024)
  })

  t.test('CORS: a listed origin may call with credentials', async (t) => {
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/api/auth/refreshtoken',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
    })
    t.equal(res.statusCode, 204)
    t.equal(res.headers['access-control-allow-origin'], ALLOWED)
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.match(String(res.headers['access-control-allow-methods']), /POST/)
    // Browsers may cache the preflight for 10 minutes rather than send one before every call.
    t.equal(res.headers['access-control-max-age'], '600')
    const simple = await app.inject({ url: '/api/test/all', headers: { origin: ALLOWED } })
    t.equal(simple.headers['access-control-allow-origin'], ALLOWED)
    t.equal(simple.headers['access-control-allow-credentials'], 'true')
  })

  // A browser admin console on a listed origin sends PUT, PATCH and DELETE, and the tutorial's
  // clients send their token in x-access-token: each needs the preflight's permission.
  t.test('CORS: a listed origin may preflight every method and request header the API takes', async (t) => {
    const requested = ['content-type', 'authorization', 'x-access-token']
    for (const [method, url] of [['GET', '/api/admin/users'], ['POST', '/api/auth/signin'], ['PUT', '/api/admin/users/1/roles'],
      ['PATCH', '/api/admin/users/1'], ['DELETE', '/api/admin/users/1']] as const) {
      const res = await app.inject({
        method: 'OPTIONS',
        url,
        headers: { origin: ALLOWED, 'access-control-request-method': method, 'access-control-request-headers': requested.join(', ') }
      })
      t.equal(res.statusCode, 204, `${method} ${url}`)
      t.equal(res.headers['access-control-allow-origin'], ALLOWED, `${method} ${url}`)
      const methods = String(res.headers['access-control-allow-methods']).split(',').map(m => m.trim())
      t.ok(methods.includes(method), `${method} ${url}: the method is allowed (${methods.join(', ')})`)
      const headers = String(res.headers['access-control-allow-headers']).split(',').map(h => h.trim().toLowerCase())
      t.same(requested.filter(h => !headers.includes(h)), [], `${method} ${url}: every request header is allowed`)
    }
  })

  // Browsers hide every response header but a handful from cross-origin JavaScript unless
  // exposed: a client could not read when to retry or why its token was refused.
  t.test('CORS: a listed origin can read Retry-After, WWW-Authenticate and X-RateLimit-*', async (t) => {
    const denied = await app.inject({ url: '/api/test/user', headers: { origin: ALLOWED } })
    t.equal(denied.statusCode, 401)
    const exposed = String(denied.headers['access-control-expose-headers']).split(',').map(h => h.trim().toLowerCase())
    t.same(exposed.sort(), ['retry-after', 'www-authenticate', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'])
    const other = await app.inject({ url: '/api/test/user', headers: { origin: 'https://evil.example' } })
    t.equal(other.headers['access-control-expose-headers'], undefined, 'not for other origins')
  })

  // Routing errors are answered before any hook, @fastify/cors's included: a browser script on a
  // listed origin could not read why its request was refused (found by fuzzing).
  t.test('CORS: a listed origin can read the routing errors too', async (t) => {
    for (const url of ['/api/test/%ZZ', `/api/admin/users/${'1'.repeat(201)}`]) {
      const res = await app.inject({ url, headers: { origin: ALLOWED } })
      t.equal(res.statusCode, 400, url)
      t.equal(res.headers['access-control-allow-origin'], ALLOWED, `${url}: allow-origin`)
      t.equal(res.headers['access-control-allow-credentials'], 'true', `${url}: credentials`)
      t.match(String(res.headers['access-control-expose-headers']), /retry-after/, `${url}: exposed headers`)
      t.match(String(res.headers.vary), /Origin/i, `${url}: Vary: Origin`)
      const other = await app.inject({ url, headers: { origin: 'https://evil.example' } })
      t.equal(other.headers['access-control-allow-origin'], undefined, `${url}: not for other origins`)
      t.match(String(other.headers.vary), /Origin/i, `${url}: Vary: Origin for other origins too`)
    }
  })

  // @fastify/cors answered these with its own text/plain 'Invalid Preflight Request'.
  t.test('CORS: a malformed preflight gets the contract shape, naming what is missing', async (t) => {
    const noMethod = await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', headers: { origin: ALLOWED } })
    t.equal(noMethod.statusCode, 400)
    t.equal(noMethod.headers['content-type'], 'application/json; charset=utf-8')
    t.same(json(noMethod), { statusCode: 400, error: 'Bad Request', message: 'A CORS preflight request needs an Access-Control-Request-Method header' })
    // Without Origin it is no CORS request: an OPTIONS to a path that takes POST only, answered
    // as without CORS (405 with Allow).
    const noOrigin = await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', headers: { 'access-control-request-method': 'POST' } })
    t.equal(noOrigin.statusCode, 405)
    t.equal(noOrigin.headers.allow, 'POST')
    t.same(json(noOrigin), { statusCode: 405, error: 'Method Not Allowed', message: 'Method OPTIONS is not allowed on /api/auth/signin (allowed: POST)' })
    for (const res of [noMethod, noOrigin]) {
      t.equal(res.headers['x-content-type-options'], 'nosniff')
      t.equal(res.headers['cache-control'], 'no-store')
    }
  })

  t.test('CORS: any other origin gets no permission', async (t) => {
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'null']) {
      const res = await app.inject({
        method: 'OPTIONS',
        url: '/api/auth/refreshtoken',
        headers: { origin, 'access-control-request-method': 'POST' }
      })
      // Without Access-Control-Allow-Origin the browser refuses the call (whatever else is sent).
      t.notOk(res.headers['access-control-allow-origin'], origin)
      const simple = await app.inject({ url: '/api/test/all', headers: { origin } })
      t.notOk(simple.headers['access-control-allow-origin'], origin)
      // Nor any other CORS header: credentials are allowed to the listed origins only.
      for (const answer of [res, simple]) {
        t.equal(answer.headers['access-control-allow-credentials'], undefined, `${origin}: no credentials`)
      }
    }
    // A request without Origin is not a CORS request: no CORS headers at all.
    const plain = await app.inject({ url: '/api/test/all' })
    t.same(Object.keys(plain.headers).filter(name => name.startsWith('access-control-')), [])
  })
})

// With `*` every origin may call, without credentials; a request without Origin is still no
// CORS request, so the malformed preflights are answered as with a list of origins.
t.test('CORS_ORIGIN=*: any origin, no credentials, malformed preflights in the contract shape', async (t) => {
  const app = await build(t, embedded, { env: { CORS_ORIGIN: '*' } })
  const preflight = await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', headers: { origin: 'https://any.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], '*')
  t.equal(preflight.headers['access-control-allow-credentials'], undefined)
  const noMethod = await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', headers: { origin: 'https://any.example' } })
  t.same(json(noMethod), { statusCode: 400, error: 'Bad Request', message: 'A CORS preflight request needs an Access-Control-Request-Method header' })
  const noOrigin = await app.inject({ method: 'OPTIONS', url: '/api/auth/signin', headers: { 'access-control-request-method': 'POST' } })
  t.equal(noOrigin.statusCode, 405)
  t.equal(json(noOrigin).statusCode, 405)
  // Routing errors are answered before @fastify/cors runs; a script on any origin reads them too.
  for (const url of ['/api/test/%ZZ', `/api/admin/users/${'1'.repeat(201)}`]) {
    const routing = await app.inject({ url, headers: { origin: 'https://any.example' } })
    t.equal(routing.statusCode, 400, url)
    t.equal(routing.headers['access-control-allow-origin'], '*', `${url}: allow-origin`)
    t.equal(routing.headers['access-control-allow-credentials'], undefined, `${url}: no credentials`)
    t.match(String(routing.headers['access-control-expose-headers']), /retry-after/, `${url}: exposed headers`)
  }
})

// The 408 branch of the parser-error reply. Node checks its timeouts every 30 s by default;
// this server checks every 100 ms and gives a request 300 ms, so a client that stops halfway
// through its headers is answered within a second instead of after half a minute.
t.test('a request that does not arrive in time gets 408 in the contract shape', async (t) => {
  const app = await build(t, embedded)
  app.server.headersTimeout = 300
  app.server.requestTimeout = 300
  // Read when the server starts listening; @types/node has it only as a constructor option.
  Reflect.set(app.server, 'connectionsCheckingInterval', 100)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const started = Date.now()
  const answer = await rawExchange(port, 'GET /api/test/all HTTP/1.1\r\nHost: x\r\n')
  t.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`)
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  const lines = head.split('\r\n')
  t.equal(lines[0], 'HTTP/1.1 408 Request Timeout')
  const headers = new Map(lines.slice(1).map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  t.equal(headers.get('x-content-type-options'), 'nosniff')
  t.equal(headers.get('connection'), 'close')
  t.same(JSON.parse(body), { statusCode: 408, error: 'Request Timeout', message: 'The request did not arrive within the request timeout' })
})

// Node checks request timeouts every connectionsCheckingInterval (30 s by default), so a stalled
// body, held by the 60 s headers timeout too, was answered after 60 to 90 s. This server checks
// every second; given 500 ms for a request (headers and body alike, as in production), a body
// that stalls after 6 of its 100 bytes is answered 408 within about a second of the timeout.
t.test('a stalled body gets 408 within about a second of the request timeout', async (t) => {
  const app = await build(t, embedded)
  app.server.headersTimeout = 500
  app.server.requestTimeout = 500
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const started = Date.now()
  const answer = await rawExchange(port, 'POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user')
  const elapsed = Date.now() - started
  t.ok(elapsed >= 500 && elapsed < 2_500, `answered after ${elapsed} ms`)
  t.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/)
})

// A client that sends a request and resets the connection at once leaves a socket whose peer
// the operating system no longer knows: its address, first asked for by the request log, was
// undefined, the log's serializer threw, and the whole process exited. One client, no login,
// 1 to 18 such connections. With rate limits on, the limiters' keys threw on it too (a logged
// 500), and an audited signup would have recorded no address (plugins/connections.ts).
t.test('requests on connections reset at once neither crash the server nor log an error', async (t) => {
  const { lines: logged, stream } = capturedLog()
  const app = await build(t, embedded, { env: { RATE_LIMIT: 'on' }, logger: { level: 'info', stream } })
  const port = await portOf(app)
  const signup = JSON.stringify({ username: 'resetter', email: 'resetter@example.com', password: 'reset-password-1' })
  const requests = [
    'GET /health HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /api/test/all HTTP/1.1\r\nHost: x\r\n\r\n',
    `POST /api/auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${signup.length}\r\n\r\n${signup}`
  ]
  for (let i = 0; i < 40; i++) {
    for (const request of requests) await abandon(port, request, true)
  }
  // The same, reset before the server accepts the connection: this process's event loop is
  // held while a child connects, sends and resets, so the kernel has queued all of it by the
  // time the server looks. Node still reads the request from such a connection.
  for (const request of requests) {
    const client = `const s = require('net').connect(${port}, '127.0.0.1', () => s.write(${JSON.stringify(request)}, () => s.resetAndDestroy()))`
    execFileSync(process.execPath, ['-e', client])
  }
  await sleep(200)
  t.match(await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /, 'still serving')
  const errors = logged.filter(line => (JSON.parse(line) as { level: number }).level >= 50)
  t.same(errors, [], 'nothing at error level')
})

// A request answered before its body arrived (413 for a body over the limit, a 404 or 405
// decided before the body is read) has the rest of its body read and dropped. A client whose
// body then stalls met the request timeout too, and got a 408 after its 413 on the same
// connection: a second answer to one request, which a client reusing the connection would
// take for the answer to its next one.
t.test('a request already answered gets no second answer when the rest of its body stalls', async (t) => {
  const app = await build(t, embedded)
  app.server.headersTimeout = 500
  app.server.requestTimeout = 500
  const port = await portOf(app)
  const cases: Array<[string, string, number]> = [
    ['/api/auth/signin', 'application/json', 413],
    ['/no/such/path', 'application/json', 404],
    ['/api/test/all', 'application/json', 405],
    ['/api/auth/signin', 'text/plain', 415]
  ]
  for (const [path, type, status] of cases) {
    const length = status === 413 ? 2 * 1024 * 1024 : 100
    const started = Date.now()
    const answer = await rawExchange(port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n{"user`)
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${path}: answered ${status}`)
    t.equal(answer.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, `${path}: one answer, not ${JSON.stringify(answer.match(/HTTP\/1\.1 \d{3} [A-Za-z ]+/g))}`)
    t.ok(Date.now() - started < 5_000, `${path}: the connection closed after ${Date.now() - started} ms`)
  }
})

// A client may half-close its side (FIN) once its request is sent, and still read: RFC 9112
// lets it, and some clients and proxies do. Node aborted such a request when the FIN arrived
// before the answer was written, which is whenever the route waits on anything (the database,
// argon2, Redis): no answer, and a refresh token rotated for a client that never learnt the
// new one, whose retry with the old one then revoked the whole sign-in as a reuse.
t.test('a client that half-closes after its request still gets the answer', async (t) => {
  const app = await build(t, embedded)
  const port = await portOf(app)
  const user = await newUser(app)
  const exchange = async (method: string, path: string, body: unknown): Promise<{ status: number, body: any }> => {
    const payload = JSON.stringify(body)
    const answer = await rawExchange(port, `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`, { halfClose: true })
    const [head = '', rest = ''] = answer.split('\r\n\r\n')
    return { status: Number(head.split(' ')[1]), body: rest === '' ? undefined : JSON.parse(rest) }
  }
  const ready = await rawExchange(port, 'GET /ready HTTP/1.1\r\nHost: x\r\n\r\n', { halfClose: true })
  t.match(ready, /^HTTP\/1\.1 200 /, '/ready (a database round trip)')
  t.match(await exchange('POST', '/api/auth/signin', { username: user.username, password: 'not-the-password' }), { status: 401 }, 'a wrong password (argon2)')
  const rotated = await exchange('POST', '/api/auth/refreshtoken', { refreshToken: user.refreshToken })
  t.match(rotated, { status: 200, body: { refreshToken: String } }, 'a refresh: the client learns its new token')
  t.equal((await exchange('POST', '/api/auth/refreshtoken', { refreshToken: rotated.body?.refreshToken })).status, 200, 'and can use it')
})
