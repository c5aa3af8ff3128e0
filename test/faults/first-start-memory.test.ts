import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { newAccount, send, startRolegate } from './harness.js'

// Creating the embedded database (initdb, in WebAssembly) peaks at ~700 MB, and WebAssembly
// memory never shrinks: done in the server's own process, a first start left the server at
// ~290 MB for its whole life, and a container sized for the ~190 MB of every later start
// would kill it. The server creates it in a short-lived child process instead; its own peak
// is read from /proc, with room to spare against the old ~700 MB.
const peakMb = (pid: number | undefined): number =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1] ?? NaN) / 1024

t.test('a first start on a new data directory does not keep the database creation\'s memory', { skip: process.platform !== 'linux' && 'Linux only (/proc)', timeout: 120_000 }, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rolegate-first-start-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const server = await startRolegate(t, { DATA_DIR: dataDir }, 'first start')
  t.ok(existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION')), 'the database was created in DATA_DIR')
  const account = newAccount('first')
  t.equal((await send(server, 'POST', '/api/auth/signup', account)).status, 201, 'and it works')
  const peak = peakMb(server.proc.pid)
  t.ok(peak < 450, `the server's peak resident memory is ${peak.toFixed(0)} MB (in-process creation: ~700 MB)`)
})
