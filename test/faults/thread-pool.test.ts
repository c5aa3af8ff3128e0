import { availableParallelism } from 'node:os'
import { readdirSync } from 'node:fs'
import t from 'tap'
import { startRolegate } from './harness.js'

// argon2 hashes on libuv's pool, sized by UV_THREADPOOL_SIZE when the pool starts. The server's
// entry sets it to one thread per core (at least two) unless the environment already does. Set
// too late (as it once was, from an ES module entry), it is silently ignored and the server
// hashes on libuv's default of four threads: only a real process shows which one happened.
// The pool's size is read off the thread count, against a server told to use exactly one.
// On a four-core machine the right size and libuv's default coincide, and the first assertion
// cannot tell them apart there; on two cores (as here and in CI) it fails on the old entry.
const threads = (pid: number | undefined): number => readdirSync(`/proc/${String(pid)}/task`).length
const expected = Math.max(2, availableParallelism())

t.test('the server hashes on one pool thread per core unless told otherwise', { skip: process.platform !== 'linux' && 'Linux only (/proc)', timeout: 90_000 }, async (t) => {
  const one = await startRolegate(t, { DATABASE_URL: 'memory://', UV_THREADPOOL_SIZE: '1' }, 'pool of one')
  const sized = await startRolegate(t, { DATABASE_URL: 'memory://' }, 'pool sized by the server')
  const told = await startRolegate(t, { DATABASE_URL: 'memory://', UV_THREADPOOL_SIZE: String(expected + 3) }, 'pool of cores + 3')
  t.equal(threads(sized.proc.pid) - threads(one.proc.pid), expected - 1,
    `a pool of ${expected} threads (${availableParallelism()} cores), not libuv's default of 4`)
  t.equal(threads(told.proc.pid) - threads(one.proc.pid), expected + 2, 'an explicit UV_THREADPOOL_SIZE wins')
})
