import t from 'tap'
import type { Measured } from '../../bench/load.js'
import { summaryJson, table, type RunResult } from '../../bench/report.js'

// The benchmark's verdicts must agree with the figures it prints and the JSON it emits: a
// share just under a target (0.795 against 0.80) once printed as 0.80 beside FAIL.
const run = (rps: number, extra: Partial<Measured> = {}): Measured => ({ rps, p50: 1, p99: 4, errors: 0, non2xx: 0, ...extra })

const result: RunResult = {
  scenarios: {
    bare: run(10_000),
    all: run(9_000, { ratio: 0.9 }),
    user: run(7_951, { ratio: 0.7951 }),
    admin: run(8_000, { ratio: 0.8 }),
    signin: run(79.96),
    signup: run(80),
    all_during_signin: run(5_000, { p99: 26 })
  },
  hashMs: 20,
  hashThreads: 2,
  rssMb: 150
}

const rowOf = (name: string): string => table(result).split('\n').find(line => line.startsWith(`${name} `)) ?? ''

t.test('a share is shown cut to three decimals and judged as shown', async (t) => {
  t.match(rowOf('user'), /\b0\.795\b.*ratio >= 0\.80\s+FAIL$/)
  t.match(rowOf('admin'), /\b0\.800\b.*PASS$/)
  t.match(rowOf('all'), /\b0\.900\b.*PASS$/)
  t.match(rowOf('signin'), /used 0\.799\)\s+FAIL$/)
  t.match(rowOf('signup'), /used 0\.800\)\s+PASS$/)
  t.match(rowOf('all_during_signin'), /p99 <= 25 ms\s+FAIL$/)
})

t.test('the JSON carries the same shares as the table', async (t) => {
  const json = JSON.parse(summaryJson(result)) as { scenarios: Record<string, { ratio: number }>, hashCapacityUsed: Record<string, number> }
  t.equal(json.scenarios.user?.ratio, 0.795)
  t.equal(json.scenarios.admin?.ratio, 0.8)
  t.same(json.hashCapacityUsed, { signin: 0.799, signup: 0.8 })
})
