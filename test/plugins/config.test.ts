import { Writable } from 'node:stream'
import t from 'tap'
import { build, databases } from '../helper.js'

// The configuration's warnings (src/config-warnings.ts) are said once, at start, in the log the
// operator reads: the server starts with the settings as given.
const target = databases[0] ?? { name: 'embedded' as const, url: 'memory://' }

function warningsLog (): { stream: Writable, warnings: () => string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
  const warnings = () => lines.map(line => JSON.parse(line) as { level: number, msg: string }).filter(entry => entry.level === 40).map(entry => entry.msg)
  return { stream, warnings }
}

t.test('contradictory token lifetimes are a warning at start, naming both variables', async (t) => {
  const log = warningsLog()
  await build(t, target, { env: { ACCESS_TOKEN_TTL: '2h', REFRESH_TOKEN_TTL: '1h' }, logger: { level: 'warn', stream: log.stream } })
  t.match(log.warnings(), [/^ACCESS_TOKEN_TTL=2h is not shorter than REFRESH_TOKEN_TTL=1h: /])
  t.equal(log.warnings().length, 1)
  const quiet = warningsLog()
  await build(t, target, { logger: { level: 'warn', stream: quiet.stream } })
  t.same(quiet.warnings(), [], 'the test defaults: nothing to warn about')
})
