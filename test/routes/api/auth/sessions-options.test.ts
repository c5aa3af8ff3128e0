import { hashRefreshToken } from '../../../../src/refresh-token.js'
import { deleteStaleRefreshTokens, issueRefreshToken, sweepStaleRefreshTokens } from '../../../../src/repositories/refresh-tokens.js'
import { build, eachDatabase, json, newUser } from '../../../helper.js'
import { refresh, refreshCookie, setTokenRow } from './sessions-helper.js'

// Session settings (reuse grace window, lifetimes, development cookies), the stale-row cleanup,
// and the OpenAPI description of the session routes.
eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('cleanup deletes expired and long-revoked rows, in bounded batches, and nothing else', async (t) => {
    const s = await newUser(app)
    const issue = async () => (await issueRefreshToken(app.db, s.id, 3_600_000)).token
    const past = (ms: number) => new Date(Date.now() - ms)
    for (let i = 0; i < 3; i++) await setTokenRow(app, await issue(), { expires_at: past(1000) })
    for (let i = 0; i < 2; i++) await setTokenRow(app, await issue(), { revoked_at: past(2 * 86_400_000) })
    const recentlyRevoked = await issue()
    await setTokenRow(app, recentlyRevoked, { revoked_at: past(60_000) })
    const live = await issue()
    const used = await issue()
    await refresh(app, used)

    t.equal(await deleteStaleRefreshTokens(app.db, 2), 2, 'one batch deletes at most `batch` rows')
    t.equal(await sweepStaleRefreshTokens(app.db, 1, 2), 2, 'a sweep stops after `maxBatches`')
    t.equal(await sweepStaleRefreshTokens(app.db, 2, 10), 1, 'and stops at the first short batch')
    t.equal(await sweepStaleRefreshTokens(app.db), 0, 'nothing stale is left')

    const kept = await app.db.selectFrom('refresh_tokens').select('token_hash').where('user_id', '=', s.id).execute()
    const keptHashes = new Set(kept.map(r => Buffer.from(r.token_hash).toString('hex')))
    for (const token of [s.refreshToken, recentlyRevoked, live, used]) {
      t.ok(keptHashes.has(hashRefreshToken(token).toString('hex')), 'live, used and freshly revoked rows stay')
    }
    t.equal((await refresh(app, live)).statusCode, 200, 'a live token still works')
    t.match(json(await refresh(app, used)).message, /already used/, 'a used row is kept so its reuse is still detected')
  })

  t.test('OpenAPI documents the session routes, their security and the refresh cookie', async (t) => {
    const doc = json(await app.inject({ url: '/documentation/json' }))
    const ops = {
      refresh: doc.paths['/api/auth/refreshtoken']?.post,
      signout: doc.paths['/api/auth/signout']?.post,
      me: doc.paths['/api/auth/me']?.get,
      password: doc.paths['/api/auth/password']?.post
    }
    for (const [name, op] of Object.entries(ops)) {
      t.ok(op, `${name} is documented`)
      t.same(op?.tags, ['sessions'])
      t.ok(op?.responses?.['200']?.content?.['application/json']?.schema, `${name} has a 200 schema`)
    }
    for (const name of ['refresh', 'me', 'password'] as const) t.ok(ops[name].responses['401'], `${name} documents 401`)
    for (const name of ['me', 'password'] as const) t.same(ops[name].security, [{ bearerAuth: [] }, { accessTokenHeader: [] }])
    for (const name of ['refresh', 'signout'] as const) {
      t.match(ops[name].parameters, [{ in: 'cookie', name: 'refreshToken' }], `${name} reads the refresh cookie`)
      t.ok(ops[name].requestBody.content['application/json'].schema.properties.refreshToken, `${name} takes refreshToken in the body`)
      t.ok(ops[name].responses['200'].headers['set-cookie'], `${name} documents Set-Cookie`)
    }
    t.ok(ops.password.responses['200'].headers['set-cookie'])
    t.match(doc.paths['/api/auth/signin'].post.responses['200'].headers['set-cookie'].description, /HttpOnly; SameSite=Strict/)
  })

  t.test('with REFRESH_TOKEN_REUSE_INTERVAL, development cookies and a custom lifetime', async (t) => {
    const dev = await build(t, target, {
      // OVERLOAD_...: development turns the 1 s event-loop check on, which a loaded test machine
      // can trip (503) while this test is about cookies and lifetimes.
      env: { NODE_ENV: 'development', REFRESH_TOKEN_REUSE_INTERVAL: '30s', REFRESH_TOKEN_TTL: '1h', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' }
    })

    t.test('the cookie is not Secure on plain-http development and lives REFRESH_TOKEN_TTL', async (t) => {
      const s = await newUser(dev)
      const res = await refresh(dev, s.refreshToken)
      const cookie = refreshCookie(res)
      t.equal(cookie?.secure, undefined, 'no Secure attribute')
      t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/api/auth', maxAge: 3600 })
      const row = await dev.db.selectFrom('refresh_tokens').select('expires_at')
        .where('token_hash', '=', hashRefreshToken(json(res).refreshToken)).executeTakeFirstOrThrow()
      t.ok(Math.abs(row.expires_at.getTime() - Date.now() - 3_600_000) < 60_000, 'the row expires in an hour')
    })

    t.test('a second refresh of one token within the window succeeds', async (t) => {
      const s = await newUser(dev)
      const first = await refresh(dev, s.refreshToken)
      const second = await refresh(dev, s.refreshToken)
      t.equal(first.statusCode, 200)
      t.equal(second.statusCode, 200, 'within the grace window: not treated as theft')
      t.not(json(first).refreshToken, json(second).refreshToken)
      t.equal((await refresh(dev, json(first).refreshToken)).statusCode, 200)
      t.equal((await refresh(dev, json(second).refreshToken)).statusCode, 200)
    })

    t.test('parallel refreshes (several browser tabs) all succeed within the window', async (t) => {
      const s = await newUser(dev)
      const results = await Promise.all(Array.from({ length: 5 }, async () => await refresh(dev, s.refreshToken, 'cookie')))
      t.same(results.map(r => r.statusCode), [200, 200, 200, 200, 200])
    })

    t.test('after the window, reuse revokes the sign-in as usual', async (t) => {
      const s = await newUser(dev)
      const next = json(await refresh(dev, s.refreshToken)).refreshToken
      await setTokenRow(dev, s.refreshToken, { used_at: new Date(Date.now() - 60_000) })
      const reuse = await refresh(dev, s.refreshToken)
      t.equal(reuse.statusCode, 401)
      t.match(json(reuse).message, /already used/)
      t.equal((await refresh(dev, next)).statusCode, 401, 'the successor is revoked')
    })

    // The grace window forgives a second refresh of a token, not its expiry: an expired token
    // is refused whenever it was last used.
    t.test('within the window, an expired token is refused all the same', async (t) => {
      const s = await newUser(dev)
      t.equal((await refresh(dev, s.refreshToken)).statusCode, 200)
      await setTokenRow(dev, s.refreshToken, { expires_at: new Date(Date.now() - 1000) })
      const again = await refresh(dev, s.refreshToken)
      t.equal(again.statusCode, 401)
      t.notOk(json(again).refreshToken, 'no new token handed out')
    })
  })

  // API.md: `Secure` unless running on plain http in development. Development behind a TLS
  // proxy (trusted, so its X-Forwarded-Proto counts) is not plain http.
  t.test('in development the cookie is Secure when the request came over https', async (t) => {
    const dev = await build(t, target, { env: { NODE_ENV: 'development', TRUST_PROXY: 'loopback', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' } })
    const s = await newUser(dev)
    const overHttps = await dev.inject({ method: 'POST', url: '/api/auth/refreshtoken', payload: { refreshToken: s.refreshToken }, headers: { 'x-forwarded-proto': 'https' } })
    t.equal(overHttps.statusCode, 200)
    t.equal(refreshCookie(overHttps)?.secure, true, 'Secure over https')
    const overHttp = await refresh(dev, json(overHttps).refreshToken)
    t.equal(overHttp.statusCode, 200)
    t.equal(refreshCookie(overHttp)?.secure, undefined, 'not over plain http')
    const signout = await dev.inject({ method: 'POST', url: '/api/auth/signout', payload: { refreshToken: json(overHttp).refreshToken }, headers: { 'x-forwarded-proto': 'https' } })
    t.equal(refreshCookie(signout)?.secure, true, 'the clearing cookie matches the one it clears')
  })

  // Config refuses longer lifetimes (REFRESH_TOKEN_TTL=999999999999d made every signin a 500:
  // its expiry date overflowed); the longest it accepts must work end to end.
  t.test('the longest lifetimes allowed sign in, refresh and authenticate', async (t) => {
    const longest = await build(t, target, { env: { ACCESS_TOKEN_TTL: '3650d', REFRESH_TOKEN_TTL: '400d', REFRESH_TOKEN_REUSE_INTERVAL: '3650d' } })
    const s = await newUser(longest)
    const res = await refresh(longest, s.refreshToken)
    t.equal(res.statusCode, 200)
    t.equal(json(res).expiresIn, 3650 * 86_400)
    t.match(refreshCookie(res), { maxAge: 400 * 86_400 })
    const me = await longest.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${json(res).accessToken as string}` } })
    t.equal(me.statusCode, 200)
  })
})
