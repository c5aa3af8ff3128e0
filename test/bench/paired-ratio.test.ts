import t from 'tap'
import { pairedRatio, type Measured } from '../../bench/load.js'

const runs = (...rps: number[]): Measured[] => rps.map(r => ({ rps: r, p50: 0, p99: 1, errors: 0, non2xx: 0 }))

// The cheap routes' share of bare Fastify is the median of adjacent pairs' ratios, so one burst
// of outside load on one side of one pair cannot decide it.
t.test('the ratio is the median of the pairs, not the ratio of the totals', async (t) => {
  // Pair 3's bare run was hit by a burst (20k instead of ~40k): its ratio is an outlier.
  const mine = runs(34_000, 36_000, 35_000, 34_000, 35_000)
  const bare = runs(40_000, 40_000, 20_000, 40_000, 40_000)
  // Pair ratios 0.85 0.9 1.75 0.85 0.875: the median is 0.875, whatever the outlier's size.
  t.equal(pairedRatio(mine, bare), 0.875)
  const total = mine.reduce((s, m) => s + m.rps, 0) / bare.reduce((s, m) => s + m.rps, 0)
  t.ok(total > 0.95, `the totals' ratio (${total.toFixed(3)}) is what the median avoids`)
})

t.test('an even number of pairs takes the mean of the middle two; runs are paired in order', async (t) => {
  t.ok(Math.abs(pairedRatio(runs(8, 9, 7, 10), runs(10, 10, 10, 10)) - 0.85) < 1e-12)
  t.equal(pairedRatio(runs(5, 10), runs(10, 5)), 1.25)
})

t.test('no usable pair gives 0, not NaN', async (t) => {
  t.equal(pairedRatio([], []), 0)
  t.equal(pairedRatio(runs(5), runs(0)), 0)
  t.equal(pairedRatio(runs(5, 6), runs(10)), 0.5)
})
