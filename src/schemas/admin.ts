import { Type, type Static } from '@sinclair/typebox'
import { AUDIT_EVENT_TYPES } from '../audit.js'
import { MeResponse, ROLE_NAMES_IN_WORDS, RoleName } from './auth.js'
import { NO_NUL } from './common.js'

// User ids are PostgreSQL integers: anything outside 1..2^31-1 is a malformed id (400), so
// no input reaches the database as an out-of-range value.
export const INT4_MAX = 2_147_483_647
const Id = Type.Integer({ minimum: 1, maximum: INT4_MAX })

export const UserIdParams = Type.Object({ id: Id })
export type UserIdParams = Static<typeof UserIdParams>

// Unknown query parameters are refused like unknown body properties: a misspelled or
// array-style filter (`?userid=`, `?type[]=`) would otherwise be ignored and the whole,
// unfiltered list returned, to an admin who may act on it.
const STRICT_QUERY = { additionalProperties: false } as const

const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1-100' })
const Cursor = Type.String({ maxLength: 64, description: 'Opaque: the `nextCursor` of the previous page' })

export const ListUsersQuery = Type.Object({
  limit: Limit,
  cursor: Type.Optional(Cursor),
  q: Type.Optional(Type.String({ maxLength: 254, pattern: NO_NUL, description: 'Prefix of the username or the email, case-insensitive' }))
}, STRICT_QUERY)
export type ListUsersQuery = Static<typeof ListUsersQuery>

// The user as /api/auth/me shows it, plus what only an admin sees.
export const AdminUser = Type.Composite([MeResponse, Type.Object({ disabled: Type.Boolean() })])
/** AdminUser, with what it means as a route's answer, for the document. */
export const adminUserAnswer = (description: string) => Type.Object(AdminUser.properties, { description })

export const UserPage = Type.Object({
  items: Type.Array(AdminUser),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' })
}, { description: 'A page; pass nextCursor back as cursor for the next' })

export const RolesBody = Type.Object({
  roles: Type.Array(RoleName, { maxItems: 8, description: `${ROLE_NAMES_IN_WORDS}; \`user\` is always kept` })
}, { additionalProperties: false })
export type RolesBody = Static<typeof RolesBody>

export const PatchUserBody = Type.Object({
  disabled: Type.Boolean({ description: 'true disables the account and revokes its refresh tokens' })
}, { additionalProperties: false })
export type PatchUserBody = Static<typeof PatchUserBody>

export const AuditEventTypeSchema = Type.Union(AUDIT_EVENT_TYPES.map(t => Type.Literal(t)))

export const AuditQuery = Type.Object({
  limit: Limit,
  cursor: Type.Optional(Cursor),
  userId: Type.Optional(Type.Integer({ minimum: 1, maximum: INT4_MAX, description: 'Only events about this user (the subject)' })),
  type: Type.Optional(AuditEventTypeSchema)
}, STRICT_QUERY)
export type AuditQuery = Static<typeof AuditQuery>

export const AuditEventItem = Type.Object({
  id: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  type: Type.String(),
  actorId: Type.Union([Type.Integer(), Type.Null()], { description: 'Who acted; null for the operator CLI or an unknown user' }),
  userId: Type.Union([Type.Integer(), Type.Null()], { description: 'Whom the event is about' }),
  ip: Type.Union([Type.String(), Type.Null()]),
  detail: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])
})

export const AuditPage = Type.Object({
  items: Type.Array(AuditEventItem),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' })
}, { description: 'A page; pass nextCursor back as cursor for the next' })
