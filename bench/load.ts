// Thin wrapper around programmatic autocannon: one place decides what counts as a valid run.
import autocannon from 'autocannon'

export interface Load {
  url: string
  connections: number
  /** The status every response must have (signup: 201, the rest: 200). */
  expectStatus: number
  /** Exact body every response must have, for routes whose body is fixed. */
  expectBody?: string
  /** Either one fixed request (autocannon only checks expectBody then)... */
  request?: Pick<autocannon.Request, 'method' | 'headers' | 'body'>
  /** ...or a sequence, possibly built per request by setupRequest. */
  requests?: autocannon.Request[]
}

export interface Measured {
  rps: number
  p50: number
  p99: number
  /** Connection errors + timeouts + wrong bodies + 2xx other than the expected status. */
  errors: number
  non2xx: number
  /** Share of the bare server's req/s, when it was measured in runs alternating with bare's. */
  ratio?: number
}

export const jsonHeaders = { 'content-type': 'application/json' }

function autocannonOptions (load: Load, seconds: number): autocannon.Options {
  const opts: autocannon.Options = {
    url: load.url,
    connections: load.connections,
    pipelining: 1,
    duration: seconds,
    // A stalled server must show up as timeouts, not as a 10 s hole in the run.
    timeout: 5,
    // autocannon checks for the end of a run at each sample (1 s by default): a half-second run
    // lasted a whole second. Only the run's totals are used, so finer samples cost nothing.
    sampleInt: 100,
    ...load.request
  }
  if (load.requests !== undefined) opts.requests = load.requests
  if (load.expectBody !== undefined) opts.expectBody = load.expectBody
  return opts
}

/** Connection errors, timeouts, wrong bodies and 2xx other than the expected status. */
function errorsOf (r: autocannon.Result, load: Load): number {
  let wrong2xx = 0
  for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) {
    const n = Number(code)
    if (n >= 200 && n < 300 && n !== load.expectStatus) wrong2xx += stat.count ?? 0
  }
  return r.errors + r.mismatches + wrong2xx
}

export async function runLoad (load: Load, seconds: number): Promise<Measured> {
  const r = await autocannon(autocannonOptions(load, seconds))
  return {
    // Completed requests over the run's actual length: autocannon's "N requests in T s", so a
    // CLI run can be compared 1:1, and exact for the one-second runs that alternate below.
    rps: r.duration > 0 ? r.requests.total / r.duration : 0,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: errorsOf(r, load),
    non2xx: r.non2xx
  }
}

/** The runs of one scenario as one figure: mean req/s, median p50, worst p99, every error. */
export function combine (runs: Measured[]): Measured {
  const sorted = runs.map(m => m.p50).sort((a, b) => a - b)
  return {
    rps: runs.reduce((sum, m) => sum + m.rps, 0) / Math.max(1, runs.length),
    p50: sorted[Math.floor(sorted.length / 2)] ?? 0,
    p99: Math.max(0, ...runs.map(m => m.p99)),
    errors: runs.reduce((sum, m) => sum + m.errors, 0),
    non2xx: runs.reduce((sum, m) => sum + m.non2xx, 0)
  }
}

/**
 * A scenario against bare Fastify, in short runs that alternate (A B B A A B ...), so outside
 * load that comes and goes on a shared machine hits both alike. Each run of ours is paired with
 * the bare run next to it in time.
 */
export async function alternateWithBare (load: Load, bare: Load, pairs: number, seconds: number): Promise<{ mine: Measured[], bare: Measured[] }> {
  const mine: Measured[] = []
  const theirs: Measured[] = []
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      theirs.push(await runLoad(bare, seconds))
      mine.push(await runLoad(load, seconds))
    } else {
      mine.push(await runLoad(load, seconds))
      theirs.push(await runLoad(bare, seconds))
    }
  }
  return { mine, bare: theirs }
}

/**
 * The share of bare Fastify's req/s: the median of the pairs' ratios. A burst of outside load
 * that lands on one run of a pair moves that pair's ratio by 20-30% on this machine; a total
 * over few pairs carries it into the result, the median of several pairs does not.
 */
export function pairedRatio (mine: Measured[], bare: Measured[]): number {
  const ratios = pairRatios(mine, bare).filter(Number.isFinite).sort((a, b) => a - b)
  if (ratios.length === 0) return 0
  const mid = Math.floor(ratios.length / 2)
  return ratios.length % 2 === 1 ? ratios[mid] ?? 0 : ((ratios[mid - 1] ?? 0) + (ratios[mid] ?? 0)) / 2
}

/** Each of our runs against the bare run paired with it (NaN where there is none to compare). */
export function pairRatios (mine: Measured[], bare: Measured[]): number[] {
  return mine.map((m, i) => m.rps / (bare[i]?.rps ?? Number.NaN))
}

/** The value below which `share` of the sorted values lie (nearest rank). */
export function percentile (sorted: readonly number[], share: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1))] ?? 0
}

/**
 * Warm-up (discarded: JIT, connection setup, pools) and measurement in one run, counting only
 * the responses that arrive in the measured window: the rate of a loaded server in steady
 * state. Two runs back to back (as here before) charged the second with the first's leftovers
 * on the hashing routes: requests in flight when a run stops still hash to the end (argon2
 * cannot be called back), so the measured run's first responses queued behind about four
 * hashes per thread, ~0.1 s of a quick run's 2.5 then, and its own last ones were cut off.
 * Errors and non-2xx count over the whole run, warm-up included.
 */
export async function warmAndRun (load: Load, warmS: number, measureS: number): Promise<Measured> {
  const start = performance.now()
  const from = start + warmS * 1000
  const to = from + measureS * 1000
  const latencies: number[] = []
  // A little longer than the window: autocannon only checks for its end every sampleInt.
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(autocannonOptions(load, warmS + measureS + 0.2), (err, result) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(result)
    })
    run.on('response', (_client, _status, _bytes, ms) => {
      const now = performance.now()
      if (now >= from && now < to) latencies.push(ms)
    })
  })
  latencies.sort((a, b) => a - b)
  // Each response's own time, to the hundredth of a millisecond (autocannon's histogram, which
  // runLoad reports, keeps whole milliseconds).
  const ms = (share: number): number => Math.round(percentile(latencies, share) * 100) / 100
  return {
    rps: latencies.length / measureS,
    p50: ms(0.5),
    p99: ms(0.99),
    errors: errorsOf(r, load),
    non2xx: r.non2xx
  }
}

/** Plain JSON POST used while preparing users and tokens (not measured). */
export async function postJson (url: string, body: unknown, token?: string): Promise<{ status: number, json: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...jsonHeaders }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) as Record<string, unknown> } catch { json = { raw: text } }
  return { status: res.status, json }
}
