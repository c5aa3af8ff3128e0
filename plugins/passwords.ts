import fp from 'fastify-plugin'
import { createPasswordHasher, type PasswordHasher } from '../src/passwords.js'
import { shuttingDownError } from './under-pressure.js'

declare module 'fastify' {
  interface FastifyInstance { passwords: PasswordHasher }
}

// Well inside close-with-grace's 10 s: the hashes running then still finish, and the answers
// are written.
const HASH_WAIT_AT_SHUTDOWN_MS = 6_000

export default fp(async (app) => {
  const passwords = createPasswordHasher(app.config.argon2)
  app.decorate('passwords', passwords)
  // Requests running at the signal finish, those waiting for a hash included, as long as the
  // shutdown's 10 s allow: any still waiting after HASH_WAIT_AT_SHUTDOWN_MS get the 503 then.
  app.addHook('preClose', (done) => {
    setTimeout(() => { passwords.close(shuttingDownError) }, HASH_WAIT_AT_SHUTDOWN_MS).unref()
    done()
  })
}, { name: 'passwords', dependencies: ['config'] })
