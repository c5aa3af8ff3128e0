import { mkdir, mkdtemp, symlink, unlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { connectDatabase } from '../../src/db/connect.js'
import { startupProblem } from '../../src/startup-problem.js'
import { freePort } from '../faults/harness.js'

// Real failures, made by the calls the server makes: listening, resolving, connecting, writing.
async function listenError (port: number, host: string): Promise<unknown> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', resolve).listen(port, host, () => { server.close(); resolve(undefined) })
  })
}

const base = { host: '127.0.0.1', port: 8080, databaseUrl: undefined, dataDir: './data' }
/** `text` as a regular expression that matches it literally (paths hold dots). */
const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

t.test('a port in use names PORT and HOST', async (t) => {
  const taken = createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const address = taken.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  t.equal(startupProblem(await listenError(port, '127.0.0.1'), { ...base, port }),
    `port ${port} on 127.0.0.1 is already in use (PORT, HOST): another server is listening there`)
})

t.test('a HOST that is not this machine\'s, or not an address at all, names HOST', async (t) => {
  t.equal(startupProblem(await listenError(0, '10.99.99.99'), { ...base, host: '10.99.99.99' }), '10.99.99.99 is not an address of this machine (HOST)')
  t.match(startupProblem(await listenError(0, 'no-such-host.invalid'), { ...base, host: 'no-such-host.invalid' }), /^cannot resolve no-such-host\.invalid \(HOST\): /)
})

t.test('an unreachable database names DATABASE_URL without its password', async (t) => {
  const port = await freePort()
  const databaseUrl = `postgres://rolegate:s3cret-pw@127.0.0.1:${port}/app`
  const client = new pg.Client({ connectionString: databaseUrl })
  const err = await client.connect().then(() => undefined, (e: unknown) => e)
  const problem = startupProblem(err, { ...base, databaseUrl })
  t.match(problem, new RegExp(`^cannot use the database at DATABASE_URL \\(127\\.0\\.0\\.1:${port}/app\\): connect ECONNREFUSED`))
  t.notMatch(problem, /s3cret|rolegate@/)
  t.equal(startupProblem(err, { ...base, databaseUrl: 'memory://' }), undefined, 'not blamed on an in-memory database')
})

// A typo in the database's host name: the lookup fails (ENOTFOUND), not the connection.
t.test('a database host that does not resolve names DATABASE_URL without its password', async (t) => {
  const databaseUrl = 'postgres://rolegate:s3cret-pw@no-such-host.invalid:5432/app'
  const client = new pg.Client({ connectionString: databaseUrl })
  const err = await client.connect().then(async () => { await client.end() }, (e: unknown) => e)
  const problem = startupProblem(err, { ...base, databaseUrl })
  t.match(problem, /^cannot use the database at DATABASE_URL \(no-such-host\.invalid:5432\/app\): getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid$/)
  t.notMatch(problem, /s3cret/)
})

// pg reports these without a code: they printed as a stack trace naming no setting.
t.test('a database that accepts the connection but never answers names DATABASE_URL', async (t) => {
  const silent = createServer(() => {})
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => silent.close())
  const address = silent.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const databaseUrl = `postgres://rolegate:s3cret-pw@127.0.0.1:${port}/app`
  const pool = new pg.Pool({ connectionString: databaseUrl, connectionTimeoutMillis: 300 })
  const err = await pool.query('select 1').then(() => undefined, (e: unknown) => e)
  await pool.end()
  const problem = startupProblem(err, { ...base, databaseUrl })
  t.match(problem, new RegExp(`^cannot use the database at DATABASE_URL \\(127\\.0\\.0\\.1:${port}/app\\): Connection terminated due to connection timeout`))
  t.notMatch(problem, /s3cret/)
  for (const message of ['SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string', 'The server does not support SSL connections', 'Connection terminated unexpectedly']) {
    t.equal(startupProblem(new Error(message), { ...base, databaseUrl }), `cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): ${message}`, message)
  }
})

// A server that answers but refuses: here, a database that does not exist (SQLSTATE 3D000).
t.test('a database server that refuses names DATABASE_URL', { skip: process.env.TEST_DATABASE_URL === undefined && 'needs TEST_DATABASE_URL' }, async (t) => {
  const url = new URL(process.env.TEST_DATABASE_URL ?? '')
  url.pathname = '/rolegate_no_such_database'
  const client = new pg.Client({ connectionString: url.href })
  const err = await client.connect().then(async () => { await client.end() }, (e: unknown) => e)
  t.match(startupProblem(err, { ...base, databaseUrl: url.href }),
    /^cannot use the database at DATABASE_URL \([^@]+\/rolegate_no_such_database\): database "rolegate_no_such_database" does not exist$/)
})

// A server that answers but refuses us, as PostgreSQL does: an ErrorResponse carrying the
// SQLSTATE in place of the authentication request. Wrong password (28P01), no such database
// (3D000), a server starting up (57P03): each is about DATABASE_URL, not a stack trace.
t.test('a database server that refuses the connection, whatever the SQLSTATE class, names DATABASE_URL', async (t) => {
  const refusing = (code: string, message: string) => createServer((socket) => {
    socket.once('data', () => {
      const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`)
      const length = Buffer.alloc(4)
      length.writeInt32BE(fields.length + 4)
      socket.end(Buffer.concat([Buffer.from('E'), length, fields]))
    })
  })
  for (const [code, message] of [['28P01', 'password authentication failed for user "rolegate"'], ['3D000', 'database "app" does not exist'], ['57P03', 'the database system is starting up']] as const) {
    const server = refusing(code, message)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const databaseUrl = `postgres://rolegate:s3cret-pw@127.0.0.1:${port}/app`
    const client = new pg.Client({ connectionString: databaseUrl })
    const err = await client.connect().then(async () => { await client.end() }, (e: unknown) => e)
    server.close()
    t.match(err, { code }, `pg reports ${code}`)
    t.equal(startupProblem(err, { ...base, databaseUrl }), `cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): ${message}`, code)
  }
})

// pg reads the files these options name when it opens a connection, and a missing one failed the
// start with fs's error and its stack, naming no setting (found by fuzzing).
t.test('a certificate or key file DATABASE_URL names but cannot be read names DATABASE_URL and the file', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-startup-'))
  const port = await freePort()
  const failure = async (query: string): Promise<string | undefined> => {
    const config = loadConfig({ DATABASE_URL: `postgres://rolegate:s3cret-pw@127.0.0.1:${port}/app?${query}`, LOG_LEVEL: 'silent' }, false)
    const err = await connectDatabase(config).then(async ({ db }) => {
      try { await sql`select 1`.execute(db) } finally { await db.destroy() }
    }).then(() => undefined, (e: unknown) => e)
    return startupProblem(err, config)
  }
  const missing = path.join(dir, 'missing.pem')
  for (const option of ['sslrootcert', 'sslcert', 'sslkey']) {
    t.equal(await failure(`sslmode=require&${option}=${encodeURIComponent(missing)}`),
      `cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): cannot read its ${option} file ${missing}: ENOENT: no such file or directory`, option)
  }
  // fs names no file when the one named is a directory.
  t.equal(await failure(`sslrootcert=${encodeURIComponent(dir)}`),
    `cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): cannot read its sslrootcert file ${dir}: EISDIR: illegal operation on a directory`, 'a directory')
  // pg reads the last of a repeated option.
  const readable = path.join(dir, 'root.crt')
  await writeFile(readable, '')
  t.match(await failure(`sslrootcert=${encodeURIComponent(missing)}&sslrootcert=${encodeURIComponent(readable)}`),
    /: connect ECONNREFUSED/, 'files that can be read: the connection is what fails')
  // pg reads no file for an empty value.
  t.match(await failure('sslrootcert='), /: connect ECONNREFUSED/, 'an empty value')
  // pg escapes a URL with a space before parsing it, which keeps a %2F as it is: the file read
  // is the one pg reads, not <dir>/a b/x/y.crt.
  await mkdir(path.join(dir, 'a b'))
  await writeFile(path.join(dir, 'a b', 'x%2Fy.crt'), '')
  t.match(await failure(`sslrootcert=${dir}/a b/x%2Fy.crt`), /: connect ECONNREFUSED/, 'a name with a space and an escape')
})

t.test('a data directory that cannot be written names DATA_DIR', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-startup-'))
  const file = path.join(dir, 'not-a-directory')
  await writeFile(file, '')
  const dataDir = path.join(file, 'data')
  const err = await mkdir(path.join(dataDir, 'pgdata'), { recursive: true }).then(() => undefined, (e: unknown) => e)
  t.match(startupProblem(err, { ...base, dataDir }), new RegExp(`^cannot write the data directory ${escaped(dataDir)} \\(DATA_DIR\\): ENOTDIR`))
  t.equal(startupProblem(err, { ...base, dataDir: path.join(dir, 'elsewhere') }), undefined, 'only under DATA_DIR')
})

// Found by fuzzing the start-up: each printed a stack trace naming no setting.
t.test('a data directory that is a symlink loop, a name too long or a directory where a file goes names DATA_DIR', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-startup-'))
  const loop = path.join(dir, 'a')
  await symlink(path.join(dir, 'b'), loop)
  await symlink(loop, path.join(dir, 'b'))
  const looped = await mkdir(path.join(loop, 'pgdata'), { recursive: true }).then(() => undefined, (e: unknown) => e)
  t.match(startupProblem(looped, { ...base, dataDir: loop }), new RegExp(`^cannot use the data directory ${escaped(loop)} \\(DATA_DIR\\): ELOOP`))
  const long = path.join(dir, 'x'.repeat(300))
  const tooLong = await mkdir(path.join(long, 'pgdata'), { recursive: true }).then(() => undefined, (e: unknown) => e)
  t.match(startupProblem(tooLong, { ...base, dataDir: long }), new RegExp(`^cannot use the data directory ${escaped(long)} \\(DATA_DIR\\): ENAMETOOLONG`))
  const lockDir = path.join(dir, 'data', 'rolegate.lock')
  await mkdir(lockDir, { recursive: true })
  const isDir = await unlink(lockDir).then(() => undefined, (e: unknown) => e)
  t.match(startupProblem(isDir, { ...base, dataDir: path.join(dir, 'data') }), /\(DATA_DIR\): (EISDIR|EPERM)/)
})

// A socket directory in DATABASE_URL (?host=/run/postgresql) with no server behind it.
t.test('a database Unix socket that does not exist names DATABASE_URL', async (t) => {
  const databaseUrl = 'postgres://rolegate:s3cret-pw@localhost/app?host=/tmp/rolegate-no-such-socket-dir'
  const client = new pg.Client({ connectionString: databaseUrl })
  const err = await client.connect().then(async () => { await client.end() }, (e: unknown) => e)
  const problem = startupProblem(err, { ...base, databaseUrl })
  t.match(problem, /^cannot use the database at DATABASE_URL \(localhost:5432\/app\): connect ENOENT \/tmp\/rolegate-no-such-socket-dir\/\.s\.PGSQL\.5432$/)
  t.notMatch(problem, /s3cret/)
})

t.test('anything else is left to be printed whole', async (t) => {
  t.equal(startupProblem(new Error('something unexpected'), base), undefined)
  t.equal(startupProblem('a string', base), undefined)
  t.equal(startupProblem(null, base), undefined)
})
