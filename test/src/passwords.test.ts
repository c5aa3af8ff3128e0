import t from 'tap'
import { createPasswordHasher, HASHING_THREADS as THREADS } from '../../src/passwords.js'

// Cheap parameters: what is tested is the order hashes run in, not argon2.
const hasher = (): ReturnType<typeof createPasswordHasher> => createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 })

// Hashes wait for a thread in the hasher, not in libuv's queue, so that a shutdown can refuse
// the ones not yet started (plugins/passwords.ts) and let the running ones finish.
t.test('as many hashes run at once as libuv has threads; closing refuses the rest and any later one', async (t) => {
  const passwords = hasher()
  const results = Array.from({ length: THREADS + 6 }, async (_, i) => await passwords.hash(`password-${i}`).then(() => 'hashed', (err: Error) => err.message))
  passwords.close(() => new Error('refused'))
  t.same(await Promise.all(results), [...Array<string>(THREADS).fill('hashed'), ...Array<string>(6).fill('refused')])
  await t.rejects(passwords.verify(null, 'password-0'), { message: 'refused' }, 'a verification after closing')
})

t.test('a slot freed by a finished or failed hash goes to the next one waiting', { timeout: 30_000 }, async (t) => {
  const passwords = hasher()
  const stored = await passwords.hash('right-password')
  // A corrupt stored hash fails inside its slot; every slot must still come back.
  const checks = Array.from({ length: THREADS * 3 }, async (_, i) => await passwords.verify(i % 2 === 0 ? stored : '$argon2id$corrupt', 'right-password'))
  t.same(await Promise.all(checks), Array.from({ length: THREADS * 3 }, (_, i) => i % 2 === 0 ? 'current' : false))
  t.equal(typeof await passwords.hash('another-password'), 'string', 'and hashing goes on')
})
