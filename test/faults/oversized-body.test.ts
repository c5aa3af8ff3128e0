import t from 'tap'
import { startRolegate } from './harness.js'

// The 413 for a body over 1 MiB went out while the client was still sending, with `connection:
// close`; Node then closed a socket with unread bytes, the kernel answered the client's next
// segments with a reset, and the client lost the answer: fetch saw EPIPE for 18 of 20 uploads
// of 3 MiB (found by fuzzing). Only across processes: a client in the server's own process
// never loses it. The rest of the body is now read and dropped.
t.test('a body over 1 MiB gets its 413 even while the client is still sending it', { timeout: 120_000 }, async (t) => {
  const server = await startRolegate(t, { DATABASE_URL: 'memory://' }, 'oversized body')
  const body = JSON.stringify({ username: 'x'.repeat(3 * 1024 * 1024), password: 'p' })
  const statuses: Array<number | string> = []
  for (let i = 0; i < 10; i++) {
    statuses.push(await fetch(`${server.url}/api/auth/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      .then(async (res) => {
        const text = await res.text()
        return res.status === 413 && JSON.parse(text).statusCode === 413 ? 413 : `${res.status} ${text}`
      }, (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message))
  }
  t.same(statuses, Array(10).fill(413))
  t.equal((await fetch(`${server.url}/api/test/all`)).status, 200, 'and the server goes on serving')
})
