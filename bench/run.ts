// `npm run bench [-- --quick] [-- --db=embedded|postgres] [-- --json] [-- --pin]`
// Starts rolegate and a bare Fastify server as child processes, loads each with autocannon from
// this process, and prints req/s, latency and the ratio to bare Fastify measured in the same run.
// Progress goes to stderr; stdout carries the table and, with --json, a last line of JSON.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import argon2, { type HashOptions } from 'argon2'
import { freePort, killAllNow, pinMainThread, rssSampler, startChild, stopAll, waitReady } from './procs.js'
import { alternateWithBare, combine, pairedRatio, pairRatios, runLoad, warmAndRun, type Measured } from './load.js'
import { allDuringSignin, bareLoad, prepare, randomSecret, scenarioLoads, type Connections } from './scenarios.js'
import { summaryJson, table, type RunResult } from './report.js'
import { SERVER_NODE_FLAGS } from '../src/server-flags.js'

const log = (msg: string): void => { process.stderr.write(`bench: ${msg}\n`) }

function options (): { quick: boolean, json: boolean, pin: boolean, databaseUrl: string | undefined, db: string } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      db: { type: 'string', default: 'embedded' }
    }
  })
  const db = values.db ?? 'embedded'
  let databaseUrl: string | undefined
  if (db === 'postgres') {
    const url = process.env.DATABASE_URL
    if (url === undefined || url === '') throw new Error('--db=postgres needs DATABASE_URL (e.g. postgres://user@127.0.0.1:5432/rolegate_bench)')
    databaseUrl = url
  } else if (db !== 'embedded') {
    throw new Error(`--db must be embedded or postgres, not ${db}`)
  }
  return { quick: values.quick === true, json: values.json === true, pin: values.pin === true, databaseUrl, db }
}

/**
 * ms per argon2id hash at the server's parameters, on this machine now, as the server's pool
 * runs them under a signin storm: `threads` hashes at a time, back to back. Two side by side
 * here take 10-25% longer each than one alone (they share the cores' caches and memory bus):
 * a single-hash time promised the threads more hashes per second than they can do, and so
 * understated the share of that the server uses. The fastest of `rounds` batches, after
 * `warmEach` hashes per lane; with `alsoAlone`, the single-hash time too.
 */
async function measureHashMs (threads: number, { rounds, warmEach, alsoAlone }: { rounds: number, warmEach: number, alsoAlone: boolean }): Promise<{ pooled: number, alone?: number }> {
  // The server's defaults (OWASP: 19 MiB, t=2, p=1) unless the environment the child inherits
  // overrides them through the server's own ARGON2_* variables.
  const env = (name: string, dflt: number): number => Number(process.env[name] ?? dflt)
  const params: HashOptions = {
    type: argon2.argon2id,
    memoryCost: env('ARGON2_MEMORY_KIB', 19456),
    timeCost: env('ARGON2_TIME_COST', 2),
    parallelism: env('ARGON2_PARALLELISM', 1)
  }
  // `lanes` loops each hashing `each` times in a row: at most `lanes` hashes in flight, none
  // idle, as in a pool with a queue. Returns ms per hash per lane.
  const batch = async (lanes: number, each: number, label: string): Promise<number> => {
    const start = performance.now()
    await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
      for (let i = 0; i < each; i++) await argon2.hash(`bench-${label}-${lane}-${i}`, params)
    }))
    return (performance.now() - start) / each
  }
  // This process's own libuv pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) caps
  // how many run at once: on a machine with more cores the lanes are that many.
  const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const lanes = Math.min(threads, pool > 0 ? pool : 4)
  // Warm-up: the first few hashes of each thread take ~3x longer (the allocator only starts
  // reusing its 19 MiB block after a few rounds), which would inflate the figure.
  await batch(lanes, warmEach, 'warm-up')
  // The fastest of several short batches: on a shared machine outside load only ever adds to
  // a batch's time, and a median of a few moved by a tenth between runs (it once timed 22.1 ms
  // for a pool the server then drove at 20.6 ms a hash).
  const pooled: number[] = []
  const alone: number[] = []
  for (let i = 0; i < rounds; i++) {
    pooled.push(await batch(lanes, 3, `pooled-${i}`))
    if (alsoAlone) alone.push(await batch(1, 2, `single-${i}`))
  }
  return alsoAlone ? { pooled: Math.min(...pooled), alone: Math.min(...alone) } : { pooled: Math.min(...pooled) }
}

async function main (): Promise<void> {
  const opts = options()
  // The hashing scenarios' warm-up: the pool's threads and the database's statements.
  const warmS = opts.quick ? 0.5 : 3
  // The cheap routes' own: each new route's code path is compiled again while the load
  // generator and the server hold both cores. A fresh server, with the load generator already warm, took ~1 s to reach its steady rate on
  // /api/test/all and 0.5-0.75 s on user and admin (250 ms windows at ~14k req/s), so a
  // half-second warm-up left the first pair of a quick run low: `admin`'s was the lowest or
  // next to it in each of four quick runs, 0.09-0.22 below the median of the other three.
  const cheapWarmS = opts.quick ? 1 : 3
  // Quick: 2 s, ~90-130 signins at this machine's 45-65/s. The whole quick run, build included,
  // took 58-61 s with 3 s on a busy machine, and 57-61 s with 2.5 s on a slow one (hashes at
  // 41-48 ms instead of ~24), against a one-minute budget.
  const measureS = opts.quick ? 2 : 10
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const serverJs = fileURLToPath(new URL('../src/server.cjs', import.meta.url))
  const bareJs = fileURLToPath(new URL('./bare.js', import.meta.url))
  if (!existsSync(serverJs)) throw new Error(`${serverJs} not found: run \`npm run build\` first`)

  // Ratios survive steady noise, not other work starting mid-run: say so when the run begins busy.
  const loadAtStart = loadavg()[0] ?? 0
  if (loadAtStart > availableParallelism() / 2) {
    log(`warning: the machine is already busy (load average ${loadAtStart.toFixed(2)} on ${availableParallelism()} CPUs); expect noisy figures`)
  }
  const envThreads = Number(process.env.UV_THREADPOOL_SIZE)
  // The server's own rule (src/server.cts, which as the CommonJS entry cannot be imported here).
  const hashThreads = Number.isInteger(envThreads) && envThreads > 0 ? envThreads : Math.max(2, availableParallelism())
  // Measured before the servers start so nothing else competes for the CPU.
  const hash = await measureHashMs(hashThreads, { rounds: 7, warmEach: 5, alsoAlone: true })
  const hashMs = hash.pooled
  log(`argon2id hash: ${hashMs.toFixed(1)} ms with ${hashThreads} hashing at once (${hash.alone?.toFixed(1) ?? '?'} ms alone); hashing threads assumed: ${hashThreads} ` +
    (process.env.UV_THREADPOOL_SIZE === undefined ? '(the server sizes the libuv pool to one thread per core, at least two)' : '(UV_THREADPOOL_SIZE)'))

  const runId = randomSecret(6).replace(/[^A-Za-z0-9]/g, 'x')
  // A per-run admin name: on --db=postgres a previous run's admin (other password) may exist.
  const admin = { username: `benchadmin_${runId}`, password: randomSecret(18) }
  const [port, barePort] = await Promise.all([freePort(), freePort()])
  const { DATABASE_URL: _ignored, ...inherited } = process.env
  // Embedded: a throwaway DATA_DIR, created and migrated by the server as it starts, the way
  // `npm start` does on a new machine (it creates a new data directory in a short-lived child
  // process, so its memory is that of a server opening an existing one: 139-140 MB either way
  // once ready). Migrating first in a process of its own (npm run db:migrate) took ~1.5 s more.
  const database: Record<string, string> = opts.databaseUrl !== undefined
    ? { DATABASE_URL: opts.databaseUrl }
    : { DATA_DIR: mkdtempSync(path.join(tmpdir(), 'rolegate-bench-')) }
  if (database.DATA_DIR !== undefined) {
    const dataDir = database.DATA_DIR
    process.on('exit', () => { rmSync(dataDir, { recursive: true, force: true }) })
  }
  const server = startChild('rolegate', serverJs, {
    ...inherited,
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    JWT_SECRET: randomSecret(48),
    PORT: String(port),
    HOST: '127.0.0.1',
    ...database,
    ADMIN_USERNAME: admin.username,
    ADMIN_EMAIL: `${admin.username}@example.com`,
    ADMIN_PASSWORD: admin.password
  }, root, SERVER_NODE_FLAGS)
  const bare = startChild('bare fastify', bareJs, { ...process.env, NODE_ENV: 'production', PORT: String(barePort) }, root)
  const base = `http://127.0.0.1:${port}`
  const bareBase = `http://127.0.0.1:${barePort}`
  log(`starting rolegate (${opts.db}) on ${port} and bare fastify on ${barePort}`)
  // 60 s: a fresh embedded database alone takes ~6 s, more on a busy machine.
  await Promise.all([waitReady(server, `${base}/health`, 60_000), waitReady(bare, `${bareBase}/`, 60_000)])

  const rss = rssSampler(server.pid)
  // RSS after each step in the progress log says which route makes the server grow.
  const rssNote = (): string => `rolegate RSS ${rss.lastMb().toFixed(0)} MB (max ${rss.maxMb().toFixed(0)})`
  // Cheap routes: enough connections to saturate one server core. Hashing routes: more requests
  // in flight than hash threads, so the pool never idles while a response is on the wire.
  const conns: Connections = { cheap: 50, hashing: 4 * hashThreads, refresh: 20, probe: 10 }
  log(`preparing users and sessions; ${rssNote()}`)
  // Sessions: refresh chains lost when a run stops mid-request (<= connections per run) are
  // replaced by spares, so warm-up and measurement both find enough unused tokens.
  // Bare Fastify is warmed meanwhile (at least 2 s; a full run's warm-up when longer), at no
  // cost to the run's time: its JIT settles after about a second of load (--trace-opt: 120 of
  // its 126 optimizations by then), and its first measured runs should not meet half-compiled
  // code when rolegate's have had their warm-up.
  const [fx] = await Promise.all([
    prepare(base, runId, admin, conns.hashing, 2 * conns.refresh + 10, conns.hashing),
    runLoad(bareLoad(bareBase, conns), Math.max(2, warmS))
  ])
  const loads = scenarioLoads(bareBase, base, fx, conns)

  const result: RunResult = { scenarios: {}, hashMs, hashThreads, rssMb: 0 }
  const measure = async (name: keyof typeof loads): Promise<Measured> => {
    log(`${name}: ${warmS} s warm-up, ${measureS} s measured, ${loads[name].connections} connections`)
    const m = await warmAndRun(loads[name], warmS, measureS)
    log(`${name}: ${m.rps.toFixed(0)} req/s, p99 ${m.p99} ms; ${rssNote()}`)
    return m
  }
  // The cheap routes are where the ratio to bare Fastify matters, and where a few seconds of
  // outside load would decide it: each runs in short stretches alternating with bare.
  // --pin: for these scenarios the load generator gets CPU 0 and the server under test CPU 1,
  // instead of the scheduler moving all three between the cores.
  const allCpus = `0-${availableParallelism() - 1}`
  const pinned = opts.pin && availableParallelism() >= 2 &&
    [pinMainThread(process.pid, '0'), pinMainThread(server.pid, '1'), pinMainThread(bare.pid, '1')].every(Boolean)
  if (opts.pin) log(pinned ? 'pinned: load generator on CPU 0, servers on CPU 1' : 'warning: --pin needs taskset and two CPUs; running unpinned')
  // Several pairs, the ratio their median (pairedRatio). Not shorter than a second: each run
  // starts with new connections and idle caches that cost both servers alike, which pulls short
  // runs' ratios towards 1 (interleaved here on /api/test/all: half-second pairs 0.94-1.14,
  // two-second 0.91-0.94, four-second 0.86-0.92). Quick: four one-second pairs per scenario
  // keep the whole run, build included, under a minute.
  const pairs = opts.quick ? 4 : 8
  const pairS = opts.quick ? 1 : 2
  const bareRuns: Measured[] = []
  for (const name of ['all', 'user', 'admin'] as const) {
    log(`${name}: ${cheapWarmS} s warm-up, then ${pairs} x ${pairS} s alternating with bare, ${loads[name].connections} connections`)
    await runLoad(loads[name], cheapWarmS)
    const runs = await alternateWithBare(loads[name], loads.bare, pairs, pairS)
    const mine = combine(runs.mine)
    const theirs = combine(runs.bare)
    const ratio = pairedRatio(runs.mine, runs.bare)
    result.scenarios[name] = { ...mine, ratio }
    bareRuns.push(...runs.bare)
    const each = pairRatios(runs.mine, runs.bare).map(r => r.toFixed(2)).join(' ')
    log(`${name}: ${mine.rps.toFixed(0)} req/s against bare ${theirs.rps.toFixed(0)}, median ratio of the pairs ${ratio.toFixed(2)} (${each}), p99 ${mine.p99} ms; ${rssNote()}`)
  }
  result.scenarios.bare = combine(bareRuns)
  // Undone whatever happened: a half-pinned run (one taskset failing) must not stay half-pinned.
  if (opts.pin) for (const pid of [process.pid, server.pid, bare.pid]) pinMainThread(pid, allCpus)
  result.scenarios.refresh = await measure('refresh')
  // Timed again right before the hashing scenarios, both servers idle. The machine's speed moves
  // within a minute here: a start's timing once read 37.5 ms for a pool the server then drove
  // at under 34, and the capacity used read above 1 (NOISY). Outside load only ever adds time,
  // so the faster of the two timings is the better estimate of what the threads can do, and it
  // can only lower the share reported as used.
  // This process's hash threads are warm from the first timing: one hash per lane is enough.
  const again = await measureHashMs(hashThreads, { rounds: 4, warmEach: 1, alsoAlone: false })
  result.hashMs = Math.min(hashMs, again.pooled)
  log(`argon2id hash again: ${again.pooled.toFixed(1)} ms with ${hashThreads} hashing at once; capacity from ${result.hashMs.toFixed(1)} ms`)
  for (const name of ['signin', 'signup'] as const) result.scenarios[name] = await measure(name)
  log(`all_during_signin: ${conns.probe} connections on /api/test/all during a ${conns.hashing}-connection signin storm`)
  const { probe, storm } = await allDuringSignin(base, fx, conns, warmS, measureS)
  log(`all_during_signin: p99 ${probe.p99} ms, storm ${storm.rps.toFixed(0)} signins/s; ${rssNote()}`)
  // A failing storm invalidates the probe too: it was not measured under the intended load.
  result.scenarios.all_during_signin = { ...probe, errors: probe.errors + storm.errors, non2xx: probe.non2xx + storm.non2xx }

  rss.stop()
  result.rssMb = rss.maxMb()
  await stopAll()
  process.stdout.write(`rolegate benchmark (${opts.quick ? 'quick' : 'full'}, db=${opts.db}, ` +
    `${availableParallelism()} CPUs${pinned ? ', cheap routes pinned' : ''}, node ${process.version}, hash ${result.hashMs.toFixed(1)} ms x ${hashThreads} threads, ` +
    `load average ${loadAtStart.toFixed(2)} at start)\n`)
  process.stdout.write(table(result) + '\n')
  if (opts.json) process.stdout.write(summaryJson(result) + '\n')
}

// Children must never outlive the bench, whatever ends it.
let interrupted = false
process.once('exit', killAllNow)
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true
    log(`${sig}: stopping servers`)
    stopAll().finally(() => process.exit(130))
  })
}

main().catch(async (err: unknown) => {
  // After a signal, the failure is only the servers we just stopped: not worth a message.
  if (interrupted) return
  log(`failed: ${err instanceof Error ? err.message : String(err)}`)
  await stopAll()
  process.exit(1)
})
