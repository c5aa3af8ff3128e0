import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import type { Test } from 'tap'
import { hashRefreshToken } from '../../../../src/refresh-token.js'

// Small helpers shared by the session tests (not a test file itself: tap runs *.test.ts only).

export const REFRESH_URL = '/api/auth/refreshtoken'

/** POST /refreshtoken with the token in the body, in the cookie, or neither. */
export async function refresh (
  app: FastifyInstance, token?: string, how: 'body' | 'cookie' = 'body'
): Promise<LightMyRequestResponse> {
  if (token === undefined) return await app.inject({ method: 'POST', url: REFRESH_URL })
  return how === 'body'
    ? await app.inject({ method: 'POST', url: REFRESH_URL, payload: { refreshToken: token } })
    : await app.inject({ method: 'POST', url: REFRESH_URL, cookies: { refreshToken: token } })
}

export async function signout (app: FastifyInstance, token?: string, how: 'body' | 'cookie' = 'body'): Promise<LightMyRequestResponse> {
  const url = '/api/auth/signout'
  if (token === undefined) return await app.inject({ method: 'POST', url })
  return how === 'body'
    ? await app.inject({ method: 'POST', url, payload: { refreshToken: token } })
    : await app.inject({ method: 'POST', url, cookies: { refreshToken: token } })
}

/** The refresh cookie a response sets (or clears), as light-my-request parses it. */
export function refreshCookie (res: LightMyRequestResponse): Record<string, unknown> | undefined {
  return (res.cookies as Array<Record<string, unknown>>).find(c => c.name === 'refreshToken')
}

/** True when the response tells the browser to drop the refresh cookie. */
export function clearsCookie (res: LightMyRequestResponse): boolean {
  const cookie = refreshCookie(res)
  if (cookie === undefined) return false
  const expires = cookie.expires as Date | undefined
  return cookie.value === '' && (cookie.maxAge === 0 || (expires !== undefined && expires.getTime() <= Date.now()))
}

/** Moves a stored refresh token's columns, e.g. into the past, straight in the database. */
export async function setTokenRow (
  app: FastifyInstance, token: string, values: { expires_at?: Date, used_at?: Date | null, revoked_at?: Date | null }
): Promise<void> {
  const result = await app.db.updateTable('refresh_tokens').set(values)
    .where('token_hash', '=', hashRefreshToken(token)).executeTakeFirst()
  if (Number(result.numUpdatedRows) !== 1) throw new Error('no such refresh token row')
}

/** The roles claim of an access token (plain names). */
export function rolesIn (app: FastifyInstance, accessToken: string): string[] {
  return (app.jwt.decode<{ roles: string[] }>(accessToken)?.roles) ?? []
}

/**
 * Waits until `n` statements of this database wait on a row lock (real PostgreSQL only), or
 * until `settled` says the request expected to wait answered without waiting (a race lost, for
 * the test's assertions to tell).
 */
export async function waitForLockWaiters (app: FastifyInstance, n: number, settled: () => boolean = () => false): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (settled()) return
    const { rows } = await sql<{ waiting: number }>`select count(*)::int as waiting from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(app.db)
    if ((rows[0]?.waiting ?? 0) >= n) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`fewer than ${n} statements waiting on a lock`)
}

/**
 * For tests that run a change at the exact moment between a password's verification and what
 * the request does with it: the returned function makes the next verification run `change`
 * right after it finished, once. The app's own verify is back at teardown in any case.
 */
export function afterNextVerifyOf (t: Test, app: FastifyInstance): (change: () => Promise<void>) => void {
  const verify = app.passwords.verify
  t.teardown(() => { app.passwords.verify = verify })
  return (change) => {
    app.passwords.verify = async (...args) => {
      app.passwords.verify = verify
      const result = await verify(...args)
      await change()
      return result
    }
  }
}

/** How many of the user's refresh tokens are not revoked. */
export async function liveSessions (app: FastifyInstance, userId: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from refresh_tokens where user_id = ${userId} and revoked_at is null`.execute(app.db)
  return Number(rows[0]?.n)
}
