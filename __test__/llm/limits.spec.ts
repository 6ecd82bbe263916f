// Concurrency limits, AIMD, token buckets and metrics, over real HTTP against the test server (src/testing/llm-server.ts).
import test from 'ava'

import { AdaptiveLimit, DEFAULT_ADAPTIVE } from '../../src/llm/limits.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

test('the global limit caps requests in flight across providers', async (t) => {
  const a = await serve(t, { latency: { fixedMs: 30 } })
  const b = await serve(t, { latency: { fixedMs: 30 } })
  const llm = client(t, [providerFor(a, 'a'), providerFor(b, 'b')], { concurrency: 6 })
  await Promise.all(Array.from({ length: 60 }, (_, i) => llm.chat({ ...ask(`q${i}`), provider: i % 2 ? 'a' : 'b' })))
  t.true(a.stats.peakInflight + b.stats.peakInflight <= 6 + 1, `server peaks ${a.stats.peakInflight} + ${b.stats.peakInflight}`)
  t.is(llm.metrics().peakConcurrency, 6)
  t.is(llm.metrics().successes, 60)
})

test('a provider limit caps that provider; 30 calls at 50 ms through 10 slots take >= 3 rounds', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 50 } })
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 10, adaptive: false } })])
  const started = performance.now()
  await Promise.all(Array.from({ length: 30 }, (_, i) => llm.chat(ask(`q${i}`))))
  const elapsed = performance.now() - started
  t.true(server.stats.peakInflight <= 10)
  t.is(llm.metrics().peakConcurrency, 10)
  t.is(llm.metrics().providers.local.limit, 10)
  t.true(elapsed >= 145, `${elapsed} ms`)
})

test('a call waiting for a slot times out with ERR_LLM_TIMEOUT and gives its place up', async (t) => {
  const server = await serve(t, { rules: [{ match: 'hang', then: { hang: true } }] })
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 1, adaptive: false } })])
  // Its rejection is watched from the start: on a loaded machine it may come before the next line's.
  const blocker = failure(t, llm.chat({ ...ask('hang'), timeoutMs: 600 }))
  const queued = await failure(t, llm.chat({ ...ask('queued'), timeoutMs: 150 }))
  t.is(queued.code, 'ERR_LLM_TIMEOUT')
  t.is((await blocker).code, 'ERR_LLM_TIMEOUT')
  t.is(server.stats.requests, 1, 'the queued call was never sent')
  // Both slots are back: the next call goes through.
  t.is((await llm.chat(ask('after'))).text, 'reply to: after')
  t.is(llm.metrics().providers.local.inflight, 0)
})

test('AIMD finds the knee: latency that climbs past 8 in flight pulls the limit down from 64', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 20 }, knee: { concurrency: 8, slowdownMs: 20 } })
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 64 } })], { timeoutMs: 60_000 })
  await Promise.all(Array.from({ length: 800 }, (_, i) => llm.chat(ask(`q${i}`))))
  // Tolerance 3 x the 20 ms baseline: congestion from 11 in flight on (20 + 3 x 20 = 80 ms). AIMD
  // saws around that (measured here: between ~8 and ~20), far below the 64 it started from.
  const limit = llm.metrics().providers.local.limit
  t.true(limit >= 2 && limit <= 24, `settled at ${limit}`)
})

test('AIMD keeps its limit when latency varies from answer to answer but does not climb with load', async (t) => {
  // Log-normal latency (p3 ~ 85 ms, median 150 ms, p99 ~ 300 ms) whatever the concurrency: no
  // knee. Long enough that event-loop lag on a busy test machine does not look like congestion.
  const server = await serve(t, { latency: { medianMs: 150, sigma: 0.3 } })
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 32 } })])
  await Promise.all(Array.from({ length: 320 }, (_, i) => llm.chat(ask(`q${i}`))))
  // 32 on a quiet machine; one step down (24, growing back) when other processes stall this one.
  const limit = llm.metrics().providers.local.limit
  t.true(limit >= 24, `limit ${limit}`)
})

test('AIMD: a burst of slow or failed attempts within one round trip of the limit is one decrease', (t) => {
  const aimd = new AdaptiveLimit(1000, { ...DEFAULT_ADAPTIVE })
  // One round trip at 100 ms sets the baseline; the next one has every attempt slow, or failed.
  for (let i = 0; i < 1000; i++) aimd.sample(100, false, 999)
  t.is(aimd.limit, 1000)
  for (let i = 0; i < 1000; i++) aimd.sample(400, i % 3 === 0, 999)
  t.is(aimd.limit, 750)
  for (let i = 0; i < 750; i++) aimd.sample(400, false, 749)
  t.is(aimd.limit, 562)
  for (let i = 0; i < 562; i++) aimd.sample(100, false, 561)
  t.is(aimd.limit, 563)
})

test('AIMD backs off on overload errors (503) and grows back while calls succeed at the limit', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 5 }, rules: [{ match: 'overload', then: { status: 503 } }] })
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 32, adaptive: { min: 2, latencyTolerance: 100 } } })], {
    retries: 0,
    breaker: { errorRate: 2 },
  })
  await Promise.allSettled(Array.from({ length: 200 }, () => llm.chat(ask('overload'))))
  const lowered = llm.metrics().providers.local.limit
  t.true(lowered < 32, `limit ${lowered}`)
  await Promise.all(Array.from({ length: 600 }, (_, i) => llm.chat(ask(`fine ${i}`))))
  t.true(llm.metrics().providers.local.limit > lowered)
})

test('requestsPerMinute spreads calls: 1,200/min takes ~1 s for 40 calls after a 20-call burst', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server, 'local', { limits: { requestsPerMinute: 1200 } })])
  const started = performance.now()
  await Promise.all(Array.from({ length: 40 }, (_, i) => llm.chat(ask(`q${i}`))))
  const elapsed = performance.now() - started
  t.true(elapsed >= 900 && elapsed < 4000, `${elapsed} ms`)
})

test('tokensPerMinute holds a call until the tokens are there, and refuses one whose deadline comes first', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server, 'local', { limits: { tokensPerMinute: 30_000 } })])
  const long = 'x'.repeat(1600) // ~400 tokens; the bucket holds 500 and refills 500/s
  await llm.chat(ask(long))
  const refused = await failure(t, llm.chat({ ...ask(long), timeoutMs: 200 }))
  t.is(refused.code, 'ERR_LLM_RATE_LIMIT')
  t.is(server.stats.requests, 1)
  const started = performance.now()
  await llm.chat(ask(long))
  t.true(performance.now() - started >= 500, 'the second call waited for tokens')
})

test('metrics: counts, latency quantiles, peak concurrency, tokens, cost and ops/s', async (t) => {
  const server = await serve(t, { latency: { fixedMs: 40 } })
  const prices = { 'model-a': { inputPer1M: 2, outputPer1M: 8 } }
  const llm = client(t, [providerFor(server, 'local', { prices })])
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => llm.chat(ask(`question ${i}`))))
  const m = llm.metrics()
  t.is(m.requests, 20)
  t.is(m.successes, 20)
  t.is(m.peakConcurrency, 20)
  t.true(m.latency.p50 >= 39 && m.latency.p50 < 1000, `p50 ${m.latency.p50}`)
  t.true(m.latency.p50 <= m.latency.p95 && m.latency.p95 <= m.latency.p99 && m.latency.p99 <= m.latency.max)
  const tokensIn = replies.reduce((s, r) => s + r.usage.promptTokens, 0)
  const tokensOut = replies.reduce((s, r) => s + r.usage.completionTokens, 0)
  t.is(m.tokensIn, tokensIn)
  t.is(m.tokensOut, tokensOut)
  t.true(tokensIn > 0 && tokensOut > 0)
  t.is(m.cost, (tokensIn * 2 + tokensOut * 8) / 1e6)
  t.true(m.opsPerSecond > 0)
})
