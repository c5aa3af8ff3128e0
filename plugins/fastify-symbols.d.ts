// Fastify's internal symbols (fastify/lib/symbols.js, CommonJS, untyped). security-headers
// writes its constant headers straight into the reply's header object, kReplyHeaders;
// request-classes marks each new context's Request and Reply classes (kRequest, kReply) as
// not yet decorated (kHasBeenDecorated).
declare module 'fastify/lib/symbols.js' {
  const symbols: {
    readonly kReplyHeaders: symbol
    readonly kReply: symbol
    readonly kRequest: symbol
    readonly kHasBeenDecorated: symbol
  }
  export default symbols
}
