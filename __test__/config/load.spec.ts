// The experiment file: precedence (defaults < file < MYRIAD_* < flags) with the source of each
// value, errors with line and column, "did you mean", secrets by reference only and redacted,
// and the JSON Schema that editors use.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { ExperimentConfigSchema, configJsonSchema, experimentOptions, loadConfig, parseOverride, redactSecrets } from '../../src/config/index.js'
import { ExperimentOptionsSchema } from '../../src/runtime/index.js'

const BASE = `experiment:
  name: demo
  seed: 1
agents:
  module: ./agents.ts
  population:
    - agent: walker
      count: 3
`

function fileWith(text: string, name = 'experiment.yaml'): { path: string; dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-config-'))
  writeFileSync(join(dir, name), text)
  return { path: join(dir, name), dir, done: () => rmSync(dir, { recursive: true, force: true }) }
}

const codeAndMessage = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message }
  }
  throw new Error('expected an error')
}

test('defaults < file < environment < flags, and each value says where it came from', (t) => {
  const f = fileWith(`${BASE}clock:\n  tickMs: 1000\n`)
  t.teardown(f.done)
  const loaded = loadConfig(f.path, {
    env: { MYRIAD_SEED: '5', MYRIAD_TICKS: '7' },
    overrides: [{ path: ['experiment', 'ticks'], value: 9, source: '--ticks' }, parseOverride('concurrency.steps=64')],
  })
  const c = loaded.config
  t.is(c.experiment.name, 'demo')
  t.is(c.experiment.seed, 5, 'the environment beats the file')
  t.is(c.experiment.ticks, 9, 'a flag beats the environment')
  t.is(c.concurrency.steps, 64)
  t.is(c.clock.tickMs, 1000)
  t.is(c.clock.mode, 'lockstep', 'the default')
  t.is(loaded.sourceOf(['experiment', 'name']), 'file')
  t.is(loaded.sourceOf(['experiment', 'seed']), 'env MYRIAD_SEED')
  t.is(loaded.sourceOf(['experiment', 'ticks']), '--ticks')
  t.is(loaded.sourceOf(['concurrency', 'steps']), '--set concurrency.steps=64')
  t.is(loaded.sourceOf(['clock', 'mode']), 'default')
  const shown = loaded.show()
  t.regex(shown, /seed: 5 # env MYRIAD_SEED/)
  t.regex(shown, /ticks: 9 # --ticks/)
  t.regex(shown, /mode: lockstep # default/)
})

test('the file sections are the Experiment options: the same schema objects, so they cannot drift', (t) => {
  const file = ExperimentConfigSchema.shape
  const options = ExperimentOptionsSchema.shape
  for (const key of ['bus', 'sink', 'clock', 'concurrency', 'matching'] as const) t.is(file[key], options[key], key)
  for (const key of ['name', 'seed', 'groups', 'stepTimeoutMs', 'maxConsecutiveFailures', 'deliveryTimeoutMs'] as const) {
    t.is(file.experiment.shape[key], options[key], `experiment.${key}`)
  }
})

test('an unknown key is an error with its line, column and the key it most likely meant', (t) => {
  const f = fileWith(BASE.replace('  seed: 1', '  seed: 1\n  tiks: 3').concat('concurency:\n  steps: 2\n'))
  t.teardown(f.done)
  const e = codeAndMessage(() => loadConfig(f.path, { env: {} }))
  t.is(e.code, 'ERR_CONFIG')
  t.regex(e.message, /experiment\.yaml:4:3: experiment\.tiks: unknown key 'tiks': did you mean 'ticks'\?/)
  t.regex(e.message, /experiment\.yaml:10:1: concurency: unknown key 'concurency': did you mean 'concurrency'\?/)
})

test('a wrong type names the path, what was expected and what was there', (t) => {
  const f = fileWith(BASE.replace('count: 3', 'count: lots'))
  t.teardown(f.done)
  const e = codeAndMessage(() => loadConfig(f.path, { env: {} }))
  t.is(e.code, 'ERR_CONFIG')
  t.regex(e.message, /experiment\.yaml:8:7: agents\.population\.0\.count: expected number, got string "lots"/)
  const fromEnv = fileWith(BASE)
  t.teardown(fromEnv.done)
  const e2 = codeAndMessage(() => loadConfig(fromEnv.path, { env: { MYRIAD_TICKS: 'soon' } }))
  t.regex(e2.message, /env MYRIAD_TICKS: experiment\.ticks: expected number, got string "soon"/)
})

test('broken YAML and broken JSON are errors with their line and column', (t) => {
  const yaml = fileWith('experiment:\n  name: x\n  ticks: [1\n')
  const json = fileWith('{ "experiment": { "name": "x", }\n', 'experiment.json')
  t.teardown(() => {
    yaml.done()
    json.done()
  })
  const e = codeAndMessage(() => loadConfig(yaml.path, { env: {} }))
  t.is(e.code, 'ERR_CONFIG')
  t.regex(e.message, /experiment\.yaml:\d+:\d+: invalid YAML: /)
  const j = codeAndMessage(() => loadConfig(json.path, { env: {} }))
  t.regex(j.message, /experiment\.json:\d+:\d+: invalid JSON\/YAML: /)
  t.is(codeAndMessage(() => loadConfig(join(yaml.dir, 'missing.yaml'))).code, 'ERR_CONFIG')
})

test('a JSON file is read as well, with the same checks', (t) => {
  const f = fileWith(
    JSON.stringify({ experiment: { name: 'j', ticks: 2 }, agents: { module: './a.ts', population: [{ agent: 'x', count: 1 }] } }),
    'experiment.json',
  )
  t.teardown(f.done)
  const loaded = loadConfig(f.path, { env: {} })
  t.is(loaded.config.experiment.ticks, 2)
  t.is(loaded.config.experiment.seed, 0)
})

test('secrets are refused in the file, taken from the environment, and redacted when shown', (t) => {
  const literal = fileWith(`${BASE}llm:\n  providers:\n    - name: p\n      baseUrl: http://127.0.0.1:1/v1\n      models: [m]\n      apiKey: sk-live-123\n`)
  const inUrl = fileWith(`${BASE}sink:\n  postgres: postgres://me:hunter2@127.0.0.1/test\n`)
  const byReference = fileWith(
    `${BASE}llm:\n  providers:\n    - name: p\n      baseUrl: http://127.0.0.1:1/v1\n      models: [m]\n      apiKey: \${MY_KEY}\nsink:\n  postgres: postgres://me:\${PGPW}@127.0.0.1/test\n`,
  )
  t.teardown(() => [literal, inUrl, byReference].forEach((f) => f.done()))
  const e = codeAndMessage(() => loadConfig(literal.path, { env: {} }))
  t.is(e.code, 'ERR_CONFIG')
  t.regex(e.message, /:14:7: llm\.providers\.0\.apiKey: a secret is not written in the file/)
  t.false(e.message.includes('sk-live-123'), 'the error does not repeat the secret')
  const u = codeAndMessage(() => loadConfig(inUrl.path, { env: {} }))
  t.regex(u.message, /sink\.postgres: the URL has a password/)
  t.false(u.message.includes('hunter2'))

  const missing = codeAndMessage(() => loadConfig(byReference.path, { env: {} }))
  t.regex(missing.message, /\$\{MY_KEY\} is not set in the environment/)
  const loaded = loadConfig(byReference.path, { env: { MY_KEY: 'sk-from-env', PGPW: 's3cret' } })
  t.is(loaded.config.llm?.providers?.[0].apiKey, 'sk-from-env')
  t.deepEqual(loaded.config.sink, { postgres: 'postgres://me:s3cret@127.0.0.1/test' })
  const shown = loaded.show()
  t.false(shown.includes('sk-from-env'))
  t.false(shown.includes('s3cret'))
  t.regex(shown, /apiKey: "\*\*\*"/)
  t.regex(shown, /postgres: postgres:\/\/me:\*\*\*@127\.0\.0\.1\/test/)
  t.deepEqual(redactSecrets({ a: { password: 'x', url: 'mqtt://u:p@h:1883' } }), { a: { password: '***', url: 'mqtt://u:***@h:1883' } })
})

test('MYRIAD_LLM_URL makes a provider when the file has none; a key alone makes none', (t) => {
  const f = fileWith(BASE)
  t.teardown(f.done)
  const loaded = loadConfig(f.path, { env: { MYRIAD_LLM_URL: 'http://127.0.0.1:8089/v1', MYRIAD_LLM_MODEL: 'smol', MYRIAD_LLM_KEY: 'k' } })
  const p = loaded.config.llm?.providers?.[0]
  t.like(p, { name: 'env', baseUrl: 'http://127.0.0.1:8089/v1', models: ['smol'], apiKey: 'k' })
  t.is(loaded.sourceOf(['llm', 'providers', 0, 'models']), 'env MYRIAD_LLM_MODEL')
  t.is(loadConfig(f.path, { env: { MYRIAD_LLM_KEY: 'k' } }).config.llm, undefined)
  t.deepEqual(loadConfig(f.path, { env: { MYRIAD_DSN: 'postgres://127.0.0.1/test' } }).config.sink, { postgres: 'postgres://127.0.0.1/test' })
})

test('experimentOptions loads the agents module, finds its types by name and its profiles by export or file', async (t) => {
  const f = fileWith(
    `${BASE.replace('count: 3', 'count: 3\n      profiles: ./walkers.jsonl')}    - agent: sitter\n      count: 2\n      profiles: sitters\nllm:\n  providers:\n    - name: p\n      baseUrl: http://127.0.0.1:1/v1\n      models: [m]\n      apiKeyFile: ./key.txt\n  agentBudget:\n    callsPerTick: 2\nsink:\n  archive: ./out\n`,
  )
  t.teardown(f.done)
  const core = join(import.meta.dirname, '..', '..', 'src', 'index.js')
  writeFileSync(
    join(f.dir, 'agents.ts'),
    `import { defineAgent, z } from ${JSON.stringify(core)}
export const walker = defineAgent({ name: 'walker', profile: z.object({ speed: z.number() }), state: {} })
export const sitter = defineAgent({ name: 'sitter', profile: z.object({ chair: z.string() }), state: {} })
export const sitters = (i: number) => ({ chair: 'c' + i })
`,
  )
  writeFileSync(join(f.dir, 'walkers.jsonl'), '{"speed":1}\n{"speed":2}\n\n{"speed":3}\n')
  writeFileSync(join(f.dir, 'key.txt'), 'sk-file\n')
  const { options, ticks } = await experimentOptions(loadConfig(f.path, { env: {} }))
  t.is(ticks, 10)
  t.deepEqual(
    options.population.map((e) => [e.agent.name, e.count]),
    [
      ['walker', 3],
      ['sitter', 2],
    ],
  )
  const walked: unknown[] = []
  for await (const p of options.population[0].profiles as AsyncIterable<unknown>) walked.push(p)
  t.deepEqual(walked, [{ speed: 1 }, { speed: 2 }, { speed: 3 }])
  t.deepEqual((options.population[1].profiles as (i: number) => unknown)(4), { chair: 'c4' })
  const llm = options.llm as { providers: { apiKey?: string; apiKeyFile?: string }[] }
  t.is(llm.providers[0].apiKey, 'sk-file')
  t.false('apiKeyFile' in llm.providers[0])
  t.deepEqual(options.llmBudget, { callsPerTick: 2 })
  t.deepEqual(options.sink, { archive: join(f.dir, 'out') }, 'relative to the file')

  writeFileSync(f.path, BASE.replace('walker', 'runner'))
  const e = await t.throwsAsync(experimentOptions(loadConfig(f.path, { env: {} })))
  t.is((e as { code?: string }).code, 'ERR_AGENTS_MODULE')
  t.regex(e?.message ?? '', /exports no agent type 'runner' \(it has: sitter, walker\)/)
})

test('the JSON Schema describes every section, and a file written to it is accepted', (t) => {
  const schema = configJsonSchema() as { properties: Record<string, { description?: string }>; required?: string[]; additionalProperties?: boolean }
  for (const key of ['experiment', 'agents', 'llm', 'testServer', 'bus', 'sink', 'clock', 'concurrency', 'matching']) t.truthy(schema.properties[key], key)
  t.deepEqual(schema.required?.sort(), ['agents', 'experiment'])
  t.is(schema.additionalProperties, false)
  t.truthy(schema.properties.clock.description ?? (schema.properties.clock as { properties?: unknown }).properties)
})
