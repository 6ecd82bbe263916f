// Prompt budget: token estimates and trimming, alone and through the client over HTTP.
import test from 'ava'

import { LLMError, estimateMessageTokens, estimatePromptTokens, estimateTextTokens, trimToBudget, type ChatMessage } from '../../src/llm/index.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

const say = (role: ChatMessage['role'], chars: number, tag = ''): ChatMessage => ({ role, content: tag + 'x'.repeat(chars - tag.length) })

test('estimates: characters / 4 rounded up, plus 4 per message', (t) => {
  t.is(estimateTextTokens(''), 0)
  t.is(estimateTextTokens('abcde'), 2)
  t.is(estimateMessageTokens(say('user', 40)), 14)
  t.is(estimatePromptTokens([say('system', 8), say('user', 40)]), 6 + 14)
  t.is(estimateTextTokens('x'.repeat(10), { charsPerToken: 2 }), 5)
})

test('a prompt within budget is sent as it is', (t) => {
  const messages = [say('system', 40), say('user', 40)]
  const fitted = trimToBudget(messages, 100)
  t.is(fitted.messages, messages)
  t.is(fitted.trimmed, 0)
})

test('the oldest turns go first; system messages and the last message stay', (t) => {
  const messages = [
    say('system', 40, 'sys'),
    say('user', 400, 'old-q'),
    say('assistant', 400, 'old-a'),
    say('user', 400, 'mid-q'),
    say('assistant', 40, 'mid-a'),
    say('user', 40, 'now'),
  ]
  // 14 + 3 x 104 + 14 + 14 = 354 tokens: dropping old-q and old-a leaves 146 <= 160.
  const fitted = trimToBudget(messages, 160)
  t.deepEqual(
    fitted.messages.map((m) => m.content?.slice(0, 5)),
    ['sysxx', 'mid-q', 'mid-a', 'nowxx'],
  )
  t.is(fitted.trimmed, 2)
  t.true(fitted.tokens <= 160)
  t.is(fitted.tokens, estimatePromptTokens(fitted.messages))
})

test('a tool call leaves together with the tool replies that answer it', (t) => {
  const call: ChatMessage = {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }],
  }
  const reply: ChatMessage = { role: 'tool', content: 'y'.repeat(200), tool_call_id: 'c1' }
  const messages = [say('system', 20), call, reply, say('assistant', 40), say('user', 40)]
  const fitted = trimToBudget(messages, 40)
  t.false(fitted.messages.some((m) => m.role === 'tool' || m.tool_calls))
  t.is(fitted.trimmed, 2)
})

test('when the kept messages alone are too long, the middle of the longest is cut out', (t) => {
  const question = `BEGIN ${'q'.repeat(2000)} END`
  const fitted = trimToBudget([say('system', 40), { role: 'user', content: question }], 200)
  const text = fitted.messages[1].content ?? ''
  t.true(fitted.tokens <= 200)
  t.true(text.startsWith('BEGIN '))
  t.true(text.endsWith(' END'))
  t.true(text.includes('[...]'))
  t.is(fitted.trimmed, 1)
})

test('a budget below what cannot be cut: ERR_LLM_BUDGET', (t) => {
  const error = t.throws(() => trimToBudget([say('system', 40), say('user', 8)], 5))
  t.true(error instanceof LLMError)
  t.is((error as LLMError).code, 'ERR_LLM_BUDGET')
})

test('through the client: the server receives the trimmed prompt; metrics count the trimming', async (t) => {
  const server = await serve(t, { record: true })
  const llm = client(t, [providerFor(server)], { budget: { maxPromptTokens: 100 } })
  // 14 + 104 + 104 + 14 = 236 tokens: both long turns must go to fit 100.
  const history = [say('system', 40, 'sys'), say('user', 400, 'old-q'), say('assistant', 400, 'old-a'), say('user', 40, 'now')]
  const reply = await llm.chat({ messages: history })
  t.is(reply.trimmed, 2)
  t.deepEqual(
    server.received[0].messages?.map((m) => m.content?.slice(0, 3)),
    ['sys', 'now'],
  )
  t.is(llm.metrics().trimmedMessages, 2)
  // A per-call budget overrides the configured one; false turns trimming off.
  await llm.chat({ messages: history, maxPromptTokens: false })
  t.is(server.received[1].messages?.length, 4)
})

test('through the client: an impossible budget rejects before sending', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server)])
  // Every message costs 4 tokens before its text: 3 cannot be met by any cut.
  const error = await failure(t, llm.chat({ ...ask('x'.repeat(400)), maxPromptTokens: 3 }))
  t.is(error.code, 'ERR_LLM_BUDGET')
  t.is(server.stats.requests, 0)
  t.is(llm.metrics().failures.budget, 1)
})
