import t from 'tap'
import { build, embedded, json } from '../helper.js'

// A fault nobody planned for (a bug, a query the database refuses, a driver's surprise): the
// contract's 500, and nothing of the error itself, whose message may name tables, columns or
// values and whose stack names our files, reaches the client.
t.test('an unexpected error is a 500 in the contract shape, without its message or stack', async (t) => {
  const app = await build(t, embedded, {
    beforeReady: (app) => {
      app.get('/test-fault', async () => {
        throw Object.assign(new Error('column "password_hash" of relation "users" does not exist'), { code: '42703' })
      })
      app.get('/test-fault-with-status', async () => {
        throw Object.assign(new Error('upstream said: password_hash mismatch'), { statusCode: 502 })
      })
    }
  })
  for (const url of ['/test-fault', '/test-fault-with-status']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500, url)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', url)
    t.same(json(res), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, url)
    t.notMatch(res.body, /password_hash|relation|\.ts:|\.js:/, `${url}: nothing of the error`)
  }
})
