// The published shape: the compiled ESM entry (dist/) imports by package name on this Node.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import test from 'ava'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

test('ESM import by package name exposes the public API', async (t) => {
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', `import * as m from '@myriad-agents/core'; console.log(Object.keys(m).sort().join(','))`],
    { cwd: root },
  )
  const names = stdout.trim().split(',')
  for (const name of ['Embedder', 'SemanticIndex', 'MyriadError', 'initRuntime', 'onnxRuntimePath', 'simdKernels']) {
    t.true(names.includes(name), name)
  }
})

test('CommonJS require works too (Node >= 20.19 loads the ESM build)', async (t) => {
  const { stdout } = await run(
    process.execPath,
    ['-e', `const m = require('@myriad-agents/core'); console.log(typeof m.SemanticIndex, typeof m.Embedder.load)`],
    { cwd: root },
  )
  t.is(stdout.trim(), 'function function')
})

test('the test server is importable as @myriad-agents/core/testing and answers', async (t) => {
  const script = `import { startLLMServer } from '@myriad-agents/core/testing'
const server = await startLLMServer()
const res = await fetch(server.url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) })
console.log((await res.json()).choices[0].message.content)
await server.close()`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })
  t.is(stdout.trim(), 'reply to: hi')
})

test('the myriad bin runs from dist/ and prints its version', async (t) => {
  const { stdout } = await run(process.execPath, ['dist/cli/index.js', '--version'], { cwd: root })
  const pkg = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(`${root}/package.json`, 'utf8'))) as { version: string }
  t.is(stdout.trim(), pkg.version)
})
