import { build, capturedLog, eachDatabase, json, post, uniqueUser } from '../helper.js'

// The whole log at trace level, through every flow that handles a secret, must not contain one.
eachDatabase(async (t, target) => {
  const { lines, stream } = capturedLog()
  const app = await build(t, target, { logger: { level: 'trace', stream } })
  const secrets: string[] = []
  const keep = (...values: Array<string | undefined>) => {
    for (const v of values) if (v !== undefined && v.length > 0) secrets.push(v)
  }

  t.test('no password, token or cookie value reaches the log', async (t) => {
    const user = uniqueUser('log')
    const newPassword = 'brand-new-Secret-passphrase-42'
    keep(user.password, newPassword)

    t.equal((await post(app, '/api/auth/signup', user)).statusCode, 201)
    const signin = await post(app, '/api/auth/signin', { username: user.username, password: user.password })
    t.equal(signin.statusCode, 200)
    const { accessToken, refreshToken } = json(signin)
    keep(accessToken, refreshToken, String(signin.headers['set-cookie']).split(';')[0]?.split('=')[1])

    const wrong = await post(app, '/api/auth/signin', { username: user.username, password: 'Wrong-guess-secret-77' })
    t.equal(wrong.statusCode, 401)
    keep('Wrong-guess-secret-77')

    const refreshed = await post(app, '/api/auth/refreshtoken', {}, { cookie: `refreshToken=${refreshToken as string}` })
    t.equal(refreshed.statusCode, 200)
    keep(json(refreshed).accessToken, json(refreshed).refreshToken)

    const changed = await post(app, '/api/auth/password', { currentPassword: user.password, newPassword }, { authorization: `Bearer ${accessToken as string}` })
    t.equal(changed.statusCode, 200)
    keep(json(changed).accessToken, json(changed).refreshToken)

    t.equal((await app.inject({ url: '/api/auth/me', headers: { 'x-access-token': json(changed).accessToken } })).statusCode, 200)
    t.equal((await app.inject({ url: '/api/test/user', headers: { authorization: 'Bearer forged.token-value.Secret99' } })).statusCode, 401)
    keep('forged.token-value.Secret99')

    // Failing validation and unparseable JSON, both carrying a password.
    t.equal((await post(app, '/api/auth/signup', { ...uniqueUser(), password: 'Invalid-Extra-Secret-1', extra: 1 })).statusCode, 400)
    keep('Invalid-Extra-Secret-1')
    const broken = await app.inject({
      method: 'POST',
      url: '/api/auth/signin',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":"x","password":"Broken-Json-Secret-5"'
    })
    t.equal(broken.statusCode, 400)
    keep('Broken-Json-Secret-5')
    t.equal((await post(app, '/api/auth/signout', { refreshToken: json(changed).refreshToken })).statusCode, 200)

    // A token in the query string (RFC 6750's URI method, which rolegate does not take): the
    // request is logged with its URL, so the URL must not carry it either. The admin lists'
    // own parameters stay readable.
    t.equal((await app.inject({ url: `/api/test/user?access_token=${accessToken as string}` })).statusCode, 401)
    t.equal((await app.inject({ url: `/api/admin/users?limit=5&q=ali&token=Query-Secret-3&refresh_token=${refreshToken as string}` })).statusCode, 401)
    keep('Query-Secret-3')
    t.ok(lines.some(line => line.includes('/api/admin/users?limit=5&q=ali&token=[redacted]&refresh_token=[redacted]')), 'the URL is logged, secrets redacted')

    // Our own log lines go through the same redaction.
    app.log.info({
      attempt: { password: 'Logged-By-Mistake-1', token: 'Logged-Token-2' },
      body: { currentPassword: 'Logged-Current-3', newPassword: 'Logged-New-4', accessToken: 'Logged-Access-5', refreshToken: 'Logged-Refresh-6' }
    }, 'redaction check')
    keep('Logged-By-Mistake-1', 'Logged-Token-2', 'Logged-Current-3', 'Logged-New-4', 'Logged-Access-5', 'Logged-Refresh-6')

    const log = lines.join('')
    t.ok(lines.length > 20, `the log was captured (${lines.length} lines)`)
    t.match(log, /\[redacted\]/, 'redaction is active on the injected logger')
    for (const secret of secrets) t.notOk(log.includes(secret), `log does not contain ${secret.slice(0, 6)}...`)
    t.notMatch(log, /eyJ[A-Za-z0-9_-]{10,}/, 'no JWT-looking string at all')
  })
})

// Behind a trusted proxy the client address and host are what X-Forwarded-For and
// X-Forwarded-Host say, unchecked, and Host and Accept-Version are whatever any client sends:
// the request log keeps a bounded head of each, so one header cannot make its lines kilobytes
// long.
eachDatabase(async (t, target) => {
  t.test('an oversized forwarded address, host or version is logged cut, with a marker', async (t) => {
    const { lines, stream } = capturedLog()
    const app = await build(t, target, { env: { TRUST_PROXY: 'loopback' }, logger: { level: 'info', stream } })
    const long = (c: string) => c.repeat(8192)
    const res = await app.inject({
      url: '/api/test/all',
      headers: { 'x-forwarded-for': long('f'), 'x-forwarded-host': long('h'), 'accept-version': long('v') }
    })
    t.equal(res.statusCode, 200)
    const incoming = lines.map(line => JSON.parse(line)).find(entry => entry.msg === 'incoming request')
    t.ok(incoming, 'the request was logged')
    t.match(incoming.req.remoteAddress, /^f{64}\.\.\. \(8192 characters\)$/, 'the address: its head, and how long it was')
    t.match(incoming.req.host, /^h{260}\.\.\. \(8192 characters\)$/, 'the host: room for a DNS name and port')
    t.match(incoming.req.version, /^v{64}\.\.\. \(8192 characters\)$/, 'Accept-Version')
    for (const line of lines) t.ok(line.length < 1024, `a ${line.length}-character log line`)

    lines.length = 0
    const plain = await app.inject({ url: '/api/test/all', headers: { 'x-forwarded-for': '2001:db8::1', 'x-forwarded-host': 'api.example.com:8443' } })
    t.equal(plain.statusCode, 200)
    const normal = lines.map(line => JSON.parse(line)).find(entry => entry.msg === 'incoming request')
    t.equal(normal.req.remoteAddress, '2001:db8::1', 'an ordinary address is logged as sent')
    t.equal(normal.req.host, 'api.example.com:8443')
  })
})
