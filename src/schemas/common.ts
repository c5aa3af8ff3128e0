import { Type } from '@sinclair/typebox'

// The contract's error shape, used as the response schema of every 4xx/5xx a route can send.
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String()
}, { $id: undefined, description: 'Error' })

// A rate limit's answer (plugins/rate-limit.ts); plugins/swagger.ts documents it on the routes
// that are limited.
export const TooManyRequestsResponse = Type.Object(ErrorResponse.properties, {
  description: 'Too Many Requests: a rate limit was reached',
  headers: { 'retry-after': Type.Integer({ minimum: 1, description: 'Seconds until the limit lets this client through again' }) }
})

export const MessageResponse = Type.Object({ message: Type.String() })

// The two ways a client may present an access token; both are accepted on every protected route.
export const bearerSecurity: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { accessTokenHeader: [] }]
// A route that works without a token and does more with one (`{}`: no token at all).
export const optionalBearerSecurity: Array<Record<string, string[]>> = [{}, ...bearerSecurity]

export const errors = (...codes: number[]): Record<number, typeof ErrorResponse> =>
  Object.fromEntries(codes.map(code => [code, ErrorResponse]))
