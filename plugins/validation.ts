import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import fp from 'fastify-plugin'

// Bodies are validated strictly: no type coercion ("123" is not a number, 123 is not a
// username) and unknown properties are errors rather than silently dropped. Path and query
// strings are text by nature, so those parts coerce ("?limit=5" is the integer 5).
function makeAjv (options: Options): Ajv {
  const ajv = new Ajv({ useDefaults: true, allErrors: false, removeAdditional: false, ...options })
  addFormats.default(ajv)
  return ajv
}

export default fp(async (app) => {
  const strict = makeAjv({ coerceTypes: false })
  const coercing = makeAjv({ coerceTypes: 'array' })
  // JSON in, JSON out: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain')
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? strict.compile(schema) : coercing.compile(schema))
}, { name: 'validation' })
