import t from 'tap'
import { HttpError } from '../../src/errors.js'

// An HttpError is an answer to a client (a missing token, a role it lacks), not a fault to
// debug: no stack is captured for it, which on a refused request cost more than the rest of
// the refusal's JavaScript. Errors of any other kind keep theirs.
t.test('an HttpError carries no stack frames; other errors still do', async (t) => {
  const refusal = new HttpError(401, 'No token provided!')
  t.equal(refusal.stack, 'Error: No token provided!')
  t.match(refusal, { statusCode: 401, message: 'No token provided!' })
  t.ok(refusal instanceof Error)
  t.match(new Error('a fault').stack, /\n {4}at /, 'the limit is restored')
})

t.test('a limit set by someone else is left as it was', async (t) => {
  const before = Error.stackTraceLimit
  t.teardown(() => { Error.stackTraceLimit = before })
  Error.stackTraceLimit = 3
  void new HttpError(403, 'Require Admin Role!')
  t.equal(Error.stackTraceLimit, 3)
})
