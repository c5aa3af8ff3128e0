import fc from 'fast-check'
import t from 'tap'
import { repeatedKey } from '../../src/json-body.js'

// The scan reads JSON text by hand (src/json-body.ts), so it is checked against JSON itself:
// text JSON.stringify made never repeats a key, whatever its strings hold (quotes, backslashes,
// escapes, brackets, any Unicode), and a key added again to any object of it is found.
t.test('JSON.stringify never repeats a key; one repeated anywhere is found', async (t) => {
  fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => repeatedKey(JSON.stringify(value)) === undefined), { numRuns: 500 })
  fc.assert(fc.property(fc.jsonValue(), fc.string({ unit: 'binary' }), fc.jsonValue(), (value, key, extra) => {
    // The innermost object of the value (or one made for it) gets `key` twice, the second time
    // as the last member, written with every character escaped.
    const inner = JSON.stringify({ [key]: 1, nested: value }).slice(0, -1)
    const units = Array.from({ length: key.length }, (_, i) => key.charCodeAt(i))
    const escaped = `"${units.map(unit => `\\u${unit.toString(16).padStart(4, '0')}`).join('')}"`
    return repeatedKey(`[${JSON.stringify(extra)},${inner},${escaped}:2}]`) === key
  }), { numRuns: 500 })
})

t.test('examples', async (t) => {
  t.equal(repeatedKey('{"a":1,"b":{"a":2}}'), undefined, 'the same key in different objects')
  t.equal(repeatedKey('[{"a":1},{"a":1}]'), undefined, 'in sibling objects')
  t.equal(repeatedKey('{"a":"\\"a\\":","b":["a","a"]}'), undefined, 'key-like text in values')
  t.equal(repeatedKey('{"a":1,"a":2}'), 'a')
  t.equal(repeatedKey('{"x":{"y":[{"z":1,"\\u007a":2}]}}'), 'z', 'deep, escaped')
  t.equal(repeatedKey('\uFEFF{"a":1,"a":1}'), 'a', 'after a byte order mark')
})
