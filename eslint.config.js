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
  },
  {
    // A transaction aborted as a serialization failure or a deadlock is re-run by runTransaction
    // (src/db/serialization-retry.ts); one started directly would answer 503 instead.
    files: ['src/**', 'plugins/**', 'routes/**'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "CallExpression[callee.property.name='transaction']",
        message: 'Start transactions with runTransaction (src/db/serialization-retry.ts), which retries serialization failures and deadlocks.'
      }]
    }
  }
]
