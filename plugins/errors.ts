import type { FastifyError, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { errorBody, HttpError } from '../src/errors.js'
import { isDatabaseUnavailable, isUnstorableText, uniqueViolationMessage } from '../src/db/errors.js'

const RETRY_AFTER_SECONDS = '5'

// One place decides what every failure looks like: the contract's
// { statusCode, error, message } JSON, never HTML, a stack trace or a database message.
export default fp(async (app) => {
  app.setErrorHandler(async (err: FastifyError & { headers?: Record<string, string> }, request, reply) => {
    if (err.validation !== undefined) {
      return await send(reply, 400, validationMessage(err))
    }
    const conflict = uniqueViolationMessage(err)
    if (conflict !== undefined) return await send(reply, 409, conflict)
    if (isUnstorableText(err)) return await send(reply, 400, 'Text must not contain NUL (\\u0000) characters')
    if (isDatabaseUnavailable(err)) {
      request.log.warn({ err: { message: err.message, code: err.code } }, 'database unavailable')
      void reply.header('retry-after', RETRY_AFTER_SECONDS)
      return await send(reply, 503, 'Service temporarily unavailable, please retry')
    }
    const status = err.statusCode ?? 500
    // Client errors (Fastify's own: 413, 415, bad JSON...) and the ones we throw on purpose
    // carry a message meant for the client.
    if ((status >= 400 && status < 500) || err instanceof HttpError) {
      if (err.headers !== undefined) void reply.headers(err.headers)
      return await send(reply, status, err.message)
    }
    request.log.error({ err }, 'unhandled error')
    return await send(reply, 500, 'Internal Server Error')
  })

  app.setNotFoundHandler(async (request, reply) =>
    await send(reply, 404, `Route ${request.method}:${request.url.split('?')[0] ?? ''} not found`))
}, { name: 'errors' })

async function send (reply: FastifyReply, status: number, message: string): Promise<FastifyReply> {
  return await reply.code(status).type('application/json; charset=utf-8').send(errorBody(status, message))
}

// Ajv's message plus the field it is about: `body/username must NOT have fewer than 3
// characters`, `body/foo is not allowed`.
function validationMessage (err: FastifyError): string {
  const first = err.validation?.[0]
  if (first === undefined) return err.message
  const where = `${err.validationContext ?? 'body'}${first.instancePath}`
  if (first.keyword === 'additionalProperties') {
    return `${where}/${String(first.params.additionalProperty)} is not allowed (unknown property)`
  }
  if (first.keyword === 'required') {
    return `${where}/${String(first.params.missingProperty)} is required`
  }
  return `${where} ${first.message ?? 'is invalid'}`
}
