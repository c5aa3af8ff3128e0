import type { Socket } from 'node:net'
import fp from 'fastify-plugin'

// How the server treats its connections, before any request on them is read.
export default fp(async (app) => {
  // Every request's client address (request.ip) is its connection's peer address, which Node
  // asks the operating system for the first time it is read, and then keeps. A client that
  // sends a request and resets the connection at once leaves a socket whose peer the system no
  // longer knows: read only then (by the request log, the rate limits' keys, the audit log),
  // the address was undefined, and the log's serializer threw, which ended the process. Read
  // as each connection is accepted, it is kept for the connection's life (one getpeername per
  // connection); a connection whose peer is already gone by then is closed unread, as nobody
  // is left to answer.
  app.server.on('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) socket.destroy()
  })

  // A client may half-close (FIN) once its request is sent and still read the answer (RFC 9112
  // 9.6). Node's HTTP server aborted the requests in flight on that FIN instead, so a route
  // that waited on anything (the database, argon2, Redis) answered nobody, after doing its work
  // (a refresh token rotated for a client that never learnt the new one). With this setting
  // Node answers them and closes the connection after the last answer; an idle half-closed
  // connection is closed at once, as before. Not in @types/node, long in Node's http server
  // (lib/_http_server.js, socketOnEnd).
  Reflect.set(app.server, 'httpAllowHalfOpen', true)
}, { name: 'connections' })
