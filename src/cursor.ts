import { HttpError } from './errors.js'

// Cursors are opaque to clients (base64url of the last row's id), so the paging key can
// change later without breaking them. Anything that does not decode to a positive id is a 400.
export function encodeCursor (id: number): string {
  return Buffer.from(String(id)).toString('base64url')
}

export function decodeCursor (cursor: string | undefined, max: number = Number.MAX_SAFE_INTEGER): number | undefined {
  if (cursor === undefined) return undefined
  const text = /^[A-Za-z0-9_-]{1,24}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('latin1') : ''
  const id = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(id) || id > max) throw new HttpError(400, 'querystring/cursor is not a valid cursor')
  return id
}

/** `{items, nextCursor}` from a page fetched with limit + 1 rows: the extra row only says "there is more". */
export function page<T extends { id: number }, R> (rows: T[], limit: number, toItem: (row: T) => R): { items: R[], nextCursor: string | null } {
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return { items: items.map(toItem), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null }
}
