import type { FastifyBodyParser, FastifyInstance } from 'fastify'
import { HttpError } from './errors.js'

/**
 * Fastify's JSON body parser, which refuses a `__proto__` key and a `constructor` holding a
 * `prototype` (keys that could reach an object's prototype) but calls such a body 'not valid
 * JSON'. This one refuses the same bodies and says why. The success path is Fastify's own;
 * only a refused body is read again.
 */
export function jsonBodyParser (app: FastifyInstance): FastifyBodyParser<string> {
  const parse = app.getDefaultJsonParser('error', 'error')
  return (request, body, done) => {
    parse(request, body, (err, value) => {
      if (err === null) done(null, value)
      else {
        const message = forbiddenKeyMessage(body)
        done(message === undefined ? err : new HttpError(400, message))
      }
    })
  }
}

// Undefined when the text is not JSON at all (or, defensively, when no such key is found).
function forbiddenKeyMessage (text: string): string | undefined {
  let parsed: unknown
  // secure-json-parse, under Fastify's parser, skips a byte order mark; JSON.parse does not.
  try { parsed = JSON.parse(text.charCodeAt(0) === 0xFEFF ? text.slice(1) : text) } catch { return undefined }
  const pending = [parsed]
  while (pending.length > 0) {
    const node = pending.pop()
    if (node === null || typeof node !== 'object') continue
    if (Object.hasOwn(node, '__proto__')) return 'body must not contain a "__proto__" key'
    const holder: unknown = Object.hasOwn(node, 'constructor') ? Reflect.get(node, 'constructor') : undefined
    if (holder !== null && typeof holder === 'object' && Object.hasOwn(holder, 'prototype')) {
      return 'body must not contain a "constructor" key holding a "prototype" key'
    }
    for (const child of Object.values(node)) pending.push(child)
  }
  return undefined
}
