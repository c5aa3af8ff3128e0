import { Type, type Static } from '@sinclair/typebox'
import { fullFormats } from 'ajv-formats/dist/formats.js'
import { NO_NUL } from './common.js'

const USERNAME_CHARACTER = '[A-Za-z0-9_.-]'
export const USERNAME_CHARACTERS = `^${USERNAME_CHARACTER}+$`
// The same, in words, for messages (request validation, the ADMIN_USERNAME setting, the CLI).
export const USERNAME_CHARACTERS_IN_WORDS = 'A-Z, a-z, 0-9, _, . and -'
const USERNAME_MIN_LENGTH = 3
const USERNAME_MAX_LENGTH = 32
export const Username = Type.String({ minLength: USERNAME_MIN_LENGTH, maxLength: USERNAME_MAX_LENGTH, pattern: USERNAME_CHARACTERS, examples: ['alice'] })
// The whole rule as one pattern, for the places without a schema's length keywords: the
// ADMIN_USERNAME setting and the CLI.
export const USERNAME_PATTERN = `^${USERNAME_CHARACTER}{${USERNAME_MIN_LENGTH},${USERNAME_MAX_LENGTH}}$`
export const USERNAME_PATTERN_IN_WORDS = `${USERNAME_MIN_LENGTH} to ${USERNAME_MAX_LENGTH} characters of ${USERNAME_CHARACTERS_IN_WORDS}`
export const EMAIL_MAX_LENGTH = 254
export const Email = Type.String({ format: 'email', maxLength: EMAIL_MAX_LENGTH, examples: ['alice@example.com'] })
/**
 * The `email` format the request schemas are validated with (ajv-formats' full mode, as
 * plugins/validation.ts registers it), for the addresses that come in another way: the
 * ADMIN_EMAIL setting and the CLI. One rule, so neither makes an account the API would refuse.
 */
export function isEmailAddress (value: string): boolean {
  return value.length <= EMAIL_MAX_LENGTH && EMAIL_FORMAT.test(value)
}
const EMAIL_FORMAT = fullFormats.email as RegExp
// All characters count (argon2 has no 72-byte truncation); the length cap bounds hashing cost
// (NFKC lengthens a code point 18-fold at most). Both limits apply to the password as sent, as
// passwordProblem's do (password-policy.ts).
// NUL too: a password reaches the database only as its hash, and accounts made with one exist.
// The contract's 8 to 128 characters; passwordProblem (password-policy.ts) checks the same two.
export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 128
// The policy's other refusals (password-policy.ts) are beyond a schema; a form built from the
// document would accept such a password and meet a 400 it was never told of.
export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  examples: ['correct horse battery'],
  description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters. Also refused (400): a password of only spaces or invisible characters, one character repeated, or one of the most common passwords (found in breached password lists)`
})
// Role names are checked by the handler, not an enum, so an unknown one gets the tutorial's
// `Failed! Role does not exist = X` message.
export const RoleName = Type.String({ minLength: 1, maxLength: 32, examples: ['user'] })
// So the document names them where a role name is asked for: the schema above cannot.
export const ROLE_NAMES_IN_WORDS = 'Plain role names (`user`, `moderator` or `mod`, `admin`; any other is a 400)'
export const ApiRole = Type.String({ examples: ['ROLE_USER'] })

export const SignupBody = Type.Object({
  username: Username,
  email: Email,
  password: Password,
  roles: Type.Optional(Type.Array(RoleName, { maxItems: 8, description: `${ROLE_NAMES_IN_WORDS}; anonymous callers may only ask for ["user"] (403 otherwise)` }))
}, { additionalProperties: false })
export type SignupBody = Static<typeof SignupBody>

export const SignupResponse = Type.Object({ message: Type.String(), id: Type.Integer() }, { description: 'Registered: the new user\'s id' })

export const SigninBody = Type.Object({
  // Loose on purpose: a malformed username must cost the same and answer the same as an
  // unknown one, so signin never says "this username cannot exist". NUL aside: PostgreSQL
  // cannot even look it up (a 400 before this pattern too, then from the database).
  username: Type.String({ minLength: 1, maxLength: 256, pattern: NO_NUL }),
  password: Type.String({ minLength: 1, maxLength: 1024 })
}, { additionalProperties: false })
export type SigninBody = Static<typeof SigninBody>

// How the refresh cookie shows up in the OpenAPI document: a response header where it is set,
// a cookie parameter where it is read.
const setsRefreshCookie = {
  headers: {
    'set-cookie': Type.String({
      description: 'The refresh token as `refreshToken=...; Path=/api/auth; HttpOnly; SameSite=Strict; Secure` (no `Secure` in plain-http development); Max-Age is REFRESH_TOKEN_TTL'
    })
  }
}

export const RefreshCookie = Type.Object({
  refreshToken: Type.Optional(Type.String({ description: 'The HttpOnly refresh cookie set by signin, refresh and password change; used when the body has no `refreshToken`' }))
})

const TokenPair = {
  tokenType: Type.Literal('Bearer'),
  accessToken: Type.String(),
  expiresIn: Type.Integer({ description: 'Access token lifetime in seconds' }),
  refreshToken: Type.String()
}

export const SigninResponse = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  roles: Type.Array(ApiRole),
  ...TokenPair
}, { ...setsRefreshCookie, description: 'Signed in: the user and a token pair; the refresh token is also set as the refresh cookie' })

export const TokenPairResponse = Type.Object(TokenPair, { ...setsRefreshCookie, description: 'A new token pair; the refresh token is also set as the refresh cookie' })

export const SignoutResponse = Type.Object({ message: Type.String() }, {
  description: 'Signed out (also when there was nothing to sign out): the sign-in\'s refresh tokens revoked, the cookie cleared',
  headers: { 'set-cookie': Type.String({ description: 'Clears the refresh cookie (`refreshToken=; Path=/api/auth; Expires` in the past)' }) }
})

// Far longer than the tokens we issue (43 characters); longer input is refused unread.
export const MAX_REFRESH_TOKEN_LENGTH = 512
export const RefreshBody = Type.Object({
  refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_REFRESH_TOKEN_LENGTH, description: 'Optional when the refresh cookie is sent' }))
}, { additionalProperties: false })
export type RefreshBody = Static<typeof RefreshBody>

// Signout answers 200 whatever it is given (it is idempotent), so an empty token is no token
// here, as when the field is absent, rather than a 400. Other wrong bodies are still refused.
export const SignoutBody = Type.Object({
  refreshToken: Type.Optional(Type.String({ maxLength: MAX_REFRESH_TOKEN_LENGTH, description: 'Optional when the refresh cookie is sent; an empty string counts as none' }))
}, { additionalProperties: false })
export type SignoutBody = Static<typeof SignoutBody>

export const MeResponse = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  roles: Type.Array(ApiRole),
  createdAt: Type.String({ format: 'date-time' })
}, { description: 'The signed-in user' })

export const PasswordBody = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
  newPassword: Password
}, { additionalProperties: false })
export type PasswordBody = Static<typeof PasswordBody>
