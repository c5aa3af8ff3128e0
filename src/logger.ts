import type { FastifyRequest, FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'

// Request logs never carry credentials: headers that hold tokens or cookies are redacted, and
// bodies are never logged.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-access-token"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.accessToken',
  '*.refreshToken',
  '*.token'
]

const REDACTED = '[redacted]'

// Query parameters whose values are logged as sent: the admin lists'. Every other value is
// redacted: clients put tokens in query strings (RFC 6750's `access_token`) even where the API
// does not read them, and every request's URL is logged.
const LOGGED_QUERY_PARAMETERS = new Set(['limit', 'cursor', 'q', 'userId', 'type'])

/** The URL with the value of every query parameter but the admin lists' replaced. */
export function redactedUrl (url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const pairs = url.slice(start + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (LOGGED_QUERY_PARAMETERS.has(name) || pair === '') return pair
    // A bare value (`?eyJ...`) has no name to keep.
    return eq === -1 ? REDACTED : `${name}=${REDACTED}`
  })
  return `${url.slice(0, start + 1)}${pairs.join('&')}`
}

// Fastify's own request serializer (fastify/lib/logger-pino.js), with the URL redacted.
const serializers = {
  req: (request: FastifyRequest) => ({
    method: request.method,
    url: redactedUrl(request.url),
    version: typeof request.headers['accept-version'] === 'string' ? request.headers['accept-version'] : undefined,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  })
}

export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  // `silent` means no logger at all: a silent pino still builds a child logger per request,
  // which costs about 15% of a cheap route's throughput (ENVIRONMENT.md, "Measuring").
  if (config.logLevel === 'silent') return false
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers
  }
}

/** A logger configuration passed in (tests capture the log) keeps the same redaction. */
export function withRedaction (logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === false || logger === undefined) return logger
  return { ...(logger === true ? {} : logger), redact: { paths: REDACT_PATHS, censor: REDACTED }, serializers }
}
