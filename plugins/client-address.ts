import type { Socket } from 'node:net'
import fp from 'fastify-plugin'

// Every request's client address (request.ip) is its connection's peer address, which Node asks
// the operating system for the first time it is read, and then keeps. A client that sends a
// request and resets the connection at once leaves a socket whose peer the system no longer
// knows: read only then (by the request log, the rate limits' keys, the audit log), the address
// was undefined, and the log's serializer threw, which ended the process. Read as each
// connection is accepted, it is kept for the connection's life (one getpeername per
// connection); a connection whose peer is already gone by then is closed unread, as nobody is
// left to answer.
export default fp(async (app) => {
  app.server.on('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) socket.destroy()
  })
}, { name: 'client-address' })
