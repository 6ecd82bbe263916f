import assert from 'node:assert/strict'

import { LLM } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

// A local OpenAI-compatible server stands in for the providers (it answers `reply to: <message>`).
const server = await startLLMServer({
  rules: [
    { match: 'post', then: { json: { text: 'Calm seas today.', mood: 'calm' }, fenced: true } },
    { match: 'count', then: { reply: 'one two three four five six', chunkDelayMs: 20 } },
  ],
})
const llm = new LLM({
  providers: [{ name: 'local', baseUrl: server.url, models: ['model-a', 'model-a-mini'], fallbackModel: 'model-a-mini' }],
  concurrency: 1024, // calls in flight across providers (each provider has its own limit too)
  budget: { maxPromptTokens: 6_000 }, // trim long histories before sending
})
const ask = (content: string) => [{ role: 'user' as const, content }]

const reply = await llm.chat({ messages: ask('Agent 42: hello'), timeoutMs: 20_000 })
assert.equal(reply.text, 'reply to: Agent 42: hello')
assert.equal(reply.attempts, 1) // also .usage, .latencyMs, .degradation

const Post = z.object({ text: z.string().max(280), mood: z.enum(['calm', 'angry']) })
const { data } = await llm.json({ messages: ask('Agent 42: write one short post.'), schema: Post })
assert.equal(data.mood, 'calm') // found inside a Markdown fence, validated, typed

const stream = llm.stream({ messages: ask('count'), until: (text) => text.includes('three') })
for await (const chunk of stream) process.stdout.write(chunk.delta)
assert.equal((await stream.result).stoppedEarly, true) // the connection closed after "three"

assert.equal(llm.metrics().successes, 3)
assert.equal(llm.degradation().step, 'normal')
await llm.close() // later calls reject with ERR_LLM_CLOSED
await server.close()
