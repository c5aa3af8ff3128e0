import argon2 from 'argon2'

export interface Argon2Params { memoryCost: number, timeCost: number, parallelism: number }

/**
 * What checking a password found: `false` for no match; `'current'` for a match against a hash
 * made as today's are; `'outdated'` for a match against one that should be made again now that
 * the plain password is at hand (older, weaker parameters, or a hash of the password as sent
 * before passwords were normalized).
 */
export type PasswordMatch = false | 'current' | 'outdated'

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  /** Verifies against the stored hash; `null` (unknown user) spends the same time on a dummy hash. */
  verify: (storedHash: string | null, password: string) => Promise<PasswordMatch>
  /** From now on every hash not yet started fails with `reason()`; those running finish. */
  close: (reason: () => Error) => void
}

/**
 * At most `slots` argon2 computations at once, the rest waiting in order here rather than in
 * libuv's queue, where nothing can take them back. A shutdown under a signin storm found 900
 * verifications queued, ~14 s of hashing on two threads: the exit outlasted its 10 s grace
 * (exit code 1) and the requests still queued got a bare close. Closed, the gate refuses the
 * waiting ones, which are answered 503 at once.
 */
function hashGate (slots: number): { run: <T>(work: () => Promise<T>) => Promise<T>, close: (reason: () => Error) => void } {
  let running = 0
  let refusal: (() => Error) | undefined
  const waiting: Array<{ start: () => void, refuse: (err: Error) => void }> = []
  return {
    async run (work) {
      if (refusal !== undefined) throw refusal()
      // A finishing computation hands its slot straight to the next in line (`running` stays).
      if (running < slots) running++
      else await new Promise<void>((resolve, reject) => waiting.push({ start: resolve, refuse: reject }))
      try {
        return await work()
      } finally {
        const next = waiting.shift()
        if (next !== undefined) next.start(); else running--
      }
    },
    close (reason) {
      refusal = reason
      for (const waiter of waiting.splice(0)) waiter.refuse(reason())
    }
  }
}

/**
 * The form a password is hashed and checked in. The same typed password arrives as different
 * code points depending on platform and keyboard (é as one code point or as e plus a combining
 * accent, digits full-width from East Asian input methods); NIST SP 800-63B (5.1.1.2) asks
 * verifiers to normalize with NFKC or NFKD. The password policy judges this form too, all but
 * the length, which is the client's (password-policy.ts).
 */
export function normalizePassword (password: string): string {
  return password.normalize('NFKC')
}

// argon2 computes on libuv's threads: as many at once as there are (src/server.cts sets them).
export const HASHING_THREADS = Number(process.env.UV_THREADPOOL_SIZE ?? '') || 4

export function createPasswordHasher (params: Argon2Params): PasswordHasher {
  const options = { type: argon2.argon2id as 2, ...params }
  const gate = hashGate(HASHING_THREADS)
  // Made once, lazily, with the same parameters as real hashes, so that a signin for an
  // unknown user costs the same as a wrong password.
  let dummy: Promise<string> | undefined

  // A corrupt stored hash must not become a 500 or a way in.
  const matches = async (storedHash: string, candidate: string): Promise<boolean> =>
    await gate.run(async () => await argon2.verify(storedHash, candidate).catch(() => false))

  return {
    hash: async (password) => await gate.run(async () => await argon2.hash(normalizePassword(password), options)),
    close: gate.close,
    async verify (storedHash, password) {
      // Hashes made before passwords were normalized hold the password as it was sent: when
      // that differs from the normalized form, it is tried second. The unknown-user path tries
      // as many, so a wrong password and an unknown user still take the same time.
      const normalized = normalizePassword(password)
      const asSent = normalized === password ? undefined : password
      if (storedHash === null) {
        dummy ??= argon2.hash('rolegate-dummy-password', options)
        await matches(await dummy, normalized)
        if (asSent !== undefined) await matches(await dummy, asSent)
        return false
      }
      if (await matches(storedHash, normalized)) return argon2.needsRehash(storedHash, options) ? 'outdated' : 'current'
      if (asSent !== undefined && await matches(storedHash, asSent)) return 'outdated'
      return false
    }
  }
}
