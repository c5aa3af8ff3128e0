import fp from 'fastify-plugin'
import { createPasswordHasher, type PasswordHasher } from '../src/passwords.js'

declare module 'fastify' {
  interface FastifyInstance { passwords: PasswordHasher }
}

export default fp(async (app) => {
  app.decorate('passwords', createPasswordHasher(app.config.argon2))
}, { name: 'passwords', dependencies: ['config'] })
