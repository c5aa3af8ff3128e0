import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { newAccount, send, startRolegate } from './harness.js'

// Load balancers hold keep-alive connections to the instance they deploy over. A SIGTERM while
// such a connection's request runs: the request finishes, and then the connection must close,
// or the server waits for it until close-with-grace gives up (10 s, exit code 1, the database
// never closed). The embedded database is enough: this is about HTTP connections.
const CONNECTIONS = 6
// src/main.ts gives the shutdown 10 s; a shutdown that waited for an idle connection takes them all.
const EXIT_BOUND_MS = 5_000

interface Answer { status: number, connection: string | undefined, answeredAt: number, closedAt: number }

t.test('SIGTERM with requests running on keep-alive connections', { timeout: 60_000 }, async (t) => {
  const app = await startRolegate(t, { DATABASE_URL: 'memory://' })
  const account = newAccount('keepalive')
  t.equal((await send(app, 'POST', '/api/auth/signup', account)).status, 201)
  const port = Number(new URL(app.url).port)
  const body = JSON.stringify({ username: account.username, password: account.password })
  const signin = `POST /api/auth/signin HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

  // Each signin hashes with argon2id on one of two threads, so six of them take several hash
  // times between them: most are still running when the signal arrives.
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, async () => await open(port)))
  // One request each first, so that every connection is the server's before the signal (one
  // still in the kernel's accept queue when the listener closes is refused, as it should be).
  await Promise.all(sockets.map(async socket => await health(socket)))
  const answers = sockets.map(async socket => await answerAndClose(socket))
  for (const socket of sockets) socket.write(signin)
  await sleep(15)
  const signalledAt = Date.now()
  app.proc.kill('SIGTERM')
  const results = await Promise.all(answers)
  const exit = await Promise.race([app.exited, sleep(EXIT_BOUND_MS).then(() => 'still running')])

  t.ok(results.some(r => r.status === 200 && r.answeredAt > signalledAt), 'a signin running at the signal finished with 200')
  t.same(results.filter(r => r.status !== 200 && r.status !== 503).map(r => r.status), [], 'every connection got its answer (200, or 503 if it had not begun)')
  // An answer still to be written when the shutdown begins says so (a client that honours the
  // Keep-Alive hint would otherwise reuse the connection as it closes), and the server closes
  // the connection right after it.
  for (const r of results) {
    t.equal(r.connection, 'close', `the ${r.status} says Connection: close`)
    t.ok(r.closedAt - r.answeredAt < 500, `the server closed the connection after its ${r.status} (${r.closedAt - r.answeredAt} ms later)`)
  }
  t.equal(exit, 0, `the process exited by itself with code 0 (bound ${EXIT_BOUND_MS} ms after the signal)`)
  t.match(app.output(), /database connections closed/, 'after closing the database')
})

async function open (port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  return socket
}

async function health (socket: Socket): Promise<void> {
  socket.write('GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n')
  let text = ''
  await new Promise<void>((resolve) => {
    const read = (chunk: Buffer): void => {
      text += chunk.toString('latin1')
      if (!text.endsWith('}')) return
      socket.off('data', read)
      resolve()
    }
    socket.on('data', read)
  })
}

// The first response's status and Connection header, and when the server closed the socket
// (the client never does).
async function answerAndClose (socket: Socket): Promise<Answer> {
  return await new Promise<Answer>((resolve) => {
    let text = ''
    let answer: Omit<Answer, 'closedAt'> | undefined
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      text += chunk
      if (answer === undefined && text.includes('\r\n\r\n')) {
        const head = text.slice(0, text.indexOf('\r\n\r\n'))
        answer = { status: Number(head.split(' ')[1]), connection: /\r\nconnection: *([^\r]*)/i.exec(head)?.[1], answeredAt: Date.now() }
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => { resolve({ ...(answer ?? { status: 0, connection: undefined, answeredAt: Date.now() }), closedAt: Date.now() }) })
  })
}

// A request whose body is still arriving at the signal is not a request the server can finish:
// it waited for the body until the request timeout (30 s), so close-with-grace gave up after
// 10 s (exit code 1, the database never closed) and the client got a bare close. Likewise a
// connection whose over-limit body (answered 413 at once) was still being read: once the body
// was in, the connection sat idle on its keep-alive timer. During a shutdown a request must
// arrive within a few seconds, and connections that fall idle are closed.
t.test('SIGTERM while request bodies are still arriving', { timeout: 60_000 }, async (t) => {
  const app = await startRolegate(t, { DATABASE_URL: 'memory://' })
  const port = Number(new URL(app.url).port)
  const stalled = await open(port)
  const trickling = await open(port)
  const stalledAnswer = answerAndClose(stalled)
  const tricklingAnswer = answerAndClose(trickling)
  stalled.write('POST /api/auth/signin HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"user')
  // 1.2 MB declared, over the 1 MiB limit: answered 413 at once, then read and dropped.
  const declared = 1_200_000
  trickling.write(`POST /api/auth/signin HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`)
  let sent = 0
  const chunk = Buffer.alloc(100_000, 'a')
  const trickle = setInterval(() => {
    if (sent < declared && !trickling.destroyed) trickling.write(chunk.subarray(0, Math.min(chunk.length, declared - sent)))
    sent += chunk.length
  }, 250)
  t.teardown(() => { clearInterval(trickle) })
  await sleep(300)
  const signalledAt = Date.now()
  app.proc.kill('SIGTERM')
  const exit = await Promise.race([app.exited, sleep(8_000).then(() => 'still running')])
  const exitedAfter = Date.now() - signalledAt
  t.equal(exit, 0, `the process exited by itself with code 0 (${exitedAfter} ms after the signal)`)
  t.match(app.output(), /database connections closed/, 'after closing the database')
  t.equal((await stalledAnswer).status, 408, 'the stalled request is told it did not arrive in time')
  t.equal((await tricklingAnswer).status, 413, 'the over-limit body got its 413, and no second answer')
})

// Signins queue for argon2's threads. A SIGTERM under a storm found ~14 s of hashing queued:
// the shutdown outlasted its 10 s grace (exit code 1), and the requests still waiting got a
// bare close. Those still waiting 6 s after the signal are now answered 503. Slow hashes (time
// cost 8) make that queue from about a hundred signins.
t.test('SIGTERM with more signins queued for hashing than the shutdown can wait for', { timeout: 90_000 }, async (t) => {
  const app = await startRolegate(t, { DATABASE_URL: 'memory://', ARGON2_TIME_COST: '8' })
  const port = Number(new URL(app.url).port)
  // Timed on the second: the first also makes the dummy hash unknown users are checked against.
  t.equal((await send(app, 'POST', '/api/auth/signin', { username: 'nobody-here', password: 'wrong-password-1' })).status, 401)
  const started = Date.now()
  t.equal((await send(app, 'POST', '/api/auth/signin', { username: 'nobody-here', password: 'wrong-password-1' })).status, 401)
  const hashMs = Date.now() - started
  // Twelve seconds of hashing on two threads, whatever this machine's speed.
  const count = Math.min(400, Math.ceil(12_000 * 2 / hashMs))
  const body = JSON.stringify({ username: 'nobody-here', password: 'wrong-password-1' })
  const signin = `POST /api/auth/signin HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`
  const sockets = await Promise.all(Array.from({ length: count }, async () => await open(port)))
  const answers = sockets.map(async socket => await answerAndClose(socket))
  for (const socket of sockets) socket.write(signin)
  await sleep(500)
  const signalledAt = Date.now()
  app.proc.kill('SIGTERM')
  const exit = await Promise.race([app.exited, sleep(9_000).then(() => 'still running')])
  const statuses = (await Promise.all(answers)).map(answer => answer.status)
  t.equal(exit, 0, `exited with code 0 (${Date.now() - signalledAt} ms after the signal; ${count} signins, ${hashMs} ms a hash)`)
  const counts: Record<number, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  t.same(Object.keys(counts).filter(status => status !== '401' && status !== '503'), [], `every signin answered: 401 if hashed, 503 if still queued 6 s after the signal (${JSON.stringify(counts)})`)
  t.ok((counts[503] ?? 0) > 0 && (counts[401] ?? 0) > 1, 'those hashed within the wait got their 401, the rest their 503')
})
