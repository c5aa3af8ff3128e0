import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { percentile, warmAndRun, type Load } from '../../bench/load.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function serve (t: Test, handler: Handler): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

const load = (url: string, connections: number): Load => ({ url, connections, expectStatus: 200, request: { method: 'GET' } })

// A hashing route in miniature: one worker, 100 ms a request, whether or not the client that
// sent it is still there (argon2 cannot be called back either).
t.test('requests left over from the warm-up do not eat into the measured window', async (t) => {
  const queue: ServerResponse[] = []
  let busy = false
  const work = (): void => {
    const res = queue.shift()
    if (res === undefined) { busy = false; return }
    busy = true
    setTimeout(() => { if (!res.destroyed) res.end('ok'); work() }, 100)
  }
  const url = await serve(t, (_req, res) => { queue.push(res); if (!busy) work() })
  // Steady state is 10 responses a second. A separate warm-up run would leave three or four
  // requests queued when it stops, and the measured second would lose 0.3-0.4 s to them.
  const m = await warmAndRun(load(url, 4), 0.5, 1)
  t.ok(m.rps >= 8 && m.rps <= 11, `about 10 responses a second in steady state (${m.rps})`)
  t.equal(m.errors, 0)
  t.equal(m.non2xx, 0)
})

t.test('a failure during the warm-up still makes the run invalid', async (t) => {
  let served = 0
  const url = await serve(t, (_req, res) => {
    res.statusCode = served++ === 0 ? 503 : 200
    res.end('ok')
  })
  const m = await warmAndRun(load(url, 1), 0.2, 0.2)
  t.equal(m.non2xx, 1, 'the first response, in the warm-up, is counted')
  t.ok(m.rps > 0)
})

t.test('percentile takes the nearest rank', async (t) => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentile(values, 0.5), 50)
  t.equal(percentile(values, 0.99), 99)
  t.equal(percentile([7], 0.99), 7)
  t.equal(percentile([], 0.5), 0)
})
