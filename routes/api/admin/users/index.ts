import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { decodeCursor, page } from '../../../../src/cursor.js'
import { HttpError } from '../../../../src/errors.js'
import { deleteUser, listUsers, setUserDisabled, setUserRoles, type AdminChange } from '../../../../src/repositories/admin-users.js'
import { findUserById, type UserWithRoles } from '../../../../src/repositories/users.js'
import { toApiRole } from '../../../../src/roles.js'
import { AdminUser, adminUserAnswer, INT4_MAX, ListUsersQuery, PatchUserBody, RolesBody, UserIdParams, UserPage } from '../../../../src/schemas/admin.js'
import { bearerSecurity, errors } from '../../../../src/schemas/common.js'
import { parseRequestedRoles } from '../../../../src/signup.js'

const NOT_FOUND = 'User not found'
const LAST_ADMIN = 'Refused: this is the last active admin; make another admin first'

function toAdminUser (user: UserWithRoles): typeof AdminUser.static {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    roles: user.roles.map(toApiRole),
    disabled: user.disabled,
    createdAt: user.createdAt.toISOString()
  }
}

/** The outcome of a guarded change as HTTP: the user, or the reason it was refused. */
function answer (result: AdminChange): typeof AdminUser.static {
  switch (result.kind) {
    case 'done': return toAdminUser(result.user)
    case 'not_found': throw new HttpError(404, NOT_FOUND)
    case 'last_admin': throw new HttpError(409, LAST_ADMIN)
    // The caller lost admin rights between the preHandler and the change (a concurrent demotion).
    case 'actor_not_admin': throw new HttpError(403, 'Require Admin Role!')
  }
}

const security = bearerSecurity
const tags = ['admin']

const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const ctx = (request: { user: { id: number }, ip: string }) => ({ actorId: request.user.id, ip: request.ip })

  app.get('/', {
    schema: {
      tags,
      security,
      operationId: 'listUsers',
      summary: 'List users, oldest first, a page at a time',
      description: 'Keyset pagination: pass `nextCursor` back as `cursor`; users created meanwhile appear on later pages, none is skipped or repeated. `q` filters by a case-insensitive prefix of the username or the email.',
      querystring: ListUsersQuery,
      response: { 200: UserPage, ...errors(400, 401, 403, 503) }
    }
  }, async (request) => {
    const { limit, cursor, q } = request.query
    const afterId = decodeCursor(cursor, INT4_MAX)
    const rows = await listUsers(app.db, { limit: limit + 1, ...(afterId !== undefined ? { afterId } : {}), ...(q !== undefined ? { q } : {}) })
    return page(rows, limit, toAdminUser)
  })

  app.get('/:id', {
    schema: {
      tags,
      security,
      operationId: 'getUser',
      summary: 'One user',
      params: UserIdParams,
      response: { 200: adminUserAnswer('The user'), ...errors(400, 401, 403, 404, 503) }
    }
  }, async (request) => {
    const user = await findUserById(app.db, request.params.id)
    if (user === undefined) throw new HttpError(404, NOT_FOUND)
    return toAdminUser(user)
  })

  app.put('/:id/roles', {
    schema: {
      tags,
      security,
      operationId: 'setUserRoles',
      summary: "Replace a user's roles",
      description: 'Takes effect in the user\'s next access token (at signin or refresh). Refused (409) when it would remove the admin role from the last active admin.',
      params: UserIdParams,
      body: RolesBody,
      response: { 200: adminUserAnswer('The user, with its new roles'), ...errors(400, 401, 403, 404, 409, 413, 415, 503) }
    }
  }, async (request) => {
    const roles = parseRequestedRoles(request.body.roles)
    return answer(await setUserRoles(app.db, ctx(request), request.params.id, roles))
  })

  app.patch('/:id', {
    schema: {
      tags,
      security,
      operationId: 'setUserDisabled',
      summary: 'Disable or enable a user',
      description: 'Disabling revokes every refresh token of the user; signin then answers 403. Refused (409) for the last active admin.',
      params: UserIdParams,
      body: PatchUserBody,
      response: { 200: adminUserAnswer('The user, now disabled or enabled'), ...errors(400, 401, 403, 404, 409, 413, 415, 503) }
    }
  }, async (request) => {
    return answer(await setUserDisabled(app.db, ctx(request), request.params.id, request.body.disabled))
  })

  app.delete('/:id', {
    schema: {
      tags,
      security,
      operationId: 'deleteUser',
      summary: 'Delete a user',
      description: 'Removes the account, its roles and its refresh tokens; its audit events stay. Refused (409) for the last active admin.',
      params: UserIdParams,
      // Fastify reads a body on DELETE too: one can be too large or of another type, and one with
      // properties is refused (plugins/validation.ts).
      response: { 204: { type: 'null', description: 'Deleted' }, ...errors(400, 401, 403, 404, 409, 413, 415, 503) }
    }
  }, async (request, reply) => {
    answer(await deleteUser(app.db, ctx(request), request.params.id))
    return await reply.code(204).send()
  })
}

export default userRoutes
