import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'

const RETRY_AFTER_SECONDS = 5
// Liveness must keep answering while the process is overloaded: an orchestrator that restarts
// a busy instance turns a slowdown into an outage. /ready does answer 503 under pressure, which
// is what takes the instance out of the load balancer until it catches up.
const ALWAYS_SERVED = new Set(['/health'])

// When the event loop lags or memory runs out, answer 503 + Retry-After at once instead of
// queueing requests that would all time out. Thresholds come from OVERLOAD_* (config.ts).
export default fp(async (app) => {
  const { overload } = app.config
  let lastWarning = 0
  await app.register(underPressure, {
    maxEventLoopDelay: overload.maxEventLoopDelayMs,
    maxHeapUsedBytes: overload.maxHeapUsedBytes ?? 0,
    maxRssBytes: overload.maxRssBytes ?? 0,
    sampleInterval: overload.sampleIntervalMs,
    exposeStatusRoute: false,
    // A rejection goes on as the request's error, so the one error handler writes the contract's
    // JSON shape (under-pressure's own error would come out as a 500 there).
    pressureHandler: async (request, _reply, type, value) => {
      if (ALWAYS_SERVED.has(request.routeOptions.url ?? '')) return
      // One line per ten seconds: logging every refusal would add to the load being shed.
      const now = Date.now()
      if (now - lastWarning > 10_000) {
        lastWarning = now
        request.log.warn({ type, value }, 'overloaded: refusing requests with 503')
      }
      throw new HttpError(503, 'Server is overloaded, please retry', { 'retry-after': String(RETRY_AFTER_SECONDS) })
    }
  })
}, { name: 'under-pressure', dependencies: ['config'] })
