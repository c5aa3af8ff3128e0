import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { bearerSecurity, errors } from '../../../src/schemas/common.js'

// The tutorial's content routes, with its plain-text bodies. Role checks read the token's
// claims only: no database round trip per request.
const text = (body: string) => ({
  200: { description: body, content: { 'text/plain': { schema: Type.String({ examples: [body] }) } } }
})

const testRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/all', {
    schema: { tags: ['content'], summary: 'Public content', response: text('Public Content.') }
  }, async (_request, reply) => await reply.type('text/plain; charset=utf-8').send('Public Content.'))

  app.get('/user', {
    schema: { tags: ['content'], summary: 'Content for any signed-in user', security: bearerSecurity, response: { ...text('User Content.'), ...errors(401) } },
    onRequest: app.authenticate
  }, async (_request, reply) => await reply.type('text/plain; charset=utf-8').send('User Content.'))

  app.get('/mod', {
    schema: { tags: ['content'], summary: 'Content for moderators and admins', security: bearerSecurity, response: { ...text('Moderator Content.'), ...errors(401, 403) } },
    onRequest: app.authenticate,
    preHandler: app.requireRole('moderator')
  }, async (_request, reply) => await reply.type('text/plain; charset=utf-8').send('Moderator Content.'))

  app.get('/admin', {
    schema: { tags: ['content'], summary: 'Content for admins', security: bearerSecurity, response: { ...text('Admin Content.'), ...errors(401, 403) } },
    onRequest: app.authenticate,
    preHandler: app.requireRole('admin')
  }, async (_request, reply) => await reply.type('text/plain; charset=utf-8').send('Admin Content.'))
}

export default testRoutes
