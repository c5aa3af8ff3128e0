import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import type { Kysely } from 'kysely'
import { ConfigError, loadConfig, type Config } from './config.js'
import { startupProblem } from './startup-problem.js'
import { connectDatabase } from './db/connect.js'
import { uniqueViolationMessage } from './db/errors.js'
import { migrateToLatest } from './db/migrate.js'
import type { Database } from './db/schema.js'
import { encodeCursor, decodeCursor } from './cursor.js'
import { INT4_MAX } from './schemas/admin.js'
import { passwordProblem } from './password-policy.js'
import { createPasswordHasher } from './passwords.js'
import { listUsers, setUserRoles } from './repositories/admin-users.js'
import { createUser, findCredentialsByUsername } from './repositories/users.js'
import { normaliseRoles, parseRole, toApiRole, type Role } from './roles.js'
import { isEmailAddress, USERNAME_PATTERN, USERNAME_PATTERN_IN_WORDS } from './schemas/auth.js'

// The operator's tool: `npm run cli -- <command>`, against the database the server is
// configured with (DATABASE_URL, or the embedded one in DATA_DIR; stop the server first for
// the embedded one, which one process at a time may open). Passwords come from RG_PASSWORD or
// standard input, never from argv, where `ps` and shell history would show them.
const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  create-user <username> <email> [--roles admin,moderator]
      Creates a user (roles default to user). Password: RG_PASSWORD, or one line on stdin.
  set-roles <username> <roles>
      Replaces a user's roles, e.g. set-roles alice moderator,admin. Refuses to remove the last admin.
  list-users [--q prefix] [--limit n] [--cursor c] [--json]
      Lists users in id order, a page at a time.
  help
`

class UsageError extends Error {}
class CliError extends Error {}

// The signup route's rule (its schema's pattern and lengths), as one expression.
const USERNAME = new RegExp(USERNAME_PATTERN)

/** `admin,mod` -> roles; the API's message for an unknown name. */
function splitRoles (text: string | undefined): Role[] {
  const roles: Role[] = []
  for (const name of (text ?? '').split(',').map(r => r.trim()).filter(r => r !== '')) {
    const role = parseRole(name)
    if (role === undefined) throw new CliError(`Failed! Role does not exist = ${name}`)
    roles.push(role)
  }
  return normaliseRoles(roles)
}

async function readPassword (): Promise<string> {
  const fromEnv = process.env.RG_PASSWORD
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  if (process.stdin.isTTY) process.stderr.write('Password (visible as you type; or set RG_PASSWORD): ')
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  return await new Promise((resolve) => {
    lines.once('line', (line) => { resolve(line); lines.close() })
    // Nothing on stdin: an empty password, refused by the length check. (close() above also
    // emits 'close', hence resolve first.)
    lines.once('close', () => { resolve('') })
  })
}

async function withDatabase<T> (config: Config, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const { db } = await connectDatabase(config)
  try {
    await migrateToLatest(db)
    return await fn(db)
  } finally {
    await db.destroy()
  }
}

async function createUserCommand (config: Config, args: string[], roles: string | undefined): Promise<void> {
  const [username, email, ...rest] = args
  if (username === undefined || email === undefined || rest.length > 0) throw new UsageError('create-user takes <username> <email>')
  if (!USERNAME.test(username)) throw new CliError(`username must be ${USERNAME_PATTERN_IN_WORDS}`)
  if (!isEmailAddress(email)) throw new CliError('email is not a valid address')
  const parsedRoles = splitRoles(roles)
  const password = await readPassword()
  // The same policy as signup: length and the common-password list.
  const problem = passwordProblem(password)
  if (problem !== undefined) throw new CliError(`password ${problem} (RG_PASSWORD or stdin)`)
  const passwordHash = await createPasswordHasher(config.argon2).hash(password)
  await withDatabase(config, async (db) => {
    try {
      const id = await createUser(db, { username, email, passwordHash, roles: parsedRoles },
        { actorId: null, ip: null, detail: { via: 'cli', roles: parsedRoles } })
      console.log(`created user ${username} (id ${id}) with roles ${parsedRoles.join(',')}`)
    } catch (err) {
      const conflict = uniqueViolationMessage(err)
      if (conflict !== undefined) throw new CliError(conflict)
      throw err
    }
  })
}

async function setRolesCommand (config: Config, args: string[]): Promise<void> {
  const [username, roles, ...rest] = args
  if (username === undefined || roles === undefined || rest.length > 0) throw new UsageError('set-roles takes <username> <roles>')
  // An empty list (an unset shell variable, say) would have taken every role above user away.
  if (roles.split(',').every(role => role.trim() === '')) throw new UsageError('set-roles needs at least one role (user, moderator, admin)')
  const parsedRoles = splitRoles(roles)
  await withDatabase(config, async (db) => {
    const user = await findCredentialsByUsername(db, username)
    if (user === undefined) throw new CliError(`no user named ${username}`)
    const result = await setUserRoles(db, { actorId: null, ip: null }, user.id, parsedRoles)
    if (result.kind === 'last_admin') throw new CliError(`refused: ${user.username} is the last active admin; make another admin first`)
    if (result.kind !== 'done') throw new CliError(`no user named ${username}`)
    console.log(`${result.user.username} (id ${result.user.id}) now has roles ${result.user.roles.join(',')}`)
  })
}

async function listUsersCommand (config: Config, args: string[], opts: { q?: string, limit?: string, cursor?: string, json?: boolean }): Promise<void> {
  // Wrong usage (exit 2), like a missing argument elsewhere: nothing was looked up yet.
  if (args.length > 0) throw new UsageError(`list-users takes no arguments (got ${args.join(' ')})`)
  // Digits only: Number() reads 0x2 and 1e1 too.
  const limit = opts.limit === undefined ? 20 : /^[0-9]{1,3}$/.test(opts.limit) ? Number(opts.limit) : NaN
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new UsageError('--limit must be 1-100')
  let afterId: number | undefined
  try {
    // Bounded as the API's users list bounds it: users.id is an integer column.
    afterId = decodeCursor(opts.cursor, INT4_MAX)
  } catch {
    throw new UsageError('--cursor is not a valid cursor')
  }
  await withDatabase(config, async (db) => {
    const rows = await listUsers(db, { limit: limit + 1, ...(afterId !== undefined ? { afterId } : {}), ...(opts.q !== undefined ? { q: opts.q } : {}) })
    const users = rows.slice(0, limit)
    const last = users[users.length - 1]
    const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(last.id) : null
    if (opts.json === true) {
      const items = users.map(u => ({ ...u, roles: u.roles.map(toApiRole), createdAt: u.createdAt.toISOString() }))
      console.log(JSON.stringify({ items, nextCursor }, null, 2))
      return
    }
    console.log(['id', 'username', 'email', 'roles', 'disabled', 'createdAt'].join('\t'))
    for (const u of users) {
      console.log([u.id, u.username, u.email, u.roles.join(','), u.disabled ? 'disabled' : 'active', u.createdAt.toISOString()].join('\t'))
    }
    if (nextCursor !== null) console.log(`more: npm run cli -- list-users --cursor ${nextCursor}`)
  })
}

// The options each command reads. parseArgs takes every option for every command and keeps the
// last of a repeated one: `set-roles alice moderator --roles admin` set moderator, and
// `--roles admin --roles moderator` meant moderator, both without a word.
const COMMAND_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  'create-user': ['roles'],
  'set-roles': [],
  'list-users': ['q', 'limit', 'cursor', 'json']
}

async function main (argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    tokens: true,
    options: {
      roles: { type: 'string' },
      q: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  const [command, ...args] = positionals
  if (command === 'help' || values.help === true) {
    process.stdout.write(USAGE)
    return
  }
  if (command === undefined) throw new UsageError('no command given')
  const given = tokens.flatMap(token => token.kind === 'option' ? [token.name] : [])
  const allowed = COMMAND_OPTIONS[command]
  for (const [i, name] of given.entries()) {
    if (given.indexOf(name) !== i) throw new UsageError(`--${name} given twice`)
    if (allowed !== undefined && !allowed.includes(name)) throw new UsageError(`${command} takes no --${name}`)
  }
  const config = loadConfig()
  switch (command) {
    case 'create-user': return await createUserCommand(config, args, values.roles)
    case 'set-roles': return await setRolesCommand(config, args)
    case 'list-users': return await listUsersCommand(config, args, values)
    default: throw new UsageError(`unknown command ${command}`)
  }
}

function knownProblem (err: unknown): string | undefined {
  try {
    return startupProblem(err, loadConfig())
  } catch {
    return undefined
  }
}

try {
  await main(process.argv.slice(2))
} catch (err) {
  const e = err as Error & { code?: string }
  if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS') === true) {
    console.error(`${e.message}\n\n${USAGE}`)
    process.exitCode = 2
  } else if (err instanceof CliError || err instanceof ConfigError) {
    console.error(e.message)
    process.exitCode = 1
  } else {
    // The server's one-line reasons (the database unreachable, DATA_DIR not writable).
    console.error('rolegate cli failed:', knownProblem(err) ?? err)
    process.exitCode = 1
  }
}
// A failure can leave a connection open (pg's, after a password exchange it could not finish),
// which would keep the process waiting for good: the reason is printed, so end here.
if (process.exitCode !== undefined && process.exitCode !== 0) process.exit()
