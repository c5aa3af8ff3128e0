import { Ajv, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'
import { jsonBodyParser } from '../src/json-body.js'
import { prependRouteHook, readsBody } from '../src/route-hooks.js'

// Bodies are validated strictly: no type coercion ("123" is not a number, 123 is not a
// username) and unknown properties are errors rather than silently dropped. Path and query
// strings are text by nature, so those parts coerce ("?limit=5" is the integer 5).
function makeAjv (options: Options): Ajv {
  const ajv = new Ajv({ useDefaults: true, allErrors: false, removeAdditional: false, ...options })
  addFormats.default(ajv)
  return ajv
}

const DECIMAL = /^-?[0-9]{1,20}$/

interface ObjectSchema { properties?: Record<string, { type?: unknown }> }

/**
 * Checks that ajv's coercion would get wrong, before it runs on a path or a query string:
 * - A parameter given twice (`?type=signin&type=signup`) arrives as a list, which ajv reports
 *   as 'must be string': a 400 saying it must be given once.
 * - Ajv reads URL integers like JavaScript's Number(): "0x10" becomes 16 and "1e400" becomes
 *   Infinity, which slips past `maximum` and fails in the database. Integers in paths and query
 *   strings must be written as plain decimal digits.
 */
function urlPartGuard (part: string, schema: ObjectSchema, validate: ValidateFunction) {
  const properties = Object.entries(schema.properties ?? {})
  const single = properties.filter(([, property]) => property.type !== 'array').map(([name]) => name)
  const integers = properties.filter(([, property]) => property.type === 'integer').map(([name]) => name)
  if (single.length === 0) return validate
  const guarded = (data: Record<string, unknown> | undefined) => {
    for (const name of single) {
      if (Array.isArray(data?.[name])) return { error: new HttpError(400, `${part}/${name} must be given once`) }
    }
    for (const name of integers) {
      const value = data?.[name]
      if (typeof value === 'string' && !DECIMAL.test(value)) {
        return { error: new HttpError(400, `${part}/${name} must be an integer written in decimal digits`) }
      }
    }
    const valid = validate(data)
    // Fastify reads a failed validation's details from the function's `errors`.
    guarded.errors = validate.errors
    return valid
  }
  guarded.errors = validate.errors
  return guarded
}

/**
 * For a route that takes no body (DELETE /api/admin/users/:id): Fastify reads one anyway and
 * the route would ignore it. The contract never drops unknown properties silently, so a body
 * with any is refused, naming the first; no body, an empty one or `{}` is fine.
 */
function refuseBody (request: FastifyRequest, _reply: unknown, done: HookHandlerDoneFunction): void {
  const body: unknown = request.body
  const keys = isPlainObject(body) ? Object.keys(body) : undefined
  if (body === undefined || keys?.length === 0) return done()
  done(new HttpError(400, keys === undefined
    ? 'body is not allowed: this request takes no body'
    : `body/${keys[0]} is not allowed (unknown property)`))
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export default fp(async (app) => {
  app.addHook('onRoute', (route) => {
    if (route.schema?.body === undefined && readsBody(route)) {
      prependRouteHook(route, 'preValidation', refuseBody)
    }
  })
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  // JSON in, JSON out: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, jsonBodyParser(app))
  app.setValidatorCompiler(({ schema, httpPart }) => httpPart === 'body'
    ? strict.compile(schema)
    : urlPartGuard(httpPart ?? 'querystring', schema as ObjectSchema, coercing.compile(schema)))
}, { name: 'validation' })
