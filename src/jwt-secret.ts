import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Config } from './config.js'

export interface ResolvedSecret { secret: string, source: 'env' | 'file' | 'generated-file' | 'ephemeral' }

/**
 * JWT_SECRET when set. Without one (development only; config refuses production), a secret is
 * generated once and kept in DATA_DIR so tokens survive a restart; the in-memory database gets
 * an ephemeral one, since nothing else survives a restart there either.
 */
export async function resolveJwtSecret (config: Config): Promise<ResolvedSecret> {
  if (config.jwt.secret !== undefined) return { secret: config.jwt.secret, source: 'env' }
  if (config.databaseUrl === 'memory://') return { secret: randomBytes(48).toString('hex'), source: 'ephemeral' }
  const file = path.resolve(config.dataDir, 'jwt-secret')
  let existing: string | undefined
  try {
    existing = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (existing !== undefined && existing.length >= 32) return { secret: existing, source: 'file' }
  // Someone's own secret, or a file cut short: not ours to overwrite.
  if (existing !== undefined && existing !== '') {
    throw Object.assign(new Error(`${file} holds a JWT secret shorter than 32 characters: put a longer one there (openssl rand -hex 32), delete the file to have one generated, or set JWT_SECRET`), { code: 'ERR_JWT_SECRET_FILE' })
  }
  const secret = randomBytes(48).toString('hex')
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, secret + '\n', { mode: 0o600 })
  return { secret, source: 'generated-file' }
}
