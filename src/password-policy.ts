import { createRequire } from 'node:module'
import { HttpError } from './errors.js'
import { normalizePassword } from './passwords.js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './schemas/auth.js'

// ASVS 6.2: 8 to 128 characters as sent, every character counts (argon2 does not truncate),
// and none of the passwords attackers try first. The list is zxcvbn-ts's maintained
// "passwords-common" dictionary (about 49,000 entries, ranked by frequency in breach corpora),
// not a hand-written array. Entries shorter than the minimum length could never pass anyway, so
// they are skipped: all are ASCII, and no password long enough normalizes to fewer ASCII characters.

const COMMON = loadCommonPasswords()

// The package is loaded for this set and then let go: its module would keep all 49,000
// entries, 7,776 diceware words, keyboard graphs and its compressed source alive for the life
// of the process (heap kept by loading this module: 3.67 MB with it, 2.03 MB without), and
// every megabyte that stays live is half as much again at peak RSS (--heap-growing-percent=50,
// server-flags.ts). An ES module import cannot be unloaded; a CommonJS require can, by leaving
// the cache.
function loadCommonPasswords (): Set<string> {
  const require = createRequire(import.meta.url)
  const before = new Set(Object.keys(require.cache))
  const { dictionary } = require('@zxcvbn-ts/language-common') as typeof import('@zxcvbn-ts/language-common')
  const common = new Set(dictionary['passwords-common'].filter(p => [...p].length >= PASSWORD_MIN_LENGTH))
  for (const file of Object.keys(require.cache)) {
    if (!before.has(file)) Reflect.deleteProperty(require.cache, file)
  }
  return common
}

/** Why `password` is not acceptable as a new password, or undefined when it is. */
export function passwordProblem (password: string): string | undefined {
  // JSON can carry a lone surrogate (\ud800), which is not text: argon2 hashes it as U+FFFD,
  // so passwords differing only there would all be one.
  if (!password.isWellFormed()) return 'must be valid Unicode text (it contains a lone surrogate)'
  // Length is judged as sent, in code points as the request schema (ajv) counts them: the
  // contract's 8-128 characters are what the client sends, and the limits are the schema's.
  // Normalization can shorten the text (e plus a combining accent is é) or lengthen it (the
  // ligature \ufb01 is "fi", \ufdfa is 18 characters), so judging the normalized form
  // would refuse at the limit what the contract allows. Not every caller has a schema in front
  // (the CLI has none), so both limits are checked here too.
  const length = [...password].length
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`
  // The rest is judged as it is hashed: full-width "ｐａｓｓｗｏｒｄ１２３" is "password123".
  const text = normalizePassword(password)
  // What the common-password list does not catch (of these it holds only "11111111"): blanks,
  // which the user may not even know they typed (NFKC makes no-break and ideographic spaces
  // plain ones; zero-width spaces and joiners are format characters, Cf), and one character
  // repeated, the first of the "repetitive or sequential" passwords NIST SP 800-63B 5.1.1.2
  // asks verifiers to refuse.
  if (/^[\s\p{Cf}]*$/u.test(text)) return 'must not be only spaces or invisible characters'
  if (new Set(text).size === 1) return 'must not be one character repeated'
  // The list is lower-case; "Password1" is as guessable as "password1".
  if (COMMON.has(text.toLowerCase())) return 'is one of the most common passwords (found in breached password lists); choose another'
  return undefined
}

/** 400 naming the field when a new password breaks the policy. */
export function assertAcceptablePassword (password: string, field: string): void {
  const problem = passwordProblem(password)
  if (problem !== undefined) throw new HttpError(400, `${field} ${problem}`)
}
