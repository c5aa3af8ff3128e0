// The reference point for `npm run bench`: the same framework with nothing of rolegate on top.
// It mirrors fastify/benchmarks (a response schema, no logger), so the ratio printed beside
// each rolegate route is "share of what Fastify itself can do on this machine in this run".
import Fastify from 'fastify'

const port = Number(process.env.PORT ?? 3000)
const app = Fastify({ logger: false })

app.get('/', {
  schema: {
    response: {
      200: { type: 'object', properties: { hello: { type: 'string' } } }
    }
  }
}, async () => ({ hello: 'world' }))

await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(`bare ready on ${port}\n`)

// The bench stops us with SIGTERM; close cleanly so the port is freed at once.
process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
