import { sql } from 'kysely'
import t from 'tap'
import { build } from '../../helper.js'

// The embedded database lives in the server's own memory: src/db/connect.ts sizes it for an
// auth database (bench/NOTES.md, memory). A setting PGlite ignored would only show as
// resident memory growing back.
t.test('the embedded database runs with the memory settings of connect.ts', async (t) => {
  const app = await build(t, { name: 'embedded', url: 'memory://' })
  const show = async (name: 'shared_buffers' | 'max_connections'): Promise<string> => {
    const { rows } = await sql<Record<string, string>>`show ${sql.raw(name)}`.execute(app.db)
    return rows[0]?.[name] ?? ''
  }
  t.equal(await show('shared_buffers'), '4MB')
  t.equal(await show('max_connections'), '5')
})
