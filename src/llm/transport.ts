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

function requestOptions(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts): Dispatcher.RequestOptions {
  const options: Dispatcher.RequestOptions = {
    path: provider.basePath + path,
    method: 'POST',
    headers: provider.headers,
    body: payload,
    signal: scope.signal,
    // The same value on every request: undici then refreshes the socket's timer instead of
    // replacing it. The call's own deadline is enforced by its scope.
    headersTimeout: timeouts.headersTimeoutMs,
    bodyTimeout: timeouts.idleTimeoutMs,
  }
  if (provider.pipelined) {
    // Pipelining POSTs needs both: undici otherwise holds them until the socket is idle.
    options.idempotent = true
    options.blocking = false
  }
  return options
}

/** A non-2xx answer as an LLMError classified by status, with the server's Retry-After. */
async function statusError(provider: Provider, response: Dispatcher.ResponseData, model: string): Promise<LLMError> {
  let text = ''
  try {
    text = await response.body.text()
  } catch {
    // the status says enough
  }
  return new LLMError(failureOfStatus(response.statusCode), `${provider.name} answered ${response.statusCode}: ${text.slice(0, 500)}`, {
    provider: provider.name,
    model,
    status: response.statusCode,
    retryAfterMs: parseRetryAfter(response.headers['retry-after']),
  })
}

const ok = (status: number) => status >= 200 && status < 300

/**
 * POST with a JSON answer, handed to `read` (which may throw bad_response). One async function for
 * request, status and body: every suspended frame is memory held by each call in flight.
 */
export async function postJson<R>(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string, read: (json: unknown) => R): Promise<R> {
  let text: string
  try {
    const response = await provider.pool.request(requestOptions(provider, path, payload, scope, timeouts))
    if (!ok(response.statusCode)) throw await statusError(provider, response, model)
    text = await response.body.text()
  } catch (error) {
    throw classify(error, scope, provider.name, model)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw new LLMError('bad_response', `${provider.name} sent a body that is not JSON: ${text.slice(0, 200)}`, { provider: provider.name, model }, { cause })
  }
  return read(json)
}

/** POST whose 2xx answer is read as it arrives (SSE). */
export async function openStream(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string): Promise<Body> {
  try {
    const response = await provider.pool.request(requestOptions(provider, path, payload, scope, timeouts))
    if (!ok(response.statusCode)) throw await statusError(provider, response, model)
    return response.body
  } catch (error) {
    throw classify(error, scope, provider.name, model)
  }
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
