// ONNX Runtime loading and execution providers: failures are typed errors, never a crashed process.
// Each case runs in a fresh Node process, since a process can load ONNX Runtime only once.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import test from 'ava'

import { initRuntime, onnxRuntimePath } from '../../src/index.js'

const run = promisify(execFile)

/** Runs an ESM snippet against the built package; returns what it printed as JSON. */
async function inChild(code: string, env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
    cwd: new URL('../..', import.meta.url).pathname,
  })
  return JSON.parse(stdout.trim().split('\n').pop()!)
}

const report = `const report = (p) => p.then((v) => console.log(JSON.stringify({ ok: v })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`

test('the runtime beside the binary loads and reports its version', (t) => {
  const info = initRuntime()
  t.is(info.path, onnxRuntimePath())
  // A source build keeps it in native/ (npm run build:native copies it there from onnxruntime-node).
  if (!process.env.ORT_DYLIB_PATH) t.regex(info.path, /native[\\/]libonnxruntime\.so\.1$|native[\\/]libonnxruntime\.1\.dylib$|native[\\/]onnxruntime\.dll$/)
  t.regex(info.version, /^1\.(2[2-9]|[3-9]\d)\.\d+$/)
  t.deepEqual(initRuntime(), info, 'idempotent')
})

test('a missing library is ERR_ORT_NOT_FOUND', async (t) => {
  const out = await inChild(
    `import { initRuntime } from '@myriad-agents/core'; ${report} report(Promise.resolve().then(() => initRuntime('/nonexistent/libonnxruntime.so.1')))`,
  )
  t.is(out.code, 'ERR_ORT_NOT_FOUND')
  t.regex(out.message, /nonexistent/)
})

test('a library that is not ONNX Runtime is ERR_ORT_NOT_FOUND', async (t) => {
  const out = await inChild(`import { initRuntime } from '@myriad-agents/core'; ${report} report(Promise.resolve().then(() => initRuntime(process.execPath)))`)
  t.is(out.code, 'ERR_ORT_NOT_FOUND')
})

test('a bad ORT_DYLIB_PATH fails Embedder.load with ERR_ORT_NOT_FOUND', async (t) => {
  const out = await inChild(`import { Embedder } from '@myriad-agents/core'; ${report} report(Embedder.load())`, {
    ORT_DYLIB_PATH: '/tmp/definitely-not-here/libonnxruntime.so',
  })
  t.is(out.code, 'ERR_ORT_NOT_FOUND')
})

test('a relative runtime path is refused rather than resolved against the node binary', async (t) => {
  const out = await inChild(
    `import { initRuntime } from '@myriad-agents/core'; ${report} report(Promise.resolve().then(() => initRuntime('libonnxruntime.so.1')))`,
  )
  t.is(out.code, 'ERR_ORT_NOT_FOUND')
  t.regex(out.message, /absolute/)
})

test('HF_HOME, HF_HUB_OFFLINE and cacheDir choose the Hugging Face cache', async (t) => {
  const { Embedder } = await import('../../src/index.js')
  const { mkdtempSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { dirname, join, resolve } = await import('node:path')
  const model = await Embedder.load({ offline: true, threads: 1 })
  // <hub>/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<commit>/onnx/model.onnx
  const hub = resolve(dirname(model.modelPath), '../../../..')
  const viaCacheDir = await Embedder.load({ cacheDir: hub, offline: true, threads: 1 })
  t.is(viaCacheDir.modelPath, model.modelPath)

  const load = `import { Embedder } from '@myriad-agents/core'; ${report} report(Embedder.load({ threads: 1 }).then((e) => e.modelPath))`
  const empty = mkdtempSync(join(tmpdir(), 'myriad-hf-'))
  const missing = await inChild(load, { HF_HOME: empty, HF_HUB_OFFLINE: '1' })
  t.is(missing.code, 'ERR_MODEL_NOT_FOUND')
  t.regex(missing.message, /fetch-model/)
  const found = await inChild(load, { HF_HOME: dirname(hub), HF_HUB_OFFLINE: '1' })
  t.is(found.ok, model.modelPath)
})
