import t from 'tap'
import { isDatabaseUnavailable } from '../../../src/db/errors.js'

// Which database failures the error handler answers 503 + Retry-After (the database is not
// there for us right now) rather than 500 (a fault of ours). PostgreSQL errors carry a SQLSTATE
// in `code`.
t.test('a database that refuses us, for now, is unavailable: 503, not 500', async (t) => {
  const refusals: Array<[string, string]> = [
    ['57P01', 'terminating connection due to administrator command'],
    ['08006', 'connection failure'],
    ['53300', 'too many connections'],
    ['57014', 'canceling statement due to statement timeout'],
    // Found by a review on a real PostgreSQL: each of these gave a 500 while /ready said 503.
    ['28P01', 'password authentication failed for user "postgres"'],
    ['28000', 'role "app" is not permitted to log in'],
    ['3D000', 'database "rolegate" does not exist'],
    ['55000', 'database "rolegate" is not currently accepting connections'],
    // A standby, or a primary demoted by a failover: reads work, every write fails.
    ['25006', 'cannot execute INSERT in a read-only transaction'],
    ['57P04', 'database dropped'],
    // The whole of class 08, not only the code seen first; and the rest of class 53.
    ['08001', 'could not connect to server: Connection refused'],
    ['08003', 'connection does not exist'],
    ['53200', 'out of memory'],
    ['53100', 'could not extend file: No space left on device'],
    ['57P03', 'the database system is starting up']
  ]
  for (const [code, message] of refusals) t.ok(isDatabaseUnavailable({ code, message }), `${code} ${message}`)
})

// serialization-retry.ts runs these again; once its tries are spent the contention is the
// database's, for now, and the client may try later.
t.test('a serialization failure or deadlock left after the retries is unavailability', async (t) => {
  t.ok(isDatabaseUnavailable({ code: '40001', message: 'could not serialize access due to concurrent update' }), '40001')
  t.ok(isDatabaseUnavailable({ code: '40P01', message: 'deadlock detected' }), '40P01')
})

// Failures with no SQLSTATE: the operating system's, for the driver's socket or DNS lookup (it
// names the call in `syscall`), and the drivers' own, which have only a message.
t.test('a database we cannot reach, or a connection that is closed, is unavailability', async (t) => {
  const network: Array<[string, string]> = [['ECONNREFUSED', 'connect'], ['ECONNRESET', 'read'], ['ETIMEDOUT', 'connect'], ['ENOTFOUND', 'getaddrinfo'], ['EAI_AGAIN', 'getaddrinfo']]
  for (const [code, syscall] of network) t.ok(isDatabaseUnavailable({ code, syscall, message: `${syscall} ${code}` }), `${code} from ${syscall}`)
  for (const message of [
    'timeout exceeded when trying to connect',
    'Connection terminated unexpectedly',
    'Client has encountered a connection error and is not queryable',
    'Query read timeout',
    // The embedded database after shutdown began: a request still running gets a 503 too.
    'PGlite is closed',
    'driver has already been destroyed'
  ]) t.ok(isDatabaseUnavailable(new Error(message)), message)
})

t.test('errors of the query itself are not unavailability', async (t) => {
  const faults: Array<[string, string]> = [
    ['42P01', 'relation "users" does not exist'],
    ['42703', 'column "x" does not exist'],
    ['23505', 'duplicate key value violates unique constraint'],
    ['55000', 'currval of sequence "s" is not yet defined in this session']
  ]
  for (const [code, message] of faults) t.notOk(isDatabaseUnavailable({ code, message }), `${code} ${message}`)
  t.notOk(isDatabaseUnavailable({ code: 'ECONNRESET', message: 'aborted' }), 'a client that went away (no syscall)')
})
