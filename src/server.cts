// The process entry, CommonJS on purpose. argon2 hashes on libuv's thread pool, which defaults
// to 4 threads whatever the machine; one thread per core uses all the hash capacity without
// oversubscribing the cores the event loop needs too, and each argon2 thread keeps its ~19 MiB.
// libuv reads UV_THREADPOOL_SIZE once, when the pool starts, and Node starts it to read an ES
// module entry (asynchronously) before the module's first line runs: set from an ES module
// entry, the variable was ignored and the server hashed on 4 threads. A CommonJS entry is
// read synchronously, so the setting below comes first. An explicit setting wins.
import os = require('node:os')
import tickShape = require('./tick-shape.cjs')

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, os.availableParallelism()))
// Before any module that allocates (tick-shape.cts says why).
tickShape.keepTickObjectShape()

void import('./main.js')
