import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

// Cross-origin access only for the origins listed in CORS_ORIGIN (comma-separated, or `*`;
// checked and normalised in src/config.ts).
// Credentials are allowed for listed origins so browsers can send the refresh cookie; with `*`
// they are not (browsers forbid credentials with a wildcard).
export default fp(async (app) => {
  const origin = app.config.corsOrigin
  if (origin === undefined) return
  const wildcard = origin === '*'
  await app.register(fastifyCors, {
    origin,
    credentials: !wildcard,
    allowedHeaders: ['content-type', 'authorization', 'x-access-token'],
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']
  })
}, { name: 'cors', dependencies: ['config'] })
