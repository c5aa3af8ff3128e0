import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'

const load = (env: Record<string, unknown>) => loadConfig(env, false)

t.test('defaults follow the contract', async (t) => {
  const config = load({})
  t.equal(config.port, 8080)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.dataDir, './data')
  t.equal(config.databaseUrl, undefined)
  t.equal(config.jwt.issuer, 'rolegate')
  t.equal(config.jwt.audience, 'rolegate')
  t.equal(config.jwt.accessTtlSec, 900)
  t.equal(config.refresh.ttlMs, 7 * 86_400_000)
  t.equal(config.rateLimit.enabled, true)
  t.same(config.argon2, { memoryCost: 19456, timeCost: 2, parallelism: 1 })
})

t.test('durations, on/off and proxies are parsed', async (t) => {
  const config = load({ ACCESS_TOKEN_TTL: '5m', REFRESH_TOKEN_TTL: '3600', RATE_LIMIT: 'off', TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' })
  t.equal(config.jwt.accessTtlSec, 300)
  t.equal(config.refresh.ttlMs, 3_600_000)
  t.equal(config.rateLimit.enabled, false)
  t.same(config.trustProxy, ['10.0.0.0/8', '127.0.0.1'])
  t.equal(load({ TRUST_PROXY: 'true' }).trustProxy, true)
})

// rediss:// is Redis over TLS, what managed Redis services hand out; the error message promises
// both schemes.
t.test('REDIS_URL takes redis:// and rediss:// URLs as given', async (t) => {
  t.equal(load({}).rateLimit.redisUrl, undefined)
  t.equal(load({ REDIS_URL: 'redis://cache:6379' }).rateLimit.redisUrl, 'redis://cache:6379')
  t.equal(load({ REDIS_URL: 'rediss://:s3cret@cache.example.com:6380/0' }).rateLimit.redisUrl, 'rediss://:s3cret@cache.example.com:6380/0')
})

t.test('an invalid value names the variable', async (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET/],
    [{ ACCESS_TOKEN_TTL: 'soon' }, /ACCESS_TOKEN_TTL/],
    [{ RATE_LIMIT: 'maybe' }, /RATE_LIMIT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ ARGON2_MEMORY_KIB: '4096' }, /ARGON2_MEMORY_KIB/],
    [{ ADMIN_USERNAME: 'root' }, /ADMIN_USERNAME/],
    [{ NODE_ENV: 'production' }, /JWT_SECRET/]
  ]
  for (const [env, name] of bad) {
    t.throws(() => load(env), { name: 'ConfigError', message: name }, JSON.stringify(env))
  }
})

// One line per variable, saying what would be accepted: ajv alone repeats 'must be equal to
// constant' once per allowed value, without the values.
// Found by fuzzing the configuration: each was accepted and meant something other than written.
t.test('values that would be read as something else are refused, naming the variable', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    // Every token carries both: at 20,000 characters each request with one was a 431.
    [{ JWT_ISSUER: 'i'.repeat(257) }, 'JWT_ISSUER must NOT have more than 256 characters'],
    [{ JWT_AUDIENCE: 'a'.repeat(257) }, 'JWT_AUDIENCE must NOT have more than 256 characters'],
    // Bytes that are not UTF-8 reach the process as U+FFFD: 11 such bytes counted as 33, and
    // any two such secrets of one length were the same key.
    [{ JWT_SECRET: '\ufffd'.repeat(11) }, 'JWT_SECRET holds bytes that are not UTF-8 text (they all read as U+FFFD): use printable characters, e.g. `openssl rand -hex 32`'],
    // A shell expands neither inside quotes: these were directories named " /srv/data " and "~".
    [{ DATA_DIR: ' /srv/data ' }, 'DATA_DIR must not start or end with spaces (got " /srv/data ")'],
    [{ DATA_DIR: '~/data' }, 'DATA_DIR must not start with ~, which only a shell expands: write the path out (got "~/data")']
  ]
  for (const [env, message] of cases) {
    t.throws(() => load(env), { name: 'ConfigError', message: `Invalid configuration: ${message}` }, JSON.stringify(env).slice(0, 80))
  }
  t.equal(load({ JWT_ISSUER: 'i'.repeat(256), DATA_DIR: '/srv/data ~x' }).jwt.issuer.length, 256, 'the longest issuer; a ~ inside a path is a character')
})

t.test('a value outside a fixed set lists the values allowed', async (t) => {
  t.throws(() => load({ LOG_LEVEL: 'loud' }), { message: 'Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")' })
  t.throws(() => load({ RATE_LIMIT: 'maybe' }), { message: 'Invalid configuration: RATE_LIMIT must be one of on, off (got "maybe")' })
  t.throws(() => load({ PORT: '70000', LOG_LEVEL: 'loud' }), { message: /^Invalid configuration: PORT must be <= 65535 \(got "70000"\); LOG_LEVEL must be one of / })
})

// Numbers only, so the value given can be repeated: a secret or a URL is never a number.
t.test('a number that is not one, or out of range, says what was given', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ PORT: 'abc' }, 'PORT must be an integer (got "abc")'],
    [{ PORT: '80.5' }, 'PORT must be an integer (got "80.5")'],
    // ajv alone took these as 18202, 8080 and 8080.
    [{ PORT: '1.8202e4' }, 'PORT must be an integer (got "1.8202e4")'],
    [{ PORT: '0x1F90' }, 'PORT must be an integer (got "0x1F90")'],
    [{ PORT: ' 8080', DB_POOL_SIZE: '1e1' }, 'PORT must be an integer (got " 8080"); DB_POOL_SIZE must be an integer (got "1e1")'],
    [{ PORT: '-1' }, 'PORT must be >= 0 (got "-1")'],
    // 309 digits and more read as Infinity, which passed every range check: an argon2 cost
    // under OWASP's minimum (every signin a 500), a port that crashed the start.
    [{ PORT: '9'.repeat(400) }, `PORT must be an integer of at most 15 digits (got "${'9'.repeat(50)}...")`],
    [{ ARGON2_MEMORY_KIB: '-' + '9'.repeat(400) }, `ARGON2_MEMORY_KIB must be an integer of at most 15 digits (got "-${'9'.repeat(49)}...")`],
    [{ RATE_LIMIT_GLOBAL_MAX: '9007199254740993' }, 'RATE_LIMIT_GLOBAL_MAX must be an integer of at most 15 digits (got "9007199254740993")'],
    [{ DB_POOL_SIZE: '0' }, 'DB_POOL_SIZE must be >= 1 (got "0")']
  ]
  for (const [env, message] of cases) {
    t.throws(() => load(env), { name: 'ConfigError', message: `Invalid configuration: ${message}` }, JSON.stringify(env))
  }
})

// A value of the wrong form says which form is wanted; ajv alone quoted its regular expression
// ('must match pattern "^[0-9]+(ms|s|m|h|d)?$"'). URLs are not echoed: they may hold a password.
t.test('a value of the wrong form says which form is wanted', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ACCESS_TOKEN_TTL: '15 minutes' }, 'ACCESS_TOKEN_TTL must be a duration: a number of seconds, or a number with ms, s, m, h or d (900, 15m, 7d) (got "15 minutes")'],
    [{ OVERLOAD_MAX_EVENT_LOOP_DELAY: '-1s' }, 'OVERLOAD_MAX_EVENT_LOOP_DELAY must be a duration: a number of seconds, or a number with ms, s, m, h or d (900, 15m, 7d) (got "-1s")'],
    [{ DATABASE_URL: 'mysql://app:s3cret@db/app' }, 'DATABASE_URL must be a postgres:// or postgresql:// URL, or memory://'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL must be a redis:// or rediss:// URL'],
    // The drivers refused these later, with a stack trace (ioredis's holding the password).
    [{ REDIS_URL: 'redis://:s3cret@cache:99999' }, 'REDIS_URL must be a redis:// or rediss:// URL with a valid host and port'],
    [{ DATABASE_URL: 'postgres://app:s3cret@db:abc/app' }, 'DATABASE_URL must be a postgres:// or postgresql:// URL with a valid host and port, or memory://'],
    [{ ADMIN_USERNAME: 'root admin', ADMIN_EMAIL: 'a@b.co', ADMIN_PASSWORD: 'Sup3r-Long-Passw0rd!' }, 'ADMIN_USERNAME must be 3 to 32 characters of A-Z, a-z, 0-9, _, . and - (got "root admin")'],
    [{ ADMIN_USERNAME: 'root', ADMIN_EMAIL: 'root', ADMIN_PASSWORD: 'Sup3r-Long-Passw0rd!' }, 'ADMIN_EMAIL must be an email address (got "root")'],
    // The signup route's rule: these were an admin whose address the API itself refuses.
    [{ ADMIN_USERNAME: 'root', ADMIN_EMAIL: 'boss@example.com\u0001', ADMIN_PASSWORD: 'Sup3r-Long-Passw0rd!' }, 'ADMIN_EMAIL must be an email address (got "boss@example.com\\u0001")'],
    [{ ADMIN_USERNAME: 'root', ADMIN_EMAIL: '"q"@b.co', ADMIN_PASSWORD: 'Sup3r-Long-Passw0rd!' }, 'ADMIN_EMAIL must be an email address (got "\\"q\\"@b.co")'],
    [{ ADMIN_USERNAME: 'root', ADMIN_EMAIL: 'a@b', ADMIN_PASSWORD: 'Sup3r-Long-Passw0rd!' }, 'ADMIN_EMAIL must be an email address (got "a@b")']
  ]
  for (const [env, message] of cases) {
    t.throws(() => load(env), { name: 'ConfigError', message: `Invalid configuration: ${message}` }, JSON.stringify(env))
  }
})

// A duration below its minimum used to be taken silently (ACCESS_TOKEN_TTL=0 issued tokens for
// 1 s; a 0 timeout is no timeout to pg and PostgreSQL): now it stops the server, saying the minimum.
t.test('a duration below its minimum names the variable and the minimum', async (t) => {
  const tooSmall: Array<[string, string, string]> = [
    ['ACCESS_TOKEN_TTL', '0', '1s'],
    ['ACCESS_TOKEN_TTL', '999ms', '1s'],
    ['REFRESH_TOKEN_TTL', '0', '1s'],
    ['DB_CONNECT_TIMEOUT', '0', '1s'],
    ['DB_STATEMENT_TIMEOUT', '500ms', '1s'],
    ['RATE_LIMIT_GLOBAL_WINDOW', '0', '1s'],
    ['RATE_LIMIT_SIGNIN_WINDOW', '0', '1s'],
    ['RATE_LIMIT_SIGNUP_WINDOW', '0', '1s'],
    ['RATE_LIMIT_REFRESH_WINDOW', '0', '1s'],
    ['OVERLOAD_SAMPLE_INTERVAL', '5ms', '10ms']
  ]
  for (const [name, value, min] of tooSmall) {
    t.throws(() => load({ [name]: value }), { name: 'ConfigError', message: `Invalid configuration: ${name} must be at least ${min} (got "${value}")` }, `${name}=${value}`)
  }
  // The minimums themselves are accepted, and 0 still turns off what it is documented to.
  const config = load({ ACCESS_TOKEN_TTL: '1s', REFRESH_TOKEN_TTL: '1', OVERLOAD_SAMPLE_INTERVAL: '10ms', REFRESH_TOKEN_REUSE_INTERVAL: '0', OVERLOAD_MAX_EVENT_LOOP_DELAY: '0' })
  t.equal(config.jwt.accessTtlSec, 1)
  t.equal(config.refresh.ttlMs, 1000)
  t.equal(config.overload.sampleIntervalMs, 10)
  t.equal(config.refresh.reuseIntervalMs, 0)
  t.equal(config.overload.maxEventLoopDelayMs, 0)
})

// Above these a duration used to be taken and fail later: REFRESH_TOKEN_TTL=999999999999d made
// every signin a 500 (its expiry date overflowed), and a timer over 2^31-1 ms (OVERLOAD_SAMPLE_INTERVAL=30d)
// is run by Node after 1 ms instead. Now it stops the server, saying the maximum.
t.test('a duration above its maximum names the variable and the maximum', async (t) => {
  const tooLarge: Array<[string, string, string]> = [
    ['DB_CONNECT_TIMEOUT', '25d', '24d'],
    ['DB_CONNECT_TIMEOUT', '2073600001ms', '24d'],
    ['DB_STATEMENT_TIMEOUT', '25d', '24d'],
    ['OVERLOAD_SAMPLE_INTERVAL', '30d', '24d'],
    ['OVERLOAD_MAX_EVENT_LOOP_DELAY', '25d', '24d'],
    ['ACCESS_TOKEN_TTL', '3651d', '3650d'],
    ['REFRESH_TOKEN_TTL', '401d', '400d'],
    ['REFRESH_TOKEN_TTL', '999999999999d', '400d'],
    ['REFRESH_TOKEN_TTL', '9'.repeat(400), '400d'],
    ['REFRESH_TOKEN_REUSE_INTERVAL', '3651d', '3650d'],
    ['RATE_LIMIT_GLOBAL_WINDOW', '3651d', '3650d'],
    ['RATE_LIMIT_SIGNIN_WINDOW', '3651d', '3650d'],
    ['RATE_LIMIT_SIGNUP_WINDOW', '3651d', '3650d'],
    ['RATE_LIMIT_REFRESH_WINDOW', '3651d', '3650d']
  ]
  for (const [name, value, max] of tooLarge) {
    t.throws(() => load({ [name]: value }), { name: 'ConfigError', message: `Invalid configuration: ${name} must be at most ${max} (got "${value}")` }, `${name}=${value.slice(0, 20)}`)
  }
  // The maximums themselves are accepted.
  const config = load({
    DB_CONNECT_TIMEOUT: '24d',
    DB_STATEMENT_TIMEOUT: '24d',
    OVERLOAD_SAMPLE_INTERVAL: '24d',
    OVERLOAD_MAX_EVENT_LOOP_DELAY: '24d',
    ACCESS_TOKEN_TTL: '3650d',
    REFRESH_TOKEN_TTL: '400d',
    REFRESH_TOKEN_REUSE_INTERVAL: '3650d',
    RATE_LIMIT_GLOBAL_WINDOW: '3650d',
    RATE_LIMIT_SIGNIN_WINDOW: '3650d',
    RATE_LIMIT_SIGNUP_WINDOW: '3650d',
    RATE_LIMIT_REFRESH_WINDOW: '3650d'
  })
  const day = 86_400_000
  t.equal(config.db.connectTimeoutMs, 24 * day)
  t.equal(config.db.statementTimeoutMs, 24 * day)
  t.equal(config.overload.sampleIntervalMs, 24 * day)
  t.equal(config.overload.maxEventLoopDelayMs, 24 * day)
  t.equal(config.jwt.accessTtlSec, 3650 * 86_400)
  t.equal(config.refresh.ttlMs, 400 * day)
  t.equal(config.refresh.reuseIntervalMs, 3650 * day)
  t.same(config.rateLimit.signup, { max: 20, windowMs: 3650 * day })
  // Node runs a timer over 2^31-1 ms after 1 ms, and pg's query timer is the statement timeout
  // plus 1 s. (The lifetimes are used end to end in sessions-options.test.ts.)
  t.ok(config.db.statementTimeoutMs + 1000 <= 2 ** 31 - 1, 'the longest statement timeout fits pg\'s timer')
})

t.test('TRUST_PROXY entries must be addresses, CIDRs or proxy-addr names', async (t) => {
  // The last six passed this check and then stopped the start with proxy-addr's stack trace.
  for (const value of ['banana', '10.0.0.1, banana', '10.0.0.0/33', '::1/129', '10.0.0.1/8/2', '300.1.1.1',
    '10.0.0.0/0', '::/0', '10.0.0.0/00', '10.0.0.0/0.0.0.0', '10.0.0.0/255.0.255.0', '10.0.0.0/0.255.255.255']) {
    t.throws(() => load({ TRUST_PROXY: value }), { name: 'ConfigError', message: /^Invalid configuration: TRUST_PROXY / }, value)
  }
  t.same(load({ TRUST_PROXY: 'loopback, uniquelocal, ::1, fd00::/8, 10.0.0.0/255.0.0.0' }).trustProxy,
    ['loopback', 'uniquelocal', '::1', 'fd00::/8', '10.0.0.0/255.0.0.0'])
  // The longest prefix, a single address written as a range, is a range.
  t.same(load({ TRUST_PROXY: '10.0.0.1/32, ::1/128, 10.0.0.2/255.255.255.255' }).trustProxy, ['10.0.0.1/32', '::1/128', '10.0.0.2/255.255.255.255'])
})

// A typo here used to start a server whose CORS never matches any browser's Origin header.
t.test('CORS_ORIGIN must be * or a list of http(s) origins', async (t) => {
  const bad: Array<[string, string]> = [
    ['not-a-url', 'not-a-url'],
    ['https://app.example.com/path', 'https://app.example.com/path'],
    ['https://app.example.com, app.example.com', 'app.example.com'],
    ['localhost:3000', 'localhost:3000'],
    ['ftp://files.example.com', 'ftp://files.example.com'],
    ['https://user:pw@app.example.com', 'https://user:pw@app.example.com'],
    ['https://app.example.com?x=1', 'https://app.example.com?x=1'],
    ['null', 'null'],
    ['*, https://app.example.com', '*'],
    // Compared as a string: a wildcard inside an origin matches only itself.
    ['https://*.example.com', 'https://*.example.com']
  ]
  for (const [value, entry] of bad) {
    t.throws(() => load({ CORS_ORIGIN: value }), {
      name: 'ConfigError',
      message: `Invalid configuration: CORS_ORIGIN must be * alone or a comma-separated list of origins (http or https, a host, an optional port, no path), not ${JSON.stringify(entry)}`
    }, value)
  }
  // Written as a browser sends its Origin header (lower case, no default port, no slash), as
  // the comparison with that header is exact.
  t.same(load({ CORS_ORIGIN: 'https://App.Example.com:443/, http://localhost:3000' }).corsOrigin, ['https://app.example.com', 'http://localhost:3000'])
  t.equal(load({ CORS_ORIGIN: '*' }).corsOrigin, '*')
  t.equal(load({ CORS_ORIGIN: ' ' }).corsOrigin, undefined)
  t.equal(load({}).corsOrigin, undefined)
})

// The contract says 32 bytes, and a key's strength is in its bytes: 20 '€' are 60 bytes (ajv's
// minLength counted 20 characters and refused them), 31 ASCII characters are 31.
t.test('JWT_SECRET is counted in UTF-8 bytes, and never repeated in the message', async (t) => {
  t.equal(load({ JWT_SECRET: '€'.repeat(20) }).jwt.secret, '€'.repeat(20))
  t.equal(load({ JWT_SECRET: '€'.repeat(11) }).jwt.secret, '€'.repeat(11), '11 characters, 33 bytes')
  const tooShort: Array<[string, number]> = [['x'.repeat(31), 31], ['€'.repeat(10), 30], ['', 0]]
  for (const [secret, bytes] of tooShort) {
    t.throws(() => load({ JWT_SECRET: secret }), {
      name: 'ConfigError',
      message: `Invalid configuration: JWT_SECRET must be at least 32 bytes, e.g. \`openssl rand -hex 32\` (got ${bytes} bytes)`
    }, `${secret.length} characters`)
  }
})

t.test('production starts with a long enough secret', async (t) => {
  const config = load({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) })
  t.equal(config.env, 'production')
})

/** Runs the rest of the test in a fresh directory holding `files` (loadConfig reads its .env). */
function workIn (t: Test, files: Record<string, string>): void {
  const cwd = process.cwd()
  process.chdir(t.testdir(files))
  t.teardown(() => { process.chdir(cwd) })
}

t.test('a .env file in the working directory is honoured, the real environment wins', async (t) => {
  workIn(t, { '.env': 'JWT_AUDIENCE=from-dotenv\nJWT_ISSUER=from-dotenv\n' })
  const saved = process.env.JWT_ISSUER
  process.env.JWT_ISSUER = 'from-environment'
  t.teardown(() => {
    if (saved === undefined) delete process.env.JWT_ISSUER
    else process.env.JWT_ISSUER = saved
  })
  const config = loadConfig()
  t.equal(config.jwt.audience, 'from-dotenv')
  t.equal(config.jwt.issuer, 'from-environment')
})

// The integer and URL checks read the environment only: PORT=0x1F90 in .env started on 8080,
// where the same line in the environment stops the start.
t.test('a .env file\'s values are checked as the environment\'s are', async (t) => {
  workIn(t, { '.env': 'PORT=0x1F90\nREDIS_URL=redis://cache:99999\n' })
  t.throws(() => loadConfig(), {
    name: 'ConfigError',
    message: 'Invalid configuration: PORT must be an integer (got "0x1F90")'
  })
  t.throws(() => loadConfig({ PORT: '8080' }), {
    name: 'ConfigError',
    message: 'Invalid configuration: REDIS_URL must be a redis:// or rediss:// URL with a valid host and port'
  })
})

// Found by fuzzing the configuration: these started without a word. Warnings, not refusals: a
// deployment whose clients never refresh may give access tokens the refresh token's lifetime
// or more, and the longest lifetimes allowed combine both (above, and end to end in
// sessions-options.test.ts). The values are durations, never secrets: they are repeated.
t.test('token lifetimes that contradict each other are warnings naming both variables', async (t) => {
  const accessNotShorter = (access: string, refresh: string) => `ACCESS_TOKEN_TTL=${access} is not shorter than REFRESH_TOKEN_TTL=${refresh}: ` +
    'the refresh token expires no later than the access token, so a client whose access token has expired must sign in again instead of refreshing'
  const reuseNotShorter = (reuse: string, refresh: string) => `REFRESH_TOKEN_REUSE_INTERVAL=${reuse} is not shorter than REFRESH_TOKEN_TTL=${refresh}: ` +
    'a used refresh token is accepted again until it expires, so a copied one is never caught as reused while it still works'
  t.same(load({}).warnings, [], 'the defaults')
  t.same(load({ ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '1d', REFRESH_TOKEN_REUSE_INTERVAL: '30s' }).warnings, [])
  t.same(load({ ACCESS_TOKEN_TTL: '8d' }).warnings, [accessNotShorter('8d', '7d')], 'a default is named with its value')
  t.same(load({ ACCESS_TOKEN_TTL: '3600', REFRESH_TOKEN_TTL: '1h' }).warnings, [accessNotShorter('3600', '1h')], 'equal, as written')
  t.same(load({ REFRESH_TOKEN_TTL: '1h', REFRESH_TOKEN_REUSE_INTERVAL: '2h' }).warnings, [reuseNotShorter('2h', '1h')])
  t.same(load({ ACCESS_TOKEN_TTL: '30s', REFRESH_TOKEN_TTL: '60', REFRESH_TOKEN_REUSE_INTERVAL: '1m' }).warnings, [reuseNotShorter('1m', '60')], 'equal: the window covers the token\'s whole life')
  t.same(load({ ACCESS_TOKEN_TTL: '3650d', REFRESH_TOKEN_TTL: '400d', REFRESH_TOKEN_REUSE_INTERVAL: '3650d' }).warnings,
    [accessNotShorter('3650d', '400d'), reuseNotShorter('3650d', '400d')], 'the longest values allowed start, with both warnings')
})

// Found by fuzzing the configuration: JWT_SECRTE=... or ACESS_TOKEN_TTL=1h started the server on
// the defaults without a hint. Only the names are said, never a value: it may be a secret.
t.test('a name close to one rolegate reads is a warning saying which, without its value', async (t) => {
  const cases: Array<[string, string]> = [
    ['JWT_SECRTE', 'JWT_SECRET'],
    ['ACESS_TOKEN_TTL', 'ACCESS_TOKEN_TTL'],
    ['DATABSE_URL', 'DATABASE_URL'],
    ['LOGLEVEL', 'LOG_LEVEL'],
    ['ADMIN_PASWORD', 'ADMIN_PASSWORD'],
    ['REFRESH_TOKEN_REUSE_INTERVALL', 'REFRESH_TOKEN_REUSE_INTERVAL'],
    ['Jwt_Secret', 'JWT_SECRET'],
    ['cors_origin', 'CORS_ORIGIN'],
    ['CORS_ORIGINS', 'CORS_ORIGIN'],
    ['TRUST_PROXIES', 'TRUST_PROXY'],
    // Short names, where two edits reach ordinary ones (HOME, PGHOST, PGPORT): case and plural only.
    ['port', 'PORT'],
    ['HOSTS', 'HOST']
  ]
  for (const [name, meant] of cases) {
    const config = load({ [name]: `value-of-${name}` })
    t.same(config.warnings, [`${name} is set but not read; did you mean ${meant}?`], name)
  }
  t.same(load({ JWT_SECRTE: 's'.repeat(40), ACESS_TOKEN_TTL: '1h', JWT_SECRET: 'x'.repeat(32) }).warnings, [
    'JWT_SECRTE is set but not read; did you mean JWT_SECRET?',
    'ACESS_TOKEN_TTL is set but not read; did you mean ACCESS_TOKEN_TTL?'
  ], 'one line each, whether or not the name meant is set too')
})

// What an ordinary host, container or CI job sets, and tools beside rolegate read, must not
// cry wolf: a warning there would teach operators to ignore the real ones.
const ORDINARY_NAMES = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'LANG', 'LANGUAGE', 'LC_ALL', 'TZ', 'PWD', 'OLDPWD', 'SHLVL', 'HOSTNAME',
  'TMPDIR', 'TEMP', 'TMP', 'EDITOR', 'PAGER', 'DISPLAY', 'XDG_RUNTIME_DIR', 'XDG_DATA_DIRS', 'XDG_CONFIG_HOME', 'SSH_AUTH_SOCK',
  'COLORTERM', 'LS_COLORS', 'DEBUG', 'FORCE_COLOR', 'NO_COLOR', 'CI',
  'NODE_OPTIONS', 'NODE_PATH', 'NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED', 'NODE_DEBUG', 'NODE_VERSION',
  'NODE_NO_WARNINGS', 'NODE_V8_COVERAGE', 'NODE_COMPILE_CACHE', 'UV_THREADPOOL_SIZE', 'YARN_VERSION', 'NVM_DIR', 'PNPM_HOME',
  'npm_config_loglevel', 'npm_config_cache', 'npm_config_registry', 'npm_lifecycle_event', 'npm_package_name',
  'npm_package_version', 'npm_execpath', 'npm_node_execpath', 'npm_command', 'INIT_CWD',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE', 'PGAPPNAME', 'PGDATA', 'PGCONNECT_TIMEOUT', 'PGTZ',
  'POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB', 'POSTGRES_HOST', 'POSTGRES_PORT', 'POSTGRES_URL',
  'REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'REDIS_DB', 'REDIS_TLS_URL', 'DATABASE_PRIVATE_URL',
  // Kubernetes, for services named kubernetes, rolegate, redis, postgres and db.
  ...['KUBERNETES', 'ROLEGATE', 'REDIS', 'POSTGRES', 'DB'].flatMap(service => ['SERVICE_HOST', 'SERVICE_PORT', 'PORT',
    'PORT_443_TCP', 'PORT_443_TCP_ADDR', 'PORT_443_TCP_PORT', 'PORT_443_TCP_PROTO'].map(suffix => `${service}_${suffix}`)),
  'GITHUB_ACTIONS', 'GITHUB_TOKEN', 'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_REF_NAME', 'GITHUB_HEAD_REF', 'GITHUB_BASE_REF',
  'GITHUB_WORKSPACE', 'GITHUB_RUN_ID', 'GITHUB_RUN_NUMBER', 'GITHUB_EVENT_NAME', 'GITHUB_EVENT_PATH', 'GITHUB_REPOSITORY',
  'GITHUB_ACTOR', 'GITHUB_JOB', 'GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'GITHUB_SERVER_URL',
  'GITHUB_API_URL', 'GITHUB_WORKFLOW', 'RUNNER_OS', 'RUNNER_ARCH', 'RUNNER_NAME', 'RUNNER_TEMP', 'RUNNER_TOOL_CACHE',
  'RUNNER_DEBUG', 'ACTIONS_RUNTIME_URL', 'ACTIONS_RUNTIME_TOKEN', 'ACTIONS_CACHE_URL', 'ImageOS', 'ImageVersion',
  'GITLAB_CI', 'CI_COMMIT_SHA', 'CI_COMMIT_REF_NAME', 'CI_COMMIT_BRANCH', 'CI_JOB_ID', 'CI_JOB_NAME', 'CI_JOB_TOKEN',
  'CI_PIPELINE_ID', 'CI_PROJECT_DIR', 'CI_PROJECT_NAME', 'CI_REGISTRY', 'CI_REGISTRY_IMAGE', 'CI_SERVER_URL',
  'CI_DEFAULT_BRANCH', 'CI_ENVIRONMENT_NAME', 'CI_NODE_INDEX', 'CI_NODE_TOTAL', 'CI_BUILDS_DIR', 'CI_API_V4_URL',
  'CIRCLECI', 'CIRCLE_SHA1', 'CIRCLE_BRANCH', 'CIRCLE_BUILD_NUM', 'CIRCLE_WORKING_DIRECTORY', 'TRAVIS', 'TRAVIS_BRANCH',
  'JENKINS_URL', 'JENKINS_HOME', 'BUILD_NUMBER', 'BUILD_ID', 'BUILD_URL', 'JOB_NAME', 'WORKSPACE', 'NODE_NAME', 'GIT_COMMIT',
  'BUILDKITE', 'BUILDKITE_BRANCH', 'BUILDKITE_COMMIT', 'TF_BUILD', 'BUILD_SOURCEVERSION', 'AGENT_OS', 'BITBUCKET_COMMIT',
  'DRONE', 'CODEBUILD_BUILD_ID', 'DYNO', 'HEROKU_APP_NAME', 'RENDER', 'RENDER_EXTERNAL_URL', 'FLY_APP_NAME', 'FLY_REGION',
  'RAILWAY_ENVIRONMENT', 'VERCEL_ENV', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'ECS_CONTAINER_METADATA_URI_V4', 'GOOGLE_APPLICATION_CREDENTIALS', 'K_SERVICE',
  'DOCKER_HOST', 'COMPOSE_PROJECT_NAME', 'container', 'SENTRY_DSN', 'OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT',
  'DD_ENV', 'DD_SERVICE', 'DD_AGENT_HOST', 'ENVIRONMENT', 'APP_ENV', 'LOG_FORMAT',
  // Read elsewhere in this project: the CLI's password, the tests' database, tap's own.
  'RG_PASSWORD', 'TEST_DATABASE_URL', 'FASTIFY_AUTOLOAD_TYPESCRIPT', 'TAP', 'TAP_CHILD_ID', 'TAP_JOB_ID', 'TS_NODE_TRANSPILE_ONLY'
]

t.test('the names an ordinary environment sets are no warning: this machine\'s, and a CI job\'s', async (t) => {
  workIn(t, {})
  t.ok(Object.keys(process.env).length > 10, 'this process\'s environment is read')
  t.same(loadConfig(Object.fromEntries(ORDINARY_NAMES.map(name => [name, 'x']))).warnings, [])
})

t.test('a misspelled name in the .env file is a warning too', async (t) => {
  workIn(t, { '.env': 'JWT_SECRTE=0123456789abcdef0123456789abcdef\n' })
  t.same(loadConfig().warnings, ['JWT_SECRTE is set but not read; did you mean JWT_SECRET?'])
})

// TRUST_PROXY=true believes the whole X-Forwarded-For chain, so a client that reaches the
// server directly, or through a proxy that appends to the header, picks the address its rate
// limits key on. Some deployments mean it (a proxy that replaces the header), so it starts, but
// the operator is told what a list of addresses would keep.
t.test('TRUST_PROXY=true is a warning at start; a list of proxies or false is none', async (t) => {
  t.same(load({ TRUST_PROXY: 'true' }).warnings, [
    'TRUST_PROXY=true believes every X-Forwarded-For entry: a client that reaches the server directly, or through a proxy that appends to the header, ' +
    'picks its own address and so its rate limits; list the proxies\' addresses or CIDRs instead (TRUST_PROXY=10.0.0.0/8)'
  ])
  t.same(load({ TRUST_PROXY: '10.0.0.1,loopback' }).warnings, [])
  t.same(load({ TRUST_PROXY: 'false' }).warnings, [])
})
