import type { Migration } from 'kysely'
import * as usersAndRoles from './2026_11_25_000100_users_and_roles.js'
import * as refreshTokens from './2026_11_25_000200_refresh_tokens.js'
import * as adminAndAudit from './2026_11_25_000300_admin_and_audit.js'
import * as refreshTokensRevokedIndex from './2026_12_07_000400_refresh_tokens_revoked_index.js'

// The list of migrations, in order. Imported statically so the same list works from the
// TypeScript sources (tests) and from the compiled build; add new files at the end.
export const migrations: Record<string, Migration> = {
  '2026_11_25_000100_users_and_roles': usersAndRoles,
  '2026_11_25_000200_refresh_tokens': refreshTokens,
  '2026_11_25_000300_admin_and_audit': adminAndAudit,
  '2026_12_07_000400_refresh_tokens_revoked_index': refreshTokensRevokedIndex
}
