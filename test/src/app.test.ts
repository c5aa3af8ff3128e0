import t from 'tap'
import { build } from '../helper.js'

// src/app.ts opens the database before the plugins that set handlers and hooks: opened after
// them, the embedded database left every later request of the process on a slow V8 path
// (measured with perf; see the comment there and bench/NOTES.md). No timed test can see
// that reliably on a shared machine, so this one keeps the order from drifting back.
t.test('the database plugin loads before the plugins that set handlers and hooks', async (t) => {
  const app = await build(t, { name: 'embedded', url: 'memory://' })
  const loaded = app.printPlugins().split('\n').map(line => line.replace(/^[\s\u2500-\u257f]+/u, '').replace(/ \d+ ms$/, ''))
  const at = (name: string): number => loaded.indexOf(name)
  t.ok(at('db') > at('config'), `db after config (order: ${loaded.join(', ')})`)
  t.ok(at('config') >= 0)
  for (const later of ['validation', 'errors', 'security-headers', 'swagger', 'cors']) {
    t.ok(at(later) > at('db'), `${later} after db`)
  }
})
