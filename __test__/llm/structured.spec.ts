// Structured output: extraction, validation, the repair round, typed errors.
import test from 'ava'
import { z } from 'zod'

import { NOT_FOUND, extractJson } from '../../src/llm/index.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

const Verdict = z.object({ agent: z.string(), score: z.number().min(0).max(1), tags: z.array(z.string()) })
const good = { agent: 'a-17', score: 0.8, tags: ['calm'] }

test('extractJson: the whole reply, a fenced block, or the first balanced value inside prose', (t) => {
  t.deepEqual(extractJson('{"a":1}'), { a: 1 })
  t.deepEqual(extractJson('  [1, 2]\n'), [1, 2])
  t.deepEqual(extractJson('Sure!\n```json\n{"a": {"b": [1]}}\n```\nAnything else?'), { a: { b: [1] } })
  t.deepEqual(extractJson('```\n{"plain": "fence"}\n```'), { plain: 'fence' })
  t.deepEqual(extractJson('The answer is {"text": "braces } and \\" quotes {"} and done.'), { text: 'braces } and " quotes {' })
  // A stray bracket before the real value is skipped.
  t.deepEqual(extractJson('see [note] then {"ok": true}'), { ok: true })
  t.is(extractJson('no json here'), NOT_FOUND)
  t.is(extractJson('{"cut": [1, 2'), NOT_FOUND)
  t.is(extractJson('42'), NOT_FOUND)
})

test('json(): a clean reply is validated and typed; the schema goes out as response_format json_schema', async (t) => {
  const server = await serve(t, { record: true, rules: [{ then: { json: good } }] })
  const llm = client(t, [providerFor(server)])
  const result = await llm.json({ ...ask('judge a-17'), schema: Verdict, schemaName: 'verdict' })
  t.deepEqual(result.data, good)
  t.false(result.repaired)
  const format = (server.received[0] as { response_format?: { type: string; json_schema: { name: string; schema: { properties: object } } } }).response_format
  t.is(format?.type, 'json_schema')
  t.is(format?.json_schema.name, 'verdict')
  t.deepEqual(Object.keys(format?.json_schema.schema.properties ?? {}), ['agent', 'score', 'tags'])
})

test('json(): fences and prose around the JSON are stripped', async (t) => {
  const server = await serve(t, { rules: [{ then: { json: good, fenced: true } }] })
  const llm = client(t, [providerFor(server)])
  const result = await llm.json({ ...ask('judge'), schema: Verdict })
  t.deepEqual(result.data, good)
  t.regex(result.text, /^Here is the result/)
})

test('json(): a broken reply gets one repair round with the error in the prompt', async (t) => {
  const server = await serve(t, {
    record: true,
    rules: [
      { match: 'judge', times: 1, then: { json: good, broken: true } },
      { match: 'could not be used', then: { json: good } },
    ],
  })
  const llm = client(t, [providerFor(server)])
  const result = await llm.json({ ...ask('judge a-17'), schema: Verdict })
  t.true(result.repaired)
  t.deepEqual(result.data, good)
  t.is(result.attempts, 2)
  t.is(server.received.length, 2)
  const repair = server.received[1].messages ?? []
  t.is(repair.length, 3)
  t.is(repair[1].role, 'assistant')
  t.is(repair[1].content, JSON.stringify(good).slice(0, -3))
  t.regex(repair[2].content ?? '', /no parseable JSON value/)
  t.regex(repair[2].content ?? '', /"score"/) // the schema is restated
  t.is(llm.metrics().repairs, 1)
  t.is(llm.metrics().requests, 1)
})

test("json(): a schema violation is repaired with zod's message in the prompt", async (t) => {
  const server = await serve(t, {
    record: true,
    rules: [
      { match: 'could not be used', then: { json: good } },
      { match: 'judge', then: { json: { ...good, score: 7 } } },
    ],
  })
  const llm = client(t, [providerFor(server)])
  const result = await llm.json({ ...ask('judge'), schema: Verdict })
  t.true(result.repaired)
  t.regex(server.received[1].messages?.[2].content ?? '', /score/)
  t.regex(server.received[1].messages?.[2].content ?? '', /<=1/)
})

test('json(): still wrong after the repair round: ERR_LLM_PARSE with the raw reply and the issues', async (t) => {
  const server = await serve(t, { rules: [{ then: { json: { agent: 5 } } }] })
  const llm = client(t, [providerFor(server)])
  const error = await failure(t, llm.json({ ...ask('judge'), schema: Verdict }))
  t.is(error.code, 'ERR_LLM_PARSE')
  t.is(error.details.raw, '{"agent":5}')
  t.regex(error.details.issues ?? '', /agent/)
  t.is(server.stats.requests, 2)
  t.is(llm.metrics().failures.parse, 1)
})

test('json(): repair false fails on the first bad reply', async (t) => {
  const server = await serve(t, { rules: [{ then: { reply: 'I cannot do that.' } }] })
  const llm = client(t, [providerFor(server)])
  const error = await failure(t, llm.json({ ...ask('judge'), schema: Verdict, repair: false }))
  t.is(error.code, 'ERR_LLM_PARSE')
  t.is(server.stats.requests, 1)
})

test('json(): a JSON Schema object works like a zod schema', async (t) => {
  const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }
  const server = await serve(t, {
    record: true,
    rules: [{ match: 'could not be used', then: { json: { n: 3 } } }, { then: { json: { n: 'three' } } }],
  })
  const llm = client(t, [providerFor(server)])
  const result = await llm.json<{ n: number }>({ ...ask('count'), schema })
  t.deepEqual(result.data, { n: 3 })
  t.true(result.repaired)
  t.deepEqual((server.received[0] as { response_format?: { json_schema: { schema: object } } }).response_format?.json_schema.schema, schema)
})

test('json(): mode json_object sends JSON mode; mode none sends no response_format', async (t) => {
  const server = await serve(t, { record: true, rules: [{ then: { json: good } }] })
  const llm = client(t, [providerFor(server)])
  await llm.json({ ...ask('a'), schema: Verdict, mode: 'json_object' })
  await llm.json({ ...ask('b'), schema: Verdict, mode: 'none' })
  const formats = server.received.map((b) => (b as { response_format?: { type: string } }).response_format?.type)
  t.deepEqual(formats, ['json_object', undefined])
})
