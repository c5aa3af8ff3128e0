// Creates an embedded database directory and exits. connect.ts runs this in a child process:
// creating a cluster (initdb) peaks at ~700 MB and the WebAssembly memory it grows never
// shrinks, so a server that did it in-process kept ~290 MB after its first start instead of
// ~185 MB on every later one. Usage: node create-embedded.js <dir>
import { PGlite } from '@electric-sql/pglite'

const dir = process.argv[2]
if (dir === undefined) throw new Error('usage: create-embedded <data directory>')
const pglite = await PGlite.create(dir)
await pglite.close()
