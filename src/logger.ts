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
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
}
