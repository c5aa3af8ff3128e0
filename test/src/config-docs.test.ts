import { readFileSync } from 'node:fs'
import t from 'tap'
import { EnvSchema } from '../../src/config.js'

// Every setting the server reads is written down where people look for it: a variable missing
// from .env.example or the README's table is one nobody finds without reading src/config.ts.
const variables = Object.keys(EnvSchema.properties)
const envExample = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const configurationTable = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1))

t.ok(variables.length > 20, 'the schema lists the variables')
for (const name of variables) {
  t.match(envExample, new RegExp(`^# ${name}=`, 'm'), `.env.example shows ${name}`)
  // The table writes a family once: `RATE_LIMIT_SIGNIN_MAX` / `_WINDOW`.
  const suffix = name.slice(name.lastIndexOf('_'))
  const written = configurationTable.includes(`\`${name}\``) ||
    new RegExp(`\`${name.slice(0, -suffix.length)}_[A-Z]+\` / \`${suffix}\``).test(configurationTable)
  t.ok(written, `the README's Configuration section names ${name}`)
}
