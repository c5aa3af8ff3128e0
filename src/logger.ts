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

// Header values every request logs, and how much of each: Host and Accept-Version are whatever
// the client sends, and behind a trusted proxy (TRUST_PROXY) so are the address and host from
// X-Forwarded-For / X-Forwarded-Host, unchecked. Node takes up to 16 KiB of headers, so without a
// bound one header makes the request's log line that long. 64 holds any IPv6 address with a zone
// (as audit_events.ip does); 260 a DNS name (253) with a port.
const LOGGED_ADDRESS_MAX_LENGTH = 64
const LOGGED_HOST_MAX_LENGTH = 260
const LOGGED_VERSION_MAX_LENGTH = 64

/** The value as sent if it fits, else its head and how long it was, so a cut is never mistaken for the value. */
function loggedHead (value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}... (${value.length} characters)`
}

// Fastify's own request serializer (fastify/lib/logger-pino.js), with the URL redacted and the
// header values bounded.
const serializers = {
  req: (request: FastifyRequest) => ({
    method: request.method,
    url: redactedUrl(request.url),
    version: typeof request.headers['accept-version'] === 'string' ? loggedHead(request.headers['accept-version'], LOGGED_VERSION_MAX_LENGTH) : undefined,
    host: loggedHead(request.host, LOGGED_HOST_MAX_LENGTH),
    remoteAddress: loggedHead(request.ip, LOGGED_ADDRESS_MAX_LENGTH),
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
