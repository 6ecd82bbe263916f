import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Bus, Embedder, LLM, Policy, Registry, SemanticIndex, Sink, buildState } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'

// Agents register with PML messages; the registry's index finds them by what they do.
const registry = Registry.create({ index: SemanticIndex.create({ embedder: await Embedder.load() }) })
const register = (from: string, specialty: string) => ({
  v: 1 as const,
  type: 'register' as const,
  msgId: randomUUID(),
  from,
  ts: Date.now(),
  body: { specialty },
})
await registry.process([register('tax-1', 'Tax accountant: income tax returns'), register('law-1', 'Tenancy lawyer: rental contracts')])
const question = 'Help me file my income tax return'
const hits = await registry.findBySpecialty(question, 2)
assert.equal(hits[0].id, 'tax-1')

// The routing policy picks one of the candidates (untrained here, so it may pick an empty slot).
const candidates = hits.map((a) => ({ similarity: a.score, trust: a.trust, load: a.load, capacity: a.capacity }))
const { state, order } = buildState({ candidates })
const { action } = Policy.create({ seed: 42 }).decide(state)
const agent = hits[candidates.indexOf(order[action])] ?? hits[0]

// The agent asks an LLM (the local test server here) and answers the user over the bus.
const server = await startLLMServer()
const llm = new LLM({ providers: [{ name: 'local', baseUrl: server.url, models: ['model-a'] }] })
const reply = await llm.chat({ messages: [{ role: 'user', content: question }] })
const bus = await Bus.connect({ transport: 'local', exp: 'exp-1', agents: ['user-1'] })
assert.equal(await bus.publish([{ to: 'user-1', kind: 'user-chat', from: agent.id, payload: reply.text }]), 1)

// Everything is recorded: to the Avro archive here, to Postgres with { dsn }.
const sink = await Sink.open({ dir: await mkdtemp(join(tmpdir(), 'myriad-archive-')) })
const row = { exp_id: 'exp-1', src: agent.id, dst: 'user-1', kind: 'user-chat', ts: new Date(), payload: { text: reply.text } }
assert.equal((await sink.write('messages', [row])).accepted, 1)

await Promise.all([sink.close(), bus.close(), llm.close()])
await server.close()
