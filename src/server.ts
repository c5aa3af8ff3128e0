import { availableParallelism } from 'node:os'

// argon2 hashes on libuv's thread pool, which defaults to 4 threads whatever the machine. One
// thread per core uses all the hash capacity without oversubscribing the cores the event loop
// needs too (and each idle argon2 thread keeps its ~19 MiB). Set before anything touches the
// pool, hence this tiny entry that loads the server afterwards; an explicit setting wins.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()))

await import('./main.js')
