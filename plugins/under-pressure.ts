import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'
import { clientErrorReply, incomingOf } from './errors.js'

const RETRY_AFTER_SECONDS = '5'
const MIB = 1024 * 1024
// The instance is going away; the retry reaches another one (or this one's replacement).
const SHUTDOWN_RETRY_AFTER_SECONDS = '1'
// Liveness must keep answering while the process is overloaded: an orchestrator that restarts
// a busy instance turns a slowdown into an outage. /ready does answer 503 under pressure, which
// is what takes the instance out of the load balancer until it catches up.
const ALWAYS_SERVED = new Set(['/health'])
// A keep-alive connection's idle time once the shutdown has begun (ms). Node adds a second to it
// (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER), which is the window that matters: a request the client
// sent just as its previous answer arrived is read and refused with a 503, which closes the
// connection, rather than lost to a reset. 0 would turn the idle timer off.
const SHUTDOWN_KEEP_ALIVE_MS = 1
// Once the shutdown has begun: how long requests still arriving have left, and how often
// connections are looked at (ms). Well within close-with-grace's 10 s.
const SHUTDOWN_ARRIVAL_MS = 3_000
const SHUTDOWN_SWEEP_MS = 200
const SHUTDOWN_REQUEST_TIMEOUT = Object.assign(new Error('request still arriving when the shutdown began'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })
// Answers that may wait on one connection behind the one being written. HTTP/1.1 answers
// pipelined requests in order, and Node parses a whole read of them at once, before any answer
// is written: each answer waits in memory until those before it are. 36 bytes asking for the
// 47 KB OpenAPI document, 1,800 of them to a 64 KB read from a client that never reads, held
// ~85 MB per connection. Clients that pipeline at all keep a few requests in flight. The client
// sent too many at once: a 429 (no input is a 5xx), and the connection closes.
export const MAX_WAITING_ANSWERS = 32
const TOO_MANY_PIPELINED = `Too many requests pipelined on one connection (at most ${MAX_WAITING_ANSWERS} may wait for their answers): send fewer at once, or open another connection`
const PIPELINE_RETRY_AFTER_SECONDS = '1'
/** The answer that owns a connection now, if any: Node's own field, set while one does. */
function currentAnswer (socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined
}
// Closed as Node closed it: a client that leaves out Host is not one to keep a connection for.
const NO_HOST_HEADERS = { connection: 'close' }

/** The answer to a request the shutdown will not serve: its retry reaches another instance. */
export function shuttingDownError (): HttpError {
  return new HttpError(503, 'Server is shutting down, please retry', { 'retry-after': SHUTDOWN_RETRY_AFTER_SECONDS })
}

// When the event loop lags or memory runs out, answer 503 + Retry-After at once instead of
// queueing requests that would all time out; likewise while the server shuts down. Thresholds
// come from OVERLOAD_* (config.ts).
export default fp(async (app) => {
  const { overload } = app.config
  // @fastify/under-pressure samples the event loop and memory. It is registered in a child
  // context so that its own per-request hook (which builds request.routeOptions on every
  // request) covers no route; the one hook below asks the sampler's verdict instead, a few
  // comparisons on the hot path of every route.
  let monitor: FastifyInstance | undefined
  await app.register(async (child) => {
    await child.register(underPressure, {
      maxEventLoopDelay: overload.maxEventLoopDelayMs,
      maxHeapUsedBytes: overload.maxHeapUsedBytes ?? 0,
      maxRssBytes: overload.maxRssBytes ?? 0,
      sampleInterval: overload.sampleIntervalMs,
      exposeStatusRoute: false
    })
    monitor = child
  })
  const isUnderPressure = (): boolean => monitor?.isUnderPressure() ?? false

  // A memory threshold below what the server uses at rest refuses every request but /health,
  // which says nothing of why: say it once, at start, naming the setting.
  app.addHook('onReady', async () => {
    const { heapUsed, rss } = process.memoryUsage()
    const checks = [
      ['OVERLOAD_MAX_HEAP_USED_MB', overload.maxHeapUsedBytes, heapUsed, 'heap'],
      ['OVERLOAD_MAX_RSS_MB', overload.maxRssBytes, rss, 'memory']
    ] as const
    for (const [name, limit, used, what] of checks) {
      if (limit !== undefined && used > limit) {
        app.log.warn(`${name}=${Math.round(limit / MIB)} is below the ${Math.round(used / MIB)} MB of ${what} this server uses at rest: every request but /health will be refused 503`)
      }
    }
  })

  // A graceful shutdown (app.close(), on SIGTERM) lets running requests finish; one that
  // arrives meanwhile on an open keep-alive connection is refused here, not by Fastify's
  // return503OnClosing (off in app.ts), which writes a body and headers of its own without
  // Retry-After or the API headers. Fastify adds `connection: close` itself while closing, so
  // the client's retry opens a new connection, to another instance. /health too: the process
  // is going away.
  //
  // A request already running when the shutdown begins would be answered `connection:
  // keep-alive` (with a Keep-Alive hint of 72 s), and Fastify closes only the connections idle
  // at that moment: left alone, that connection would hold the shutdown until close-with-grace
  // gives up (10 s, exit code 1, the database never closed), and a client honouring the hint
  // would reuse it as it closed. So the answer each open connection is about to write says
  // `connection: close`, after which Node closes the connection; and for an answer already being
  // written, Node arms the idle timer from the server's keepAliveTimeout when it finishes, so
  // from now on that is a short one. Connections are tracked for this (a Set entry per
  // connection, nothing per request).
  const connections = new Set<Socket>()
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })
  let shuttingDown = false
  app.addHook('preClose', (done) => {
    shuttingDown = true
    app.server.keepAliveTimeout = SHUTDOWN_KEEP_ALIVE_MS
    for (const socket of connections) {
      // A pipelined answer behind the current one gets the short idle timer.
      const answer = currentAnswer(socket)
      if (answer !== undefined && !answer.headersSent) answer.setHeader('connection', 'close')
    }
    // Node closes the connections idle when the server closes, once, and stops checking request
    // timeouts. A connection that falls idle later (a 413's rest of body read in, its answer
    // long written) waited on the keep-alive timer that answer gave it, 73 s; one whose request
    // was still arriving (headers or body) waited for it, up to the 30 s request timeout. Either
    // outlasted close-with-grace's 10 s: exit code 1, the database never closed, the client a
    // bare close. Now idle ones are closed as they fall idle, and a request still arriving
    // SHUTDOWN_ARRIVAL_MS after the signal gets the 408 (or, already answered, just the close).
    const deadline = Date.now() + SHUTDOWN_ARRIVAL_MS
    const sweep = setInterval(() => {
      app.server.closeIdleConnections()
      if (Date.now() < deadline) return
      for (const socket of connections) {
        if (!socket.destroyed && incomingOf(socket)?.complete !== true) clientErrorReply.call(app, SHUTDOWN_REQUEST_TIMEOUT, socket)
      }
    }, SHUTDOWN_SWEEP_MS).unref()
    app.server.once('close', () => { clearInterval(sweep) })
    done()
  })

  // Answers waiting per connection, for the pipelined requests only: a request whose answer Node
  // could not give the connection yet (it is writing an earlier one) has no socket of its own.
  const waiting = new WeakMap<object, number>()
  function answerLater (connection: object, response: NodeJS.EventEmitter): boolean {
    const count = (waiting.get(connection) ?? 0) + 1
    // Refused once, refused for good: the refusal closes the connection, and a request read
    // after it (however few answers wait by then) would run with no one to hear its answer.
    if (count > MAX_WAITING_ANSWERS) {
      waiting.set(connection, Infinity)
      return false
    }
    waiting.set(connection, count)
    response.once('close', () => { waiting.set(connection, (waiting.get(connection) ?? 1) - 1) })
    return true
  }

  let lastWarning = 0
  // One hook for every refusal that does not depend on the route (shutting down, a missing
  // Host, overload): it runs on every request, and a hook of its own per refusal would cost each
  // request another pass of Fastify's hook runner.
  app.addHook('onRequest', (request, reply, done) => {
    if (shuttingDown) {
      // Pipelined behind the answer preClose marked `connection: close`, this refusal would be
      // dropped when that answer closes the connection: that answer keeps it open instead, and
      // the refusal (Fastify adds `connection: close` to it) closes it.
      if (reply.raw.socket === null) {
        const current = currentAnswer(request.raw.socket)
        if (current !== undefined && !current.headersSent) current.removeHeader('connection')
      }
      return done(shuttingDownError())
    }
    // RFC 9112 3.2. Node answers this itself, with an empty 400 and none of the API's headers,
    // unless app.ts turns its check off (requireHostHeader) so that it is answered here. Two
    // Host lines arrive joined with a comma (joinDuplicateHeaders, app.ts), which no host holds.
    const host = request.raw.headers.host
    if (host === undefined ? request.raw.httpVersion === '1.1' : host.includes(',')) {
      return done(new HttpError(400, `An HTTP/1.1 request must carry ${host === undefined ? 'a' : 'exactly one'} Host header`, NO_HOST_HEADERS))
    }
    // The refusal closes the connection: the rest of the client's pipeline is not answered.
    if (reply.raw.socket === null && !answerLater(request.raw.socket, reply.raw)) {
      return done(new HttpError(429, TOO_MANY_PIPELINED, { 'retry-after': PIPELINE_RETRY_AFTER_SECONDS, connection: 'close' }))
    }
    if (!isUnderPressure() || ALWAYS_SERVED.has(request.url.split('?')[0] ?? '')) return done()
    // One line per ten seconds: logging every refusal would add to the load being shed.
    const now = Date.now()
    if (now - lastWarning > 10_000) {
      lastWarning = now
      request.log.warn('overloaded: refusing requests with 503')
    }
    // Handed to the one error handler, which writes the contract's JSON shape.
    done(new HttpError(503, 'Server is overloaded, please retry', { 'retry-after': RETRY_AFTER_SECONDS }))
  })
}, { name: 'under-pressure', dependencies: ['config'] })
