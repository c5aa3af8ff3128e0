import t from 'tap'
import { build, capturedLog, embedded } from '../helper.js'

// The configuration's warnings (src/config-warnings.ts) are said once, at start, in the log the
// operator reads: the server starts with the settings as given.
const target = embedded

t.test('contradictory token lifetimes are a warning at start, naming both variables', async (t) => {
  const log = capturedLog()
  await build(t, target, { env: { ACCESS_TOKEN_TTL: '2h', REFRESH_TOKEN_TTL: '1h' }, logger: { level: 'warn', stream: log.stream } })
  t.match(log.warnings(), [/^ACCESS_TOKEN_TTL=2h is not shorter than REFRESH_TOKEN_TTL=1h: /])
  t.equal(log.warnings().length, 1)
  const quiet = capturedLog()
  await build(t, target, { logger: { level: 'warn', stream: quiet.stream } })
  t.same(quiet.warnings(), [], 'the test defaults: nothing to warn about')
})

t.test('a misspelled variable is a warning at start, naming it and never its value', async (t) => {
  const secret = 'do-not-log-0123456789abcdef0123456789'
  const log = capturedLog()
  await build(t, target, { env: { JWT_SECRTE: secret }, logger: { level: 'trace', stream: log.stream } })
  t.same(log.warnings(), ['JWT_SECRTE is set but not read; did you mean JWT_SECRET?'])
  t.ok(log.lines.length > 1, 'the whole log, at every level')
  t.notOk(log.lines.some(line => line.includes(secret)), 'the value appears in no log line')
})
