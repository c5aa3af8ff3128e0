import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { lowerWorkerThreadPriority } from '../../src/worker-priority.js'

/** A thread's nice value: field 19 of /proc/self/task/<tid>/stat, counted after the ")" of its name. */
function niceOf (tid: string): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
}

t.test('every thread but the event loop yields to it; the event loop keeps its priority', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const mainBefore = niceOf(String(process.pid))
  const changed = await lowerWorkerThreadPriority(7)
  const others = readdirSync('/proc/self/task').filter(tid => tid !== String(process.pid))
  t.ok(changed >= 1, 'libuv pool threads exist once it has had a task')
  t.equal(changed, others.length)
  for (const tid of others) t.equal(niceOf(tid), 7, `thread ${tid}`)
  t.equal(niceOf(String(process.pid)), mainBefore, 'the event loop is untouched')
})

// The server (src/main.ts) calls it with no argument: the worker threads are niced to 10.
t.test('by default the other threads get nice 10', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const mainBefore = niceOf(String(process.pid))
  await lowerWorkerThreadPriority()
  const others = readdirSync('/proc/self/task').filter(tid => tid !== String(process.pid))
  for (const tid of others) t.equal(niceOf(tid), 10, `thread ${tid}`)
  t.equal(niceOf(String(process.pid)), mainBefore, 'the event loop is untouched')
})
