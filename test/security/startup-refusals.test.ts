import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

// Start-up refuses settings that would make the server unsafe, naming the variable.
const base = { NODE_ENV: 'test', DATABASE_URL: 'memory://' }

t.test('a JWT_SECRET under 32 bytes stops the server', async (t) => {
  for (const NODE_ENV of ['production', 'development', 'test']) {
    t.throws(() => loadConfig({ ...base, NODE_ENV, JWT_SECRET: 'too-short-secret' }, false), { constructor: ConfigError, message: /JWT_SECRET/ })
  }
  t.equal(loadConfig({ ...base, JWT_SECRET: 'x'.repeat(32) }, false).jwt.secret, 'x'.repeat(32))
})

t.test('production without JWT_SECRET stops the server', async (t) => {
  t.throws(() => loadConfig({ ...base, NODE_ENV: 'production' }, false), { constructor: ConfigError, message: /JWT_SECRET is required/ })
})

t.test('a bootstrap admin with a common password stops the server', async (t) => {
  const admin = { ADMIN_USERNAME: 'root', ADMIN_EMAIL: 'root@example.com' }
  t.throws(() => loadConfig({ ...base, ...admin, ADMIN_PASSWORD: 'Password123' }, false),
    { constructor: ConfigError, message: /ADMIN_PASSWORD is one of the most common passwords/ })
  t.throws(() => loadConfig({ ...base, ...admin, ADMIN_PASSWORD: 'short' }, false), { constructor: ConfigError, message: /ADMIN_PASSWORD/ })
  t.ok(loadConfig({ ...base, ...admin, ADMIN_PASSWORD: 'a-long-unusual-passphrase' }, false).admin)
})

// The environment schema counts the length as the request schema does, as sent.
t.test('the bootstrap admin password meets the whole policy, its length counted as sent', async (t) => {
  const admin = { ADMIN_USERNAME: 'root', ADMIN_EMAIL: 'root@example.com' }
  const refusals: Array<[string, string]> = [
    ['\ufb01'.repeat(4), 'must NOT have fewer than 8 characters'],
    ['e\u0301'.repeat(64) + 'x', 'must NOT have more than 128 characters'],
    [' '.repeat(12), 'must not be only spaces or invisible characters'],
    ['x'.repeat(12), 'must not be one character repeated']
  ]
  for (const [ADMIN_PASSWORD, problem] of refusals) {
    t.throws(() => loadConfig({ ...base, ...admin, ADMIN_PASSWORD }, false),
      { constructor: ConfigError, message: `Invalid configuration: ADMIN_PASSWORD ${problem}` }, problem)
  }
  t.ok(loadConfig({ ...base, ...admin, ADMIN_PASSWORD: '\ufdfa'.repeat(128) }, false).admin, '128 sent, longer once normalized')
})

t.test('argon2 parameters below OWASP minimums are refused', async (t) => {
  t.throws(() => loadConfig({ ...base, ARGON2_TIME_COST: 1 }, false), { message: /ARGON2_TIME_COST/ })
  t.throws(() => loadConfig({ ...base, ARGON2_MEMORY_KIB: 4096 }, false), { message: /ARGON2_MEMORY_KIB/ })
})

t.test('TRUST_PROXY: off by default, true, or a list of proxy addresses', async (t) => {
  t.equal(loadConfig(base, false).trustProxy, false)
  t.equal(loadConfig({ ...base, TRUST_PROXY: 'true' }, false).trustProxy, true)
  t.same(loadConfig({ ...base, TRUST_PROXY: '10.0.0.1, 10.0.0.0/8' }, false).trustProxy, ['10.0.0.1', '10.0.0.0/8'])
})

t.test('rate limits are on by default with the contract defaults', async (t) => {
  const { rateLimit } = loadConfig(base, false)
  t.equal(rateLimit.enabled, true)
  t.same(rateLimit.signin, { max: 10, windowMs: 15 * 60_000 })
  t.equal(loadConfig({ ...base, RATE_LIMIT: 'off' }, false).rateLimit.enabled, false)
  t.throws(() => loadConfig({ ...base, RATE_LIMIT: 'maybe' }, false), { message: /RATE_LIMIT/ })
})
