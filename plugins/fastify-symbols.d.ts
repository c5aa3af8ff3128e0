// Fastify's internal symbols (fastify/lib/symbols.js, CommonJS, untyped). security-headers
// writes its constant headers straight into the reply's header object, kReplyHeaders.
declare module 'fastify/lib/symbols.js' {
  const symbols: { readonly kReplyHeaders: symbol }
  export default symbols
}
