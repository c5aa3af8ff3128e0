import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { sql } from 'kysely'
import { HttpError } from '../src/errors.js'
import { errors } from '../src/schemas/common.js'

const Alive = Type.Object({ status: Type.String() }, { description: 'The process runs: `{"status":"ok"}`' })
const Ready = Type.Object({ status: Type.String() }, { description: 'The database answers: `{"status":"ready"}`' })
const READY_TIMEOUT_MS = 2000

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: { tags: ['operations'], operationId: 'health', summary: 'Liveness: 200 while the process runs', response: { 200: Alive } }
  }, async () => ({ status: 'ok' }))

  app.get('/ready', {
    schema: { tags: ['operations'], operationId: 'ready', summary: 'Readiness: 200 when the database answers', response: { 200: Ready, ...errors(503) } }
  }, async () => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new HttpError(503, 'Database is not reachable', { 'retry-after': '5' })), READY_TIMEOUT_MS)
    })
    try {
      await Promise.race([sql`select 1`.execute(app.db), timeout])
    } catch (err) {
      if (err instanceof HttpError) throw err
      throw new HttpError(503, 'Database is not reachable', { 'retry-after': '5' })
    } finally {
      clearTimeout(timer)
    }
    return { status: 'ready' }
  })
}

export default healthRoutes
