import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import requestClasses from '../../plugins/request-classes.js'
import { build, embedded, post } from '../helper.js'

// plugins/request-classes.ts: routes in different plugins share Fastify's Request and Reply
// classes unless their plugin decorates them.

interface Seen { reply: object, request: object }

/** A root decorated as ours is (by @fastify/jwt), three routes plugins, one that decorates. */
async function miniApp (withPlugin: boolean): Promise<{ app: FastifyInstance, seen: Map<string, Seen> }> {
  const app = Fastify()
  const seen = new Map<string, Seen>()
  if (withPlugin) await app.register(requestClasses)
  await app.register(fp(async (root) => {
    root.decorateReply('rootThing', () => 'root')
    root.decorateRequest('rootThing', () => 'root')
  }))
  const route = (scope: FastifyInstance, url: string): void => {
    scope.get(url, async (request, reply) => {
      seen.set(url, { reply: Object.getPrototypeOf(reply), request: Object.getPrototypeOf(request) })
      return { own: 'scopeThing' in reply, root: 'rootThing' in reply }
    })
  }
  await app.register(async (scope) => { route(scope, '/a') })
  await app.register(async (scope) => { route(scope, '/b') })
  await app.register(async (scope) => {
    scope.decorateReply('scopeThing', () => 'scope')
    route(scope, '/c')
    await scope.register(async (nested) => { route(nested, '/c/nested') })
  })
  for (const url of ['/a', '/b', '/c', '/c/nested']) await app.inject(url)
  return { app, seen }
}

t.test('without it, Fastify keeps a class per plugin once the root is decorated', async (t) => {
  // If a Fastify release makes its fallback work on its own, this fails and the plugin can go.
  const { app, seen } = await miniApp(false)
  t.teardown(async () => { await app.close() })
  t.not(seen.get('/a')?.reply, seen.get('/b')?.reply, 'reply classes differ')
  t.not(seen.get('/a')?.request, seen.get('/b')?.request, 'request classes differ')
})

t.test('with it, undecorated plugins share the classes, and decorations stay where they were made', async (t) => {
  const { app, seen } = await miniApp(true)
  t.teardown(async () => { await app.close() })
  t.equal(seen.get('/a')?.reply, seen.get('/b')?.reply, 'reply class shared')
  t.equal(seen.get('/a')?.request, seen.get('/b')?.request, 'request class shared')
  t.not(seen.get('/c')?.reply, seen.get('/a')?.reply, 'the decorating plugin keeps its own reply class')
  t.equal(seen.get('/c/nested')?.reply, seen.get('/c')?.reply, 'and its children share it')
  t.same((await app.inject('/a')).json(), { own: false, root: true })
  t.same((await app.inject('/c')).json(), { own: true, root: true })
  t.same((await app.inject('/c/nested')).json(), { own: true, root: true })
})

t.test('the application: every routes file but /api/auth (which registers @fastify/cookie) shares one pair of classes', async (t) => {
  const seen = new Map<string, Seen>()
  const app = await build(t, embedded, {
    beforeReady: (app) => {
      app.addHook('onResponse', (request, reply, done) => {
        seen.set(request.url, { reply: Object.getPrototypeOf(reply), request: Object.getPrototypeOf(request) })
        done()
      })
    }
  })
  const urls = ['/api/test/all', '/api/test/user', '/health', '/documentation/json', '/api/admin/users', '/api/admin/audit', '/no-such-route']
  for (const url of urls) await app.inject(url)
  await post(app, '/api/auth/signin', {})
  await post(app, '/api/auth/refreshtoken', {})
  const first = seen.get('/api/test/all')
  for (const url of urls) {
    t.equal(seen.get(url)?.reply, first?.reply, `${url}: the shared reply class`)
    t.equal(seen.get(url)?.request, first?.request, `${url}: the shared request class`)
  }
  const auth = seen.get('/api/auth/signin')
  t.not(auth?.reply, first?.reply, '/api/auth keeps its own reply class')
  t.ok(auth !== undefined && 'setCookie' in auth.reply, 'with the cookie decorations')
  t.equal(seen.get('/api/auth/refreshtoken')?.reply, auth?.reply, 'shared by the nested sessions routes')
})
