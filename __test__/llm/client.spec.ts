// The client's surface: chat, tools, embeddings, providers and per-call overrides, configuration
// errors, close — over real HTTP against the test server (src/testing/llm-server.ts).
import test from 'ava'

import { LLM, LLMError } from '../../src/llm/index.js'
import { MyriadError } from '../../src/errors/index.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

test('chat: the deterministic reply, usage, provider, model and timings', async (t) => {
  const server = await serve(t, { replies: { 'hello there': 'General Kenobi' } })
  const llm = client(t, [providerFor(server)])
  const reply = await llm.chat(ask('hello there'))
  t.is(reply.text, 'General Kenobi')
  t.deepEqual(reply.message, { role: 'assistant', content: 'General Kenobi' })
  t.is(reply.finishReason, 'stop')
  t.deepEqual(reply.usage, { promptTokens: 4 + 3, completionTokens: 4 })
  t.is(reply.provider, 'local')
  t.is(reply.model, 'model-a')
  t.is(reply.attempts, 1)
  t.is(reply.degradation, 'normal')
  t.true(reply.latencyMs > 0)
})

test('chat: request fields reach the server in OpenAI form (tools, tool_choice, JSON mode, extras)', async (t) => {
  const server = await serve(t, { record: true, rules: [{ then: { toolCall: { name: 'lookup', arguments: '{"q":"weather"}' } } }] })
  const llm = client(t, [providerFor(server)])
  const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }]
  const reply = await llm.chat({
    ...ask('weather?'),
    tools,
    toolChoice: 'auto',
    temperature: 0.3,
    maxTokens: 50,
    responseFormat: { type: 'json_object' },
    extra: { seed: 7 },
  })
  t.deepEqual(reply.toolCalls, [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"weather"}' } }])
  t.is(reply.finishReason, 'tool_calls')
  t.is(reply.message.content, null)
  const sent = server.received[0] as Record<string, unknown>
  t.deepEqual(sent.tools, tools)
  t.is(sent.tool_choice, 'auto')
  t.is(sent.temperature, 0.3)
  t.is(sent.max_tokens, 50)
  t.deepEqual(sent.response_format, { type: 'json_object' })
  t.is(sent.seed, 7)
  t.is(sent.stream, undefined)
})

test('the API key is read from the environment variable named in the provider', async (t) => {
  const server = await serve(t)
  process.env.MYRIAD_TEST_LLM_KEY = 'sk-test-123'
  const llm = client(t, [providerFor(server, 'local', { apiKeyEnv: 'MYRIAD_TEST_LLM_KEY' })])
  await llm.chat(ask('auth'))
  t.is(server.stats.authorization, 'Bearer sk-test-123')
})

test('per-call provider and model overrides', async (t) => {
  const a = await serve(t)
  const b = await serve(t)
  const llm = client(t, [providerFor(a, 'a'), providerFor(b, 'b', { models: ['b-large', 'b-small'] })])
  const reply = await llm.chat({ ...ask('to b'), provider: 'b', model: 'b-small' })
  t.is(reply.provider, 'b')
  t.is(reply.model, 'b-small')
  t.deepEqual(b.stats.models, { 'b-small': 1 })
  t.is(a.stats.requests, 0)
  const error = await failure(t, llm.chat({ ...ask('x'), provider: 'nobody' }))
  t.is(error.code, 'ERR_LLM_REQUEST')
})

test('embed: vectors in input order from /embeddings', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server)])
  const one = await llm.embed({ input: 'abc' })
  const many = await llm.embed({ input: ['abc', 'xyz', ''] })
  t.is(one.vectors.length, 1)
  t.is(many.vectors.length, 3)
  t.deepEqual(many.vectors[0], one.vectors[0])
  t.notDeepEqual(many.vectors[1], many.vectors[0])
  t.deepEqual(many.vectors[2], new Array(8).fill(0))
})

test('close: calls in flight finish, later calls reject with ERR_LLM_CLOSED', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 100 } })
  const llm = new LLM({ providers: [providerFor(server)] })
  const inFlight = llm.chat(ask('last one'))
  await new Promise((r) => setTimeout(r, 20))
  const closing = llm.close()
  const error = await failure(t, llm.chat(ask('too late')))
  t.is(error.code, 'ERR_LLM_CLOSED')
  t.is((await inFlight).text, 'reply to: last one')
  await closing
})

test('close waits for calls still queued behind the concurrency limit, and they are answered', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 50 } })
  const llm = new LLM({ providers: [providerFor(server, 'local', { limits: { concurrency: 2, adaptive: false } })] })
  const calls = Array.from({ length: 6 }, (_, i) => llm.chat(ask(`q${i}`)))
  await llm.close()
  const replies = await Promise.all(calls)
  t.deepEqual(
    replies.map((r) => r.text),
    Array.from({ length: 6 }, (_, i) => `reply to: q${i}`),
  )
  t.is(server.stats.requests, 6)
})

test('configuration mistakes throw ERR_LLM_CONFIG from the constructor', (t) => {
  const config = (f: () => unknown) => {
    const error = t.throws(f)
    t.true(error instanceof MyriadError && !(error instanceof LLMError))
    t.is((error as MyriadError).code, 'ERR_LLM_CONFIG')
  }
  config(() => new LLM({ providers: [] }))
  config(() => new LLM({ providers: [{ name: 'x', baseUrl: 'not a url', models: ['m'] }] }))
  config(() => new LLM({ providers: [{ name: 'x', baseUrl: 'http://127.0.0.1:1/v1', models: [] }] }))
  config(() => new LLM({ providers: [{ name: 'x', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'], apiKeyEnv: 'MYRIAD_SURELY_UNSET_KEY' }] }))
  const twice = { name: 'x', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'] }
  config(() => new LLM({ providers: [twice, twice] }))
  config(() => new LLM({ providers: [twice], retries: -1 }))
  config(() => new LLM({ providers: [twice], concurrency: 0 }))
})
