// Maps database failures onto HTTP meaning, for the error handler.

const UNIQUE_MESSAGES: Record<string, string> = {
  users_username_lower_key: 'Failed! Username is already in use!',
  users_email_lower_key: 'Failed! Email is already in use!'
}

interface DbError { code?: unknown, constraint?: unknown, message?: unknown, syscall?: unknown }

/** 23505 on a known unique index -> the tutorial's conflict message; undefined otherwise. */
export function uniqueViolationMessage (err: unknown): string | undefined {
  const e = err as DbError
  if (e?.code !== '23505') return undefined
  return UNIQUE_MESSAGES[String(e.constraint)] ?? 'Conflict with an existing record'
}

// SQLSTATE classes meaning "the database is not there for us right now" rather than "your query
// is wrong": 08 connection exception, 53 insufficient resources, 57P0x shutdown / cannot connect
// now / database dropped, 57014 statement timeout (overloaded or locked), 40001/40P01
// serialization / deadlock once their retries are spent (serialization-retry.ts); and a
// database that refuses the connection itself, which an operator or a failover undoes without
// us: 28000/28P01 the login refused (a rotated password), 3D000 the database missing
// (renamed), 25006 read-only (a standby, or a primary demoted by a failover: every write
// fails), and 55000 when it is a database not accepting connections.
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '57P04', '57014', '40001', '40P01', '53300', '53200', '53100', '28000', '28P01', '3D000', '25006'])
const NODE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

export function isDatabaseUnavailable (err: unknown): boolean {
  const e = err as DbError
  const code = typeof e?.code === 'string' ? e.code : ''
  if (code.startsWith('08') || UNAVAILABLE_CODES.has(code)) return true
  const message = typeof e?.message === 'string' ? e.message : ''
  // 55000 is also a query's own mistake (currval before nextval): only this one.
  if (code === '55000') return /not currently accepting connections/.test(message)
  // A network code counts only from the operating system (the driver's socket or DNS lookup),
  // which names the failed call in `syscall`. Node raises ECONNRESET itself, without one, when
  // a client closes its connection mid-request ('aborted'): that is the client's doing.
  if (NODE_NET_CODES.has(code) && typeof e.syscall === 'string') return true
  // node-postgres reports these without a code.
  return /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Query read timeout|PGlite is closed|driver has already been destroyed/i.test(message)
}

// 22021 character_not_in_repertoire (a NUL in text), 22P05 untranslatable_character: the input
// can never be stored or matched, whatever the route, so it is the client's error (400).
const UNSTORABLE_TEXT_CODES = new Set(['22021', '22P05'])

export function isUnstorableText (err: unknown): boolean {
  const code = (err as DbError)?.code
  return typeof code === 'string' && UNSTORABLE_TEXT_CODES.has(code)
}
