import { setTimeout as sleep } from 'node:timers/promises'
import { PostgresDialect, type CompiledQuery, type DatabaseConnection, type Driver, type Kysely, type QueryResult, type Transaction, type TransactionSettings } from 'kysely'
import type { Database } from './schema.js'

// 40001 serialization_failure, 40P01 deadlock_detected: PostgreSQL rolled the whole transaction
// back and says it may succeed if run again. A database whose operator made
// default_transaction_isolation serializable raises 40001 under ordinary contention
// (test/faults/serializable-database.test.ts), which answered 503 before these retries.
const RETRYABLE_CODES = new Set(['40001', '40P01'])

// Tries in all, before the failure goes to the error handler (503 with Retry-After). Requests
// that lock the same row (one user's refreshes, every admin change: underAdminLock) queue on it
// with snapshots taken before the wait, so each holder's commit fails most of the queue and a
// round lets one or two through: 20 at once needed up to 9 tries, and 5 still left 6 to 11 of
// 20 refreshes with a 503. Each retry waits a random 0..BASE_DELAY_MS x 2^(tries so far - 1),
// at most MAX_DELAY_MS, so the ones that collided spread out: 0.75 s of waiting at worst.
export const MAX_ATTEMPTS = 12
const BASE_DELAY_MS = 5
const MAX_DELAY_MS = 100

export function isSerializationFailure (err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && RETRYABLE_CODES.has(code)
}

/**
 * Runs `work` again while it fails with a serialization failure or a deadlock, up to `attempts`
 * times in all; any other error, or the last failure, is thrown. `work` must have no effect
 * outside the database that a second run would repeat: what it computes is discarded with the
 * rolled-back transaction.
 */
export async function retrySerializationFailures<T> (work: () => Promise<T>, attempts = MAX_ATTEMPTS): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (err) {
      if (attempt >= attempts || !isSerializationFailure(err)) throw err
      await sleep(Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1)))
    }
  }
}

/**
 * Every transaction of the application goes through here (eslint.config.js refuses
 * `.transaction()` elsewhere): one that PostgreSQL aborts as a serialization failure or a
 * deadlock is re-run from its start, `fn` included, on a fresh snapshot. So `fn` does only
 * database work and computes: logging, auditing outside `trx` or answering happen after it.
 */
export async function runTransaction<T> (db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  // eslint-disable-next-line no-restricted-syntax -- the one place transactions start
  return await retrySerializationFailures(async () => await db.transaction().execute(fn))
}

/**
 * PostgresDialect, with each statement run outside a transaction retried like a transaction:
 * such a statement is a transaction of its own, rolled back whole, so running it again is
 * running it later. Seen: a signin's session insert, which reads the user row FOR SHARE,
 * failing with 40001 when an admin's role change had just updated that row. A statement inside
 * a transaction is left to fail: only the whole transaction can be re-run (runTransaction).
 */
export class RetryingPostgresDialect extends PostgresDialect {
  override createDriver (): Driver {
    return new RetryingDriver(super.createDriver())
  }
}

class RetryingConnection implements DatabaseConnection {
  inTransaction = false
  constructor (readonly inner: DatabaseConnection) {}

  async executeQuery<R> (query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.inTransaction) return await this.inner.executeQuery<R>(query)
    return await retrySerializationFailures(async () => await this.inner.executeQuery<R>(query))
  }

  streamQuery<R> (query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize)
  }
}

// Hands the wrapped driver its own connections back (PostgresDriver keeps private state on them).
class RetryingDriver implements Driver {
  constructor (private readonly inner: Driver) {}

  async init (): Promise<void> { await this.inner.init() }
  async destroy (): Promise<void> { await this.inner.destroy() }

  async acquireConnection (): Promise<RetryingConnection> {
    return new RetryingConnection(await this.inner.acquireConnection())
  }

  async releaseConnection (connection: RetryingConnection): Promise<void> {
    await this.inner.releaseConnection(connection.inner)
  }

  async beginTransaction (connection: RetryingConnection, settings: TransactionSettings): Promise<void> {
    await this.inner.beginTransaction(connection.inner, settings)
    connection.inTransaction = true
  }

  async commitTransaction (connection: RetryingConnection): Promise<void> {
    try {
      await this.inner.commitTransaction(connection.inner)
    } finally {
      connection.inTransaction = false
    }
  }

  async rollbackTransaction (connection: RetryingConnection): Promise<void> {
    try {
      await this.inner.rollbackTransaction(connection.inner)
    } finally {
      connection.inTransaction = false
    }
  }

  async savepoint (connection: RetryingConnection, ...args: SavepointArgs): Promise<void> {
    await this.inner.savepoint?.(connection.inner, ...args)
  }

  async rollbackToSavepoint (connection: RetryingConnection, ...args: SavepointArgs): Promise<void> {
    await this.inner.rollbackToSavepoint?.(connection.inner, ...args)
  }

  async releaseSavepoint (connection: RetryingConnection, ...args: SavepointArgs): Promise<void> {
    await this.inner.releaseSavepoint?.(connection.inner, ...args)
  }
}

type SavepointArgs = Parameters<NonNullable<Driver['savepoint']>> extends [unknown, ...infer Rest] ? Rest : never
