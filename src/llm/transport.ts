// One HTTP attempt against a provider, with every failure turned into a classified LLMError.
import type { Dispatcher } from 'undici'

import { LLMError, failureOfStatus } from './errors.js'
import type { Provider } from './provider.js'
import { parseRetryAfter } from './retry.js'
import type { CallScope } from './scope.js'

export interface AttemptTimeouts {
  headersTimeoutMs: number
  idleTimeoutMs: number
}

type Body = Dispatcher.ResponseData['body']

/** Sends one request and returns the 2xx body unread; any other status becomes an LLMError. */
async function send(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string): Promise<Body> {
  let response: Dispatcher.ResponseData
  try {
    const options: Dispatcher.RequestOptions = {
      path: provider.basePath + path,
      method: 'POST',
      headers: provider.headers,
      body: payload,
      signal: scope.signal,
      headersTimeout: Math.max(1, Math.min(timeouts.headersTimeoutMs, scope.remainingMs)),
      bodyTimeout: timeouts.idleTimeoutMs,
    }
    if (provider.pipelined) {
      // Pipelining POSTs needs both: undici otherwise holds them until the socket is idle.
      options.idempotent = true
      options.blocking = false
    }
    response = await provider.pool.request(options)
  } catch (error) {
    throw classify(error, scope, provider.name, model)
  }
  const { statusCode, headers, body } = response
  if (statusCode >= 200 && statusCode < 300) return body
  let text = ''
  try {
    text = await body.text()
  } catch {
    // the status says enough
  }
  const failure = failureOfStatus(statusCode)
  throw new LLMError(failure, `${provider.name} answered ${statusCode}: ${text.slice(0, 500)}`, {
    provider: provider.name,
    model,
    status: statusCode,
    retryAfterMs: parseRetryAfter(headers['retry-after']),
  })
}

/** POST with a JSON answer. */
export async function postJson(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string): Promise<unknown> {
  const body = await send(provider, path, payload, scope, timeouts, model)
  let text: string
  try {
    text = await body.text()
  } catch (error) {
    throw classify(error, scope, provider.name, model)
  }
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new LLMError('bad_response', `${provider.name} sent a body that is not JSON: ${text.slice(0, 200)}`, { provider: provider.name, model }, { cause })
  }
}

/** POST whose 2xx answer is read as it arrives (SSE). */
export function openStream(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string): Promise<Body> {
  return send(provider, path, payload, scope, timeouts, model)
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

/** undici and socket errors as LLMErrors; the call's own cancellation wins over what undici saw. */
export function classify(error: unknown, scope: CallScope, provider: string, model: string): LLMError {
  if (scope.reason) return scope.reason
  if (error instanceof LLMError) return error
  const code = (error as { code?: string }).code ?? ''
  const message = error instanceof Error ? error.message : String(error)
  if (TIMEOUT_CODES.has(code)) return new LLMError('timeout', `${provider}: ${message} (${code})`, { provider, model }, { cause: error })
  return new LLMError('network', `${provider}: ${message}${code ? ` (${code})` : ''}`, { provider, model }, { cause: error })
}
