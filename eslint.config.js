import neostandard from 'neostandard'

export default [
  // The server's entry is a .cts (CommonJS) file: see src/server.cts.
  ...neostandard({ ts: true, filesTs: ['**/*.cts'], ignores: ['dist/**', 'data/**', 'coverage/**', '.tap/**'] }),
  {
    rules: {
      // `void reply.header(...)` marks a deliberately un-awaited thenable as a statement.
      'no-void': ['error', { allowAsStatement: true }],
      // TypeBox's idiom: a schema constant and its static type share one name.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
