import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel } from 'node:worker_threads'

import test from 'ava'
import * as ort from 'onnxruntime-node'

import { MyriadError, Policy, STATE_DIM, buildState } from '../../src/index.js'
import { mulberry32, randomVectors } from '../helpers.js'

const softmax = (z: ArrayLike<number>) => {
  const m = Math.max(...Array.from(z))
  const e = Array.from(z, (v) => Math.exp(v - m))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / s)
}

test('decisions: greedy takes the most probable action; probabilities sum to 1', (t) => {
  const policy = Policy.create({ seed: 7 })
  t.is(policy.stateDim, 50)
  t.is(policy.actions, 5)
  const states = randomVectors(mulberry32(1), 20, STATE_DIM)
  for (let i = 0; i < 20; i++) {
    const d = policy.decide(states.subarray(i * STATE_DIM, (i + 1) * STATE_DIM))
    t.is(d.probs.length, 5)
    t.true(Math.abs(d.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5)
    t.is(d.probs[d.action], Math.max(...d.probs))
  }
})

test('each decision keeps its own probabilities, whatever comes after', (t) => {
  const policy = Policy.create({ seed: 7 })
  const states = randomVectors(mulberry32(2), 3000, STATE_DIM)
  const state = (i: number) => states.subarray(i * STATE_DIM, (i + 1) * STATE_DIM)
  const first = policy.decide(state(0))
  const kept = Array.from(first.probs)
  // Thousands more decisions, past the end of the buffer their probabilities are written to.
  const later = Array.from({ length: 2999 }, (_, i) => policy.decide(state(i + 1)))
  t.deepEqual(Array.from(first.probs), kept)
  t.deepEqual(Array.from(policy.decide(state(0)).probs), kept, 'the same state, the same probabilities')
  const again = policy.decide(state(2000))
  t.deepEqual(Array.from(later[1999].probs), Array.from(again.probs))
  t.true(later.every((d) => d.probs.length === 5 && Math.abs(d.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5))
  // Listing a decision's buffer for transfer copies it: no other decision loses its numbers.
  const before = policy.decide(state(0))
  const sent = policy.decide(state(1))
  const { port1, port2 } = new MessageChannel()
  port1.postMessage(sent.probs, [sent.probs.buffer as ArrayBuffer])
  port1.close()
  port2.close()
  t.deepEqual(Array.from(before.probs), kept)
  t.is(sent.probs.length, 5)
})

test('a batch equals single decisions', async (t) => {
  const policy = Policy.create()
  const states = randomVectors(mulberry32(2), 600, STATE_DIM)
  const batch = await policy.decideBatch(states)
  t.is(batch.actions.length, 600)
  for (const i of [0, 17, 599]) {
    const d = policy.decide(states.subarray(i * STATE_DIM, (i + 1) * STATE_DIM))
    t.is(batch.actions[i], d.action)
    t.true(Math.abs(batch.probs[i * 5 + d.action] - d.probs[d.action]) < 1e-6)
  }
})

test('the state builder follows the documented layout', (t) => {
  const { state, order } = buildState({
    queryTokens: 128,
    urgency: 0.5,
    candidates: [
      { similarity: 0.2, trust: 0.9, load: 1, capacity: 4, responseMs: 500, windowOutcomes: 10, window: 50, status: 'idle' },
      { similarity: 0.8, trust: 0.4, load: 4, capacity: 2, status: 'busy' },
    ],
    utilisation: 0.25,
    queuePressure: 3,
  })
  t.is(state.length, 50)
  t.is(order[0].similarity, 0.8, 'ranked by similarity')
  const close = (i: number, v: number) => t.true(Math.abs(state[i] - v) < 1e-6, `state[${i}] = ${state[i]}, want ${v}`)
  close(0, 0.5)
  close(1, 0.5)
  close(2, 0.8)
  close(3, 0.5)
  close(4, 0.3)
  close(5, 0.6)
  close(6, 0.4)
  close(7, 1)
  // candidate 0 (similarity 0.8): load 4 / capacity 2 = 2 -> 1 after halving; busy
  ;[0.8, 0.4, 1, 0, 0, 0, 1, 1].forEach((v, j) => close(8 + j, v))
  // candidate 1 (similarity 0.2): 500 ms -> 0.1; evidence 10 / 50
  ;[0.2, 0.9, 0.125, 0.1, 0.2, 1, 0, 1].forEach((v, j) => close(16 + j, v))
  for (let i = 24; i < 48; i++) close(i, 0)
  close(48, 0.25)
  close(49, 1)
})

test('online updates move the policy toward the rewarded action', async (t) => {
  const policy = Policy.create({ seed: 3 })
  const rand = mulberry32(4)
  const states = randomVectors(rand, 64, STATE_DIM)
  for (let step = 0; step < 60; step++) {
    const { actions } = await policy.decideBatch(states, { temperature: 1 })
    const rewards = Array.from(actions, (a) => (a === 3 ? 1 : 0))
    const stats = await policy.update({ states, actions, rewards })
    t.is(stats.transitions, 64)
  }
  const { actions } = await policy.decideBatch(states)
  const threes = actions.filter((a) => a === 3).length
  t.true(threes >= 56, `action 3 chosen for ${threes} of 64 states`)
})

test('exported ONNX runs in onnxruntime-node with the same outputs; both formats load back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-policy-'))
  const policy = Policy.create({ seed: 11 })
  const states = randomVectors(mulberry32(5), 32, STATE_DIM)
  await policy.update({ states, actions: Array.from({ length: 32 }, (_, i) => i % 5), rewards: Array.from({ length: 32 }, (_, i) => i % 2) })
  await policy.exportOnnx(join(dir, 'p.onnx'))
  await policy.saveSafetensors(join(dir, 'p.safetensors'))
  const session = await ort.InferenceSession.create(join(dir, 'p.onnx'))
  const { logits } = await session.run({ state: new ort.Tensor('float32', states, [32, STATE_DIM]) })
  const fromOnnx = await Policy.loadOnnx(join(dir, 'p.onnx'))
  const fromSt = await Policy.loadSafetensors(join(dir, 'p.safetensors'))
  for (let i = 0; i < 32; i++) {
    const s = states.subarray(i * STATE_DIM, (i + 1) * STATE_DIM)
    const ours = policy.decide(s).probs
    const theirs = softmax((logits.data as Float32Array).subarray(i * 5, (i + 1) * 5))
    ours.forEach((p, a) => t.true(Math.abs(p - theirs[a]) < 1e-5, `state ${i} action ${a}: ${p} vs ${theirs[a]}`))
    t.deepEqual(fromOnnx.decide(s).probs, ours)
    t.deepEqual(fromSt.decide(s).probs, ours)
  }
})

test('bad input gets typed errors', async (t) => {
  const policy = Policy.create()
  const code = (f: () => unknown) => {
    try {
      f()
    } catch (e) {
      return e instanceof MyriadError ? e.code : String(e)
    }
    return 'no error'
  }
  t.is(
    code(() => policy.decide(new Float32Array(49))),
    'ERR_DIMENSION',
  )
  t.is(
    code(() => policy.decide(new Float32Array(50).fill(NaN))),
    'ERR_NOT_FINITE',
  )
  t.is(
    code(() => policy.decide(new Float32Array(50), { temperature: 0 })),
    'ERR_INVALID_ARG',
  )
  t.is(
    code(() => Policy.create({ sizes: [50] })),
    'ERR_INVALID_ARG',
  )
  const e = await t.throwsAsync(policy.update({ states: new Float32Array(100), actions: [0, 9], rewards: [1, 1] }), { instanceOf: MyriadError })
  t.is(e?.code, 'ERR_INVALID_ARG')
  const bad = await t.throwsAsync(Policy.loadOnnx('/nonexistent.onnx'), { instanceOf: MyriadError })
  t.is(bad?.code, 'ERR_IO')
})
