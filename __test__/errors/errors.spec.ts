// One list of error codes (crates/myriad-core/src/error.rs), generated into TypeScript and the
// docs; native errors arrive with `code` as a property; every code the TypeScript layer uses is
// in the list.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'

import { ERROR_CODES, MyriadError, Policy, SemanticIndex } from '../../src/index.js'
import { native } from '../../src/native/index.js'
import { staleFiles } from '../../scripts/reference.js'

const src = join(import.meta.dirname, '..', '..', 'src')

test('the generated error codes, option reference and doc examples are up to date (npm run generate)', (t) => {
  t.deepEqual(staleFiles(), [])
})

test('the TypeScript list is the native one, in the same order', (t) => {
  const fromRust = native.errorCodes()
  t.deepEqual(
    Object.keys(ERROR_CODES),
    fromRust.map((c) => c.code),
  )
  for (const c of fromRust) t.deepEqual(ERROR_CODES[c.code as keyof typeof ERROR_CODES], { component: c.component, summary: c.summary })
  t.true(fromRust.length > 40)
})

test('every ERR_ code written in src/ is in the list', (t) => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []))
  const used = new Set(files(src).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1])))
  t.true(used.size > 10)
  for (const code of used) t.true(Object.hasOwn(ERROR_CODES, code), `${code} is used in src/ but is not in crates/myriad-core/src/error.rs`)
})

test('a native error thrown synchronously carries its code as a property, not in the message', (t) => {
  const raw = t.throws(() => native.NativePolicy.create({ sizes: [50] }))
  t.is((raw as { code?: string }).code, 'ERR_INVALID_ARG')
  t.notRegex(raw.message, /^ERR_/)
  const wrapped = t.throws(() => Policy.create({ sizes: [50, 0, 5] }))
  t.true(wrapped instanceof MyriadError)
})

test('a native promise rejects with its code as a property, not in the message', async (t) => {
  const raw = await t.throwsAsync(native.NativeSemanticIndex.load('/nonexistent/agents.idx', {}))
  t.is((raw as { code?: string }).code, 'ERR_IO')
  t.notRegex(raw.message, /^ERR_/)
  const wrapped = await t.throwsAsync(SemanticIndex.load('/nonexistent/agents.idx'))
  t.true(wrapped instanceof MyriadError)
  t.is((wrapped as MyriadError).code, 'ERR_IO')
})

test("napi-rs's own argument conversion errors become ERR_INVALID_ARG", (t) => {
  const index = SemanticIndex.create({ dim: 4 })
  const error = t.throws(() => index.get(42 as unknown as string))
  t.true(error instanceof MyriadError)
  t.is((error as MyriadError).code, 'ERR_INVALID_ARG')
})
