// Retries by error class, timeouts and cancellation, over real HTTP against the test server (src/testing/llm-server.ts).
import test from 'ava'

import { MyriadError } from '../../src/errors/index.js'
import { ask, client, failure, providerFor, serve } from './helpers.js'

test('429 is retried after the Retry-After the server sent, and the retry is counted', async (t) => {
  const server = await serve(t, { rules: [{ match: 'busy', times: 1, then: { status: 429, retryAfter: '0.3' } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  const reply = await llm.chat(ask('busy now?'))
  const elapsed = performance.now() - started
  t.is(reply.text, 'reply to: busy now?')
  t.is(reply.attempts, 2)
  t.true(elapsed >= 290, `waited ${elapsed} ms, Retry-After said 300`)
  t.deepEqual(server.stats.byStatus, { 200: 1, 429: 1 })
  const m = llm.metrics()
  t.is(m.retries, 1)
  t.is(m.attempts, 2)
  t.is(m.successes, 1)
})

test('an HTTP-date Retry-After is honoured too', async (t) => {
  const server = await serve(t, { rules: [{ times: 1, then: { status: 429, retryAfter: new Date(Date.now() + 1500).toUTCString() } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  await llm.chat(ask('dated'))
  // HTTP dates have whole seconds: at least ~0.5 s of the 1.5 s remain after rounding down.
  t.true(performance.now() - started >= 400)
})

test('a Retry-After longer than maxRetryAfterMs fails the call at once with ERR_LLM_RATE_LIMIT', async (t) => {
  const server = await serve(t, { rules: [{ then: { status: 429, retryAfter: '30' } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  const error = await failure(t, llm.chat(ask('quota')))
  t.is(error.code, 'ERR_LLM_RATE_LIMIT')
  t.true(error instanceof MyriadError)
  t.is(error.details.status, 429)
  t.is(error.details.retryAfterMs, 30_000)
  t.is(error.details.attempts, 1)
  t.true(performance.now() - started < 1000)
  t.is(llm.metrics().failures.rate_limit, 1)
})

test('500 and 503 are retried with backoff until one succeeds', async (t) => {
  const server = await serve(t, {
    rules: [
      { match: 'flaky', times: 1, then: { status: 500 } },
      { match: 'flaky', times: 1, then: { status: 503 } },
    ],
  })
  const llm = client(t, [providerFor(server)])
  const reply = await llm.chat(ask('flaky'))
  t.is(reply.attempts, 3)
  t.deepEqual(server.stats.byStatus, { 200: 1, 500: 1, 503: 1 })
  t.is(llm.metrics().retries, 2)
})

test('5xx on every attempt: ERR_LLM_SERVER after 1 + retries attempts', async (t) => {
  const server = await serve(t, { rules: [{ then: { status: 502 } }] })
  const llm = client(t, [providerFor(server)], { retries: 2 })
  const error = await failure(t, llm.chat(ask('down')))
  t.is(error.code, 'ERR_LLM_SERVER')
  t.is(error.details.attempts, 3)
  t.is(server.stats.requests, 3)
  const m = llm.metrics()
  t.is(m.retries, 2)
  t.is(m.failures.server, 1)
  t.is(m.successes, 0)
})

test('408 and 409 are retried; 400, 401, 404 and 422 are not', async (t) => {
  const server = await serve(t, {
    rules: [
      { match: 'timeout-then-ok', times: 1, then: { status: 408 } },
      { match: 'conflict-then-ok', times: 1, then: { status: 409 } },
      { match: 'bad-400', then: { status: 400 } },
      { match: 'bad-401', then: { status: 401 } },
      { match: 'bad-404', then: { status: 404 } },
      { match: 'bad-422', then: { status: 422 } },
    ],
  })
  const llm = client(t, [providerFor(server)])
  t.is((await llm.chat(ask('timeout-then-ok'))).attempts, 2)
  t.is((await llm.chat(ask('conflict-then-ok'))).attempts, 2)
  for (const status of [400, 401, 404, 422]) {
    const error = await failure(t, llm.chat(ask(`bad-${status}`)))
    t.is(error.code, 'ERR_LLM_REQUEST')
    t.is(error.details.status, status)
    t.is(error.details.attempts, 1)
  }
  t.is(server.stats.requests, 4 + 4)
  t.is(llm.metrics().failures.request, 4)
})

test('a connection reset is retried on a new connection', async (t) => {
  const server = await serve(t, { rules: [{ match: 'reset', times: 2, then: { reset: true } }] })
  const llm = client(t, [providerFor(server)])
  const reply = await llm.chat(ask('reset me'))
  t.is(reply.attempts, 3)
  t.is(server.stats.resets, 2)
})

test('resets on every attempt: ERR_LLM_NETWORK', async (t) => {
  const server = await serve(t, { rules: [{ then: { reset: true } }] })
  const llm = client(t, [providerFor(server)], { retries: 1 })
  const error = await failure(t, llm.chat(ask('always reset')))
  t.is(error.code, 'ERR_LLM_NETWORK')
  t.is(error.details.attempts, 2)
  t.is(llm.metrics().failures.network, 1)
})

test('a refused connection is a network error', async (t) => {
  const server = await serve(t)
  const url = server.url
  await server.close()
  const llm = client(t, [{ name: 'gone', baseUrl: url, models: ['m'] }], { retries: 1 })
  const error = await failure(t, llm.chat(ask('anyone?')))
  t.is(error.code, 'ERR_LLM_NETWORK')
})

test('a server that hangs: the call times out with ERR_LLM_TIMEOUT at timeoutMs', async (t) => {
  const server = await serve(t, { rules: [{ then: { hang: true } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  const error = await failure(t, llm.chat({ ...ask('hang'), timeoutMs: 300 }))
  const elapsed = performance.now() - started
  t.is(error.code, 'ERR_LLM_TIMEOUT')
  t.true(elapsed >= 290 && elapsed < 2000, `timed out after ${elapsed} ms`)
  t.is(llm.metrics().failures.timeout, 1)
  t.is(llm.metrics().inflight, 0)
})

test('calls with different timeouts each time out at their own deadline, whatever the order they started in', async (t) => {
  const server = await serve(t, { rules: [{ then: { hang: true } }] })
  const llm = client(t, [providerFor(server)])
  const started = performance.now()
  const elapsed = await Promise.all(
    [450, 150, 300].map(async (timeoutMs) => {
      const error = await failure(t, llm.chat({ ...ask(`hang ${timeoutMs}`), timeoutMs }))
      t.is(error.code, 'ERR_LLM_TIMEOUT')
      return performance.now() - started
    }),
  )
  t.true(elapsed[1] >= 145 && elapsed[1] < elapsed[2] && elapsed[2] < elapsed[0], elapsed.join(', '))
  t.true(elapsed[0] >= 445 && elapsed[0] < 1500, elapsed.join(', '))
})

test('a call still queued inside the pool (no socket yet) times out on time too', async (t) => {
  const server = await serve(t, { rules: [{ match: 'hang', then: { hang: true } }] })
  // Five calls may be in flight but the pool has one socket: the second waits inside undici.
  const llm = client(t, [providerFor(server, 'local', { limits: { concurrency: 5, adaptive: false }, pool: { connections: 1 } })])
  const blocker = failure(t, llm.chat({ ...ask('hang'), timeoutMs: 1000 }))
  const started = performance.now()
  const queued = await failure(t, llm.chat({ ...ask('behind it'), timeoutMs: 200 }))
  t.is(queued.code, 'ERR_LLM_TIMEOUT')
  t.true(performance.now() - started < 600)
  t.is((await blocker).code, 'ERR_LLM_TIMEOUT')
  t.is(server.stats.requests, 1)
})

test('headersTimeoutMs bounds one attempt: a hung attempt is retried and the next one answers', async (t) => {
  const server = await serve(t, { rules: [{ match: 'hang once', times: 1, then: { hang: true } }] })
  const llm = client(t, [providerFor(server)], { headersTimeoutMs: 200 })
  const reply = await llm.chat(ask('hang once'))
  t.is(reply.attempts, 2)
  t.is(server.stats.hangs, 1)
})

test('a 200 whose body is not JSON is ERR_LLM_BAD_RESPONSE (retried first)', async (t) => {
  const server = await serve(t, { rules: [{ then: { garbage: true } }] })
  const llm = client(t, [providerFor(server)], { retries: 1 })
  const error = await failure(t, llm.chat(ask('html please')))
  t.is(error.code, 'ERR_LLM_BAD_RESPONSE')
  t.is(server.stats.requests, 2)
})

test('the caller aborts: ERR_LLM_ABORTED at once, and the provider is not blamed', async (t) => {
  const server = await serve(t, { rules: [{ then: { hang: true } }] })
  const llm = client(t, [providerFor(server)], { breaker: { minRequests: 1, errorRate: 0.1 } })
  const controller = new AbortController()
  const pending = llm.chat({ ...ask('wait'), signal: controller.signal })
  setTimeout(() => controller.abort(), 100)
  const started = performance.now()
  const error = await failure(t, pending)
  t.is(error.code, 'ERR_LLM_ABORTED')
  t.true(performance.now() - started < 1000)
  t.is(llm.metrics().providers.local.breaker, 'closed')
  t.is(llm.metrics().failures.aborted, 1)
})

test('an already aborted signal rejects before anything is sent', async (t) => {
  const server = await serve(t)
  const llm = client(t, [providerFor(server)])
  const error = await failure(t, llm.chat({ ...ask('never'), signal: AbortSignal.abort() }))
  t.is(error.code, 'ERR_LLM_ABORTED')
  t.is(server.stats.requests, 0)
})

test('abort during backoff ends the wait', async (t) => {
  const server = await serve(t, { rules: [{ then: { status: 429, retryAfter: '1.5' } }] })
  const llm = client(t, [providerFor(server)])
  const controller = new AbortController()
  const pending = failure(t, llm.chat({ ...ask('later'), signal: controller.signal }))
  // Abort once the 429 is out: the call is then waiting out its 1.5 s Retry-After.
  while (!server.stats.byStatus[429]) await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 50))
  const aborted = performance.now()
  controller.abort()
  const error = await pending
  t.is(error.code, 'ERR_LLM_ABORTED')
  t.true(performance.now() - aborted < 500)
  t.is(server.stats.requests, 1)
})

test('per-call retries override: retries 0 makes one attempt', async (t) => {
  const server = await serve(t, { rules: [{ then: { status: 500 } }] })
  const llm = client(t, [providerFor(server)])
  const error = await failure(t, llm.chat({ ...ask('once'), retries: 0 }))
  t.is(error.details.attempts, 1)
  t.is(server.stats.requests, 1)
  t.is(llm.metrics().retries, 0)
})

test('random faults at scale: every call settles, successes + failures = requests', async (t) => {
  const server = await serve(t, { latency: { uniformMs: [1, 5] }, faults: { rate429: 0.1, rate500: 0.1, rateReset: 0.05, retryAfterS: 0.01 } })
  const llm = client(t, [providerFor(server)], { breaker: { errorRate: 1.1 } })
  const outcomes = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => llm.chat(ask(`agent ${i}`))))
  const m = llm.metrics()
  t.is(m.requests, 300)
  t.is(m.successes + Object.values(m.failures).reduce((a, b) => a + b, 0), 300)
  t.is(outcomes.filter((o) => o.status === 'fulfilled').length, m.successes)
  for (const o of outcomes) if (o.status === 'rejected') t.true(o.reason instanceof MyriadError)
  // 25% of attempts fail; with 3 retries nearly every call gets through.
  t.true(m.successes >= 295, `${m.successes} of 300 succeeded`)
  t.true(m.retries > 30)
  t.is(m.attempts, 300 + m.retries)
  t.is(m.inflight, 0)
})
