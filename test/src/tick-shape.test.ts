import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import ts from 'typescript'

const SOURCE = path.resolve(import.meta.dirname, '../../src/tick-shape.cts')

// Run in a plain node (no TypeScript or other loader, whose own work would already have made
// ticks and collections): makes ticks, runs full collections while none is alive, makes ticks
// again, and prints V8's view of process.nextTick, i.e. the shapes each of its property sites
// has seen.
const PROBE = `
if (process.env.KEEP_TICK_SHAPE === '1' && !require(process.env.TICK_SHAPE_MODULE).keepTickObjectShape()) throw new Error('no tick object captured')
const noop = () => {}
const turn = () => new Promise(resolve => setImmediate(resolve))
;(async () => {
  for (let i = 0; i < 1000; i++) process.nextTick(noop)
  await turn()
  for (let i = 0; i < 3; i++) { gc(); await turn() }
  for (let i = 0; i < 1000; i++) process.nextTick(noop)
  await turn()
  ;%DebugPrint(process.nextTick)
})()`

const MEGAMORPHIC = /DefineKeyedOwnPropertyInLiteral MEGAMORPHIC/g

/** What V8 printed of nextTick's feedback after the collections, and how many sites it gave up on. */
async function probe (t: Test, keep: boolean): Promise<{ megamorphic: number, output: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rolegate-tick-shape-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const module = path.join(dir, 'tick-shape.cjs')
  writeFileSync(module, ts.transpileModule(readFileSync(SOURCE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true }
  }).outputText)
  // V8 prints to the C library's stdout. Into a pipe, which Node makes non-blocking, the part
  // still buffered at exit can be dropped; a file takes all of it.
  const file = path.join(dir, 'out')
  const fd = openSync(file, 'w')
  // Through `env -i`: tap adds its own loader to every child's NODE_OPTIONS (to follow it for
  // coverage), and that loader's work would make ticks and collections before the probe's.
  const child = spawn('env', [
    '-i', `PATH=${process.env.PATH ?? ''}`, `KEEP_TICK_SHAPE=${keep ? '1' : '0'}`, `TICK_SHAPE_MODULE=${module}`,
    process.execPath, '--allow-natives-syntax', '--expose-gc', '-e', PROBE
  ], { stdio: ['ignore', fd, 'inherit'] })
  closeSync(fd)
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, 'the probe ran')
  const output = readFileSync(file, 'utf8')
  return { megamorphic: output.match(MEGAMORPHIC)?.length ?? 0, output }
}

t.test('without a kept tick object, collections make nextTick\'s property sites megamorphic', async (t) => {
  // The problem itself, so that the test below can fail: if a Node upgrade fixes it, this one
  // fails, and tick-shape.cts can go.
  const { megamorphic, output } = await probe(t, false)
  t.ok(output.includes('DefineKeyedOwnPropertyInLiteral'), 'V8 printed the feedback of nextTick')
  t.ok(megamorphic > 0, `${megamorphic} megamorphic sites`)
})

t.test('with keepTickObjectShape, they stay monomorphic', async (t) => {
  const { megamorphic, output } = await probe(t, true)
  t.ok(output.includes('DefineKeyedOwnPropertyInLiteral MONOMORPHIC'), 'V8 printed the feedback of nextTick')
  t.equal(megamorphic, 0, 'no megamorphic sites')
})
