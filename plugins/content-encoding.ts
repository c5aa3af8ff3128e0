import type { preParsingHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError, quoted } from '../src/errors.js'
import { prependRouteHook, readsBody } from '../src/route-hooks.js'

// Request bodies are read as sent: rolegate decompresses nothing (its bodies are a few hundred
// bytes). A body under any coding but identity used to be parsed as if it had none: 'not valid
// JSON' for gzip, plain text under any other name. RFC 9110 (8.4) answers it with a 415.
//
// Transfer codings likewise: Node's parser undoes only chunked (and refuses a request whose last
// coding is not chunked), so under `gzip, chunked` the JSON parser met gzip bytes and said the
// body was not UTF-8. RFC 9112 (6.1) answers with a 501; no input gets a 5xx here (API.md), so
// it is a 400 naming the header. `identity` changes nothing and passes, as Node lets it.
const CHUNKED_ONLY = /^(?:\s*identity\s*,)*\s*chunked\s*$/i
// When the last coding is not chunked, where the body ends cannot be known, and the connection
// cannot carry another request (RFC 9112 6.3: a 400, then close it).
const CHUNKED_LAST = /(?:^|,)\s*chunked\s*$/i
const CLOSE = { connection: 'close' }

const refuseEncodedBodies: preParsingHookHandler = (request, _reply, payload, done) => {
  const transfer = request.headers['transfer-encoding']
  if (transfer !== undefined && !CHUNKED_ONLY.test(transfer)) {
    const message = `Transfer-Encoding ${quoted(transfer)} is not supported: send the body chunked or with a Content-Length`
    done(new HttpError(400, message, CHUNKED_LAST.test(transfer) ? undefined : CLOSE), payload)
    return
  }
  const coding = request.headers['content-encoding']
  if (coding === undefined || coding === '' || coding.trim().toLowerCase() === 'identity') {
    done(null, payload)
    return
  }
  done(new HttpError(415, `Content-Encoding ${quoted(coding)} is not supported: send the body uncompressed`), payload)
}

// Only on the routes Fastify reads a body for (DELETE too, though ours takes none: whatever is
// sent, the same answer): the GET routes load tests hammer run no extra hook.
export default fp(async (app) => {
  app.addHook('onRoute', (route) => {
    if (!readsBody(route)) return
    prependRouteHook(route, 'preParsing', refuseEncodedBodies)
  })
}, { name: 'content-encoding' })
