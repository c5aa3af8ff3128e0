import { build, eachDatabase, json } from '../../../helper.js'

// A signin failure is audited with the username tried; characters PostgreSQL's jsonb cannot hold
// (a lone surrogate, NUL) must not turn that write into a 500.
eachDatabase(async (t, target) => {
  const app = await build(t, target)
  for (const username of ['\\ud800', 'abc\\udc00x', 'nul\\u0000byte']) {
    t.test(`signin with ${username} is an ordinary 401 (or 400), never a 5xx`, async (t) => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/auth/signin',
        payload: `{"username":"${username}","password":"\\u0000\\u0000\\u0000\\u0000\\u0000"}`,
        headers: { 'content-type': 'application/json' }
      })
      t.ok(res.statusCode === 401 || res.statusCode === 400, `status ${res.statusCode}`)
      t.equal(json(res).statusCode, res.statusCode)
    })
  }
})
