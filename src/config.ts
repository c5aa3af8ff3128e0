import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { getHeapStatistics } from 'node:v8'
import envSchema from 'env-schema'
import { Type, type Static } from '@sinclair/typebox'
import { DURATION_PATTERN, parseDurationMs } from './duration.js'
import { ConfigError } from './config-error.js'
import { lifetimeWarnings, trustProxyWarnings, unreadNameWarnings } from './config-warnings.js'
import { parseCorsOrigin, parseTrustProxy } from './config-lists.js'
import { allowedValues, quoted, type SchemaIssue } from './errors.js'
import { passwordProblem } from './password-policy.js'
import { isEmailAddress, USERNAME_PATTERN, USERNAME_PATTERN_IN_WORDS } from './schemas/auth.js'

// Every variable the contract names, validated at start: an invalid value stops the server
// with a message naming the variable (configProblems below).
const Duration = (dflt: string) => Type.String({ pattern: DURATION_PATTERN, default: dflt })
const DATABASE_URL_PATTERN = '^(postgres(ql)?://.+|memory://)$'
const REDIS_URL_PATTERN = '^rediss?://.+'
// What each pattern means, for the message when a value does not match it (ajv's own quotes the
// regular expression), and whether the value given may be repeated in it: never a URL, which
// may carry a password.
const PATTERN_MEANING: Readonly<Record<string, { means: string, echo: boolean }>> = {
  [DURATION_PATTERN]: { means: 'a duration: a number of seconds, or a number with ms, s, m, h or d (900, 15m, 7d)', echo: true },
  [DATABASE_URL_PATTERN]: { means: 'a postgres:// or postgresql:// URL, or memory://', echo: false },
  [REDIS_URL_PATTERN]: { means: 'a redis:// or rediss:// URL', echo: false },
  [USERNAME_PATTERN]: { means: USERNAME_PATTERN_IN_WORDS, echo: true }
}
const NUMBER_KEYWORDS: ReadonlySet<string> = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'])
const OnOff = Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' })

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: DATABASE_URL_PATTERN })),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  DB_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  DB_CONNECT_TIMEOUT: Duration('5s'),
  DB_STATEMENT_TIMEOUT: Duration('10s'),
  // At least 32 bytes, checked in toConfig: minLength would count characters.
  JWT_SECRET: Type.Optional(Type.String()),
  // Every token carries both: long ones would make every token too long to send.
  JWT_ISSUER: Type.String({ minLength: 1, maxLength: 256, default: 'rolegate' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, maxLength: 256, default: 'rolegate' }),
  ACCESS_TOKEN_TTL: Duration('15m'),
  REFRESH_TOKEN_TTL: Duration('7d'),
  REFRESH_TOKEN_REUSE_INTERVAL: Duration('0'),
  CORS_ORIGIN: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  ADMIN_USERNAME: Type.Optional(Type.String({ pattern: USERNAME_PATTERN })),
  // Checked in toConfig, by the signup route's rule (isEmailAddress).
  ADMIN_EMAIL: Type.Optional(Type.String()),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128 })),
  RATE_LIMIT: OnOff,
  RATE_LIMIT_GLOBAL_MAX: Type.Integer({ minimum: 1, default: 1000 }),
  RATE_LIMIT_GLOBAL_WINDOW: Duration('1m'),
  RATE_LIMIT_SIGNIN_MAX: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_SIGNIN_WINDOW: Duration('15m'),
  RATE_LIMIT_SIGNUP_MAX: Type.Integer({ minimum: 1, default: 20 }),
  RATE_LIMIT_SIGNUP_WINDOW: Duration('1h'),
  RATE_LIMIT_REFRESH_MAX: Type.Integer({ minimum: 1, default: 60 }),
  RATE_LIMIT_REFRESH_WINDOW: Duration('1m'),
  REDIS_URL: Type.Optional(Type.String({ pattern: REDIS_URL_PATTERN })),
  TRUST_PROXY: Type.String({ default: 'false' }),
  // Overload protection (@fastify/under-pressure): far above anything normal use or a benchmark
  // reaches, so it only answers 503 when the process is really saturated. 0 turns a check off.
  OVERLOAD_MAX_EVENT_LOOP_DELAY: Type.Optional(Type.String({ pattern: DURATION_PATTERN })),
  OVERLOAD_MAX_HEAP_USED_MB: Type.Optional(Type.Integer({ minimum: 0 })),
  OVERLOAD_MAX_RSS_MB: Type.Integer({ minimum: 0, default: 0 }),
  OVERLOAD_SAMPLE_INTERVAL: Duration('1s'),
  // OWASP's minimum for argon2id is m=19456 KiB, t=2, p=1; weaker settings are refused.
  ARGON2_MEMORY_KIB: Type.Integer({ minimum: 19456, maximum: 4_194_304, default: 19456 }),
  ARGON2_TIME_COST: Type.Integer({ minimum: 2, maximum: 100, default: 2 }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 16, default: 1 })
})

export type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  port: number
  host: string
  databaseUrl: string | undefined
  dataDir: string
  db: { poolSize: number, connectTimeoutMs: number, statementTimeoutMs: number }
  jwt: {
    secret: string | undefined
    issuer: string
    audience: string
    accessTtlSec: number
  }
  refresh: { ttlMs: number, reuseIntervalMs: number }
  /** `*`, the allowed origins as browsers send them, or undefined: no CORS. */
  corsOrigin: '*' | string[] | undefined
  logLevel: string
  admin: { username: string, email: string, password: string } | undefined
  rateLimit: {
    enabled: boolean
    redisUrl: string | undefined
    global: { max: number, windowMs: number }
    signin: { max: number, windowMs: number }
    signup: { max: number, windowMs: number }
    refresh: { max: number, windowMs: number }
  }
  trustProxy: boolean | string | string[]
  argon2: { memoryCost: number, timeCost: number, parallelism: number }
  /** Thresholds above which requests get 503 + Retry-After; undefined = check off. */
  overload: { maxEventLoopDelayMs: number, maxHeapUsedBytes: number | undefined, maxRssBytes: number | undefined, sampleIntervalMs: number }
  /** Settings taken as given but likely not meant (src/config-warnings.ts): logged at start. */
  warnings: string[]
}

// Where callers of loadConfig expect it (src/main.ts, src/cli.ts, src/migrate.ts).
export { ConfigError }

export function loadConfig (overrides: Record<string, unknown> = {}, useProcessEnv = true): Config {
  // Merged here as env-schema would (.env, then the environment, then the overrides), so that
  // the checks after its own see the .env file's values too: env-schema keeps them to itself.
  const given: Record<string, unknown> = useProcessEnv ? { ...readDotenv(), ...process.env, ...overrides } : { ...overrides }
  const valueOf = (name: string): unknown => given[name]
  let env: Env
  try {
    env = envSchema<Env>({ schema: EnvSchema, env: false, dotenv: false, data: given })
  } catch (err) {
    const errors = (err as { errors?: SchemaIssue[] }).errors
    throw new ConfigError(`Invalid configuration: ${errors === undefined ? (err as Error).message : configProblems(errors, valueOf)}`)
  }
  // ajv turns any string JavaScript reads as a whole number into one ("1.8202e4", "0x1F90",
  // " 8080"); a number variable is written in digits, or it is a typo that should stop the start.
  // And at most 15 of them, which every double holds exactly: 309 digits read as Infinity, which
  // passed every range check (an argon2 cost under OWASP's minimum, a port that crashed the start).
  const integerProblems = INTEGER_NAMES.flatMap((name) => {
    const value = valueOf(name)
    if (typeof value !== 'string') return []
    if (!/^-?[0-9]+$/.test(value)) return [`${name} must be an integer (got ${quoted(value)})`]
    return value.replace('-', '').length > 15 ? [`${name} must be an integer of at most 15 digits (got ${quoted(value)})`] : []
  })
  if (integerProblems.length > 0) throw new ConfigError(`Invalid configuration: ${integerProblems.join('; ')}`)
  // The patterns above check the scheme; the drivers parse the rest with WHATWG's URL parser and
  // refused a bad port later with a stack trace (ioredis's repeating the URL, password and all).
  for (const [name, means] of [['DATABASE_URL', 'a postgres:// or postgresql:// URL with a valid host and port, or memory://'], ['REDIS_URL', 'a redis:// or rediss:// URL with a valid host and port']] as const) {
    const value = valueOf(name)
    if (typeof value === 'string' && value !== '' && value !== 'memory://' && !URL.canParse(value)) throw new ConfigError(`Invalid configuration: ${name} must be ${means}`)
  }
  return toConfig(env, Object.keys(given).filter(name => given[name] !== undefined))
}

// The working directory's .env, read with Node's parser as env-schema reads it; none is fine.
function readDotenv (): NodeJS.Dict<string> {
  try {
    return parseEnv(readFileSync(resolve('.env'), 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
}
// Every name rolegate reads: the schema's.
const READ_NAMES = Object.keys(EnvSchema.properties)
const INTEGER_NAMES = Object.entries(EnvSchema.properties).filter(([, schema]) => schema.type === 'integer').map(([name]) => name)

/**
 * One clause per variable: `PORT must be <= 65535`. A fixed set of values (a union of literals)
 * becomes `must be one of ...` with the values and what was given (only such names and
 * switches: never a secret or a URL); a pattern, what it means.
 */
function configProblems (errors: SchemaIssue[], valueOf: (name: string) => unknown): string {
  const byName = new Map<string, SchemaIssue[]>()
  for (const e of errors) {
    const name = e.instancePath.replace(/^\//, '')
    byName.set(name, [...(byName.get(name) ?? []), e])
  }
  return [...byName].map(([name, issues]) => {
    const got = `(got ${JSON.stringify(String(valueOf(name)))})`
    const allowed = allowedValues(issues)
    if (allowed !== undefined) return `${name} must be one of ${allowed.join(', ')} ${got}`
    const other = new Set(issues.filter(e => e.keyword !== 'anyOf').map((e) => {
      // Only numbers fail these checks, and a number is never a secret: say what was given.
      if (e.keyword === 'type' && e.params.type === 'integer') return `must be an integer ${got}`
      if (NUMBER_KEYWORDS.has(e.keyword)) return `${e.message ?? 'is out of range'} ${got}`
      const meaning = e.keyword === 'pattern' ? PATTERN_MEANING[String(e.params.pattern)] : undefined
      if (meaning === undefined) return e.message ?? 'is invalid'
      return `must be ${meaning.means}${meaning.echo ? ` ${got}` : ''}`
    }))
    return `${name} ${other.size > 0 ? [...other].join(', ') : 'is invalid'}`
  }).join('; ')
}

function toConfig (env: Env, givenNames: string[]): Config {
  const adminVars = [env.ADMIN_USERNAME, env.ADMIN_EMAIL, env.ADMIN_PASSWORD]
  const adminSet = adminVars.filter(v => v !== undefined).length
  if (adminSet !== 0 && adminSet !== 3) {
    throw new ConfigError('Invalid configuration: ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
  }
  if (env.ADMIN_EMAIL !== undefined && !isEmailAddress(env.ADMIN_EMAIL)) {
    throw new ConfigError(`Invalid configuration: ADMIN_EMAIL must be an email address (got ${quoted(env.ADMIN_EMAIL)})`)
  }
  // The bootstrap admin is held to the same password policy as everyone else.
  const adminPasswordProblem = env.ADMIN_PASSWORD === undefined ? undefined : passwordProblem(env.ADMIN_PASSWORD)
  if (adminPasswordProblem !== undefined) throw new ConfigError(`Invalid configuration: ADMIN_PASSWORD ${adminPasswordProblem}`)
  if (env.NODE_ENV === 'production' && env.JWT_SECRET === undefined) {
    throw new ConfigError('Invalid configuration: JWT_SECRET is required when NODE_ENV=production (at least 32 bytes, e.g. `openssl rand -hex 32`)')
  }
  // Bytes that are not UTF-8 reach process.env as U+FFFD, each counted as 3 bytes below, and two
  // such secrets of one length would be the same key.
  if (env.JWT_SECRET?.includes('\ufffd') === true) {
    throw new ConfigError('Invalid configuration: JWT_SECRET holds bytes that are not UTF-8 text (they all read as U+FFFD): use printable characters, e.g. `openssl rand -hex 32`')
  }
  // A shell expands neither inside quotes (or in a .env file): the server would make a
  // directory named " /srv/data " or "~" in its working directory.
  if (env.DATA_DIR.trim() !== env.DATA_DIR) throw new ConfigError(`Invalid configuration: DATA_DIR must not start or end with spaces (got ${quoted(env.DATA_DIR)})`)
  if (env.DATA_DIR.startsWith('~')) throw new ConfigError(`Invalid configuration: DATA_DIR must not start with ~, which only a shell expands: write the path out (got ${quoted(env.DATA_DIR)})`)
  // The message gives the length in bytes, never the secret.
  const secretBytes = env.JWT_SECRET === undefined ? undefined : Buffer.byteLength(env.JWT_SECRET, 'utf8')
  if (secretBytes !== undefined && secretBytes < 32) {
    throw new ConfigError(`Invalid configuration: JWT_SECRET must be at least 32 bytes, e.g. \`openssl rand -hex 32\` (got ${secretBytes} bytes)`)
  }
  const ms = (name: DefaultedDurationName): number => durationMs(name, env[name])
  const window = (max: number, name: DefaultedDurationName) => ({ max, windowMs: ms(name) })
  const accessTtlSec = Math.floor(ms('ACCESS_TOKEN_TTL') / 1000)
  const refresh = { ttlMs: ms('REFRESH_TOKEN_TTL'), reuseIntervalMs: ms('REFRESH_TOKEN_REUSE_INTERVAL') }
  const trustProxy = parseTrustProxy(env.TRUST_PROXY)
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    dataDir: env.DATA_DIR,
    db: {
      poolSize: env.DB_POOL_SIZE,
      connectTimeoutMs: ms('DB_CONNECT_TIMEOUT'),
      statementTimeoutMs: ms('DB_STATEMENT_TIMEOUT')
    },
    jwt: {
      secret: env.JWT_SECRET,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTtlSec
    },
    refresh,
    corsOrigin: parseCorsOrigin(env.CORS_ORIGIN ?? ''),
    logLevel: env.LOG_LEVEL,
    admin: adminSet === 3
      ? { username: env.ADMIN_USERNAME as string, email: env.ADMIN_EMAIL as string, password: env.ADMIN_PASSWORD as string }
      : undefined,
    rateLimit: {
      enabled: env.RATE_LIMIT === 'on',
      redisUrl: env.REDIS_URL,
      global: window(env.RATE_LIMIT_GLOBAL_MAX, 'RATE_LIMIT_GLOBAL_WINDOW'),
      signin: window(env.RATE_LIMIT_SIGNIN_MAX, 'RATE_LIMIT_SIGNIN_WINDOW'),
      signup: window(env.RATE_LIMIT_SIGNUP_MAX, 'RATE_LIMIT_SIGNUP_WINDOW'),
      refresh: window(env.RATE_LIMIT_REFRESH_MAX, 'RATE_LIMIT_REFRESH_WINDOW')
    },
    trustProxy,
    argon2: {
      memoryCost: env.ARGON2_MEMORY_KIB,
      timeCost: env.ARGON2_TIME_COST,
      parallelism: env.ARGON2_PARALLELISM
    },
    overload: {
      // Default 1 s, but off under NODE_ENV=test: a test process runs many apps and embedded
      // databases on one event loop, so its lag says nothing about any one of them.
      maxEventLoopDelayMs: durationMs('OVERLOAD_MAX_EVENT_LOOP_DELAY', env.OVERLOAD_MAX_EVENT_LOOP_DELAY ?? (env.NODE_ENV === 'test' ? '0' : '1s')),
      // Unset: 90% of V8's heap limit, where the process is about to die of memory anyway.
      maxHeapUsedBytes: mib(env.OVERLOAD_MAX_HEAP_USED_MB ?? Math.floor(getHeapStatistics().heap_size_limit * 0.9 / MIB)),
      maxRssBytes: mib(env.OVERLOAD_MAX_RSS_MB),
      sampleIntervalMs: ms('OVERLOAD_SAMPLE_INTERVAL')
    },
    warnings: [
      ...unreadNameWarnings(givenNames, READ_NAMES),
      // The access token's lifetime as issued: whole seconds.
      ...lifetimeWarnings(env, { ACCESS_TOKEN_TTL: accessTtlSec * 1000, REFRESH_TOKEN_TTL: refresh.ttlMs, REFRESH_TOKEN_REUSE_INTERVAL: refresh.reuseIntervalMs }),
      ...trustProxyWarnings(trustProxy)
    ]
  }
}

type DefaultedDurationName = 'DB_CONNECT_TIMEOUT' | 'DB_STATEMENT_TIMEOUT' | 'ACCESS_TOKEN_TTL' | 'REFRESH_TOKEN_TTL' |
  'REFRESH_TOKEN_REUSE_INTERVAL' | 'RATE_LIMIT_GLOBAL_WINDOW' | 'RATE_LIMIT_SIGNIN_WINDOW' |
  'RATE_LIMIT_SIGNUP_WINDOW' | 'RATE_LIMIT_REFRESH_WINDOW' | 'OVERLOAD_SAMPLE_INTERVAL'
type DurationName = DefaultedDurationName | 'OVERLOAD_MAX_EVENT_LOOP_DELAY'

// Below these a duration would silently mean something else: a token lifetime of 0 s, a rate
// limit window that never counts, a timeout of 0 (which pg and PostgreSQL read as none), an
// overload sampler spinning. A JWT's exp counts whole seconds, so an access TTL is rounded down
// to one. REFRESH_TOKEN_REUSE_INTERVAL and OVERLOAD_MAX_EVENT_LOOP_DELAY have none: 0 turns them off.
const MIN_DURATION: Partial<Record<DurationName, string>> = {
  DB_CONNECT_TIMEOUT: '1s',
  DB_STATEMENT_TIMEOUT: '1s',
  ACCESS_TOKEN_TTL: '1s',
  REFRESH_TOKEN_TTL: '1s',
  RATE_LIMIT_GLOBAL_WINDOW: '1s',
  RATE_LIMIT_SIGNIN_WINDOW: '1s',
  RATE_LIMIT_SIGNUP_WINDOW: '1s',
  RATE_LIMIT_REFRESH_WINDOW: '1s',
  OVERLOAD_SAMPLE_INTERVAL: '10ms'
}

// Above these a duration would fail later or silently mean something else. Node runs a timer
// set over 2^31-1 ms (24.8 days) after 1 ms: pg's connect timeout (and pg-pool's wait for a
// client), pg's query_timeout (the statement timeout + 1 s; PostgreSQL's statement_timeout
// stops at 2^31-1 ms too) and @fastify/under-pressure's sampler are timers, so at most 24d. The
// event-loop threshold is only compared with the lag measured, but a lag longer than any timer
// here can wait means nothing more: 24d too. Lifetimes and windows become dates, JWT exp
// claims, cookie Max-Age and rate-limit expiries (timestamps compared, or Redis PEXPIRE; no
// timers): ten years is longer than any sane policy, and far below where a Date overflows
// (about 1e8 days after 1970; REFRESH_TOKEN_TTL=999999999999d made every signin a 500). The
// refresh token also lives in a cookie, whose lifetime browsers cap at 400 days (RFC 6265bis):
// beyond that the cookie would die before its token.
const TIMER_MAX = '24d'
const LIFETIME_MAX = '3650d'
const COOKIE_MAX = '400d'
const MAX_DURATION: Record<DurationName, string> = {
  DB_CONNECT_TIMEOUT: TIMER_MAX,
  DB_STATEMENT_TIMEOUT: TIMER_MAX,
  OVERLOAD_SAMPLE_INTERVAL: TIMER_MAX,
  OVERLOAD_MAX_EVENT_LOOP_DELAY: TIMER_MAX,
  ACCESS_TOKEN_TTL: LIFETIME_MAX,
  REFRESH_TOKEN_TTL: COOKIE_MAX,
  REFRESH_TOKEN_REUSE_INTERVAL: LIFETIME_MAX,
  RATE_LIMIT_GLOBAL_WINDOW: LIFETIME_MAX,
  RATE_LIMIT_SIGNIN_WINDOW: LIFETIME_MAX,
  RATE_LIMIT_SIGNUP_WINDOW: LIFETIME_MAX,
  RATE_LIMIT_REFRESH_WINDOW: LIFETIME_MAX
}

function durationMs (name: DurationName, value: string): number {
  const min = MIN_DURATION[name]
  const max = MAX_DURATION[name]
  const result = parseDurationMs(value)
  if (min !== undefined && result < parseDurationMs(min)) {
    throw new ConfigError(`Invalid configuration: ${name} must be at least ${min} (got ${JSON.stringify(value)})`)
  }
  if (result > parseDurationMs(max)) {
    throw new ConfigError(`Invalid configuration: ${name} must be at most ${max} (got ${JSON.stringify(value)})`)
  }
  return result
}

const MIB = 1024 * 1024
const mib = (value: number): number | undefined => value > 0 ? value * MIB : undefined
