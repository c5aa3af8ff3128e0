// The Node options the server process is started with: `npm start` and `npm run dev`
// (package.json, checked by test/src/server-flags.test.ts), the benchmark and the fault
// tests' server processes. They only take effect on node's command line: V8 sizes its heap,
// and Node its helper threads, before any of our code runs. Each was measured with the
// embedded database on this project's two-core machine (bench/NOTES.md): resident
// memory under load, and requests/s in interleaved runs against a server without it.
export const SERVER_NODE_FLAGS = [
  // V8's young generation grows to two 16 MB semi-spaces under steady load and stays there.
  // Two 2 MB ones serve a request's short-lived objects as well: ~24 MB less. They make
  // scavenges eight times as frequent, which the last flag keeps cheap.
  '--max-semi-space-size=2',
  // When collections are cheap V8 lets the old generation grow to up to four times its live
  // size before the next full one. A refresh storm (requests queue for the one embedded
  // connection, so their garbage is promoted) then took the server from ~190 to ~245-260 MB.
  // 1.5x holds that rise to ~15-20 MB. Tighter is not free: at 1.2x and 1.35x the cheap routes
  // lost 10-20%, at 1.5x within noise (why is not known: the collectors' own time was the same).
  '--heap-growing-percent=50',
  // Node starts four V8 helper threads (concurrent marking, compilation) on any machine, and
  // each keeps a malloc arena of a few MB: two saved ~4 MB under load here, and one pays for the
  // larger compilations of the last flag (peak RSS in quick bench runs 195-196 MB with it and
  // one helper, 199-200 with two). One alone changed no route's requests/s (interleaved runs).
  '--v8-pool-size=1',
  // With semi-spaces this small a scavenge runs every few hundred requests, and splitting one
  // that small across V8's helper threads costs more than it saves: --trace-gc under load on
  // /api/test/all, 0.56 ms per scavenge with the helpers against 0.29 ms on the main thread
  // alone, ~2.2 against ~1.3 us per request (bare Fastify with the same semi-spaces, helpers at
  // their normal priority: 0.34 against 0.15 ms). Interleaved runs: 1.06x the requests/s on
  // /api/test/all and /user (median of twelve pairs each). The refresh storm's larger
  // scavenges stay a few milliseconds.
  '--no-parallel-scavenge',
  // A property access that has seen more than four object shapes goes megamorphic: V8 looks
  // each one up in a global cache instead of checking the shapes it knows. A server that has
  // answered signups, signins and errors has fed Node's http and stream code and Fastify's
  // Request and Reply more shapes than a one-route server's, and its cheap routes paid for it.
  // Sixteen: main-thread instructions per request (callgrind) -4.5% on /api/test/all, -4% on
  // /user, -5% on /admin; 8, 12, 24 and 32 saved less. Interleaved runs: +3-5% requests/s.
  '--max-valid-polymorphic-map-count=16'
] as const
