// The LLM client and `myriad run` against a real model: SmolLM2-135M-Instruct (Q4_1 GGUF) served by
// llama.cpp's OpenAI-compatible llama-server on a loopback port, one server for the whole file. Both
// come from `npm run fetch-llm` (cached in ~/.cache/myriad/llama); without them these tests fail
// saying so. Serial: the model runs on the CPU, and tests side by side would only slow each other.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'
import { z } from 'zod'

import { LLM, readArchive } from '../../src/index.js'
import { MODEL_NAME, startLocalModel, type LocalModel } from './local-model.js'

let local: LocalModel
let llm: LLM

test.before(async () => {
  local = await startLocalModel({ parallel: 4 })
  // Generous timeouts: a 2-core machine decodes four slots at once, and the first call warms caches.
  llm = new LLM({ providers: [{ name: 'llama', baseUrl: local.url, models: [local.model] }], timeoutMs: 120_000 })
})

test.after.always(async () => {
  await llm?.close()
  await local?.close()
})

const ask = (content: string) => [{ role: 'user' as const, content }]

test.serial('the server reports the GGUF model', (t) => {
  t.is(local.model, MODEL_NAME)
  t.regex(local.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)
})

test.serial('chat: a non-empty reply with the token usage the server counted', async (t) => {
  const reply = await llm.chat({ messages: ask('What is the capital of France? Answer in one word.'), maxTokens: 24, temperature: 0 })
  t.log(`reply ${JSON.stringify(reply.text)} in ${reply.latencyMs.toFixed(0)} ms, usage ${JSON.stringify(reply.usage)}`)
  t.true(reply.text.trim().length > 0)
  t.is(reply.model, MODEL_NAME)
  t.is(reply.provider, 'llama')
  t.is(reply.attempts, 1)
  t.true(reply.usage.promptTokens > 5, 'the prompt went through the chat template')
  t.true(reply.usage.completionTokens > 0 && reply.usage.completionTokens <= 24)
  t.true(reply.finishReason === 'stop' || reply.finishReason === 'length')
  // A second, warm call: the latency the owner reads in the log.
  const warm = await llm.chat({ messages: ask('Name a colour.'), maxTokens: 16, temperature: 0 })
  t.log(`warm chat latency ${warm.latencyMs.toFixed(0)} ms (${warm.usage.completionTokens} tokens out)`)
  t.true(warm.text.trim().length > 0)
})

test.serial('stream: several chunks whose concatenation is the final text', async (t) => {
  const stream = llm.stream({ messages: ask('Write three short sentences about the sea.'), maxTokens: 48, temperature: 0 })
  const deltas: string[] = []
  let last = ''
  for await (const chunk of stream) {
    deltas.push(chunk.delta)
    t.is(chunk.text, last + chunk.delta, 'each chunk extends the text so far')
    last = chunk.text
  }
  const result = await stream.result
  t.log(`${deltas.length} chunks, ${result.usage.completionTokens} tokens: ${JSON.stringify(result.text)}`)
  t.true(deltas.length >= 3, `only ${deltas.length} chunks`)
  t.is(deltas.join(''), result.text)
  t.true(result.text.trim().length > 0)
  t.false(result.stoppedEarly)
  t.true(result.usage.completionTokens > 0)
})

test.serial('json: the reply parses and passes a zod schema (json_schema becomes a grammar in llama-server)', async (t) => {
  const Person = z.object({
    name: z.string().min(1).max(60),
    age: z.number().int().min(0).max(120),
    mood: z.enum(['calm', 'angry', 'happy']),
  })
  const result = await llm.json({
    messages: ask('Describe a fictional person as a JSON object with a name, an age in years and a mood (calm, angry or happy).'),
    schema: Person,
    maxTokens: 96,
    temperature: 0,
  })
  t.log(`data ${JSON.stringify(result.data)}, repaired: ${result.repaired}, attempts ${result.attempts}`)
  t.true(Person.safeParse(result.data).success)
  t.true(JSON.parse(result.text) !== null, 'the reply is JSON as a whole, no prose around it')
})

test.serial('16 concurrent calls all succeed (4 server slots, the rest queue in the server)', async (t) => {
  const before = llm.metrics().successes
  const started = performance.now()
  const replies = await Promise.all(
    Array.from({ length: 16 }, (_, i) => llm.chat({ messages: ask(`Agent ${i}: say hello to agent ${i + 1} in one sentence.`), maxTokens: 24 })),
  )
  const wall = performance.now() - started
  t.log(`16 calls in ${wall.toFixed(0)} ms, slowest ${Math.max(...replies.map((r) => r.latencyMs)).toFixed(0)} ms`)
  t.is(replies.length, 16)
  for (const reply of replies) {
    t.true(reply.text.trim().length > 0)
    t.true(reply.usage.completionTokens > 0)
  }
  t.is(llm.metrics().successes - before, 16)
  t.true(llm.metrics().peakConcurrency >= 16, 'all 16 were in flight at once on the client side')
})

// `myriad run` as a user runs it (see __test__/cli/cli.spec.ts): the compiled bin in a project with
// the package linked into node_modules, the experiment `myriad init` writes, MYRIAD_LLM_URL/MODEL
// pointing it at the real model instead of the file's test server.
const root = join(import.meta.dirname, '..', '..')
const bin = join(root, 'dist', 'cli', 'index.js')

function myriad(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MYRIAD_')))
    execFile(process.execPath, [bin, ...args], { cwd, env: { ...clean, ...env }, timeout: 240_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

test.serial('myriad run: 100 agents for 3 ticks on the real model, every llm_calls row ok and on the GGUF model', async (t) => {
  t.true(existsSync(bin), `${bin} is missing: run npm run build:ts`)
  const dir = mkdtempSync(join(tmpdir(), 'myriad-llama-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules', '@myriad-agents'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', '@myriad-agents', 'core'))
  const init = await myriad(['init'], dir, {})
  t.is(init.code, 0, init.stderr)

  const started = performance.now()
  // The turn timeout is the plumbing's, not what is tested: on 2 cores shared with the other test
  // files a queued call to the real model has taken a turn past the default 30 s (CI, 40 s runs).
  const ran = await myriad(['run', 'experiment.yaml', '--ticks', '3', '--set', 'concurrency.llm=4', '--set', 'experiment.stepTimeoutMs=120000'], dir, {
    MYRIAD_LLM_URL: local.url,
    MYRIAD_LLM_MODEL: local.model,
  })
  t.log(`myriad run took ${((performance.now() - started) / 1000).toFixed(1)} s`)
  t.is(ran.code, 0, `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`)
  t.regex(ran.stdout, /done: mutual-aid\/\S+: 3 ticks, 300 turns/)

  const base = join(dir, 'runs', 'mutual-aid')
  const [runDir] = readdirSync(base).map((r) => join(base, r))
  const agents = await readArchive(runDir, { table: 'agents' })
  t.is(agents.length, 100)
  const calls = await readArchive(runDir, { table: 'llm_calls' })
  t.log(`${calls.length} llm_calls, e.g. ${JSON.stringify((calls[0]?.response as { text?: string } | null)?.text)}`)
  t.true(calls.length > 0, 'citizens answered questions with the real model')
  t.deepEqual([...new Set(calls.map((c) => c.outcome))], ['ok'])
  t.deepEqual([...new Set(calls.map((c) => c.model))], [MODEL_NAME])
  t.true(calls.every((c) => (c.completion_tokens ?? 0) > 0 && (c.response as { text: string }).text.length > 0))
})
