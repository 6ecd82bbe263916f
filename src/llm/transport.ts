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

function requestOptions(provider: Provider, path: string, payload: string, timeouts: AttemptTimeouts): Dispatcher.RequestOptions {
  const options: Dispatcher.RequestOptions = {
    path: provider.basePath + path,
    method: 'POST',
    headers: provider.headers,
    body: payload,
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
 * POST with a JSON answer, handed to `read` (which may throw bad_response).
 *
 * Through undici's dispatcher with our own handler, not `pool.request`: `request` wraps every
 * response in a Readable stream and an AsyncResource, which at thousands of calls in flight is
 * most of the client's memory churn; here an attempt is one object that collects the body chunks.
 */
export function postJson<R>(
  provider: Provider,
  path: string,
  payload: string,
  scope: CallScope,
  timeouts: AttemptTimeouts,
  model: string,
  read: (json: unknown) => R,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    provider.pool.dispatch(requestOptions(provider, path, payload, timeouts), new JsonAttempt(provider, model, scope, read, resolve, reject))
  })
}

/** One HTTP exchange as undici's (callback) dispatch handler: status, body chunks, completion or error. */
class JsonAttempt<R> implements Dispatcher.DispatchHandler {
  private status = 0
  private rawHeaders: Buffer[] | string[] = []
  private chunks: Buffer[] = []
  private abortSocket: ((error?: Error) => void) | undefined
  private settled = false
  /**
   * Registered with the call's scope: its timeout or the caller's abort ends this attempt. Not yet
   * on a socket (still connecting, or queued in the pool), the attempt rejects now; undici drops
   * it when it gets to it (onConnect sees the reason).
   */
  private readonly cancel = () => {
    if (this.abortSocket) return this.abortSocket(this.scope.reason)
    if (!this.settle()) this.reject(this.scope.reason!)
  }

  constructor(
    private readonly provider: Provider,
    private readonly model: string,
    private readonly scope: CallScope,
    private readonly read: (json: unknown) => R,
    private readonly resolve: (value: R) => void,
    private readonly reject: (error: LLMError) => void,
  ) {
    scope.on('abort', this.cancel)
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.scope.reason) return abort(this.scope.reason)
    this.abortSocket = abort
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[]): boolean {
    // 1xx informational responses come before the real one.
    if (statusCode >= 200) {
      this.status = statusCode
      this.rawHeaders = rawHeaders
    }
    return true
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk)
    return true
  }

  onComplete(): void {
    if (this.settle()) return
    const text = this.chunks.length === 1 ? this.chunks[0].toString('utf8') : Buffer.concat(this.chunks).toString('utf8')
    const name = this.provider.name
    if (!ok(this.status)) {
      return this.reject(
        new LLMError(failureOfStatus(this.status), `${name} answered ${this.status}: ${text.slice(0, 500)}`, {
          provider: name,
          model: this.model,
          status: this.status,
          retryAfterMs: parseRetryAfter(rawHeader(this.rawHeaders, 'retry-after')),
        }),
      )
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (cause) {
      return this.reject(
        new LLMError('bad_response', `${name} sent a body that is not JSON: ${text.slice(0, 200)}`, { provider: name, model: this.model }, { cause }),
      )
    }
    try {
      this.resolve(this.read(json))
    } catch (error) {
      this.reject(classify(error, this.scope, name, this.model))
    }
  }

  onError(error: Error): void {
    if (this.settle()) return
    this.reject(classify(error, this.scope, this.provider.name, this.model))
  }

  /** Detaches from the scope; true when the attempt had settled already. */
  private settle(): boolean {
    if (this.settled) return true
    this.settled = true
    this.scope.removeListener('abort', this.cancel)
    return false
  }
}

/** A header's value from undici's raw [name, value, name, value, ...] list. */
function rawHeader(raw: Buffer[] | string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toString().toLowerCase() === name) return raw[i + 1].toString()
  }
  return undefined
}

/** POST whose 2xx answer is read as it arrives (SSE). */
export async function openStream(provider: Provider, path: string, payload: string, scope: CallScope, timeouts: AttemptTimeouts, model: string): Promise<Body> {
  try {
    const response = await provider.pool.request({ ...requestOptions(provider, path, payload, timeouts), signal: scope.signal })
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
