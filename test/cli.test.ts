import { execFileSync, spawn } from 'node:child_process'
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { freePort } from './faults/harness.js'
import { build, eachDatabase, freshPostgresDatabase, json, post, type DatabaseTarget } from './helper.js'

// The CLI runs as its own process, as an operator would run it. Each start through tap's
// TypeScript loader costs 5-10 s, so the CLI's sources are transpiled once (no type check:
// `npm run typecheck` does that) into a folder under node_modules, where its imports resolve.
// create-embedded.ts is no import: connect.ts runs it as a child process on a new data dir.
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = path.join(ROOT, 'node_modules', '.cache', `rolegate-cli-test-${process.pid}`)
execFileSync(process.execPath, [
  path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), path.join(ROOT, 'src', 'cli.ts'), path.join(ROOT, 'src', 'migrate.ts'), path.join(ROOT, 'src', 'db', 'create-embedded.ts'),
  '--outDir', OUT, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
  '--noCheck', '--skipLibCheck', '--verbatimModuleSyntax'
], { stdio: 'inherit' })
t.teardown(async () => { await rm(OUT, { recursive: true, force: true }) })
const CLI = path.join(OUT, 'src', 'cli.js')
// `npm run db:migrate`, compiled with it.
const MIGRATE = path.join(OUT, 'src', 'migrate.js')
// Real processes on a shared two-core machine: each start can take several seconds under load.
t.setTimeout(600_000)

interface Run { code: number | null, stdout: string, stderr: string }

function runCli (args: string[], env: Record<string, string>, input?: string, script = CLI, timeout?: number, user?: { uid: number, gid: number }): Promise<Run> {
  // NODE_OPTIONS: tap's loaders, which would make each start several seconds slower.
  const { DATABASE_URL: _unused, RG_PASSWORD: _unset, NODE_OPTIONS: _loaders, ...inherited } = process.env
  // tap adds its preload back to every child it sees spawned, and as another user it fails to
  // write tap's process records: env(1) drops it (as test/faults/harness.ts does).
  const [command, ...node] = user === undefined ? [process.execPath] : ['env', '-u', 'NODE_OPTIONS', process.execPath]
  const child = spawn(command, [...node, script, ...args], {
    env: { ...inherited, NODE_ENV: 'test', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout,
    ...user
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.end(input ?? '')
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

async function databaseEnv (t: Test, target: DatabaseTarget): Promise<Record<string, string>> {
  if (target.name === 'postgres') return { DATABASE_URL: await freshPostgresDatabase(t, target.url) }
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-cli-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return { DATA_DIR: dir }
}

eachDatabase(async (t, target) => {
  const env = await databaseEnv(t, target)

  t.test('create an admin and a user, promote the user, list them; the last admin stays', async (t) => {
    const admin = await runCli(['create-user', 'opsadmin', 'ops@example.com', '--roles', 'admin'], { ...env, RG_PASSWORD: 'ops-password-1' })
    t.equal(admin.code, 0, admin.stderr)
    t.match(admin.stdout, /created user opsadmin \(id \d+\) with roles user,admin/)

    const user = await runCli(['create-user', 'helper1', 'helper1@example.com'], env, 'helper-password-1\n')
    t.equal(user.code, 0, user.stderr)
    t.match(user.stdout, /^created user helper1 \(id \d+\) with roles user\n$/, 'without --roles: user only')

    const promoted = await runCli(['set-roles', 'helper1', 'mod'], env)
    t.equal(promoted.code, 0, promoted.stderr)
    t.match(promoted.stdout, /helper1 \(id \d+\) now has roles user,moderator/)

    const listed = await runCli(['list-users', '--json'], env)
    t.equal(listed.code, 0, listed.stderr)
    const page = JSON.parse(listed.stdout)
    t.match(page, {
      items: [
        { username: 'opsadmin', email: 'ops@example.com', roles: ['ROLE_USER', 'ROLE_ADMIN'], disabled: false },
        { username: 'helper1', roles: ['ROLE_USER', 'ROLE_MODERATOR'] }
      ],
      nextCursor: null
    })
    t.notMatch(listed.stdout, /argon2|passwordHash/)
    // A page at a time: a page that ends with the last user is the last page; --q is a prefix.
    const first = JSON.parse((await runCli(['list-users', '--json', '--limit', '1'], env)).stdout)
    t.match(first, { items: [{ username: 'opsadmin' }], nextCursor: String })
    const second = JSON.parse((await runCli(['list-users', '--json', '--limit', '1', '--cursor', first.nextCursor], env)).stdout)
    t.match(second, { items: [{ username: 'helper1' }], nextCursor: null }, 'a full last page has no next cursor')
    const found = JSON.parse((await runCli(['list-users', '--json', '--q', 'help'], env)).stdout)
    t.same(found.items.map((u: { username: string }) => u.username), ['helper1'], '--q filters')

    // Each start on the embedded database costs seconds; the rest runs on PostgreSQL only.
    if (target.name === 'postgres') {
      const lastAdmin = await runCli(['set-roles', 'opsadmin', 'user'], env)
      t.equal(lastAdmin.code, 1)
      t.match(lastAdmin.stderr, /last active admin/)
      // The server sees what the CLI made: the admin signs in with the password from RG_PASSWORD.
      const app = await build(t, target, { databaseUrl: env.DATABASE_URL as string })
      const signin = await post(app, '/api/auth/signin', { username: 'opsadmin', password: 'ops-password-1' })
      t.equal(signin.statusCode, 200)
      t.same(json(signin).roles, ['ROLE_USER', 'ROLE_ADMIN'])
      const audit = await app.inject({ url: '/api/admin/audit?type=roles_changed', headers: { authorization: `Bearer ${json(signin).accessToken}` } })
      t.match(json(audit).items, [{ actorId: null, ip: null, detail: { before: ['user'], after: ['user', 'moderator'] } }])
    }
  })
})

// Refused before any database is opened, so once is enough.
t.test('passwords are never taken from argv', async (t) => {
  const res = await runCli(['create-user', 'argvuser', 'argv@example.com', '--password', 'in-plain-sight'], { DATABASE_URL: 'memory://' })
  t.equal(res.code, 2)
  t.match(res.stderr, /Unknown option '--password'/)
  t.match(res.stdout + res.stderr, /Usage: npm run cli/)
})

// A script that runs `npm run cli -- $COMMAND` with the variable unset must fail, not pass
// having done nothing; asking for help is not a failure.
t.test('no command is a usage error; help is not', async (t) => {
  const none = await runCli([], { DATABASE_URL: 'memory://' })
  t.equal(none.code, 2)
  t.match(none.stderr, /^no command given\n\nUsage: npm run cli/)
  t.equal(none.stdout, '')
  for (const args of [['help'], ['--help'], ['-h']]) {
    const help = await runCli(args, { DATABASE_URL: 'memory://' })
    t.equal(help.code, 0, args.join(' '))
    t.match(help.stdout, /^Usage: npm run cli/, args.join(' '))
  }
})

// Wrong usage, exit 2, before any database is opened: a value an option cannot take, or an
// argument a command does not take (list-users used to ignore it and exit 0).
t.test('a bad option value or an extra argument is a usage error', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['list-users', '--limit', '0'], /^--limit must be 1-100\n\nUsage: npm run cli/],
    [['list-users', '--limit', 'abc'], /^--limit must be 1-100\n\nUsage: npm run cli/],
    [['list-users', '--limit', '101'], /^--limit must be 1-100\n\nUsage: npm run cli/],
    [['list-users', '--cursor', '!!'], /^--cursor is not a valid cursor\n\nUsage: npm run cli/],
    // The id 2147483648, past users.id's integer: the API's 400, and PostgreSQL's out-of-range
    // error with a stack trace from the CLI.
    [['list-users', '--cursor', Buffer.from('2147483648').toString('base64url')], /^--cursor is not a valid cursor\n\nUsage: npm run cli/],
    [['list-users', 'extra'], /^list-users takes no arguments \(got extra\)\n\nUsage: npm run cli/],
    // Found by fuzzing: each ran, doing something other than what was typed.
    [['list-users', '--limit', '0x2'], /^--limit must be 1-100\n\nUsage: npm run cli/],
    [['list-users', '--limit', '1e1'], /^--limit must be 1-100\n\nUsage: npm run cli/],
    [['create-user', 'gina', 'gina@example.com', '--roles', 'admin', '--roles', 'moderator'], /^--roles given twice\n\nUsage: npm run cli/],
    [['set-roles', 'alice', 'moderator', '--roles', 'admin'], /^set-roles takes no --roles\n\nUsage: npm run cli/],
    [['list-users', '--roles', 'admin'], /^list-users takes no --roles\n\nUsage: npm run cli/],
    [['create-user', 'gina', 'gina@example.com', '--limit', '5'], /^create-user takes no --limit\n\nUsage: npm run cli/],
    [['set-roles', 'alice', ''], /^set-roles needs at least one role \(user, moderator, admin\)\n\nUsage: npm run cli/],
    [['set-roles', 'alice', ' , '], /^set-roles needs at least one role \(user, moderator, admin\)\n\nUsage: npm run cli/]
  ]
  for (const [args, message] of cases) {
    const res = await runCli(args, { DATABASE_URL: 'memory://' })
    t.equal(res.code, 2, args.join(' '))
    t.match(res.stderr, message, args.join(' '))
  }
})

t.test('bad input is refused with a message', async (t) => {
  const weak = await runCli(['create-user', 'weakling', 'weak@example.com'], { DATABASE_URL: 'memory://' }, 'short\n')
  t.equal(weak.code, 1)
  t.match(weak.stderr, /password must be at least 8 characters/)
  const common = await runCli(['create-user', 'commoner', 'common@example.com'], { DATABASE_URL: 'memory://' }, 'password123\n')
  t.equal(common.code, 1)
  t.match(common.stderr, /password is one of the most common passwords/)
  // The signup route's address rule, which refuses a quoted local part.
  const quoted = await runCli(['create-user', 'quoted', '"q"@example.com'], { DATABASE_URL: 'memory://', RG_PASSWORD: 'long-enough-1' })
  t.equal(quoted.code, 1)
  t.match(quoted.stderr, /email is not a valid address/)
  const role = await runCli(['create-user', 'roleless', 'r@example.com', '--roles', 'root'], { DATABASE_URL: 'memory://', RG_PASSWORD: 'long-enough-1' })
  t.equal(role.code, 1)
  t.match(role.stderr, /Failed! Role does not exist = root/)
  // The signup route's username rule: its characters and its 3 to 32 of them.
  for (const username of ['ab', 'a'.repeat(33), 'two words']) {
    const res = await runCli(['create-user', username, 'n@example.com'], { DATABASE_URL: 'memory://', RG_PASSWORD: 'long-enough-1' })
    t.equal(res.code, 1, username)
    t.equal(res.stderr, 'username must be 3 to 32 characters of A-Z, a-z, 0-9, _, . and -\n', username)
  }
})

// A server that wants a password the URL does not hold: pg fails the SCRAM exchange, and the
// CLI printed the reason (a stack trace, before) and then waited on the open connection for good.
t.test('a database that wants a password the URL lacks: one line, and the CLI exits', async (t) => {
  const auth = (code: number, payload: string): Buffer => {
    const body = Buffer.from(payload)
    const message = Buffer.alloc(9 + body.length)
    message.write('R', 0)
    message.writeInt32BE(8 + body.length, 1)
    message.writeInt32BE(code, 5)
    body.copy(message, 9)
    return message
  }
  // Just enough of PostgreSQL's protocol: ask for SCRAM-SHA-256, then send its first challenge.
  const scram = createServer((socket) => {
    let messages = 0
    socket.on('data', () => { socket.write(++messages === 1 ? auth(10, 'SCRAM-SHA-256\0\0') : auth(11, 'r=abcdefg,s=c2FsdA==,i=4096')) })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => scram.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { scram.close() })
  const address = scram.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const res = await runCli(['list-users'], { DATABASE_URL: `postgres://ops@127.0.0.1:${port}/app` }, undefined, CLI, 30_000)
  t.equal(res.code, 1, 'exits by itself (null: killed after 30 s)')
  t.equal(res.stderr, `rolegate cli failed: cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string\n`)
})

// pg reads the files DATABASE_URL names when it connects: a missing one printed fs's error and
// its stack, naming no setting.
t.test('a certificate file DATABASE_URL names but that is missing: one line naming DATABASE_URL and the file', async (t) => {
  const port = await freePort()
  const res = await runCli(['list-users'], { DATABASE_URL: `postgres://ops:s3cret-pw@127.0.0.1:${port}/app?sslmode=verify-full&sslrootcert=/missing/root.crt` })
  t.equal(res.code, 1)
  t.equal(res.stderr, `rolegate cli failed: cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): cannot read its sslrootcert file /missing/root.crt: ENOENT: no such file or directory\n`)
})

// The embedded database lives in one process's memory: a user the CLI created while the server
// had the directory open was reported created and then lost (found by fuzzing).
t.test('the CLI refuses a data directory a server has open, and writes nothing', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-cli-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const server = await buildApp(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dir }, false))
  t.teardown(async () => { await server.close() })
  const res = await runCli(['create-user', 'lostuser', 'lost@example.com'], { DATA_DIR: dir, RG_PASSWORD: 'long-enough-1' })
  t.equal(res.code, 1)
  t.match(res.stderr, `rolegate cli failed: the embedded database in ${dir} is in use by process ${process.pid} `)
  t.equal((await post(server, '/api/auth/signin', { username: 'lostuser', password: 'long-enough-1' })).statusCode, 401, 'no such user')
})

// PGlite said `ErrnoError { name: 'ErrnoError', errno: 2 }` (after a line of its own) or
// aborted with a WebAssembly stack, naming neither the file nor DATA_DIR (found by fuzzing).
// Root writes anything, so the CLI runs as nobody, on a data directory that is nobody's (its
// lock file can be written) holding files that are root's.
t.test('an embedded database this user may not write: one line naming DATA_DIR and the file', { skip: process.getuid?.() !== 0 && 'needs root, to run the CLI as another user' }, async (t) => {
  const nobody = { uid: 65534, gid: 65534 }
  const asNobody = async (dir: string): Promise<Run> => await runCli(['list-users'], { DATA_DIR: dir }, undefined, CLI, undefined, nobody)
  const refused = (dir: string, file: string): string => `rolegate cli failed: cannot write the data directory ${dir} (DATA_DIR): EACCES: permission denied, access '${file}'\n`
  const dir = await mkdtemp(path.join(tmpdir(), 'rolegate-cli-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  t.equal((await runCli(['list-users'], { DATA_DIR: dir })).code, 0, 'created by root')
  await chown(dir, nobody.uid, nobody.gid)
  const pgdata = path.join(dir, 'pgdata')
  let res = await asNobody(dir)
  t.equal(res.code, 1)
  t.equal(res.stderr, refused(dir, pgdata), 'the database folder')
  await chown(pgdata, nobody.uid, nobody.gid)
  res = await asNobody(dir)
  t.equal(res.code, 1)
  t.equal(res.stderr, refused(dir, path.join(pgdata, 'postgresql.conf')), 'the configuration PGlite rewrites at each open')
  await chown(path.join(pgdata, 'postgresql.conf'), nobody.uid, nobody.gid)
  res = await asNobody(dir)
  t.equal(res.code, 1)
  t.match(res.stderr, new RegExp(`^rolegate cli failed: cannot write the data directory ${dir} \\(DATA_DIR\\): EACCES: permission denied, access '${pgdata}/[^']+'\n$`), 'a file inside')
  // A database folder not yet created in: its creation failed with PGlite's error and stack.
  const fresh = await mkdtemp(path.join(tmpdir(), 'rolegate-cli-'))
  t.teardown(async () => { await rm(fresh, { recursive: true, force: true }) })
  await mkdir(path.join(fresh, 'pgdata'))
  await chown(fresh, nobody.uid, nobody.gid)
  res = await asNobody(fresh)
  t.equal(res.code, 1)
  t.equal(res.stderr, refused(fresh, path.join(fresh, 'pgdata')), 'an empty database folder')
})

t.test('an unreachable database is one line naming DATABASE_URL, without its password', async (t) => {
  const port = await freePort()
  const res = await runCli(['list-users'], { DATABASE_URL: `postgres://ops:s3cret-pw@127.0.0.1:${port}/app` })
  t.equal(res.code, 1)
  t.equal(res.stderr, `rolegate cli failed: cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): connect ECONNREFUSED 127.0.0.1:${port}\n`)
  // db:migrate says it the same way (it printed pg's error with its stack).
  const migrate = await runCli([], { DATABASE_URL: `postgres://ops:s3cret-pw@127.0.0.1:${port}/app` }, undefined, MIGRATE)
  t.equal(migrate.code, 1)
  t.equal(migrate.stderr, `rolegate db:migrate failed: cannot use the database at DATABASE_URL (127.0.0.1:${port}/app): connect ECONNREFUSED 127.0.0.1:${port}\n`)
})
