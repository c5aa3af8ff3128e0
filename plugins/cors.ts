import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

// Cross-origin access only for the origins listed in CORS_ORIGIN (comma-separated, or `*`).
// Credentials are allowed for listed origins so browsers can send the refresh cookie; with `*`
// they are not (browsers forbid credentials with a wildcard).
export default fp(async (app) => {
  const value = app.config.corsOrigin?.trim()
  if (value === undefined || value === '') return
  const wildcard = value === '*'
  await app.register(fastifyCors, {
    origin: wildcard ? '*' : value.split(',').map(o => o.trim()).filter(o => o.length > 0),
    credentials: !wildcard,
    allowedHeaders: ['content-type', 'authorization', 'x-access-token'],
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']
  })
}, { name: 'cors', dependencies: ['config'] })
