import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { build, databases } from '../helper.js'

// An overloaded process answers 503 + Retry-After at once (in the contract's shape) instead of
// letting every request time out; liveness keeps answering, and service resumes by itself.
const target = databases[databases.length - 1] ?? { name: 'embedded' as const, url: 'memory://' }

/** Blocks this process's event loop for `ms`, as a CPU-bound request storm would. */
function busy (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* spin */ }
}

t.test('a saturated event loop gets 503 with Retry-After', { timeout: 60_000 }, async (t) => {
  const app = await build(t, target, { env: { OVERLOAD_MAX_EVENT_LOOP_DELAY: '40ms', OVERLOAD_SAMPLE_INTERVAL: '50ms' } })
  // Other test files share the machine: wait (bounded) for a sample of an idle loop.
  let idle = false
  for (let i = 0; i < 40 && !idle; i++) {
    idle = (await app.inject({ url: '/api/test/all' })).statusCode === 200
    if (!idle) await sleep(50)
  }
  t.ok(idle, 'served while the loop is idle')

  // Mostly blocked, with short gaps in which the sampler and the requests get their turn.
  let refused
  for (let i = 0; i < 30 && refused === undefined; i++) {
    busy(200)
    await sleep(15)
    const res = await app.inject({ url: '/api/test/all' })
    if (res.statusCode === 503) refused = res
  }
  t.ok(refused !== undefined, 'requests are refused while the event loop lags')
  t.equal(refused?.headers['retry-after'], '5')
  t.match(refused?.headers['content-type'], /^application\/json/)
  t.same(refused?.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Server is overloaded, please retry' })
  // Liveness is judged at a moment the other routes are still being refused.
  let health
  for (let i = 0; i < 10 && health === undefined; i++) {
    busy(200)
    await sleep(15)
    const live = await app.inject({ url: '/health' })
    if ((await app.inject({ url: '/api/test/all' })).statusCode === 503) health = live.statusCode
  }
  t.equal(health, 200, '/health keeps answering under pressure')

  let recovered = false
  for (let i = 0; i < 40 && !recovered; i++) {
    await sleep(50)
    recovered = (await app.inject({ url: '/api/test/all' })).statusCode === 200
  }
  t.ok(recovered, 'service resumes by itself once the loop catches up')
})

t.test('the default thresholds are far above normal use', async (t) => {
  const { overload } = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }, false)
  t.equal(overload.maxEventLoopDelayMs, 1000, 'a full second of event loop delay')
  t.equal(loadConfig({ NODE_ENV: 'test' }, false).overload.maxEventLoopDelayMs, 0,
    'off under NODE_ENV=test, where one process hosts many apps and embedded databases')
  t.ok((overload.maxHeapUsedBytes ?? 0) > 100 * 1024 * 1024, 'heap: 90% of the V8 limit')
  t.equal(overload.maxRssBytes, undefined, 'RSS: off unless set (the container limit is not known here)')
  t.equal(loadConfig({ NODE_ENV: 'test', OVERLOAD_MAX_HEAP_USED_MB: '0' }, false).overload.maxHeapUsedBytes, undefined, '0 turns a check off')
})
