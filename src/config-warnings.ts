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
