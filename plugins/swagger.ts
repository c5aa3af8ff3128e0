import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

// The OpenAPI document is generated from the same TypeBox schemas that validate requests and
// serialize responses, so it cannot drift from what the server does.
export default fp(async (app) => {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'rolegate',
        description: 'Sign-up, sign-in, tokens and user / moderator / admin access control. A drop-in replacement for the "Node.js Express Login with PostgreSQL + JWT" tutorial API.',
        version: '0.1.0'
      },
      tags: [
        { name: 'auth', description: 'Sign-up and sign-in' },
        { name: 'sessions', description: 'Refresh-token rotation, signout, the current user' },
        { name: 'content', description: "The tutorial's role-protected content routes" },
        { name: 'operations', description: 'Health and readiness' },
        { name: 'admin', description: 'User management and the audit log (admin access token; admin rights are re-checked in the database)' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          accessTokenHeader: { type: 'apiKey', in: 'header', name: 'x-access-token', description: "The tutorial's header; same token as the Bearer one" }
        }
      }
    }
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/documentation' })
}, { name: 'swagger' })
