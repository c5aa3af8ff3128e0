import { once } from 'node:events'
import { type AddressInfo, connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { build, capturedLog, databases, embedded } from '../helper.js'

// An overloaded process answers 503 + Retry-After at once (in the contract's shape) instead of
// letting every request time out; liveness keeps answering, and service resumes by itself.
const target = databases[databases.length - 1] ?? embedded

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

// Overload refuses every route but /health (and a shutdown every route, /health included): the
// document lists that 503, with its Retry-After, on all of them.
t.test('the OpenAPI document lists 503 with Retry-After on every route', { timeout: 60_000 }, async (t) => {
  // Any heap is over 1 MiB: under pressure from the first sample on.
  const app = await build(t, target, { env: { OVERLOAD_MAX_HEAP_USED_MB: '1', OVERLOAD_SAMPLE_INTERVAL: '20ms' } })
  // Read directly: /documentation/json is refused too.
  const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  let overloaded = false
  for (let i = 0; i < 100 && !overloaded; i++) {
    overloaded = (await app.inject({ url: '/api/test/all' })).statusCode === 503
    if (!overloaded) await sleep(20)
  }
  t.ok(overloaded, 'under pressure')
  // Liveness is the path, whatever query a probe adds (a cache buster, the probe's name).
  t.equal((await app.inject({ url: '/health?probe=liveness' })).statusCode, 200, '/health with a query string is still served')
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      t.match(op.responses['503'], {
        headers: { 'retry-after': { schema: { type: 'integer' } } },
        content: { 'application/json': { schema: { required: ['statusCode', 'error', 'message'] } } }
      }, `${method} ${path} documents 503 with Retry-After`)
      if (path === '/health') continue
      const res = await app.inject({ method: method.toUpperCase() as 'GET', url: path.replace('{id}', '1') })
      t.equal(res.statusCode, 503, `${method} ${path} answers 503`)
      t.equal(res.headers['retry-after'], '5')
    }
  }
})

// Each threshold watches its own measure. The resident memory holds the heap and the embedded
// database besides: a number between the two is passed by the one, not by the other.
t.test('OVERLOAD_MAX_HEAP_USED_MB watches the heap, OVERLOAD_MAX_RSS_MB the resident memory', { timeout: 60_000 }, async (t) => {
  const { heapUsed, rss } = process.memoryUsage()
  const between = String(Math.round((heapUsed + rss) / 2 / (1024 * 1024)))
  const env = { OVERLOAD_SAMPLE_INTERVAL: '20ms' }
  const heapLimited = await build(t, target, { env: { ...env, OVERLOAD_MAX_HEAP_USED_MB: between } })
  const rssLimited = await build(t, target, { env: { ...env, OVERLOAD_MAX_RSS_MB: between } })
  let refused = false
  for (let i = 0; i < 100 && !refused; i++) {
    refused = (await rssLimited.inject({ url: '/api/test/all' })).statusCode === 503
    if (!refused) await sleep(20)
  }
  t.ok(refused, `OVERLOAD_MAX_RSS_MB=${between}: refused, the resident memory is above it`)
  await sleep(100)
  const { heapUsed: heapNow } = process.memoryUsage()
  t.ok(heapNow < Number(between) * 1024 * 1024, 'the heap is below the number')
  t.equal((await heapLimited.inject({ url: '/api/test/all' })).statusCode, 200, `OVERLOAD_MAX_HEAP_USED_MB=${between}: served, the heap is below it`)
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

t.test('a request that arrives during a graceful shutdown gets 503 in the contract shape', { timeout: 60_000 }, async (t) => {
  // A request already running when the shutdown starts holds its keep-alive connection open;
  // a second one pipelined behind it reaches the server after app.close() has begun.
  let entered!: () => void
  const running = new Promise<void>(resolve => { entered = resolve })
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const app = await build(t, target, {
    beforeReady: (app) => {
      app.get('/test-held', async () => { entered(); await held; return { done: true } })
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk })
  const ended = once(socket, 'close')
  socket.write('GET /test-held HTTP/1.1\r\nHost: x\r\n\r\n')
  await running
  const closed = app.close()
  await sleep(50)
  socket.write('GET /api/test/all HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  release()
  await ended
  await closed

  const responses = received.split(/(?=HTTP\/1\.1 )/)
  t.equal(responses.length, 2, 'both requests were answered')
  t.match(responses[0], /^HTTP\/1\.1 200 /, 'the running request finished normally')
  const late = responses[1] ?? ''
  const [head = '', body = ''] = late.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 503 /, 'the late request is refused')
  const headers = Object.fromEntries(head.split('\r\n').slice(1).map(line => {
    const at = line.indexOf(':')
    return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()]
  }))
  t.equal(headers['retry-after'], '1', 'with a hint to retry (another instance) soon')
  t.equal(headers.connection, 'close', 'and the connection closed, so the client reconnects elsewhere')
  t.equal(headers['x-content-type-options'], 'nosniff', 'with the API headers')
  t.match(headers['content-type'], /^application\/json/)
  t.same(JSON.parse(body), { statusCode: 503, error: 'Service Unavailable', message: 'Server is shutting down, please retry' })
})

// OVERLOAD_MAX_HEAP_USED_MB=1 started a server that answered 503 to everything but /health, with
// no word of why (found by fuzzing the configuration): the start now warns, naming the setting.
t.test('a memory threshold the server already passes at rest is a warning at start', async (t) => {
  const log = capturedLog()
  await build(t, target, { env: { OVERLOAD_MAX_HEAP_USED_MB: '1', OVERLOAD_MAX_RSS_MB: '1' }, logger: { level: 'warn', stream: log.stream } })
  const warnings = log.warnings()
  t.ok(warnings.some(msg => /^OVERLOAD_MAX_HEAP_USED_MB=1 is below the \d+ MB of heap this server uses at rest: every request but \/health will be refused 503$/.test(msg)), 'heap')
  t.ok(warnings.some(msg => /^OVERLOAD_MAX_RSS_MB=1 is below the \d+ MB of memory this server uses at rest: every request but \/health will be refused 503$/.test(msg)), 'RSS')
  const quiet = capturedLog()
  await build(t, target, { logger: { level: 'warn', stream: quiet.stream } })
  t.same(quiet.lines, [], 'the defaults: nothing to warn about')
})
