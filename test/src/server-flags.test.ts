import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { SERVER_NODE_FLAGS } from '../../src/server-flags.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const run = promisify(execFile)

// The flags only take effect on node's command line, so every way the server is started must
// pass them: npm start and npm run dev here; the benchmark and the fault harness import them.
t.test('npm start and npm run dev start the server with SERVER_NODE_FLAGS', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const expected = `npm run build && node ${SERVER_NODE_FLAGS.join(' ')} dist/src/server.cjs`
  t.equal(pkg.scripts.start, expected)
  t.equal(pkg.scripts.dev, expected)
})

// A flag this Node does not know makes it exit at once ("bad option"); a renamed V8 flag would
// otherwise only show up as memory quietly growing back. The young generation is the largest
// saving: with the flags it stays at two 2 MB semi-spaces however much is allocated.
t.test('this Node accepts the flags and keeps the young generation small with them', async (t) => {
  const probe = `
    const v8 = require('node:v8')
    let keep = []
    for (let i = 0; i < 2e6; i++) { keep.push({ i }); if (keep.length > 5e4) keep = [] }
    const space = v8.getHeapSpaceStatistics().find(s => s.space_name === 'new_space')
    process.stdout.write(String(space.space_size))`
  const newSpace = async (flags: readonly string[]): Promise<number> =>
    Number((await run(process.execPath, [...flags, '-e', probe], { env: { PATH: process.env.PATH ?? '' } })).stdout)
  const withFlags = await newSpace(SERVER_NODE_FLAGS)
  const without = await newSpace([])
  t.ok(withFlags <= 4 * 1024 * 1024 + 256 * 1024, `new space with the flags: ${withFlags} bytes`)
  t.ok(without > 2 * withFlags, `new space without them: ${without} bytes (the probe must make it grow)`)
})
