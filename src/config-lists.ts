import { isIP } from 'node:net'
import { ConfigError } from './config-error.js'

// The two settings written as comma-separated lists, TRUST_PROXY and CORS_ORIGIN, checked entry
// by entry (src/config.ts reads the rest).

// Fastify's trustProxy: true/false, or the addresses / CIDRs of the proxies to trust. Checked
// here, so a typo stops the server with a message naming the variable rather than a stack trace
// from deep inside Fastify's proxy-addr.
export function parseTrustProxy (value: string): boolean | string[] {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  const entries = value.split(',').map(v => v.trim()).filter(v => v.length > 0)
  const invalid = entries.find(entry => !isProxyEntry(entry))
  if (invalid !== undefined) {
    throw new ConfigError(`Invalid configuration: TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses, CIDRs (10.0.0.0/8) or the names loopback, linklocal, uniquelocal (not ${JSON.stringify(invalid)})`)
  }
  return entries
}

// @fastify/cors compares each entry with the browser's Origin header as a string, so an entry
// that is not an origin (a path, a missing scheme) would silently never match: refused here.
// Entries are normalised to the Origin header's form (lower case, no default port, no slash).
export function parseCorsOrigin (value: string): '*' | string[] | undefined {
  const entries = value.split(',').map(v => v.trim()).filter(v => v.length > 0)
  if (entries.length === 0) return undefined
  if (entries.length === 1 && entries[0] === '*') return '*'
  return entries.map(entry => {
    const origin = originOf(entry)
    if (origin === undefined) {
      throw new ConfigError(`Invalid configuration: CORS_ORIGIN must be * alone or a comma-separated list of origins (http or https, a host, an optional port, no path), not ${JSON.stringify(entry)}`)
    }
    return origin
  })
}

function originOf (entry: string): string | undefined {
  if (!URL.canParse(entry)) return undefined
  const url = new URL(entry)
  const bare = url.username === '' && url.password === '' && url.pathname === '/' && url.search === '' && url.hash === ''
  // A wildcard is compared as written and matches only itself.
  return (url.protocol === 'https:' || url.protocol === 'http:') && bare && !url.host.includes('*') ? url.origin : undefined
}

// What proxy-addr (Fastify's) accepts: an address, address/prefix-length, IPv4 address/netmask,
// or one of its named ranges.
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])
function isProxyEntry (entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true
  const [address = '', range, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (range === undefined) return true
  // proxy-addr refuses a range of none (/0, a 0.0.0.0 netmask: trusting every address is
  // TRUST_PROXY=true) and a netmask whose ones are not contiguous.
  if (/^[0-9]{1,3}$/.test(range)) return Number(range) >= 1 && Number(range) <= (family === 4 ? 32 : 128)
  return family === 4 && isIP(range) === 4 && isContiguousNetmask(range)
}

function isContiguousNetmask (mask: string): boolean {
  const bits = mask.split('.').reduce((n, part) => (n * 256) + Number(part), 0)
  const zeros = 2 ** 32 - 1 - bits
  return bits !== 0 && (zeros & (zeros + 1)) === 0
}
