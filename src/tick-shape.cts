// Keeps one of Node's process.nextTick objects alive for the life of the process. CommonJS, so
// that the process entry (server.cts) can run it before anything else is loaded.
//
// Why: nextTick builds each tick as `{ [async_id_symbol]: id, [trigger_async_id_symbol]: id,
// callback, args }`. V8 records the object's shape (hidden class) at each computed key, and
// holds those shapes only weakly: when a full garbage collection runs while no tick object is
// alive, they are freed, the next tick builds new ones, and V8 then marks those sites as
// seeing many shapes (megamorphic) for good. From then on every tick defines its properties
// through V8's slow runtime path. A server meets such collections early (five full ones
// before it first answers /health with the embedded database, --trace-gc), and every request
// makes several ticks: measured with perf under load on /api/test/all, the slow path (the
// runtime call, map transitions and migrations) was ~10% of the server's CPU per request, and
// the server took ~15% more CPU per request than with one tick object kept.
// test/src/tick-shape.test.ts shows the sites going megamorphic after collections without it
// and staying monomorphic with it. One object (a no-op callback, no arguments) holds the
// whole chain of shapes alive.
//
// Limit: if a field's representation changes later (an async id beyond the small-integer
// range, after ~2^31 async resources), V8 replaces the shapes and the sites go megamorphic
// anyway; that costs what this saves, no more.
import asyncHooks = require('node:async_hooks')

let kept: object | undefined

/** Captures one tick object (through an async_hooks init hook, on once) and keeps it. */
function keepTickObjectShape (): boolean {
  if (kept !== undefined) return true
  const hook = asyncHooks.createHook({
    init (_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject') kept ??= resource
    }
  })
  hook.enable()
  try {
    process.nextTick(noop)
  } finally {
    hook.disable()
  }
  return kept !== undefined
}

function noop (): void {}

export = { keepTickObjectShape }
