import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'

import { Embedder, type PmlMessage, Registry, SemanticIndex } from '@myriad-agents/core'

const index = SemanticIndex.create({ embedder: await Embedder.load() })
const registry = Registry.create({ window: 50, index }) // the index makes specialties searchable

const register: PmlMessage = {
  v: 1,
  type: 'register',
  msgId: randomUUID(), // unique per message: a replay changes nothing
  from: 'agent-7',
  ts: Date.now(),
  body: { specialty: 'Tax accountant: income tax returns and deductions', capacity: 4 },
}
const results = await registry.process([
  register,
  { v: 1, type: 'register', msgId: randomUUID(), from: 'agent-9', ts: Date.now(), body: { specialty: 'Tenancy lawyer' } },
  `{"v":1,"type":"heartbeat","msgId":"${randomUUID()}","from":"agent-7","ts":${Date.now()},"body":{"load":1}}`,
  register, // replayed: applied once
])
assert.deepEqual(
  results.map((r) => [r.type, r.ok, r.duplicate]),
  [
    ['register', true, false],
    ['register', true, false],
    ['heartbeat', true, false],
    ['register', true, true],
  ],
)

const agent = registry.get('agent-7')
assert.equal(agent?.trust, 0.5) // nobody has judged it yet: (0 + 1) / (0 + 2)
assert.equal(agent?.status, 'idle') // load 1 < capacity 4
assert.deepEqual(registry.byStatus('idle').sort(), ['agent-7', 'agent-9'])

registry.handle({ v: 1, type: 'result', msgId: randomUUID(), from: 'agent-7', ts: Date.now(), body: { taskId: 't1', success: true, latencyMs: 120 } }) // one message, on this thread
assert.equal(registry.get('agent-7')?.trust, 2 / 3) // (1 + 1) / (1 + 2)

const [top] = await registry.findBySpecialty('help with my taxes', 1) // agents + score, best first
assert.equal(top.id, 'agent-7')
