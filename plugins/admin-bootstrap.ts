import fp from 'fastify-plugin'
import { ConfigError } from '../src/config-error.js'
import { createUser, usernameExists } from '../src/repositories/users.js'
import { uniqueViolationMessage } from '../src/db/errors.js'
import type { Role } from '../src/roles.js'

// ADMIN_USERNAME + ADMIN_EMAIL + ADMIN_PASSWORD: create that admin at start if no user of that
// name exists. Idempotent, and never touches an existing user (no password overwrite).
export default fp(async (app) => {
  const admin = app.config.admin
  if (admin === undefined) return
  if (await usernameExists(app.db, admin.username)) {
    app.log.info({ username: admin.username }, 'admin bootstrap: user exists, left unchanged')
    return
  }
  try {
    const passwordHash = await app.passwords.hash(admin.password)
    const roles: Role[] = ['user', 'admin']
    // Audited like the command line's accounts: an admin that appears in the log from nowhere
    // is what an audit exists to explain.
    const id = await createUser(app.db, { ...admin, passwordHash, roles }, { actorId: null, ip: null, detail: { via: 'bootstrap', roles } })
    app.log.info({ username: admin.username, id }, 'admin bootstrap: admin created')
  } catch (err) {
    if (uniqueViolationMessage(err) === undefined) throw err
    // Another instance starting at the same moment created it first: that is the goal. Which
    // index refused the insert says nothing (a racing insert may trip the email one first), so
    // look again for the name: if it is still free, the email belongs to someone else, and
    // starting without the admin asked for would leave the operator believing there is one.
    if (!(await usernameExists(app.db, admin.username))) {
      throw new ConfigError(`Invalid configuration: ADMIN_EMAIL ${admin.email} is the email of another user, so the admin ${admin.username} cannot be created: choose another ADMIN_EMAIL`)
    }
    app.log.info({ username: admin.username }, 'admin bootstrap: created concurrently elsewhere')
  }
}, { name: 'admin-bootstrap', dependencies: ['db', 'passwords'] })
