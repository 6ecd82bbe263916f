// Shared setup of the LLM tests: a real OpenAI-compatible server on a loopback port per test (tests
// in a file run concurrently, so none shares a server), and clients with test-sized backoff.
import type { ExecutionContext } from 'ava'

import { startLLMServer, type LLMServer, type LLMServerOptions } from '../../src/testing/llm-server.js'
import { LLM, LLMError, type LLMConfig, type ProviderConfig } from '../../src/llm/index.js'

/** Backoff in milliseconds, not seconds: retry paths stay fast. */
export const FAST_BACKOFF = { baseMs: 5, maxMs: 40, maxRetryAfterMs: 2_000 }

export async function serve(t: ExecutionContext, opts: LLMServerOptions = {}): Promise<LLMServer> {
  const server = await startLLMServer(opts)
  t.teardown(() => server.close())
  return server
}

export function providerFor(server: LLMServer, name = 'local', extra: Partial<ProviderConfig> = {}): ProviderConfig {
  return { name, baseUrl: server.url, models: ['model-a', 'model-a-mini'], ...extra }
}

/** A client on one or more servers (in failover order), closed when the test ends. */
export function client(t: ExecutionContext, providers: ProviderConfig[], config: Partial<LLMConfig> = {}): LLM {
  const llm = new LLM({ backoff: FAST_BACKOFF, timeoutMs: 10_000, ...config, providers })
  t.teardown(() => llm.close())
  return llm
}

export const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] })

/** The LLMError a promise rejects with (fails the test when it resolves or rejects otherwise). */
export async function failure(t: ExecutionContext, promise: Promise<unknown>): Promise<LLMError> {
  const error = await t.throwsAsync(promise)
  if (!(error instanceof LLMError)) throw new Error(`expected an LLMError, got ${String(error)}`)
  return error
}
