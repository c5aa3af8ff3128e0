import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../src/errors.js'
import { resolveJwtSecret } from '../src/jwt-secret.js'
import { INT4_MAX } from '../src/schemas/admin.js'
import { hasRole, roleTitle, type Role } from '../src/roles.js'

export interface AccessClaims { sub: string, roles: Role[] }
export interface AuthUser { readonly id: number, readonly roles: readonly Role[] }
/** A token that passed verification, its user, and until when (ms) it may be trusted. */
interface Verified { readonly token: string, readonly user: AuthUser, readonly validUntil: number }

declare module '@fastify/jwt' {
  interface FastifyJWT { payload: AccessClaims, user: AuthUser }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: 401 unless the request carries a valid access token; sets request.user. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
    /** preHandler: 403 unless the authenticated user holds `role` or a higher one. */
    requireRole: (role: Role) => preHandlerHookHandler
    /** Reads and verifies a token if one is present; undefined when none is sent. */
    optionalUser: (request: FastifyRequest) => AuthUser | undefined
    signAccessToken: (user: { id: number, roles: Role[] }) => { accessToken: string, expiresIn: number }
  }
}

// Longer than any token we issue by far; refusing early keeps hostile megabyte headers cheap.
const MAX_TOKEN_LENGTH = 4096
const BEARER = /^Bearer[ ]+(\S+)\s*$/i
// A Bearer credential anywhere in the header: first, or after a comma (two headers joined).
const HAS_BEARER = /(?:^|,)\s*Bearer(?:\s|$)/i
// "Bearer" and nothing else: what a front end sends before it has a token. No token, as an empty
// header is, rather than an invalid one.
const BEARER_ALONE = /^Bearer\s*$/i
const BEARER_PREFIX = 'Bearer '
// fast-jwt accepts a token until `exp` plus this tolerance (milliseconds).
const CLOCK_TOLERANCE_MS = 5000
// Verified tokens remembered at once; a few hundred bytes each (the token and the header it
// was sliced from): a full cache of our 209-character tokens held 2.5 MB of heap (measured
// after gc, 10,000 distinct tokens through /api/test/user).
const VERIFIED_CACHE_SIZE = 10_000
// Characters of a token that key its cache entry: 96 bits of its signature.
const KEY_LENGTH = 16
// RFC 6750 section 3: every 401 challenges for a Bearer token; one for a token that does not
// verify also says so, which tells a client to sign in again (or refresh) rather than retry.
const CHALLENGE = { 'www-authenticate': 'Bearer' }
// Exported for routes that refuse a verified token whose user is gone or disabled.
export const INVALID_TOKEN = { 'www-authenticate': 'Bearer error="invalid_token"' }
const EXPIRED_TOKEN = { 'www-authenticate': 'Bearer error="invalid_token", error_description="The access token expired"' }
// RFC 6750 section 3.1: a request that repeats a parameter, or carries its token in more than
// one way (here: two different tokens), is malformed, a 400.
const INVALID_REQUEST = { 'www-authenticate': 'Bearer error="invalid_request"' }

/**
 * The request's access token and whether it came from `Authorization`: its Bearer credential
 * first, then the tutorial's `x-access-token`. A credential of another scheme is not ours and
 * does not hide x-access-token: behind a staging server protected by a password, browsers attach
 * `Authorization: Basic ...` to every request by themselves. Nor does "Bearer" with no token.
 * A header sent twice arrives joined with a comma (joinDuplicateHeaders, src/app.ts), which no
 * token holds: refused, so that no token is picked out of two by a rule a proxy in front may not
 * share. For the same reason a Bearer token and a different x-access-token are refused; the same
 * token in both passes.
 */
function extractToken (request: FastifyRequest): { token: string, fromAuthorization: boolean } | undefined {
  const header = request.headers.authorization
  const legacy = legacyToken(request)
  if (typeof header === 'string' && HAS_BEARER.test(header) && !BEARER_ALONE.test(header)) {
    if (header.includes(',')) throw new HttpError(400, 'Authorization must carry exactly one Bearer token', INVALID_REQUEST)
    const token = BEARER.exec(header)?.[1]
    // More than one word, or a tab after "Bearer" (RFC 9110 allows spaces only): no token of ours.
    if (token === undefined) throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
    if (legacy !== undefined && legacy !== token) throw new HttpError(400, 'Authorization and x-access-token carry different tokens: send one', INVALID_REQUEST)
    return { token, fromAuthorization: true }
  }
  return legacy === undefined ? undefined : { token: legacy, fromAuthorization: false }
}

/**
 * The x-access-token header's token; undefined when it is absent or blank. The tutorial sends
 * the token alone; some clients copy the whole Authorization value ("Bearer <token>") into it.
 */
function legacyToken (request: FastifyRequest): string | undefined {
  const legacy = request.headers['x-access-token']
  if (typeof legacy !== 'string') return undefined
  if (legacy.includes(',')) throw new HttpError(400, 'x-access-token must carry exactly one token', INVALID_REQUEST)
  const token = legacy.trim()
  if (BEARER_ALONE.test(token)) return undefined
  return BEARER.exec(token)?.[1] ?? (token.length > 0 ? token : undefined)
}

export default fp(async (app) => {
  const { jwt } = app.config
  const { secret, source } = await resolveJwtSecret(app.config)
  if (source === 'generated-file') app.log.warn(`JWT_SECRET is not set: generated one and stored it in ${app.config.dataDir}/jwt-secret (development only; set JWT_SECRET in production)`)
  if (source === 'file') app.log.info(`JWT_SECRET is not set: using the development secret stored in ${app.config.dataDir}/jwt-secret`)
  if (source === 'ephemeral') app.log.warn('JWT_SECRET is not set: using a random secret for this in-memory run; tokens die with the process')

  await app.register(fastifyJwt, {
    secret,
    sign: { algorithm: 'HS256', iss: jwt.issuer, aud: jwt.audience, expiresIn: jwt.accessTtlSec },
    verify: {
      // expiresIn above is in seconds (@fastify/jwt converts); clockTolerance is in ms (fast-jwt).
      // Pinned: a token signed with any other algorithm (none, HS384, RS256...) is refused.
      algorithms: ['HS256'],
      allowedIss: jwt.issuer,
      allowedAud: jwt.audience,
      requiredClaims: ['exp', 'iat', 'iss', 'aud', 'sub'],
      clockTolerance: CLOCK_TOLERANCE_MS
    }
  })

  // Tokens that passed verification, until they expire: a client sends the same token on every
  // request for its 15 minutes. Keyed by the token's last KEY_LENGTH characters, the end of its
  // signature (random for every token we sign): V8 hashes a Map key anew for every request's
  // string, and hashing the whole ~220-character token cost ~2,500 instructions of a protected
  // request's ~76,000 (callgrind), a sixteen-character tail ~200. The entry holds the whole
  // token and a hit must equal it exactly, so a forged token sharing a tail only misses and
  // takes the full verification. (A SHA-256 of the token as the key, as here once, also cost
  // more than it gave: a heap dump holds JWT_SECRET, and with it every token that could be
  // made.) Only successes are kept, so a bad token cannot occupy the cache; when full, the
  // oldest entry goes.
  const verified = new Map<string, Verified>()

  function remembered (token: string): Verified | undefined {
    const known = verified.get(token.slice(-KEY_LENGTH))
    if (known === undefined || known.token !== token) return undefined
    if (Date.now() <= known.validUntil) return known
    verified.delete(token.slice(-KEY_LENGTH))
    return undefined
  }

  function verifyToken (token: string): Verified {
    if (token.length > MAX_TOKEN_LENGTH) throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
    const known = remembered(token)
    if (known !== undefined) return known
    let claims: AccessClaims & { exp: number }
    try {
      claims = app.jwt.verify<AccessClaims & { exp: number }>(token)
    } catch (err) {
      if ((err as { code?: string }).code === 'FAST_JWT_EXPIRED') throw new HttpError(401, 'Unauthorized! Access Token was expired!', EXPIRED_TOKEN)
      throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
    }
    // sub is an id as we sign it, String(id): anything else ('1e0', '01', an id past the
    // integer column, which made the user lookups fail with a 500) was not made here.
    const id = Number(claims.sub)
    if (!Number.isInteger(id) || id < 1 || id > INT4_MAX || String(id) !== claims.sub || !Array.isArray(claims.roles)) throw new HttpError(401, 'Unauthorized!', INVALID_TOKEN)
    // Frozen: the same object serves every request carrying this token.
    const user = Object.freeze({ id, roles: Object.freeze(claims.roles) })
    const entry = { token, user, validUntil: claims.exp * 1000 + CLOCK_TOLERANCE_MS }
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string)
    verified.set(token.slice(-KEY_LENGTH), entry)
    return entry
  }

  // The Authorization header that last passed on each connection, with its token's entry: a
  // keep-alive client sends the same header on every request of a connection, and comparing it
  // with the last one takes no slicing, hashing or comparing of a sliced string, as the lookup
  // by token below does (callgrind, main thread, 2,000 requests after mixed traffic: /user
  // 74,800 -> 73,900 instructions per request, /admin 75,700 -> 74,400). That lookup stays for
  // a connection's first request and for proxies that carry many clients on one connection.
  // A hit is exact equality with a header that passed the full checks, until its token's
  // expiry: the answer those checks would give. Weak: an entry goes with its connection.
  const lastOnConnection = new WeakMap<object, { header: string, verified: Verified }>()

  /** The caller, undefined when no token is sent; throws 401 for a token that does not verify. */
  function userOf (request: FastifyRequest): AuthUser | undefined {
    const headers = request.headers
    const header = headers.authorization
    const connection: object | undefined = request.raw.socket
    // Both shortcuts below vouch for the Authorization header alone: beside an x-access-token,
    // the full parse compares the two.
    const shortcut = typeof header === 'string' && headers['x-access-token'] === undefined
    if (shortcut && connection !== undefined) {
      const last = lastOnConnection.get(connection)
      if (last !== undefined && last.header === header && Date.now() <= last.verified.validUntil) return last.verified.user
    }
    // The form every client sends, "Bearer " and the token with nothing around it, for a token
    // verified before: one lookup, no parsing. A hit is a token the full parse below once
    // extracted, so it would extract the same one; anything else takes that parse.
    let entry: Verified | undefined
    if (shortcut && header.length <= BEARER_PREFIX.length + MAX_TOKEN_LENGTH && header.startsWith(BEARER_PREFIX)) {
      entry = remembered(header.slice(BEARER_PREFIX.length))
    }
    let fromAuthorization = entry !== undefined
    if (entry === undefined) {
      const found = extractToken(request)
      if (found === undefined) return undefined
      entry = verifyToken(found.token)
      fromAuthorization = found.fromAuthorization
    }
    // Only a token that came from the Authorization header: a Basic header beside an
    // x-access-token must not vouch for the connection's next request.
    if (fromAuthorization && typeof header === 'string' && connection !== undefined) lastOnConnection.set(connection, { header, verified: entry })
    return entry.user
  }

  // Callback-style (not async) hooks: verification is synchronous (HMAC, cached), and on the
  // hottest routes a promise per hook is a measurable share of the work.
  app.decorate('authenticate', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    let user: AuthUser | undefined
    try {
      user = userOf(request)
    } catch (err) {
      return done(err as Error)
    }
    if (user === undefined) return done(new HttpError(401, 'No token provided!', CHALLENGE))
    request.user = user
    done()
  })

  app.decorate('optionalUser', userOf)

  app.decorate('requireRole', (role: Role): preHandlerHookHandler => {
    const message = `Require ${roleTitle(role)} Role!`
    return (request, _reply, done) => {
      done(hasRole(request.user.roles, role) ? undefined : new HttpError(403, message))
    }
  })

  app.decorate('signAccessToken', (user: { id: number, roles: Role[] }) => ({
    accessToken: app.jwt.sign({ sub: String(user.id), roles: user.roles }),
    expiresIn: jwt.accessTtlSec
  }))
}, { name: 'auth', dependencies: ['config'] })
