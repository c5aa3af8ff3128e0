import { existsSync, readFileSync } from 'node:fs'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { BadTokenRequestResponse, ServiceUnavailableResponse, TooManyRequestsResponse, UnauthorizedResponse } from '../src/schemas/common.js'
// With rate limits on, every route but these can answer 429.
import { NEVER_LIMITED } from './rate-limit.js'
import { MAX_WAITING_ANSWERS } from './under-pressure.js'

interface ObjectSchema { properties?: Record<string, { default?: unknown }>, required?: string[] }

/**
 * A query parameter with a default is optional for the client: validation (useDefaults) fills it
 * in. It stays in the TypeBox schema's `required` list, so handlers see it typed as present.
 */
function defaultsOptional (querystring: ObjectSchema): ObjectSchema {
  const required = querystring.required?.filter(name => querystring.properties?.[name]?.default === undefined)
  return { ...querystring, ...(required !== undefined ? { required } : {}) }
}

/**
 * Corrections that are true of the document only; the schemas the routes run stay as they are,
 * so a 400, 401, 429 or 503 added here costs no route a serializer. (Routes without a schema, the
 * documentation page's own, come here with none.)
 */
function documented (schema: FastifySchema | undefined, url: string, rateLimited: boolean): FastifySchema | undefined {
  if (schema === undefined) return schema
  const querystring = schema.querystring === undefined ? {} : { querystring: defaultsOptional(schema.querystring as ObjectSchema) }
  // Every route can answer 503: this one, with Retry-After, stands for the routes' own.
  const response = {
    ...(schema.response as object),
    // A route that takes an access token challenges for it with its 401, and refuses a token
    // header sent twice, or two headers carrying different tokens, with a 400 (plugins/auth.ts).
    ...(takesAccessToken(schema) ? { 400: BadTokenRequestResponse, 401: UnauthorizedResponse } : {}),
    ...(rateLimited && !NEVER_LIMITED.has(url) ? { 429: TooManyRequestsResponse } : {}),
    503: ServiceUnavailableResponse
  }
  return { ...schema, ...querystring, response }
}

function takesAccessToken (schema: FastifySchema): boolean {
  const security = (schema as { security?: Array<Record<string, unknown>> }).security ?? []
  return security.some(requirement => 'bearerAuth' in requirement)
}

interface Operation { requestBody?: { required?: boolean, content?: Record<string, { schema?: ObjectSchema }> } }
type Paths = Record<string, Record<string, Operation>>

/**
 * @fastify/swagger marks every request body required. A JSON body that requires no property is
 * optional: the routes that take one (refresh, signout) read an absent body as `{}`, for the
 * refresh cookie may carry the token (routes/api/auth/sessions.ts).
 */
function bodiesOptional (paths: Paths): void {
  for (const operation of Object.values(paths).flatMap(Object.values)) {
    const body = operation.requestBody
    if (body !== undefined && (body.content?.['application/json']?.schema?.required ?? []).length === 0) body.required = false
  }
}

// Answers given before any route's own logic (plugins/under-pressure.ts, plugins/errors.ts,
// plugins/not-found.ts), which no operation lists: on every operation they would be noise in
// each generated client, yet a reader of the page should know they exist. /health is never
// rate-limited, and still meets the pipelining limit.
const HTTP_LEVEL_REFUSALS = `Besides the answers each operation lists, any request can be refused at the HTTP level, in the same JSON error shape: 400 for a malformed request (such as an HTTP/1.1 request without a Host header), 404 or 405 for an unknown path or a method the path does not take, 408 when the request does not arrive in time, 417 for an Expect other than 100-continue, 429 (with Retry-After, rate limits on or off, /health and /ready included) when more than ${MAX_WAITING_ANSWERS} requests are pipelined on one connection, 431 for headers over the size limit.`

/**
 * The version in rolegate's package.json, so the document's version moves with each release:
 * the nearest package.json above this file, one folder up in the sources and two in the build
 * (dist/plugins).
 */
function packageVersion (): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    const file = new URL('package.json', dir)
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    if (dir.pathname === '/') throw new Error('no package.json above plugins/swagger')
  }
}

// The OpenAPI document is generated from the same TypeBox schemas that validate requests and
// serialize responses, so it cannot drift from what the server does.
export default fp(async (app) => {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'rolegate',
        description: `Sign-up, sign-in, tokens and user / moderator / admin access control. A drop-in replacement for the "Node.js Express Login with PostgreSQL + JWT" tutorial API.\n\n${HTTP_LEVEL_REFUSALS}`,
        version: packageVersion()
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
    },
    // Runs when the document is built (once, then cached), never per request.
    transform: ({ schema, url }) => ({ schema: documented(schema, url, app.config.rateLimit.enabled) as FastifySchema, url }),
    transformObject: (document) => {
      const { openapiObject } = document as { openapiObject: { paths: Paths } }
      bodiesOptional(openapiObject.paths)
      return openapiObject
    }
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/documentation' })
}, { name: 'swagger', dependencies: ['config'] })
