import type { FastifyInstance, FastifyRequest } from 'fastify'
import { callerIdOf } from './audit.js'
import { HttpError } from './errors.js'
import { assertAcceptablePassword } from './password-policy.js'
import { isActiveAdmin } from './repositories/admin-users.js'
import { createUser } from './repositories/users.js'
import { hasRole, normaliseRoles, parseRole, type Role } from './roles.js'
import type { SignupBody } from './schemas/auth.js'

/** Turns requested role names into roles, with the tutorial's message for an unknown one. */
export function parseRequestedRoles (names: readonly string[] | undefined): Role[] {
  const roles: Role[] = []
  for (const name of names ?? []) {
    const role = parseRole(name)
    if (role === undefined) throw new HttpError(400, `Failed! Role does not exist = ${name}`)
    roles.push(role)
  }
  return normaliseRoles(roles)
}

/**
 * Registers an account. Anonymous callers get `user` only; asking for more needs an admin
 * access token of a still-active admin. Duplicates are refused by the database's unique indexes (-> 409), never by a
 * check-then-insert that parallel requests could race through.
 */
export async function registerUser (app: FastifyInstance, request: FastifyRequest, body: SignupBody): Promise<number> {
  assertAcceptablePassword(body.password, 'body/password')
  const roles = parseRequestedRoles(body.roles)
  if (roles.some(role => role !== 'user')) {
    const caller = app.optionalUser(request)
    // Granting roles is an admin action: like the admin API, it checks that the caller is still
    // an active admin in the database, not just that an unexpired token once said so.
    if (caller === undefined || !hasRole(caller.roles, 'admin') || !(await isActiveAdmin(app.db, caller.id))) {
      throw new HttpError(403, 'Require Admin Role! Only an admin may grant roles above user')
    }
  }
  const passwordHash = await app.passwords.hash(body.password)
  // The account and its signup event commit together (createUser); the actor is whoever sent a
  // valid access token (the admin granting roles, or any signed-in caller), else the new user
  // itself, and the event records the roles granted.
  return await createUser(app.db, { username: body.username, email: body.email, passwordHash, roles },
    { actorId: callerIdOf(app, request), ip: request.ip, detail: { roles } })
}
