import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { bearerSecurity, errors } from '../../../src/schemas/common.js'

// The tutorial's content routes, with its plain-text bodies. Role checks read the token's
// claims only: no database round trip per request.
// `example`, not `examples`: a content schema goes into the OpenAPI 3.0 document as written, and
// 3.0's Schema Object has only the singular (JSON Schema's `examples` makes the document invalid).
const text = (body: string) => ({
  200: { description: body, content: { 'text/plain': { schema: Type.String({ example: body }) } } }
})

const TEXT = 'text/plain; charset=utf-8'

// Synchronous handlers: nothing here awaits, and these are the routes load tests hammer.
const testRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/all', {
    schema: { tags: ['content'], operationId: 'publicContent', summary: 'Public content', response: text('Public Content.') }
  }, (_request, reply) => { void reply.type(TEXT).send('Public Content.') })

  app.get('/user', {
    schema: { tags: ['content'], operationId: 'userContent', summary: 'Content for any signed-in user', security: bearerSecurity, response: { ...text('User Content.'), ...errors(401) } },
    onRequest: app.authenticate
  }, (_request, reply) => { void reply.type(TEXT).send('User Content.') })

  app.get('/mod', {
    schema: { tags: ['content'], operationId: 'moderatorContent', summary: 'Content for moderators and admins', security: bearerSecurity, response: { ...text('Moderator Content.'), ...errors(401, 403) } },
    onRequest: app.authenticate,
    preHandler: app.requireRole('moderator')
  }, (_request, reply) => { void reply.type(TEXT).send('Moderator Content.') })

  app.get('/admin', {
    schema: { tags: ['content'], operationId: 'adminContent', summary: 'Content for admins', security: bearerSecurity, response: { ...text('Admin Content.'), ...errors(401, 403) } },
    onRequest: app.authenticate,
    preHandler: app.requireRole('admin')
  }, (_request, reply) => { void reply.type(TEXT).send('Admin Content.') })
}

export default testRoutes
