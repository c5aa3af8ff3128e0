// node-postgres's value serialization (exported as pg/lib/utils, untyped): the embedded
// database (PipelinedPGlite) uses it so both databases receive parameters in the same text form.
declare module 'pg/lib/utils' {
  const utils: {
    prepareValue: (value: unknown) => string | Buffer | null
  }
  export default utils
}
