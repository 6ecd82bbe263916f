import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'

import { PML_VERSION, type PmlMessage, Registry } from '@myriad-agents/core'

let clock = Date.now()
const pml = (type: PmlMessage['type'], from: string, body: object, to?: string) =>
  ({ v: PML_VERSION, type, msgId: randomUUID(), from, ts: clock++, body, ...(to ? { to } : {}) }) as PmlMessage

const registry = Registry.create() // no index: the registry alone
const results = registry.processSync([
  pml('register', 'agent-7', { specialty: 'Tax accountant', capacity: 1 }),
  pml('request', 'user-1', { taskId: 't1', query: 'help with my taxes' }), // requesters need not be agents
  pml('offer', 'agent-7', { taskId: 't1' }, 'user-1'),
  pml('result', 'agent-7', { taskId: 't1', success: true, latencyMs: 900 }),
  pml('feedback', 'user-1', { taskId: 't1', success: true }, 'agent-7'),
  pml('feedback', 'user-2', { taskId: 't1', success: false }, 'agent-7'), // not the one who asked
  '{"v":1,"type":"register"', // not JSON
  { ...pml('register', 'agent-8', { specialty: 'x' }), v: 2 } as unknown as PmlMessage,
  pml('gossip' as PmlMessage['type'], 'agent-7', {}),
  pml('register', 'agent-8', { specialty: 'x'.repeat(9000) }), // texts: 8 KiB at most
  pml('heartbeat', 'ghost', { load: 1 }),
])
assert.deepEqual(
  results.map((r) => r.error?.code ?? 'ok'),
  ['ok', 'ok', 'ok', 'ok', 'ok', 'ERR_PML_FIELD', 'ERR_PML_JSON', 'ERR_PML_VERSION', 'ERR_PML_TYPE', 'ERR_PML_TOO_LARGE', 'ERR_UNKNOWN_AGENT'],
)
assert.ok(results.every((r) => r.ok || r.error?.reason)) // every rejection says why

const agent = registry.get('agent-7')
assert.equal(agent?.trust, 3 / 4) // two successes: (2 + 1) / (2 + 2)
assert.equal(agent?.responseMs, 900) // an EMA (alpha 0.2) of the latencies reported
assert.deepEqual(registry.counters(), { processed: 5, rejected: 6, agents: 1 })
