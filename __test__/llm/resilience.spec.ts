// Circuit breakers, failover and the degradation ladder, over real HTTP against the test server (src/testing/llm-server.ts).
import test from 'ava'

import { ask, client, failure, providerFor, serve } from './helpers.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const breaker = { window: 10, minRequests: 4, errorRate: 0.5, cooldownMs: 200, halfOpenProbes: 2 }

test('the breaker opens on the error rate and calls fail over to the next provider', async (t) => {
  const primary = await serve(t, { rules: [{ then: { status: 500 } }] })
  const backup = await serve(t)
  const llm = client(t, [providerFor(primary, 'primary'), providerFor(backup, 'backup', { models: ['backup-model'] })], { retries: 0, breaker })
  for (let i = 0; i < 4; i++) t.is((await failure(t, llm.chat(ask(`call ${i}`)))).code, 'ERR_LLM_SERVER')
  t.is(llm.metrics().providers.primary.breaker, 'open')
  const reply = await llm.chat({ ...ask('after'), model: 'model-a' })
  t.is(reply.provider, 'backup')
  // model-a is not served by the backup: its default model is used.
  t.is(reply.model, 'backup-model')
  t.is(primary.stats.requests, 4)
  t.is(backup.stats.requests, 1)
  t.is(llm.metrics().failovers, 1)
  t.is(llm.metrics().providers.primary.breakerOpens, 1)
})

test('a breaker opening during the retries of one call sends the next attempt to the next provider', async (t) => {
  const primary = await serve(t, { rules: [{ then: { status: 503 } }] })
  const backup = await serve(t)
  const llm = client(t, [providerFor(primary, 'primary'), providerFor(backup, 'backup')], { breaker: { ...breaker, minRequests: 2 } })
  const reply = await llm.chat(ask('keep trying'))
  t.is(reply.provider, 'backup')
  t.is(reply.attempts, 3)
  t.is(primary.stats.requests, 2)
})

test('failover: false keeps the call on its provider: ERR_LLM_CIRCUIT_OPEN', async (t) => {
  const primary = await serve(t, { rules: [{ then: { status: 500 } }] })
  const backup = await serve(t)
  const llm = client(t, [providerFor(primary, 'primary'), providerFor(backup, 'backup')], { retries: 0, breaker })
  for (let i = 0; i < 4; i++) await failure(t, llm.chat(ask('x')))
  const error = await failure(t, llm.chat({ ...ask('pinned'), provider: 'primary', failover: false }))
  t.is(error.code, 'ERR_LLM_CIRCUIT_OPEN')
  t.is(backup.stats.requests, 0)
  t.is(llm.metrics().failures.circuit_open, 1)
})

test('after the cooldown, half-open probes that succeed close the breaker again', async (t) => {
  const primary = await serve(t, { rules: [{ times: 4, then: { status: 500 } }] })
  const backup = await serve(t)
  const llm = client(t, [providerFor(primary, 'primary'), providerFor(backup, 'backup')], { retries: 0, breaker })
  for (let i = 0; i < 4; i++) await failure(t, llm.chat(ask('x')))
  t.is((await llm.chat(ask('during cooldown'))).provider, 'backup')
  await sleep(250)
  t.is((await llm.chat(ask('probe 1'))).provider, 'primary')
  t.is(llm.metrics().providers.primary.breaker, 'half-open')
  t.is((await llm.chat(ask('probe 2'))).provider, 'primary')
  t.is(llm.metrics().providers.primary.breaker, 'closed')
})

test('a failed probe opens the breaker again for another cooldown', async (t) => {
  const primary = await serve(t, { rules: [{ then: { status: 500 } }] })
  const backup = await serve(t)
  const llm = client(t, [providerFor(primary, 'primary'), providerFor(backup, 'backup')], { retries: 0, breaker })
  for (let i = 0; i < 4; i++) await failure(t, llm.chat(ask('x')))
  await sleep(250)
  await failure(t, llm.chat(ask('probe')))
  t.is(llm.metrics().providers.primary.breaker, 'open')
  t.is(llm.metrics().providers.primary.breakerOpens, 2)
  t.is((await llm.chat(ask('next'))).provider, 'backup')
})

test('the breaker opens on p99 latency even when every call succeeds', async (t) => {
  const slow = await serve(t, { latency: { fixedMs: 120 } })
  const fast = await serve(t)
  const llm = client(t, [providerFor(slow, 'slow'), providerFor(fast, 'fast')], { breaker: { ...breaker, p99Ms: 80 } })
  for (let i = 0; i < 4; i++) t.is((await llm.chat(ask(`slow ${i}`))).provider, 'slow')
  t.is(llm.metrics().providers.slow.breaker, 'open')
  t.is((await llm.chat(ask('now'))).provider, 'fast')
  t.is(llm.metrics().failures.server, 0)
})

test('ladder: a failure rate past fallbackModelAt switches calls to the cheaper model', async (t) => {
  const server = await serve(t, { record: true, rules: [{ match: 'fail', then: { status: 500 } }] })
  const llm = client(t, [providerFor(server, 'local', { fallbackModel: 'model-a-mini' })], {
    retries: 0,
    breaker: { errorRate: 2 }, // never opens: this test is about the ladder
    ladder: { minAttempts: 10, fallbackModelAt: 0.2, skipNonCriticalAt: 0.6 },
  })
  for (let i = 0; i < 7; i++) await llm.chat(ask(`ok ${i}`))
  t.is(llm.degradation().step, 'normal')
  for (let i = 0; i < 3; i++) await failure(t, llm.chat(ask(`fail ${i}`)))
  const d = llm.degradation()
  t.is(d.step, 'fallback-model')
  t.is(d.level, 1)
  t.is(d.forced, false)
  t.regex(d.reason, /30% of 10/)
  const reply = await llm.chat({ ...ask('next'), model: 'model-a' })
  t.is(reply.model, 'model-a-mini')
  t.is(reply.degradation, 'fallback-model')
  t.is(server.received.at(-1)?.model, 'model-a-mini')
})

test('ladder: past skipNonCriticalAt, non-critical calls are skipped and critical ones still go', async (t) => {
  const server = await serve(t, { rules: [{ match: 'fail', then: { status: 500 } }] })
  const llm = client(t, [providerFor(server)], { retries: 0, breaker: { errorRate: 2 }, ladder: { minAttempts: 4, skipNonCriticalAt: 0.5 } })
  for (let i = 0; i < 4; i++) await failure(t, llm.chat(ask(`fail ${i}`)))
  t.is(llm.degradation().step, 'skip-non-critical')
  const sent = server.stats.requests
  const skipped = await failure(t, llm.chat({ ...ask('chit-chat'), critical: false }))
  t.is(skipped.code, 'ERR_LLM_SKIPPED')
  t.is(server.stats.requests, sent)
  t.is((await llm.chat(ask('important'))).text, 'reply to: important')
  t.is(llm.metrics().failures.skipped, 1)
})

test('ladder: the failure rate is over a sliding window, so the ladder steps back down', async (t) => {
  const server = await serve(t, { rules: [{ match: 'fail', then: { status: 500 } }] })
  const llm = client(t, [providerFor(server)], { retries: 0, breaker: { errorRate: 2 }, ladder: { windowMs: 300, minAttempts: 2 } })
  for (let i = 0; i < 3; i++) await failure(t, llm.chat(ask('fail')))
  t.is(llm.degradation().step, 'skip-non-critical')
  await sleep(400)
  t.is(llm.degradation().step, 'normal')
})

test('ladder: with every circuit open, calls are recorded instead of sent (record-only)', async (t) => {
  const server = await serve(t, { rules: [{ then: { status: 500 } }] })
  const llm = client(t, [providerFor(server)], { retries: 0, breaker: { ...breaker, cooldownMs: 60_000 } })
  for (let i = 0; i < 4; i++) await failure(t, llm.chat(ask('x')))
  t.is(llm.degradation().step, 'record-only')
  const request = { ...ask('remember me'), temperature: 0.2 }
  const error = await failure(t, llm.chat(request))
  t.is(error.code, 'ERR_LLM_SKIPPED')
  t.true(error.details.recorded)
  t.is(server.stats.requests, 4)
  const kept = llm.takeRecorded()
  t.is(kept.length, 1)
  t.is(kept[0].kind, 'chat')
  t.is(kept[0].request, request)
  t.deepEqual(llm.takeRecorded(), [])
  t.is(llm.metrics().recorded, 1)
})

test('degrade() holds the ladder at a step until released', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server, 'local', { fallbackModel: 'model-a-mini' })])
  llm.degrade('fallback-model')
  t.deepEqual({ step: llm.degradation().step, forced: llm.degradation().forced }, { step: 'fallback-model', forced: true })
  t.is((await llm.chat(ask('cheap'))).model, 'model-a-mini')
  llm.degrade('record-only')
  t.is((await failure(t, llm.chat(ask('hold')))).code, 'ERR_LLM_SKIPPED')
  llm.degrade(null)
  t.is((await llm.chat(ask('normal'))).model, 'model-a')
  t.is(server.stats.requests, 2)
})
