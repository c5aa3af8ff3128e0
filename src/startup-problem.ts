import path from 'node:path'
import type { Config } from './config.js'
import { ConfigError } from './config-error.js'

type Where = Pick<Config, 'host' | 'port' | 'databaseUrl' | 'dataDir'>

// Connection failures pg reports with a system code, and the SQLSTATE classes of a server that
// answers but refuses us: 28 (wrong user or password), 3D (no such database), 57P03 (starting
// up or shutting down).
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'])
const REFUSED_BY_SERVER = /^(28|3D)[0-9A-Z]{3}$|^57P03$/
// What pg's client says, without a code, when a connection or its start-up fails: a server that
// accepts but never answers (the connect timeout), one that hangs up, a password it wants and
// the URL lacks, TLS it does not offer.
const CONNECTION_FAILED = /^(Connection terminated|SASL: |The server does not support SSL)/
// Writing under DATA_DIR: no permission, a read-only or full disk, a file where a directory goes.
const WRITE_FAILURES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENOTDIR'])
// A path under DATA_DIR that cannot be used at all: a symlink loop, a name over the system's
// limit, a directory where a file goes (the lock file).
const PATH_FAILURES = new Set(['ELOOP', 'ENAMETOOLONG', 'EISDIR'])

/**
 * Why the server could not start, in one line that names the setting to look at, for what an
 * operator meets at start: the port taken, a HOST that is not this machine's, a data directory
 * it may not write, an unreachable or refusing database, a certificate or key file DATABASE_URL
 * names that cannot be read (src/db/connect.ts). Undefined for anything else, which the
 * caller prints whole, stack included. Never prints DATABASE_URL itself: it holds a password.
 */
export function startupProblem (err: unknown, config: Where): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  // A setting found wrong only once the database could be asked (ADMIN_EMAIL already in use).
  if (err instanceof ConfigError) return err.message
  const { code, syscall, hostname, path: file, message } = err as { code?: unknown, syscall?: unknown, hostname?: unknown, path?: unknown, message?: unknown }
  const text = typeof message === 'string' ? message : String(code)
  if (syscall === 'listen') {
    if (code === 'EADDRINUSE') return `port ${config.port} on ${config.host} is already in use (PORT, HOST): another server is listening there`
    if (code === 'EACCES') return `not allowed to listen on port ${config.port} (PORT): ports below 1024 need privileges`
    if (code === 'EADDRNOTAVAIL') return `${config.host} is not an address of this machine (HOST)`
  }
  if (syscall === 'getaddrinfo' && hostname === config.host) return `cannot resolve ${config.host} (HOST): ${text}`
  if (code === 'ERR_DATA_DIR_IN_USE' || code === 'ERR_JWT_SECRET_FILE') return `${text} (DATA_DIR)`
  // The embedded database and the development JWT secret live in DATA_DIR.
  if (typeof file === 'string' && isInside(file, config.dataDir) && WRITE_FAILURES.has(String(code))) {
    return `cannot write the data directory ${path.resolve(config.dataDir)} (DATA_DIR): ${text}`
  }
  if (typeof file === 'string' && isInside(file, config.dataDir) && PATH_FAILURES.has(String(code))) {
    return `cannot use the data directory ${path.resolve(config.dataDir)} (DATA_DIR): ${text}`
  }
  if (config.databaseUrl !== undefined && config.databaseUrl !== 'memory://' &&
      (code === 'ERR_DATABASE_URL_FILE' || (typeof code === 'string' && (UNREACHABLE.has(code) || REFUSED_BY_SERVER.test(code))) ||
        // A Unix socket (?host=/run/postgresql) with no server behind it.
        (code === 'ENOENT' && syscall === 'connect') || (code === undefined && CONNECTION_FAILED.test(text)))) {
    return `cannot use the database at DATABASE_URL (${databaseLocation(config.databaseUrl)}): ${text}`
  }
  return undefined
}

function isInside (file: string, dir: string): boolean {
  const relative = path.relative(path.resolve(dir), path.resolve(file))
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))
}

/** host:port/database, without the user and password. */
function databaseLocation (url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port === '' ? '5432' : parsed.port}${parsed.pathname}`
  } catch {
    return 'unparsable URL'
  }
}
