import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance { config: Config }
}

// The validated configuration, loaded once by the caller (server entry or test helper).
export default fp<{ config: Config }>(async (app, opts) => {
  app.decorate('config', opts.config)
  // Settings that work but are likely not meant: said once, in the log the operator reads at
  // start (the config is loaded before any logger exists).
  for (const warning of opts.config.warnings) app.log.warn(warning)
}, { name: 'config' })
