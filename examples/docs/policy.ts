import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Policy, STATE_DIM, buildState } from '@myriad-agents/core'

const policy = Policy.create({ seed: 42 }) // untrained: deterministic He-initialised weights

// What the router knows about a request and its candidates (index hits + registry records).
const { state, order } = buildState({
  queryTokens: 12,
  urgency: 0.3,
  utilisation: 0.6,
  candidates: [
    { similarity: 0.41, trust: 0.9, load: 0, capacity: 4, responseMs: 800, windowOutcomes: 40, window: 50, status: 'idle' },
    { similarity: 0.52, trust: 0.5, load: 3, capacity: 4, status: 'busy' },
  ],
})
assert.equal(state.length, STATE_DIM) // 50 features
assert.equal(order[0].similarity, 0.52) // best similarity first: `order[action]` is the choice

const { action, probs } = policy.decide(state) // greedy; { temperature: 1 } samples
assert.equal(probs[action], Math.max(...probs))

// Learning online: decide for a batch off the JS thread, reward the outcomes, one REINFORCE step.
const states = new Float32Array(64 * STATE_DIM)
for (let i = 0; i < 64; i++) states.set(state, i * STATE_DIM)
const { actions } = await policy.decideBatch(states, { temperature: 1 })
const rewards = Array.from(actions, (a) => (a === 1 ? 1 : 0)) // say candidate 1 delivered
const step = await policy.update({ states, actions, rewards }) // Adam, entropy bonus
assert.equal(step.transitions, 64)

const file = join(await mkdtemp(join(tmpdir(), 'myriad-policy-')), 'policy.onnx')
await policy.exportOnnx(file) // input `state` [n, 50], output `logits` [n, 5]
const again = await Policy.loadOnnx(file) // or saveSafetensors / loadSafetensors
assert.equal(again.decide(state).action, policy.decide(state).action)
