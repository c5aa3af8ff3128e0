// Settings a server can run with but that are likely not what the operator meant. Refusing them
// would stop a deployment that may mean them, so they are said once at start instead
// (plugins/config.ts logs them), naming the variables.

type LifetimeName = 'ACCESS_TOKEN_TTL' | 'REFRESH_TOKEN_TTL' | 'REFRESH_TOKEN_REUSE_INTERVAL'

/**
 * Lifetimes that contradict each other. `written` is each value as given (durations, never
 * secrets, so repeated), `ms` what the server uses: the access token's in whole seconds.
 */
export function lifetimeWarnings (written: Record<LifetimeName, string>, ms: Record<LifetimeName, number>): string[] {
  const given = (name: LifetimeName): string => `${name}=${written[name]}`
  const warnings: string[] = []
  // Clients whose tokens never need refreshing (a service account, a short script) may want
  // this; a browser app signs its users out when the access token expires.
  if (ms.ACCESS_TOKEN_TTL >= ms.REFRESH_TOKEN_TTL) {
    warnings.push(`${given('ACCESS_TOKEN_TTL')} is not shorter than ${given('REFRESH_TOKEN_TTL')}: the refresh token expires no later than the access token, ` +
      'so a client whose access token has expired must sign in again instead of refreshing')
  }
  // A used token is taken again while it is within the window and unexpired (rotateRefreshToken):
  // a window as long as the token's life turns reuse detection off for as long as it matters.
  if (ms.REFRESH_TOKEN_REUSE_INTERVAL >= ms.REFRESH_TOKEN_TTL) {
    warnings.push(`${given('REFRESH_TOKEN_REUSE_INTERVAL')} is not shorter than ${given('REFRESH_TOKEN_TTL')}: a used refresh token is accepted again until it expires, ` +
      'so a copied one is never caught as reused while it still works')
  }
  return warnings
}

// Fastify's trustProxy: true takes the left-most X-Forwarded-For entry as the client, and the
// client writes that entry unless a proxy replaces the header. Some deployments mean it, so it
// starts; the warning says what a list would keep (src/config-lists.ts parses the list).
export function trustProxyWarnings (trustProxy: boolean | string | string[]): string[] {
  if (trustProxy !== true) return []
  return ['TRUST_PROXY=true believes every X-Forwarded-For entry: a client that reaches the server directly, or through a proxy that appends to the header, ' +
    'picks its own address and so its rate limits; list the proxies\' addresses or CIDRs instead (TRUST_PROXY=10.0.0.0/8)']
}

/**
 * A name given (environment, .env) that rolegate does not read but one it does is a slip of the
 * keyboard away from: `JWT_SECRTE is set but not read; did you mean JWT_SECRET?`. Only names are
 * said, never a value: it may be a secret. Close means the same name but for case or a plural
 * (PORT and port, CORS_ORIGIN and CORS_ORIGINS), or, for names of 6 characters or more, at most
 * two letters typed wrong, missing, extra or swapped: every shorter name of ours is that close
 * to ordinary ones (HOST and HOME, PORT and PGPORT), and the longer ones stay three or more away
 * from what hosts, containers and CI jobs set (PGCONNECT_TIMEOUT, REDIS_PORT; config.test.ts
 * lists them).
 */
export function unreadNameWarnings (given: Iterable<string>, read: readonly string[]): string[] {
  const readNames = new Set(read)
  const warnings: string[] = []
  for (const name of given) {
    if (readNames.has(name)) continue
    const meant = closestName(name, read)
    if (meant !== undefined) warnings.push(`${name} is set but not read; did you mean ${meant}?`)
  }
  return warnings
}

const MAX_TYPOS = 2
const MIN_TYPO_LENGTH = 6
const singular = (name: string): string => name.replace(/IES$/, 'Y').replace(/S$/, '')

function closestName (name: string, read: readonly string[]): string | undefined {
  const upper = name.toUpperCase()
  let closest: string | undefined
  let closestDistance = MAX_TYPOS + 1
  for (const known of read) {
    if (singular(upper) === singular(known)) return known
    if (known.length < MIN_TYPO_LENGTH) continue
    const distance = editDistance(upper, known)
    if (distance < closestDistance) [closest, closestDistance] = [known, distance]
  }
  return closest
}

// Damerau-Levenshtein distance, the optimal-string-alignment variant: insertions, deletions,
// substitutions and swaps of two neighbours each count one.
function editDistance (a: string, b: string): number {
  // d[i * width + j]: the distance from a's first i characters to b's first j.
  const width = b.length + 1
  const d: number[] = []
  const at = (i: number, j: number): number => d[i * width + j] ?? 0
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1
      let distance = i === 0 || j === 0 ? i + j : Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + substitution)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1)
      d[i * width + j] = distance
    }
  }
  return at(a.length, b.length)
}
