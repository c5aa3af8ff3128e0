import type { FastifyServerOptions } from 'fastify'
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

export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  // `silent` means no logger at all: a silent pino still builds a child logger per request,
  // which costs about 15% of a cheap route's throughput (ENVIRONMENT.md, "Measuring").
  if (config.logLevel === 'silent') return false
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
}

/** A logger configuration passed in (tests capture the log) keeps the same redaction. */
export function withRedaction (logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === false || logger === undefined) return logger
  return { ...(logger === true ? {} : logger), redact: { paths: REDACT_PATHS, censor: '[redacted]' } }
}
