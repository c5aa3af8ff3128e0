import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

// The shape of the database as the app sees it. Migrations (frozen in time) create it;
// this file follows them.
export interface UsersTable {
  id: Generated<number>
  username: string
  email: string
  password_hash: string
  disabled: ColumnType<boolean, boolean | undefined, boolean>
  created_at: ColumnType<Date, never, never>
  updated_at: ColumnType<Date, never, Date>
}

export interface RolesTable {
  id: number
  name: string
}

export interface UserRolesTable {
  user_id: number
  role_id: number
}

export interface RefreshTokensTable {
  id: Generated<string>
  user_id: number
  family_id: string
  token_hash: Buffer
  expires_at: Date
  created_at: ColumnType<Date, never, never>
  used_at: Date | null
  revoked_at: Date | null
}

export interface AuditEventsTable {
  id: Generated<string>
  at: ColumnType<Date, never, never>
  type: string
  actor_id: number | null
  user_id: number | null
  ip: string | null
  detail: ColumnType<Record<string, unknown> | null, string | null, never>
}

export interface Database {
  users: UsersTable
  roles: RolesTable
  user_roles: UserRolesTable
  refresh_tokens: RefreshTokensTable
  audit_events: AuditEventsTable
}

export type UserRow = Selectable<UsersTable>
export type NewUser = Insertable<UsersTable>
