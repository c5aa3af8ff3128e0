import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { newAccount, postgresUnavailable, send, startPostgres, startRolegate, type Instance, type Outcome } from './harness.js'

// PostgreSQL killed under load: fast 503s instead of hangs, the routes that do not need it keep
// serving, the process survives, it recovers by itself, and no acknowledged signup is lost.
const skip = postgresUnavailable()
const CONNECT_TIMEOUT_MS = 2000
// Generous for a noisy two-core machine, yet far below a client's patience or a hang.
const ANSWER_BOUND_MS = CONNECT_TIMEOUT_MS + 3000
// A hung database: the statement's query timeout (3 s + 1 s) plus the same margin.
const HUNG_BOUND_MS = 4000 + 3000

interface Sample extends Outcome { route: string, at: number, username?: string }

t.test('database outage under load', { skip: skip ?? false, timeout: 90_000 }, async (t) => {
  const pg = await startPostgres(t)
  const app = await startRolegate(t, {
    DATABASE_URL: pg.url(),
    DB_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
    DB_STATEMENT_TIMEOUT: '3s'
  })
  const before = newAccount('pre')
  t.equal((await send(app, 'POST', '/api/auth/signup', before)).status, 201, 'a signup before the outage')

  const samples: Sample[] = []
  // An object, so the workers' loops see the flag change (and lint knows they do).
  const load = { running: true }
  const signupWorker = async (): Promise<void> => {
    while (load.running) {
      const account = newAccount('load')
      const at = Date.now()
      samples.push({ ...await send(app, 'POST', '/api/auth/signup', account), route: 'signup', at, username: account.username })
    }
  }
  const probeWorker = async (route: string): Promise<void> => {
    while (load.running) {
      const at = Date.now()
      samples.push({ ...await send(app, 'GET', route), route, at })
      await sleep(50)
    }
  }
  const workers = [signupWorker(), signupWorker(), signupWorker(), probeWorker('/api/test/all'), probeWorker('/health'), probeWorker('/ready')]

  await sleep(1500)
  await pg.stop('immediate')
  const downAt = Date.now()
  await sleep(4000)
  const upAt = Date.now()
  await pg.start()

  // Recovery without a restart: /ready turns 200 and signups succeed again, within a bound.
  const recovered = await waitFor(app, 20_000)
  t.ok(recovered, 'rolegate reports ready again after PostgreSQL is back')
  await sleep(1500)
  load.running = false
  await Promise.all(workers)

  t.ok(app.alive(), 'the process stayed up the whole time')
  t.same(samples.filter(s => s.status === 0).map(s => `${s.route}: ${s.error ?? ''}`), [], 'every request got an answer (no reset, no timeout)')

  const outage = samples.filter(s => s.at >= downAt && s.at + s.ms < upAt)
  const signupsDown = outage.filter(s => s.route === 'signup')
  t.ok(signupsDown.length > 0, `signups were attempted during the outage (${signupsDown.length})`)
  for (const s of signupsDown) {
    if (s.status !== 503) { t.fail(`signup during the outage answered ${s.status}: ${JSON.stringify(s.body)}`); break }
  }
  t.ok(signupsDown.every(s => s.headers['retry-after'] !== undefined), 'every 503 carries Retry-After')
  t.ok(signupsDown.every(s => s.headers['content-type']?.toString().startsWith('application/json') === true &&
    s.body.statusCode === 503 && s.body.error === 'Service Unavailable' && typeof s.body.message === 'string'), '503s have the contract JSON shape')
  const slowest = Math.max(...samples.filter(s => s.route === 'signup').map(s => s.ms))
  t.ok(slowest < ANSWER_BOUND_MS, `every signup answered within ${ANSWER_BOUND_MS} ms (slowest ${Math.round(slowest)} ms)`)

  for (const route of ['/api/test/all', '/health']) {
    const seen = outage.filter(s => s.route === route)
    t.ok(seen.length > 0 && seen.every(s => s.status === 200), `${route} kept answering 200 during the outage (${seen.length} requests)`)
  }
  const ready = outage.filter(s => s.route === '/ready')
  t.ok(ready.length > 0 && ready.every(s => s.status === 503 && s.headers['retry-after'] !== undefined), '/ready answered 503 with Retry-After during the outage')

  const statuses = new Set(samples.filter(s => s.route === 'signup').map(s => s.status))
  t.same([...statuses].filter(s => s !== 201 && s !== 503), [], 'signups only ever answered 201 or 503')
  t.ok(samples.some(s => s.route === 'signup' && s.status === 201 && s.at > upAt), 'signups succeed again after recovery')

  // No acknowledged write lost: every 201 is a row, even those acknowledged just before the kill.
  const acknowledged = [before.username, ...samples.filter(s => s.route === 'signup' && s.status === 201).map(s => s.username as string)]
  const rows = await pg.query('select username from users where username = any($1)', [acknowledged])
  t.equal(rows.length, acknowledged.length, `all ${acknowledged.length} acknowledged signups are in the database`)
  const signin = await send(app, 'POST', '/api/auth/signin', { username: before.username, password: before.password })
  t.equal(signin.status, 200, 'an account created before the outage signs in after it')

  // A database that hangs instead of refusing (frozen, or a network cut that sends no reset):
  // the connect timeout and the query timeout bound every answer; nothing waits forever.
  await pg.freeze()
  const hung = await Promise.all([0, 1, 2, 3].map(async () => await send(app, 'POST', '/api/auth/signup', newAccount('frz'), 20_000)))
  const readyHung = await send(app, 'GET', '/ready', undefined, 10_000)
  const liveHung = await send(app, 'GET', '/health', undefined, 2000)
  await pg.thaw()
  t.same(hung.map(r => r.status), [503, 503, 503, 503], 'signups against a hung database answer 503')
  const slowestHung = Math.max(...hung.map(r => r.ms))
  t.ok(slowestHung < HUNG_BOUND_MS, `within ${HUNG_BOUND_MS} ms (slowest ${Math.round(slowestHung)} ms)`)
  t.equal(readyHung.status, 503, '/ready says so')
  t.equal(liveHung.status, 200, '/health keeps answering')
  t.ok(await waitFor(app, 20_000), 'ready again once the database answers')
  const afterThaw = await send(app, 'POST', '/api/auth/signup', newAccount('thaw'))
  t.equal(afterThaw.status, 201, 'and signups succeed')
  t.ok(app.alive(), 'the process stayed up')
})

async function waitFor (app: Instance, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs
  while (Date.now() < deadline) {
    if ((await send(app, 'GET', '/ready', undefined, 3000)).status === 200) return true
    await sleep(200)
  }
  return false
}
