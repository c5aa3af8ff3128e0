import { build, eachDatabase, newUser, signinAdmin } from '../../helper.js'

// The tutorial's content routes: each role against each route, with both token headers.
const routes = [
  { path: '/api/test/all', body: 'Public Content.', needs: 0 },
  { path: '/api/test/user', body: 'User Content.', needs: 1 },
  { path: '/api/test/mod', body: 'Moderator Content.', needs: 2, denied: 'Require Moderator Role!' },
  { path: '/api/test/admin', body: 'Admin Content.', needs: 3, denied: 'Require Admin Role!' }
]

eachDatabase(async (t, target) => {
  const app = await build(t, target)
  const sessions = {
    user: { rank: 1, token: (await newUser(app)).accessToken },
    moderator: { rank: 2, token: (await newUser(app, ['moderator'])).accessToken },
    mod: { rank: 2, token: (await newUser(app, ['mod'])).accessToken },
    admin: { rank: 3, token: (await signinAdmin(app)).accessToken }
  }
  const headerStyles = {
    bearer: (token: string) => ({ authorization: `Bearer ${token}` }),
    'x-access-token': (token: string) => ({ 'x-access-token': token })
  }

  for (const route of routes) {
    for (const [roleName, session] of Object.entries(sessions)) {
      for (const [style, header] of Object.entries(headerStyles)) {
        t.test(`${roleName} on ${route.path} with ${style}`, async (t) => {
          const res = await app.inject({ url: route.path, headers: header(session.token) })
          if (session.rank >= route.needs) {
            t.equal(res.statusCode, 200)
            t.equal(res.body, route.body)
            t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
          } else {
            t.equal(res.statusCode, 403)
            t.same(JSON.parse(res.body), { statusCode: 403, error: 'Forbidden', message: route.denied })
          }
        })
      }
    }
  }

  t.test('anonymous: public content only, 401 with WWW-Authenticate elsewhere', async (t) => {
    for (const route of routes) {
      const res = await app.inject({ url: route.path })
      if (route.needs === 0) {
        t.equal(res.statusCode, 200)
        t.equal(res.body, 'Public Content.')
        continue
      }
      t.equal(res.statusCode, 401, route.path)
      t.equal(res.headers['www-authenticate'], 'Bearer')
      t.same(JSON.parse(res.body), { statusCode: 401, error: 'Unauthorized', message: 'No token provided!' })
    }
  })

  t.test('invalid tokens are 401 Unauthorized! in both headers', async (t) => {
    const bad = [
      'garbage',
      'a.b.c',
      sessions.user.token.slice(0, -2) + 'xx',
      'x'.repeat(5000),
      // alg: none, same claims
      Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url') + '.' + sessions.admin.token.split('.')[1] + '.'
    ]
    for (const token of bad) {
      for (const header of Object.values(headerStyles)) {
        const res = await app.inject({ url: '/api/test/user', headers: header(token) })
        t.equal(res.statusCode, 401)
        t.equal(JSON.parse(res.body).message, 'Unauthorized!')
        // RFC 6750 section 3: a 401 for a bad token names the scheme and says the token is invalid.
        t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      }
    }
    const res = await app.inject({ url: '/api/test/user', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], 'Bearer', 'another scheme: challenged for a Bearer token, no error code (RFC 6750 3.1)')
  })

  // A front end whose token is not set yet sends `Bearer ` and nothing after it: no token, like
  // an empty header, and the answer must say that rather than call a token it never sent
  // invalid. Something that is there but is no single token is an invalid one.
  t.test('"Bearer" with nothing after it is no token; with more than one word after it, an invalid one', async (t) => {
    for (const authorization of ['Bearer', 'Bearer ', 'bearer   ']) {
      const res = await app.inject({ url: '/api/test/user', headers: { authorization } })
      t.equal(res.statusCode, 401, JSON.stringify(authorization))
      t.equal(JSON.parse(res.body).message, 'No token provided!')
      t.equal(res.headers['www-authenticate'], 'Bearer')
      const legacy = await app.inject({ url: '/api/test/user', headers: { authorization, 'x-access-token': sessions.user.token } })
      t.equal(legacy.statusCode, 200, 'and it does not hide x-access-token')
    }
    const blank = await app.inject({ url: '/api/test/user', headers: { 'x-access-token': '   ' } })
    t.equal(JSON.parse(blank.body).message, 'No token provided!', 'nor is a blank x-access-token')
    for (const authorization of ['Bearer a b', `Bearer  ${sessions.user.token} x`]) {
      const res = await app.inject({ url: '/api/test/user', headers: { authorization } })
      t.equal(res.statusCode, 401, JSON.stringify(authorization))
      t.equal(JSON.parse(res.body).message, 'Unauthorized!')
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
    }
  })

  t.test('an expired token says so', async (t) => {
    const expired = app.jwt.sign({ sub: '1', roles: ['admin'] }, { clockTimestamp: Date.now() - 3_600_000 })
    const res = await app.inject({ url: '/api/test/user', headers: { authorization: `Bearer ${expired}` } })
    t.equal(res.statusCode, 401)
    t.equal(JSON.parse(res.body).message, 'Unauthorized! Access Token was expired!')
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="The access token expired"')
  })

  t.test('a token from another issuer or audience is refused', async (t) => {
    for (const opts of [{ iss: 'someone-else' }, { aud: 'another-app' }]) {
      const token = app.jwt.sign({ sub: '1', roles: ['admin'] }, opts)
      const res = await app.inject({ url: '/api/test/admin', headers: { authorization: `Bearer ${token}` } })
      t.equal(res.statusCode, 401)
    }
  })
})
