import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'data/**', 'coverage/**', '.tap/**'] }),
  {
    rules: {
      // `void reply.header(...)` marks a deliberately un-awaited thenable as a statement.
      'no-void': ['error', { allowAsStatement: true }],
      // TypeBox's idiom: a schema constant and its static type share one name.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
