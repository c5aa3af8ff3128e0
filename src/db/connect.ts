import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import v8 from 'node:v8'
import { Kysely } from 'kysely'
import type { Config } from '../config.js'
import { lockDataDir } from './data-dir-lock.js'
import { checkPgdataWritable, unwritableIn } from './pgdata-access.js'
import { RetryingPostgresDialect } from './serialization-retry.js'
import type { Database } from './schema.js'

export interface Connection {
  db: Kysely<Database>
  kind: 'postgres' | 'embedded' | 'memory'
}

export async function connectDatabase (config: Config): Promise<Connection> {
  const url = config.databaseUrl
  if (url !== undefined && url !== 'memory://') {
    checkDatabaseUrlFiles(url)
    // Loaded only here, as PGlite is below: each deployment keeps one database driver in memory.
    const { default: pg } = await import('pg')
    const pool = new pg.Pool({
      connectionString: url,
      max: config.db.poolSize,
      connectionTimeoutMillis: config.db.connectTimeoutMs,
      // A statement that hangs (lock storm, failover) fails instead of holding the request.
      statement_timeout: config.db.statementTimeoutMs,
      query_timeout: config.db.statementTimeoutMs + 1000,
      idleTimeoutMillis: 30_000,
      // A server that vanished without closing the socket (failover, network cut) is noticed.
      keepAlive: true
    })
    // An idle client losing its server (restart, failover) emits 'error' on the pool; without
    // a listener that would crash the process. The next query reconnects.
    pool.on('error', () => {})
    // A checked-out client has no pool listener (pg-pool removes it on acquire): if the server
    // goes away between two statements of a transaction, its 'error' event would crash the
    // process. The failure still reaches the caller at its next query, and pg-pool discards
    // the broken client on release.
    pool.on('connect', (client) => { client.on('error', () => {}) })
    return { db: new Kysely<Database>({ dialect: new RetryingPostgresDialect({ pool }) }), kind: 'postgres' }
  }
  // The embedded database is loaded lazily: a deployment on real PostgreSQL never pays for it.
  // PGlite is PostgreSQL as ~10 MB of WebAssembly. V8 first compiles it with its baseline
  // compiler (Liftoff), then recompiles hot functions with its optimizing one, which took
  // 45-65 MB more resident memory for little speed: signins/s the same in interleaved runs,
  // and a signin's three statements ~0.86 ms against ~0.98 ms on Liftoff alone. The flag is
  // process-wide but only affects WebAssembly compiled after it, and the server runs no
  // other WebAssembly.
  v8.setFlagsFromString('--liftoff-only')
  const [{ PipelinedPGlite }, { PGliteDialect }] = await Promise.all([
    import('./pipelined-pglite.js'),
    import('kysely-pglite-dialect')
  ])
  // Sized for an auth database, whose working set is a few index pages per request: every
  // buffer PostgreSQL sets up lives in this process's memory, and pages it does not keep are
  // read back from the operating system's file cache. Measured on a new server's resident
  // memory: shared_buffers 16 MB -> 4 MB saves ~14 MB; max_connections 100 -> 5 ~2 MB more
  // (PGlite serves one connection; the rest sizes per-connection tables that stay empty).
  const options = { postgresqlconf: ['shared_buffers=4MB', 'max_connections=5'] }
  if (url === 'memory://') {
    const pglite = await PipelinedPGlite.open(undefined, options)
    return { db: new Kysely<Database>({ dialect: new PGliteDialect(pglite) }), kind: 'memory' }
  }
  const dir = path.resolve(config.dataDir, 'pgdata')
  await mkdir(dir, { recursive: true })
  // One process at a time (data-dir-lock.ts), released when the database closes.
  const release = lockDataDir(config.dataDir)
  try {
    checkPgdataWritable(dir)
    if (!existsSync(path.join(dir, 'PG_VERSION'))) await createInChildProcess(dir)
    const pglite = await PipelinedPGlite.open(dir, options, release).catch((err: unknown) => { throw unwritableIn(dir) ?? err })
    return { db: new Kysely<Database>({ dialect: new PGliteDialect(pglite) }), kind: 'embedded' }
  } catch (err) {
    release()
    throw err
  }
}

// Options of a postgres:// URL that name files, which pg (pg-connection-string) reads each time
// it opens a connection. One it cannot read failed the start with fs's bare error and stack.
const URL_FILE_OPTIONS = ['sslcert', 'sslkey', 'sslrootcert']

/**
 * Reads, now, each file DATABASE_URL names, so that one that cannot be read stops the start with
 * a line naming the option and the file (src/startup-problem.ts adds DATABASE_URL). Reads what
 * pg would: the last of a repeated option, none for an empty value, and the URL escaped as
 * pg-connection-string escapes one with a space or a stray % (else a name with both could
 * differ from pg's and refuse a file pg reads).
 */
function checkDatabaseUrlFiles (url: string): void {
  const escaped = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url
  const files = new Map<string, string>()
  for (const [name, value] of new URL(escaped).searchParams) if (URL_FILE_OPTIONS.includes(name)) files.set(name, value)
  for (const [option, file] of files) {
    if (file === '') continue
    try {
      readFileSync(file)
    } catch (err) {
      // fs's message without its trailing ", open '<file>'": the file is named once, and always
      // (fs names none for a directory).
      const reason = String((err as Error).message).replace(/, [a-z]+( '.*')?$/, '')
      throw Object.assign(new Error(`cannot read its ${option} file ${file}: ${reason}`), { code: 'ERR_DATABASE_URL_FILE' })
    }
  }
}

/**
 * Runs create-embedded from this folder, with this file's extension and this process's Node
 * options: .js when built, .ts under the test runner (whose loader is in the options). Not the
 * debugger's: a child would compete for its port, or wait for a debugger with --inspect-brk.
 */
async function createInChildProcess (dir: string): Promise<void> {
  const script = new URL(`./create-embedded${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url)
  const nodeOptions = process.execArgv.filter(option => !option.startsWith('--inspect'))
  try {
    await promisify(execFile)(process.execPath, [...nodeOptions, '--liftoff-only', fileURLToPath(script), dir], { timeout: 120_000 })
  } catch (err) {
    const { stderr } = err as { stderr?: string }
    throw new Error(`could not create the embedded database in ${dir}: ${stderr?.trim() ?? String(err)}`)
  }
}
