import { maxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { allowedValues, errorBody, HttpError, quoted } from '../src/errors.js'
import { corsHeaders } from './cors.js'
import { API_HEADERS } from './security-headers.js'
import { isDatabaseUnavailable, isUnstorableText, uniqueViolationMessage } from '../src/db/errors.js'
import { USERNAME_CHARACTERS, USERNAME_CHARACTERS_IN_WORDS } from '../src/schemas/auth.js'
import { NO_NUL } from '../src/schemas/common.js'

const RETRY_AFTER_SECONDS = '5'
const NUL_REFUSED = 'must not contain NUL (\\u0000) characters'
// What a pattern or a format asks for, in words: ajv quotes the regular expression or names the
// format, and front ends show the message to the person filling in the form.
const PATTERN_MEANING: Readonly<Record<string, string>> = {
  [NO_NUL]: NUL_REFUSED,
  [USERNAME_CHARACTERS]: `may contain only the characters ${USERNAME_CHARACTERS_IN_WORDS}`
}
const FORMAT_MEANING: Readonly<Record<string, string>> = { email: 'must be an email address' }
// Path parameters longer than this are refused before routing (app.ts, routerOptions).
export const MAX_PARAM_LENGTH = 200

// One place decides what every failure looks like: the contract's
// { statusCode, error, message } JSON, never HTML, a stack trace or a database message.
export default fp(async (app) => {
  app.setErrorHandler(async (err: FastifyError & { headers?: Record<string, string> }, request, reply) => {
    if (err.validation !== undefined) {
      return await send(reply, 400, validationMessage(err))
    }
    const conflict = uniqueViolationMessage(err)
    if (conflict !== undefined) return await send(reply, 409, conflict)
    // The fallback for text no schema refused (NO_NUL): the field is not known here.
    if (isUnstorableText(err)) return await send(reply, 400, `Text ${NUL_REFUSED}`)
    if (isDatabaseUnavailable(err)) {
      request.log.warn({ err: { message: err.message, code: err.code } }, 'database unavailable')
      void reply.header('retry-after', RETRY_AFTER_SECONDS)
      return await send(reply, 503, 'Service temporarily unavailable, please retry')
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return await send(reply, 415, mediaTypeMessage(request.headers['content-type']))
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') drainRestOfBody(request, reply)
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

  app.server.on('checkExpectation', expectationFailedReply)
  app.server.on('connect', connectRefusedReply)
}, { name: 'errors' })

/**
 * Errors Fastify meets while routing, before any hook or handler: a path that is not valid
 * percent-encoding, a path parameter over `maxParamLength`. Left to Fastify, they get a body of
 * its own (a fourth field, `code`, and 'Bad Request' beside 414) and none of the API's security
 * headers, since no onRequest hook ran. Only a server option reaches them: app.ts passes this
 * as `frameworkErrors`.
 */
export function frameworkErrorReply (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void reply.headers(API_HEADERS)
  void reply.headers(corsHeaders(reply.server.config.corsOrigin, request.headers.origin))
  // Messages of our own: Fastify's repeat the whole URL, query string included, which can be
  // thousands of characters of the client's own input. And 400, not Fastify's 414, for the long
  // parameter: the contract makes a malformed id in a path a 400, and ids are the only ones.
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void send(reply, 400, `A path parameter is longer than ${MAX_PARAM_LENGTH} characters`)
    return
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    void send(reply, 400, 'The URL path is not valid percent-encoding')
    return
  }
  // Any other routing error a later Fastify may add: its message if it blames the request.
  const status = err.statusCode ?? 500
  const clientError = status >= 400 && status < 500
  void send(reply, clientError ? status : 500, clientError ? err.message : 'Internal Server Error')
}

/**
 * Requests Node's HTTP parser refuses before there is a request to route: a control character
 * in a header, no HTTP at all, Content-Length beside Transfer-Encoding, a request line and
 * headers over Node's limit. Fastify's default answer says only 'Client Error' and carries none
 * of the API's headers. This one names the problem with llhttp's reason (a fixed phrase such as
 * 'Invalid header value char', never the client's bytes) in the contract's shape, then closes
 * the connection, whose stream can no longer be read. app.ts passes it as `clientErrorHandler`.
 */
export function clientErrorReply (this: FastifyInstance, err: Error & { code?: string, reason?: unknown }, socket: Socket): void {
  // A reset connection, or one already gone: nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'The request did not arrive within the request timeout']
    : err.code === 'HPE_HEADER_OVERFLOW'
      // llhttp counts the request line too: a long URL ends here as well.
      ? [431, `The request line and headers are larger than ${maxHeaderSize} bytes`]
      // An HTTP/2 client with prior knowledge (h2c) opens with "PRI * HTTP/2.0": llhttp stops
      // there with a reason of its own, 'Pause on PRI/Upgrade'. 400, not 505: no input is a 5xx.
      : err.code === 'HPE_PAUSED_H2_UPGRADE'
        ? [400, 'HTTP/2 is not supported here: send HTTP/1.1 (or put a proxy that speaks HTTP/2 in front)']
        : [400, `Malformed HTTP request: ${typeof err.reason === 'string' ? err.reason : 'unreadable'}`]
  this.log.debug({ code: err.code }, 'refused by the HTTP parser')
  // A request already being answered (the parser failed on its body, after the route refused
  // it): a second answer would follow the first on the connection. Node's own rule. Nor one
  // already answered: refused before its body arrived (413, 404, 415...), the rest of the body
  // is read and dropped (by Node, which marks the request `_dumped`, or for a 413 by
  // drainRestOfBody below), and if that stalls past the request timeout, a 408 would be a
  // second answer to it, which Node's own handler also writes.
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  const reading = incomingOf(socket)
  const answered = reading !== undefined && ((reading as { _dumped?: boolean })._dumped === true || beingDrained.has(reading))
  if (socket.writable && answering?.headersSent !== true && !answered) socket.write(rawErrorResponse(status, message))
  socket.destroy(err)
}

/** The request a connection's HTTP parser is reading or last read, if any: Node's own field. */
export function incomingOf (socket: Socket): IncomingMessage | undefined {
  return (socket as Socket & { parser?: { incoming?: IncomingMessage | null } | null }).parser?.incoming ?? undefined
}

/**
 * CONNECT, a request for a proxy tunnel: Node hands it to 'connect' listeners only and, with
 * none, closed the connection without an answer. The errors plugin adds this one.
 */
function connectRefusedReply (_request: IncomingMessage, socket: Duplex): void {
  socket.end(rawErrorResponse(405, 'CONNECT is not supported: this server is not a proxy'))
}

// A whole error response, for a socket no Fastify reply exists for; the connection closes.
function rawErrorResponse (status: number, message: string): string {
  const error = errorBody(status, message)
  const body = JSON.stringify(error)
  const headers = Object.entries(closingHeaders(body)).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `HTTP/1.1 ${status} ${error.error}\r\n${headers}\r\n${body}`
}

/**
 * Requests that expect anything but 100-continue: Node answers them 417 itself, before any
 * route, with an empty body and none of the API's headers, unless the server has a
 * 'checkExpectation' listener (the errors plugin adds this one). Only such requests run it.
 */
function expectationFailedReply (request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(errorBody(417, `The Expect header ${quoted(request.headers.expect ?? '')} is not supported (only 100-continue is)`))
  // Closed: the body the client may or may not send now is never read.
  response.writeHead(417, closingHeaders(body)).end(body)
}

// The API's headers on a JSON error written outside Fastify, on a connection that then closes.
function closingHeaders (body: string): Record<string, string> {
  return { ...API_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }
}

// What a refused body may still send, read and dropped, so that its 413 reaches the client
// (below); past it the connection is cut, as before.
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
// Requests answered 413 whose body is being drained: already answered, whatever comes next.
const beingDrained = new WeakSet<IncomingMessage>()

/**
 * Fastify answers a body over the limit before reading it, with `connection: close`, and Node
 * then closed a socket the client was still writing to: the kernel answers the next segments
 * with a reset, and a client that had not read the 413 yet loses it (fetch saw EPIPE for 18 of
 * 20 uploads of 3 MiB). The rest of the body is read and dropped instead, and the connection
 * stays open for the client's next request, up to DRAIN_LIMIT_BYTES; a body declared larger
 * than that keeps the close, and so does a longer one still coming. The request timeout
 * (30 s) bounds the time a connection may spend on this, as for any body.
 */
function drainRestOfBody (request: FastifyRequest, reply: FastifyReply): void {
  if (Number(request.headers['content-length'] ?? 0) > DRAIN_LIMIT_BYTES) return
  void reply.removeHeader('connection')
  beingDrained.add(request.raw)
  let drained = 0
  request.raw.on('data', (chunk: Buffer) => {
    drained += chunk.length
    if (drained > DRAIN_LIMIT_BYTES) request.raw.socket?.destroy()
  })
  request.raw.resume()
}

export async function send (reply: FastifyReply, status: number, message: string): Promise<FastifyReply> {
  return await reply.code(status).type('application/json; charset=utf-8').send(errorBody(status, message))
}

// Fastify says only 'Unsupported Media Type'; curl sends a form unless told otherwise.
function mediaTypeMessage (type: string | undefined): string {
  if (type === undefined) return 'Content-Type must be application/json (the request has a body but no Content-Type)'
  // Two Content-Type lines arrive joined with a comma (joinDuplicateHeaders, app.ts).
  if (type.includes(',')) return `Content-Type must be sent once (got ${quoted(type)})`
  return `Content-Type must be application/json (got ${quoted(type)})`
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
  const meaning = first.keyword === 'pattern'
    ? PATTERN_MEANING[String(first.params.pattern)]
    : first.keyword === 'format' ? FORMAT_MEANING[String(first.params.format)] : undefined
  if (meaning !== undefined) return `${where} ${meaning}`
  if (first.keyword === 'required') {
    return `${where}/${String(first.params.missingProperty)} is required`
  }
  const allowed = allowedValues((err.validation ?? []).filter(issue => issue.instancePath === first.instancePath))
  if (allowed !== undefined) return `${where} must be one of ${allowed.join(', ')}`
  return `${where} ${first.message ?? 'is invalid'}`
}
