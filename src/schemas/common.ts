import { STATUS_CODES } from 'node:http'
import { Type } from '@sinclair/typebox'

// The contract's error shape, used as the response schema of every 4xx/5xx a route can send.
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String()
}, { $id: undefined, description: 'Error' })

// The error shape with its response headers, for the document.
type HeaderSchema = ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>
const withHeaders = (description: string, headers: Record<string, HeaderSchema>) =>
  Type.Object(ErrorResponse.properties, { description, headers })
const withHeader = (description: string, name: string, header: HeaderSchema) => withHeaders(description, { [name]: header })
const retryAfter = (description: string) => Type.Integer({ minimum: 1, description })
const withRetryAfter = (description: string, retryAfterDescription: string) =>
  withHeader(description, 'retry-after', retryAfter(retryAfterDescription))
const withChallenge = (description: string, challenge: string) =>
  withHeader(description, 'www-authenticate', Type.String({ description: challenge }))

// These four are documented by plugins/swagger.ts, on the routes that can answer them.
// A missing or refused access token (plugins/auth.ts); other 401s of such a route (a wrong
// current password) carry no challenge.
export const UnauthorizedResponse = withChallenge('Unauthorized',
  'When the access token is missing or refused: `Bearer`, or `Bearer error="invalid_token"` (with `error_description="The access token expired"` for an expired one)')
// Also a route that takes an access token: besides its own 400s (if any), the one for a token
// header sent twice or listing several tokens, or for two headers carrying different tokens
// (plugins/auth.ts), with RFC 6750's challenge.
export const BadTokenRequestResponse = withChallenge('Bad Request',
  'When a token header was sent twice or lists several tokens, or `Authorization` and `x-access-token` carry different tokens: `Bearer error="invalid_request"`')
// A rate limit's answer (plugins/rate-limit.ts).
// Its x-ratelimit-* headers describe the limit that refused the request, not the global one.
export const TooManyRequestsResponse = withHeaders('Too Many Requests: a rate limit was reached', {
  'retry-after': retryAfter('Seconds until the limit lets this client through again'),
  'x-ratelimit-limit': Type.Integer({ minimum: 1, description: 'Requests the limit that refused this one allows per window' }),
  'x-ratelimit-remaining': Type.Integer({ minimum: 0, description: 'Always 0 on a 429' }),
  'x-ratelimit-reset': Type.Integer({ minimum: 1, description: 'Seconds until that limit\'s window ends (the same as Retry-After)' })
})
// Any route while the server is overloaded or shutting down (plugins/under-pressure.ts), and one
// that needs the database while it is unreachable (plugins/errors.ts).
export const ServiceUnavailableResponse = withRetryAfter('Service Unavailable: overloaded, shutting down or without its database',
  'Seconds after which a retry may succeed')

// For text that reaches the database as text: PostgreSQL cannot hold a NUL character, and a
// query carrying one fails there. Refused while validating instead, naming the field (the
// error handler recognises this pattern).
export const NO_NUL = '^[^\\u0000]*$'

export const MessageResponse = Type.Object({ message: Type.String() })

// The two ways a client may present an access token; both are accepted on every protected route.
export const bearerSecurity: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { accessTokenHeader: [] }]
// A route that works without a token and does more with one (`{}`: no token at all).
export const optionalBearerSecurity: Array<Record<string, string[]>> = [{}, ...bearerSecurity]

// What each error status means on this API, for the page: the message says which case it was.
const ERROR_MEANINGS: Record<number, string> = {
  400: 'Bad Request: the request is malformed or a field is invalid; the message names it',
  401: 'Unauthorized: the credentials or the token were refused',
  403: 'Forbidden: the caller may not do this (a role it lacks, a disabled account, an origin not allowed); the message says which',
  404: 'Not Found: nothing with this id; the message says what was looked for',
  409: 'Conflict: the change would clash with existing data (a name or email in use, the last admin); the message says which',
  413: 'Payload Too Large: the body is over the size limit',
  415: 'Unsupported Media Type: send the body as application/json (not compressed)'
}

export const errors = (...codes: number[]): Record<number, typeof ErrorResponse> =>
  Object.fromEntries(codes.map(code => [code, Type.Object(ErrorResponse.properties, { description: ERROR_MEANINGS[code] ?? STATUS_CODES[code] ?? 'Error' })]))
