import { createHmac, createSign, generateKeyPairSync } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { build, eachDatabase, JWT_SECRET, json, signinAdmin } from '../helper.js'
import type { Test } from 'tap'

// Access tokens made by hand, byte by byte, so each test changes exactly one thing about an
// otherwise valid token (RFC 8725: pinned algorithm, required claims, no confusion).
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

function hmacToken (header: object, payload: object, digest = 'sha256', secret = JWT_SECRET): string {
  const data = `${b64(header)}.${b64(payload)}`
  return `${data}.${createHmac(digest, secret).update(data).digest('base64url')}`
}

const HS256 = { alg: 'HS256', typ: 'JWT' }

/** One keep-alive connection, requests sent one at a time: each answer's status and message. */
type Headers = Record<string, string> | Array<[string, string]>

async function openConnection (port: number): Promise<{ ask: (headers: Headers) => Promise<{ status: number, message: string }>, close: () => void }> {
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  let buffered = ''
  let waiting: (() => void) | undefined
  socket.setEncoding('latin1').on('data', (chunk: string) => { buffered += chunk; waiting?.() })
  // A whole response: the head, then as many body bytes as its content-length says.
  const nextResponse = async (): Promise<{ status: number, message: string }> => {
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n')
      const length = end < 0 ? -1 : Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0)
      if (end >= 0 && buffered.length >= end + 4 + length) {
        const head = buffered.slice(0, end)
        const body = buffered.slice(end + 4, end + 4 + length)
        buffered = buffered.slice(end + 4 + length)
        const status = Number(head.split(' ')[1])
        return { status, message: status === 200 ? '' : (JSON.parse(body) as { message: string }).message }
      }
      await new Promise<void>(resolve => { waiting = resolve })
    }
  }
  return {
    ask: async (headers) => {
      const lines = (Array.isArray(headers) ? headers : Object.entries(headers)).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`GET /api/test/admin HTTP/1.1\r\nhost: localhost\r\n${lines}\r\n`)
      return await nextResponse()
    },
    close: () => { socket.destroy() }
  }
}

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  // A keep-alive connection to the app, listening first if it does not yet; closed with the test.
  const keepAlive = async (t: Test): Promise<Awaited<ReturnType<typeof openConnection>>> => {
    if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
    const address = app.server.address()
    const conn = await openConnection(typeof address === 'object' && address !== null ? address.port : 0)
    t.teardown(conn.close)
    return conn
  }
  const admin = await signinAdmin(app)
  const now = () => Math.floor(Date.now() / 1000)
  const claims = (extra: Record<string, unknown> = {}) =>
    ({ sub: String(admin.id), roles: ['user', 'admin'], iss: 'rolegate', aud: 'rolegate', iat: now(), exp: now() + 600, ...extra })
  // A token whose exp is 4 s ago: inside the 5 s tolerance until the current second ends, then
  // outside it. Made just after a second begins, so that the whole second is left to use it:
  // made late in one, it could expire between a test's first two requests.
  const expiringAtNextSecond = async (): Promise<string> => {
    await new Promise(resolve => setTimeout(resolve, 1010 - Date.now() % 1000))
    return hmacToken(HS256, claims({ iat: now() - 900, exp: now() - 4 }))
  }

  async function statusWith (token: string): Promise<{ bearer: number, legacy: number, message: string }> {
    const bearer = await app.inject({ url: '/api/test/admin', headers: { authorization: `Bearer ${token}` } })
    const legacy = await app.inject({ url: '/api/test/admin', headers: { 'x-access-token': token } })
    return { bearer: bearer.statusCode, legacy: legacy.statusCode, message: bearer.statusCode === 200 ? '' : json(bearer).message }
  }

  t.test('a hand-made HS256 token with every required claim is accepted (the baseline)', async (t) => {
    t.same(await statusWith(hmacToken(HS256, claims())), { bearer: 200, legacy: 200, message: '' })
  })

  const refused: Record<string, () => string> = {
    'alg none, no signature': () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
    'alg none, with the HS256 signature kept': () => {
      const [, payload, sig] = hmacToken(HS256, claims()).split('.')
      return `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${sig}`
    },
    'HS384 with the same secret': () => hmacToken({ alg: 'HS384', typ: 'JWT' }, claims(), 'sha384'),
    'HS512 with the same secret': () => hmacToken({ alg: 'HS512', typ: 'JWT' }, claims(), 'sha512'),
    'RS256 signed with some RSA key': () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
      const data = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims())}`
      return `${data}.${createSign('RSA-SHA256').update(data).sign(privateKey, 'base64url')}`
    },
    'RS256 header over an HMAC signature (key confusion)': () => hmacToken({ alg: 'RS256', typ: 'JWT' }, claims()),
    'tampered payload (a user promoting itself)': () => {
      const [header, , sig] = hmacToken(HS256, claims({ roles: ['user'] })).split('.')
      return `${header}.${b64(claims())}.${sig}`
    },
    'signed with another secret': () => hmacToken(HS256, claims(), 'sha256', 'another-secret-0123456789abcdef0123456789'),
    'wrong issuer': () => hmacToken(HS256, claims({ iss: 'evil' })),
    'wrong audience': () => hmacToken(HS256, claims({ aud: 'another-service' })),
    'missing exp': () => hmacToken(HS256, claims({ exp: undefined })),
    'missing iss': () => hmacToken(HS256, claims({ iss: undefined })),
    'missing aud': () => hmacToken(HS256, claims({ aud: undefined })),
    'missing sub': () => hmacToken(HS256, claims({ sub: undefined })),
    'non-numeric sub': () => hmacToken(HS256, claims({ sub: 'admin' })),
    // Ids are PostgreSQL integers: a larger sub made /api/auth/me's lookup fail with a 500.
    'sub beyond the id column (2147483648)': () => hmacToken(HS256, claims({ sub: '2147483648' })),
    // We sign String(id): any other spelling of a number is not a token of ours.
    'sub not written as we write ids: 1e0': () => hmacToken(HS256, claims({ sub: '1e0' })),
    'sub not written as we write ids: 01': () => hmacToken(HS256, claims({ sub: '01' })),
    'sub not written as we write ids: " 1"': () => hmacToken(HS256, claims({ sub: ' 1' })),
    'sub not an integer: 1.5': () => hmacToken(HS256, claims({ sub: '1.5' })),
    // Ids start at 1: no user of ours is 0 or negative, so neither is any token we signed.
    'sub 0': () => hmacToken(HS256, claims({ sub: '0' })),
    'sub negative: -1': () => hmacToken(HS256, claims({ sub: '-1' })),
    'sub a JSON number, not a string': () => hmacToken(HS256, claims({ sub: 1 })),
    'roles not a list': () => hmacToken(HS256, claims({ roles: 'admin' })),
    'not valid before a minute from now (nbf)': () => hmacToken(HS256, claims({ nbf: now() + 60 })),
    'validly signed but oversized (over 4096 characters)': () => hmacToken(HS256, claims({ pad: 'x'.repeat(5000) })),
    'three dots': () => hmacToken(HS256, claims()) + '.',
    'empty bearer': () => ''
  }
  for (const [name, make] of Object.entries(refused)) {
    t.test(`refused: ${name}`, async (t) => {
      const token = make()
      const result = await statusWith(token)
      t.equal(result.bearer, 401, 'Authorization: Bearer')
      t.equal(result.legacy, 401, 'x-access-token')
    })
  }

  t.test('a validly signed token whose sub no user id can hold is a 401 on /api/auth/me, not a 500', async (t) => {
    for (const sub of ['2147483648', '99999999999999999999']) {
      const me = await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${hmacToken(HS256, claims({ sub }))}` } })
      t.equal(me.statusCode, 401, sub)
    }
  })

  t.test('an expired token is refused with the expiry message', async (t) => {
    const token = hmacToken(HS256, claims({ iat: now() - 1200, exp: now() - 60 }))
    t.same(await statusWith(token), { bearer: 401, legacy: 401, message: 'Unauthorized! Access Token was expired!' })
  })

  t.test('a small clock skew is tolerated (exp and nbf within 5 seconds)', async (t) => {
    t.equal((await statusWith(hmacToken(HS256, claims({ exp: now() - 2 })))).bearer, 200)
    t.equal((await statusWith(hmacToken(HS256, claims({ nbf: now() + 2 })))).bearer, 200)
  })

  // Verified tokens are remembered until they expire (plugins/auth.ts): the memory must never
  // outlive the token, nor vouch for anything but the exact token it verified.
  t.test('a remembered token is refused once it expires, with the expiry message', async (t) => {
    const token = await expiringAtNextSecond()
    t.equal((await statusWith(token)).bearer, 200)
    t.equal((await statusWith(token)).bearer, 200, 'served from memory')
    await new Promise(resolve => setTimeout(resolve, 1100))
    t.same(await statusWith(token), { bearer: 401, legacy: 401, message: 'Unauthorized! Access Token was expired!' })
  })

  t.test('a remembered token vouches for no other: a changed signature is refused', async (t) => {
    const token = hmacToken(HS256, claims())
    t.equal((await statusWith(token)).bearer, 200)
    // The signature's first character: its last one partly encodes padding bits, so changing
    // it can leave the decoded signature as it was (a different string, still a valid token).
    const at = token.lastIndexOf('.') + 1
    const other = token[at] === 'A' ? 'B' : 'A'
    t.equal((await statusWith(token.slice(0, at) + other + token.slice(at + 1))).bearer, 401)
    t.equal((await statusWith(token + 'A')).bearer, 401)
  })

  // The exact "Bearer <token>" of a remembered token skips the parse (plugins/auth.ts): every
  // other form must still be judged by the parse, whether or not the token is remembered.
  t.test('a remembered token is accepted in the other Bearer forms the parse accepts, and in no others', async (t) => {
    const token = hmacToken(HS256, claims())
    const status = async (authorization: string): Promise<number> =>
      (await app.inject({ url: '/api/test/admin', headers: { authorization } })).statusCode
    t.equal(await status(`Bearer ${token}`), 200, 'now remembered')
    for (const form of [`bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`, `Bearer ${token} `, `Bearer ${token}\t`]) {
      t.equal(await status(form), 200, JSON.stringify(form.replace(token, '<token>')))
    }
    // A tab after "Bearer" too: RFC 9110 separates the scheme from its credential by spaces only.
    for (const form of [`Bearer ${token} x`, `Bearer ${token}x`, `Bearer${token}`, `Bearer\t${token}`, `Basic ${token}`, `Bearer ${token.slice(0, -1)}`, `Bearer  ${token} ${token}`]) {
      t.equal(await status(form), 401, JSON.stringify(form.replaceAll(token, '<token>')))
    }
  })

  // Each connection remembers the Authorization header that last passed on it (plugins/auth.ts),
  // which only a real keep-alive connection exercises (every inject is a connection of its own).
  t.test('on one connection, the header that passed before vouches only for itself, until its token expires', async (t) => {
    const conn = await keepAlive(t)
    const token = hmacToken(HS256, claims())
    const ok = { status: 200, message: '' }
    const unauthorized = { status: 401, message: 'Unauthorized!' }
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), ok)
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), ok, 'the same header again')
    const at = token.lastIndexOf('.') + 1
    const otherSignature = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1)
    t.same(await conn.ask({ authorization: `Bearer ${otherSignature}` }), unauthorized, 'a changed signature, right after')
    const [header, , sig] = hmacToken(HS256, claims({ roles: ['user'] })).split('.')
    const promoted = `${header}.${b64(claims())}.${sig}`
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), ok)
    t.same(await conn.ask({ authorization: `Bearer ${promoted}` }), unauthorized, 'a tampered payload, right after')
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), ok)
    t.same(await conn.ask({ authorization: `Bearer ${token} x` }), unauthorized, 'trailing junk, right after')
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), ok)
    t.same(await conn.ask({ 'x-access-token': 'not-a-token' }), unauthorized, 'no Authorization header: the legacy one is judged')
    t.same(await conn.ask({}), { status: 401, message: 'No token provided!' }, 'no token at all')
    t.same(await conn.ask({ authorization: '', 'x-access-token': token }), ok, 'an empty Authorization header falls back to the legacy one')
    t.same(await conn.ask({ authorization: '' }), { status: 401, message: 'No token provided!' }, 'and vouches for nothing after it')
    const userOnly = hmacToken(HS256, claims({ roles: ['user'] }))
    t.same(await conn.ask({ authorization: `Bearer ${userOnly}` }), { status: 403, message: 'Require Admin Role!' }, 'another valid token: its own roles')

    const expiring = await expiringAtNextSecond()
    t.same(await conn.ask({ authorization: `Bearer ${expiring}` }), ok)
    t.same(await conn.ask({ authorization: `Bearer ${expiring}` }), ok, 'remembered on this connection')
    await new Promise(resolve => setTimeout(resolve, 1100))
    t.same(await conn.ask({ authorization: `Bearer ${expiring}` }), { status: 401, message: 'Unauthorized! Access Token was expired!' })
  })

  // RFC 9110 makes Authorization a singleton field. Node kept the first of two and dropped the
  // other, so a proxy that reads the last one and rolegate could disagree about who is calling.
  // The server now joins repeated headers (joinDuplicateHeaders), and a token header that holds
  // several is refused as RFC 6750's invalid_request: a 400, whichever token comes first.
  t.test('an Authorization or x-access-token header sent twice is a 400, whichever token comes first', async (t) => {
    const conn = await keepAlive(t)
    const token = hmacToken(HS256, claims())
    const once = { status: 400, message: 'Authorization must carry exactly one Bearer token' }
    const cases: Array<[string, Array<[string, string]>]> = [
      ['valid first', [['authorization', `Bearer ${token}`], ['authorization', 'Bearer junk']]],
      ['valid last', [['authorization', 'Bearer junk'], ['authorization', `Bearer ${token}`]]],
      ['the same twice', [['authorization', `Bearer ${token}`], ['authorization', `Bearer ${token}`]]]
    ]
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), { status: 200, message: '' }, 'remembered on this connection')
    for (const [what, headers] of cases) t.same(await conn.ask(headers), once, what)
    t.same(await conn.ask([['x-access-token', token], ['x-access-token', 'junk']]), { status: 400, message: 'x-access-token must carry exactly one token' })
    t.same(await conn.ask({ authorization: `Bearer ${token}` }), { status: 200, message: '' }, 'the connection still serves')
    const listed = await app.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${token}, Bearer ${token}` } })
    t.equal(listed.statusCode, 400, 'one header listing two')
    t.equal(listed.headers['www-authenticate'], 'Bearer error="invalid_request"')
  })

  // Behind a staging server protected by a password (nginx auth_basic), browsers attach
  // `Authorization: Basic ...` to every request by themselves, and the tutorial's front end
  // sends its token in x-access-token: a credential of another scheme is not ours and must not
  // hide that token. On a keep-alive connection it must not vouch for the next request either.
  t.test('an Authorization header of another scheme does not hide x-access-token, and vouches for nothing', async (t) => {
    const conn = await keepAlive(t)
    const token = hmacToken(HS256, claims())
    const basic = 'Basic c3RhZ2luZzpzM2NyZXQ='
    for (const scheme of [basic, 'Digest username="staging", realm="x", nonce="n", uri="/", response="r"']) {
      t.same(await conn.ask({ authorization: scheme, 'x-access-token': token }), { status: 200, message: '' }, scheme.slice(0, scheme.indexOf(' ')))
    }
    t.same(await conn.ask({ authorization: basic }), { status: 401, message: 'No token provided!' }, 'the same Basic header alone: no token')
    t.same(await conn.ask({ authorization: basic, 'x-access-token': 'not-a-token' }), { status: 401, message: 'Unauthorized!' }, 'and a bad legacy token is judged')
    t.same(await conn.ask([['authorization', basic], ['authorization', `Bearer ${token}`]]), { status: 400, message: 'Authorization must carry exactly one Bearer token' }, 'Basic and Bearer together')
    const res = await app.inject({ url: '/api/test/user', headers: { authorization: basic } })
    t.equal(res.headers['www-authenticate'], 'Bearer', 'challenged for a Bearer token')
  })

  // Bearer and x-access-token carrying different tokens: which one is the caller? A gateway that
  // reads the tutorial's header and rolegate reading Bearer would disagree about who is calling,
  // so neither is picked (RFC 6750 section 3.1, invalid_request). The same token in both, as a
  // client migrating from one header to the other sends, is one caller and passes.
  t.test('Authorization and x-access-token with different tokens are a 400; the same token in both passes', async (t) => {
    const conn = await keepAlive(t)
    const token = hmacToken(HS256, claims())
    const other = hmacToken(HS256, claims({ roles: ['user', 'moderator', 'admin'] }))
    const ok = { status: 200, message: '' }
    const different = { status: 400, message: 'Authorization and x-access-token carry different tokens: send one' }
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': token }), ok, 'the same token in both')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': other }), different, 'another valid token, the Bearer one remembered on this connection')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': 'junk' }), different, 'junk beside it')
    t.same(await conn.ask({ authorization: 'Bearer junk', 'x-access-token': token }), different, 'junk as the Bearer token')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': ` ${token} ` }), ok, 'the same token with spaces around it')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': '' }), ok, 'an empty x-access-token is no token')
    // Some clients copy the whole Authorization value into x-access-token.
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': `Bearer ${token}` }), ok, 'the same "Bearer <token>" in both')
    t.same(await conn.ask({ 'x-access-token': `bearer ${token}` }), ok, 'x-access-token alone, with the scheme in front')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': `Bearer ${other}` }), different, 'and a different one with it is still a different token')
    t.same(await conn.ask({ authorization: `Bearer ${token}`, 'x-access-token': `${token}, ${token}` }), { status: 400, message: 'x-access-token must carry exactly one token' }, 'x-access-token twice beside Bearer')
    const fresh = hmacToken(HS256, claims({ iat: now() - 1 }))
    const res = await app.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${fresh}`, 'x-access-token': other } })
    t.equal(res.statusCode, 400, 'a Bearer token never seen before, on a connection of its own')
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_request"')
    const remembered = await app.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${token}`, 'x-access-token': other } })
    t.equal(remembered.statusCode, 400, 'a remembered Bearer token, on a connection of its own')
  })

  // The hierarchy knows user, moderator and admin, spelled as we sign them: any other name in a
  // validly signed token (the API's ROLE_ form, another case, a role of another service) ranks
  // below every one of them.
  t.test('roles the hierarchy does not know grant nothing', async (t) => {
    for (const roles of [['ROLE_ADMIN'], ['Admin'], ['root'], ['user', 'superuser']]) {
      t.same(await statusWith(hmacToken(HS256, claims({ roles }))), { bearer: 403, legacy: 403, message: 'Require Admin Role!' }, JSON.stringify(roles))
    }
  })

  t.test('issued tokens carry exactly the contract claims, HS256', async (t) => {
    const [header, payload] = admin.accessToken.split('.') as [string, string]
    t.same(JSON.parse(Buffer.from(header, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' })
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString())
    t.same(Object.keys(body).sort(), ['aud', 'exp', 'iat', 'iss', 'roles', 'sub'])
    t.equal(body.exp - body.iat, 900)
  })
})
