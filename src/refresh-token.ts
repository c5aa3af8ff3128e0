import { createHash, randomBytes } from 'node:crypto'

// Refresh tokens are opaque: 256 random bits, base64url. Only their SHA-256 is stored, so a
// database leak does not hand out sessions. SHA-256 (not argon2) is right here: the input is
// already high-entropy, and lookups must be by hash.
export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
}

export function hashRefreshToken (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}
