import { PGlite, protocol, type messages, type PGliteOptions, type QueryOptions, type Results } from '@electric-sql/pglite'
import pgUtils from 'pg/lib/utils'

const { serialize } = protocol
const DESCRIBE_PORTAL = serialize.describe({ type: 'P' })
const EXECUTE = serialize.execute({})
const SYNC = serialize.sync()
// Prepared statements kept in the backend at once. The application has a few dozen distinct
// statements; the bound only matters for text that varies (IN lists, one-off DDL).
export const MAX_PREPARED = 100

type Parser = (value: string, typeId: number) => unknown

/**
 * PGlite whose query() makes one call into the backend per statement, and parses and plans
 * each distinct statement once.
 *
 * PGlite's own query() makes six calls into the WebAssembly backend per statement (parse,
 * describe statement, bind, describe portal, execute, sync): it asks the backend for the
 * parameter types before serializing the values, and the unnamed statement is parsed and
 * planned every time. Here the five messages go in one buffer, as node-postgres sends them over
 * a socket, against a named prepared statement. Measured on a signin's three statements: ~1.8
 * ms of the event loop before, ~0.6 ms after; the embedded server runs its database on the
 * event loop that serves every request.
 *
 * Values are serialized the way node-postgres serializes them without knowing the types (its
 * own prepareValue), so a statement receives the same text on the embedded database as on a
 * real PostgreSQL server. Result values go through PGlite's type parsers, as in query().
 * A call with QueryOptions (row mode, custom parsers, blobs) takes PGlite's own path.
 */
export class PipelinedPGlite extends PGlite {
  /** SQL text -> name of its prepared statement, least recently used first. */
  readonly #prepared = new Map<string, string>()
  /** Statements to close at the start of the next exchange (evicted, or possibly broken). */
  #closing: string[] = []
  #nextId = 0

  /** Called once the database has closed (the data directory's lock is released there). */
  #afterClose: (() => void) | undefined

  static async open (dataDir: string | undefined, options: PGliteOptions, afterClose?: () => void): Promise<PipelinedPGlite> {
    const pglite = new PipelinedPGlite({ ...options, ...(dataDir === undefined ? {} : { dataDir }) })
    await pglite.waitReady
    pglite.#afterClose = afterClose
    return pglite
  }

  override async close (): Promise<void> {
    try {
      await super.close()
    } finally {
      this.#afterClose?.()
    }
  }

  override async query<T> (query: string, params: any[] = [], options?: QueryOptions): Promise<Results<T>> {
    if (options !== undefined) return await super.query<T>(query, params, options)
    // The same readiness check and locks as PGlite's query(): no other caller's statement or
    // transaction can interleave with this exchange.
    await this._checkReady()
    return await this._runExclusiveTransaction(async () =>
      await this._runExclusiveQuery(async () => await this.#exchange<T>(query, params)))
  }

  async #exchange<T> (query: string, params: unknown[]): Promise<Results<T>> {
    const parts: Uint8Array[] = this.#closing.map(name => serialize.close({ type: 'S', name }))
    this.#closing = []
    let name = this.#prepared.get(query)
    const isNew = name === undefined
    if (name === undefined) {
      name = `rolegate_${this.#nextId++}`
      parts.push(serialize.parse({ name, text: query }))
      if (this.#prepared.size >= MAX_PREPARED) this.#forget(this.#prepared.keys().next().value as string)
    } else {
      this.#prepared.delete(query)
    }
    this.#prepared.set(query, name)
    parts.push(
      serialize.bind({ statement: name, values: params.map(value => pgUtils.prepareValue(value)) }),
      DESCRIBE_PORTAL,
      EXECUTE,
      SYNC
    )
    try {
      // Throws the backend's error (SQLSTATE in `code`, constraint...) after the whole
      // exchange, so the session is back at ReadyForQuery for the next statement.
      const { messages } = await this.execProtocol(Buffer.concat(parts))
      return toResults<T>(messages, this.parsers)
    } catch (err) {
      // The statement may not exist (its parse failed) or may be unusable (a table under it
      // changed: 0A000, "cached plan must not change result type"). Forget it and close it to
      // be sure; closing a statement that does not exist is no error.
      if (isNew || (err as { code?: unknown })?.code === '0A000') this.#forget(query)
      throw err
    }
  }

  #forget (query: string): void {
    const name = this.#prepared.get(query)
    if (name === undefined) return
    this.#prepared.delete(query)
    this.#closing.push(name)
  }
}

/** The rows as objects keyed by column name, as PGlite's query() returns them. */
function toResults<T> (reply: messages.BackendMessage[], parsers: Record<number, Parser>): Results<T> {
  let columns: Array<{ name: string, dataTypeID: number, parser: Parser | undefined }> = []
  const rows: T[] = []
  let affectedRows = 0
  for (const message of reply) {
    if (message.name === 'rowDescription') {
      columns = (message as messages.RowDescriptionMessage).fields
        .map(f => ({ name: f.name, dataTypeID: f.dataTypeID, parser: parsers[f.dataTypeID] }))
    } else if (message.name === 'dataRow') {
      const values = (message as messages.DataRowMessage).fields
      const row: Record<string, unknown> = {}
      columns.forEach((column, i) => {
        const value = values[i] ?? null
        row[column.name] = value === null || column.parser === undefined ? value : column.parser(value, column.dataTypeID)
      })
      rows.push(row as T)
    } else if (message.name === 'commandComplete') {
      affectedRows = countOf((message as messages.CommandCompleteMessage).text)
    }
  }
  return { rows, affectedRows, fields: columns.map(({ name, dataTypeID }) => ({ name, dataTypeID })) }
}

// The row count in a command tag ("INSERT 0 3", "UPDATE 2", "DELETE 0"), as PGlite reads it.
function countOf (tag: string): number {
  const words = tag.split(' ')
  switch (words[0]) {
    case 'INSERT': return Number(words[2])
    case 'UPDATE': case 'DELETE': case 'MERGE': case 'COPY': return Number(words[1])
    default: return 0
  }
}
