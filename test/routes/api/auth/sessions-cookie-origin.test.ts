import type { FastifyInstance, InjectOptions } from 'fastify'
import { build, eachDatabase, json, newUser } from '../../../helper.js'
import { REFRESH_URL, refresh } from './sessions-helper.js'

// SameSite=Strict keeps the refresh cookie from other sites, but not from sibling subdomains:
// to a browser, a page on blog.example.com is the same site as the API on api.example.com,
// and its form posts carry the cookie. Such a page could rotate a user's refresh token or
// sign them out. Browsers say where a request comes from (Sec-Fetch-Site, Origin): a
// same-site or cross-site request may use the cookie only from an origin in CORS_ORIGIN.
const LISTED = 'https://app.example.com'
const SIBLING = 'https://blog.example.com'
const SIGNOUT_URL = '/api/auth/signout'

async function withCookie (app: FastifyInstance, url: string, token: string, headers: InjectOptions['headers'] = {}) {
  return await app.inject({ method: 'POST', url, cookies: { refreshToken: token }, headers })
}

eachDatabase(async (t, target) => {
  const app = await build(t, target, { env: { CORS_ORIGIN: LISTED } })

  t.test('a sibling subdomain cannot use the refresh cookie to refresh or to sign out', async (t) => {
    const s = await newUser(app)
    for (const url of [REFRESH_URL, SIGNOUT_URL]) {
      for (const site of ['same-site', 'cross-site']) {
        const res = await withCookie(app, url, s.refreshToken, { 'sec-fetch-site': site, origin: SIBLING })
        t.equal(res.statusCode, 403, `${url} from a ${site} origin not listed: 403`)
        t.match(json(res).message, /refresh cookie.*CORS_ORIGIN/, 'the message names the rule')
        t.notOk(res.headers['set-cookie'], 'and the cookie is left alone')
      }
      const noOrigin = await withCookie(app, url, s.refreshToken, { 'sec-fetch-site': 'same-site' })
      t.equal(noOrigin.statusCode, 403, `${url} same-site without Origin: 403`)
    }
    t.equal((await refresh(app, s.refreshToken)).statusCode, 200, 'the refused requests neither rotated nor revoked the token')
  })

  t.test('the cookie still works from the API\'s own origin, from listed origins and from non-browser clients', async (t) => {
    const s = await newUser(app)
    let token = s.refreshToken
    const allowed: Array<[string, InjectOptions['headers']]> = [
      ['a listed same-site origin', { 'sec-fetch-site': 'same-site', origin: LISTED }],
      ['a listed origin, as a browser may capitalize nothing but a proxy might', { 'sec-fetch-site': 'same-site', origin: LISTED.toUpperCase() }],
      // Behind a proxy that rewrites Host the API cannot tell its own origin from Origin;
      // the browser's Sec-Fetch-Site can.
      ['same-origin, whatever Origin says', { 'sec-fetch-site': 'same-origin', origin: SIBLING }],
      ['a user typing the URL (none)', { 'sec-fetch-site': 'none' }],
      ['a client that sends no Sec-Fetch-Site', { origin: SIBLING }]
    ]
    for (const [what, headers] of allowed) {
      const res = await withCookie(app, REFRESH_URL, token, headers)
      t.equal(res.statusCode, 200, what)
      token = json(res).refreshToken
    }
    const out = await withCookie(app, SIGNOUT_URL, token, { 'sec-fetch-site': 'same-site', origin: LISTED })
    t.equal(out.statusCode, 200, 'signout from a listed origin')
    t.equal((await refresh(app, token)).statusCode, 401, 'and it signed out')
  })

  t.test('a token sent in the body is no ambient authority: any origin may present it', async (t) => {
    const s = await newUser(app)
    const res = await app.inject({
      method: 'POST', url: REFRESH_URL, payload: { refreshToken: s.refreshToken }, headers: { 'sec-fetch-site': 'same-site', origin: SIBLING }
    })
    t.equal(res.statusCode, 200)
  })
})

eachDatabase(async (t, target) => {
  const app = await build(t, target)

  t.test('without CORS_ORIGIN no other origin may use the cookie', async (t) => {
    const s = await newUser(app)
    t.equal((await withCookie(app, REFRESH_URL, s.refreshToken, { 'sec-fetch-site': 'same-site', origin: LISTED })).statusCode, 403)
    t.equal((await withCookie(app, REFRESH_URL, s.refreshToken, { 'sec-fetch-site': 'same-origin', origin: LISTED })).statusCode, 200)
  })
})
