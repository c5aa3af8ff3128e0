import argon2 from 'argon2'

export interface Argon2Params { memoryCost: number, timeCost: number, parallelism: number }

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  /** Verifies against the stored hash; `null` (unknown user) spends the same time on a dummy hash. */
  verify: (storedHash: string | null, password: string) => Promise<boolean>
  needsRehash: (storedHash: string) => boolean
}

export function createPasswordHasher (params: Argon2Params): PasswordHasher {
  const options = { type: argon2.argon2id as 2, ...params }
  // Made once, lazily, with the same parameters as real hashes, so that a signin for an
  // unknown user costs the same as a wrong password.
  let dummy: Promise<string> | undefined

  return {
    hash: async (password) => await argon2.hash(password, options),
    async verify (storedHash, password) {
      if (storedHash === null) {
        dummy ??= argon2.hash('rolegate-dummy-password', options)
        await argon2.verify(await dummy, password).catch(() => false)
        return false
      }
      try {
        return await argon2.verify(storedHash, password)
      } catch {
        // A corrupt stored hash must not become a 500 or a way in.
        return false
      }
    },
    needsRehash: (storedHash) => argon2.needsRehash(storedHash, options)
  }
}
