import assert from 'node:assert/strict'

import { LLM } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'

// An OpenAI-compatible server on a free loopback port, with seeded latency and scripted faults.
const server = await startLLMServer({
  latency: { medianMs: 20, sigma: 0.5 }, // log-normal; or { fixedMs } or { uniformMs: [lo, hi] }
  seed: 42,
  record: true, // keep the parsed request bodies in server.received
  rules: [
    { match: 'flaky', times: 2, then: { status: 503 } }, // fail twice, then answer
    { match: 'slow down', times: 1, then: { status: 429, retryAfter: '0' } },
  ],
})
server.addRule({ match: /weather/, then: { toolCall: { name: 'forecast', arguments: '{"city":"Oslo"}' } } })

const llm = new LLM({ providers: [{ name: 'local', baseUrl: server.url, models: ['model-a'] }], backoff: { baseMs: 5 } })
const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] })

const flaky = await llm.chat(ask('flaky'))
assert.equal(flaky.attempts, 3) // two 503s retried
assert.equal(flaky.text, 'reply to: flaky')
assert.equal((await llm.chat(ask('slow down'))).attempts, 2)
assert.equal((await llm.chat(ask('weather in Oslo?'))).toolCalls[0].function.name, 'forecast')

assert.equal(server.stats.requests, 6)
assert.equal(server.stats.byStatus[503], 2)
assert.equal(server.stats.byStatus[429], 1)
assert.equal(server.received[0].model, 'model-a')
await llm.close()
await server.close()
