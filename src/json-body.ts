import type { FastifyBodyParser, FastifyInstance } from 'fastify'
import { HttpError, quoted } from './errors.js'

/**
 * Fastify's JSON body parser behind a UTF-8 check (below). Fastify's refuses a `__proto__` key
 * and a `constructor` holding a `prototype` (keys that could reach an object's prototype) but
 * calls such a body 'not valid JSON'; this one refuses the same bodies and says why, and a key
 * repeated in one object. Parsing is Fastify's own; only a refused body is read again.
 */
export function jsonBodyParser (app: FastifyInstance): FastifyBodyParser<Buffer> {
  const parse = app.getDefaultJsonParser('error', 'error')
  return (request, body, done) => {
    // A route that takes no body: an empty one labelled JSON is none (some clients label every
    // request so); Fastify's parser would refuse it. What such a route does with a body that
    // is not empty, plugins/validation.ts decides.
    if (body.length === 0 && request.routeOptions.schema?.body === undefined) return done(null, undefined)
    const text = utf8Text(request.headers['content-type'], body)
    if (text instanceof HttpError) return done(text)
    if (nestsDeeperThan(text, MAX_NESTING)) return done(new HttpError(400, `body must not nest arrays and objects more than ${MAX_NESTING} deep`))
    parse(request, text, (err, value) => {
      if (err === null) {
        const key = repeatedKey(text)
        if (key === undefined) done(null, value)
        else done(new HttpError(400, `body must not repeat the key ${quoted(key)}`))
      } else {
        const message = forbiddenKeyMessage(text)
        done(message === undefined ? err : new HttpError(400, message))
      }
    })
  }
}

// JSON is UTF-8 (RFC 8259). Decoded as UTF-8 regardless (Fastify's way), bytes of another
// encoding become U+FFFD: a username other than the one sent, passwords that differ only there
// colliding. ignoreBOM keeps a byte order mark for the JSON parser, which skips it as before.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i
// ASCII is UTF-8's first 128 characters.
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii'])

/** The body as text, or the 4xx for a body that is not UTF-8 or says it is something else. */
function utf8Text (contentType: string | undefined, body: Buffer): string | HttpError {
  const charset = CHARSET.exec(contentType ?? '')?.[1]?.toLowerCase()
  if (charset !== undefined && !UTF8_CHARSETS.has(charset)) {
    return new HttpError(415, `Content-Type charset must be utf-8 (got ${quoted(charset)})`)
  }
  try {
    return UTF8.decode(body)
  } catch {
    return new HttpError(400, 'body is not valid UTF-8 text')
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

const QUOTE = 0x22
const BACKSLASH = 0x5c

// No body of ours nests deeper than an object holding a list. JSON.parse is far slower on deep
// nesting than on a flat body: a 1 MiB body nested half a million deep held the event loop for
// 0.3-0.75 s (the key checks above parse a refused body a second time), and four such bodies at
// once stalled it past the overload limit, so that every other client got 503s. This scan runs
// first and costs about what JSON.parse does for a flat body of the same size.
const MAX_NESTING = 32

/** True when arrays and objects in the text, outside its strings, open more than `max` deep. */
function nestsDeeperThan (text: string, max: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) {
        if (text.charCodeAt(i) === BACKSLASH) i++
      }
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) { // } ]
      depth--
    }
  }
  return false
}

/**
 * The first key that an object of this (valid) JSON text holds twice, if any. RFC 8259 leaves a
 * repeated key's meaning to each parser (JSON.parse keeps the last, others the first), so a
 * proxy, a WAF or a log reading the body one way and rolegate the other would disagree about
 * what was sent. Keys are compared decoded: `"user\u006eame"` repeats `"username"`.
 */
export function repeatedKey (text: string): string | undefined {
  // One set of keys per open object, null per open array.
  const open: Array<Set<string> | null> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      const start = i
      let escaped = false
      // Bounded as well, though a text that parsed closes every string: a loop that could run
      // past the end would hang the event loop.
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) {
        if (text.charCodeAt(i) === BACKSLASH) { escaped = true; i++ }
      }
      const keys = open[open.length - 1]
      if (!expectKey || keys == null) continue
      expectKey = false
      // Only a key with escapes needs decoding. Warm, a 1 MiB body scans in about the time
      // JSON.parse takes for it (~5 ms here), and only bodies that parsed are scanned.
      const key = escaped ? JSON.parse(text.slice(start, i + 1)) as string : text.slice(start + 1, i)
      if (keys.has(key)) return key
      keys.add(key)
    } else if (c === 0x7b) { // {
      open.push(new Set())
      expectKey = true
    } else if (c === 0x5b) { // [
      open.push(null)
    } else if (c === 0x7d || c === 0x5d) { // } ]
      open.pop()
    } else if (c === 0x2c) { // ,
      expectKey = open[open.length - 1] != null
    }
  }
  return undefined
}
