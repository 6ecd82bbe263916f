// Streaming over SSE: chunks, early return, retries before the first chunk, idle timeouts.
import test from 'ava'

import { estimatePromptTokens } from '../../src/llm/budget.js'
import { SseDecoder } from '../../src/llm/sse.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

test('SseDecoder: events split anywhere across reads, CRLF, multi-byte characters, [DONE]', (t) => {
  const wire = Buffer.from('data: {"a":"héllo"}\r\n\r\n: comment\nevent: x\ndata: {"b":1}\n\ndata: [DONE]\n\n')
  const decoder = new SseDecoder()
  const events: string[] = []
  // One byte at a time: splits inside "é" (2 bytes), inside "data:", between \r and \n.
  for (const byte of wire) events.push(...decoder.push(Uint8Array.of(byte)))
  events.push(...decoder.end())
  t.deepEqual(events, ['{"a":"héllo"}', '{"b":1}', '[DONE]'])
})

test('stream(): chunks arrive in order and add up to the result; usage comes from the last event', async (t) => {
  const server = await serve(t, { rules: [{ then: { reply: 'one two three four five', chunkDelayMs: 5 } }] })
  const llm = client(t, [providerFor(server)])
  const stream = llm.stream(ask('count'))
  const deltas: string[] = []
  for await (const chunk of stream) deltas.push(chunk.delta)
  const result = await stream.result
  t.is(deltas.join(''), 'one two three four five')
  t.true(deltas.length >= 5)
  t.is(result.text, 'one two three four five')
  t.is(result.finishReason, 'stop')
  t.false(result.stoppedEarly)
  t.is(result.usage.completionTokens, Math.ceil('one two three four five'.length / 4))
})

test('stream() and chat() estimate prompt tokens alike when the server sends no usage', async (t) => {
  // No budget and no tokens-per-minute limit: nothing was estimated before sending.
  const server = await serve(t, { rules: [{ then: { reply: 'fine thanks', noUsage: true } }] })
  const llm = client(t, [providerFor(server)])
  const request = ask('how are you doing today, all of you?')
  const expected = estimatePromptTokens(request.messages)
  t.true(expected > 0)
  const chat = await llm.chat(request)
  const streamed = await llm.stream(request).result
  t.deepEqual(chat.usage, { promptTokens: expected, completionTokens: Math.ceil('fine thanks'.length / 4) })
  t.deepEqual(streamed.usage, chat.usage)
  t.is(llm.metrics().tokensIn, 2 * expected)
})

test('stream(): the until hook stops a slow stream early and closes the connection', async (t) => {
  const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')
  const server = await serve(t, { rules: [{ then: { reply: words, chunkDelayMs: 25 } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  const stream = llm.stream({ ...ask('talk'), until: (text) => text.includes('w3 ') })
  const result = await stream.result
  t.true(result.stoppedEarly)
  t.is(result.text, 'w0 w1 w2 w3 ')
  // 40 chunks at 25 ms would take a second; stopping at the fourth takes ~100 ms.
  t.true(performance.now() - started < 700)
  t.is(llm.metrics().successes, 1)
  await new Promise((r) => setTimeout(r, 50))
  t.is(server.stats.streamsCut, 1, 'the server saw the connection close mid-stream')
})

test('stream(): leaving the for-await loop early stops the stream', async (t) => {
  const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')
  const server = await serve(t, { rules: [{ then: { reply: words, chunkDelayMs: 20 } }] })
  const llm = client(t, [providerFor(server)])
  const stream = llm.stream(ask('talk'))
  let seen = 0
  for await (const _chunk of stream) if (++seen === 3) break
  const result = await stream.result
  t.true(result.stoppedEarly)
  t.true(result.text.split(' ').length < 10)
  await new Promise((r) => setTimeout(r, 50))
  t.is(server.stats.streamsCut, 1)
})

test('stream(): a 500 before the first chunk is retried like chat', async (t) => {
  const server = await serve(t, { rules: [{ match: 'flaky', times: 1, then: { status: 500 } }] })
  const llm = client(t, [providerFor(server)])
  const result = await llm.stream(ask('flaky')).result
  t.is(result.attempts, 2)
  t.is(result.text, 'reply to: flaky')
})

test('stream(): silence mid-stream past idleTimeoutMs fails with ERR_LLM_TIMEOUT and is not retried', async (t) => {
  const server = await serve(t, { rules: [{ then: { reply: 'slow words here', chunkDelayMs: 400 } }] })
  const llm = client(t, [providerFor(server)], { idleTimeoutMs: 150 })
  const stream = llm.stream(ask('slow'))
  const seen: string[] = []
  const iterating = (async () => {
    for await (const chunk of stream) seen.push(chunk.delta)
  })()
  iterating.catch(() => {}) // asserted below; this only keeps it from counting as unhandled meanwhile
  const error = await failure(t, stream.result)
  t.is(error.code, 'ERR_LLM_TIMEOUT')
  t.is(server.stats.requests, 1)
  t.deepEqual(seen, ['slow '])
  // The iterator rethrows the same error.
  await t.throwsAsync(iterating, { is: error })
})

test('stream(): the total timeout ends a stream that keeps trickling', async (t) => {
  const words = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ')
  const server = await serve(t, { rules: [{ then: { reply: words, chunkDelayMs: 20 } }] })
  const llm = client(t, [providerFor(server)])
  const error = await failure(t, llm.stream({ ...ask('long'), timeoutMs: 250 }).result)
  t.is(error.code, 'ERR_LLM_TIMEOUT')
})
