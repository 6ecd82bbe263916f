// Typed LLM errors: every failed call rejects with an `LLMError` (a `MyriadError` with an `ERR_LLM_*`
// code), never with a raw undici/zod error, so callers can branch on `code` or `failure`.
import { MyriadError, type ErrorCode } from '../errors/index.js'

/** Why an attempt or a call failed; the key of `metrics().failures`. */
export type FailureClass =
  | 'network'
  | 'timeout'
  | 'rate_limit'
  | 'server'
  | 'request'
  | 'bad_response'
  | 'parse'
  | 'aborted'
  | 'circuit_open'
  | 'skipped'
  | 'budget'
  | 'closed'
  | 'internal'

export const FAILURE_CLASSES: readonly FailureClass[] = [
  'network',
  'timeout',
  'rate_limit',
  'server',
  'request',
  'bad_response',
  'parse',
  'aborted',
  'circuit_open',
  'skipped',
  'budget',
  'closed',
  'internal',
]

const CODE_OF: Record<FailureClass, ErrorCode> = {
  network: 'ERR_LLM_NETWORK',
  timeout: 'ERR_LLM_TIMEOUT',
  rate_limit: 'ERR_LLM_RATE_LIMIT',
  server: 'ERR_LLM_SERVER',
  request: 'ERR_LLM_REQUEST',
  bad_response: 'ERR_LLM_BAD_RESPONSE',
  parse: 'ERR_LLM_PARSE',
  aborted: 'ERR_LLM_ABORTED',
  circuit_open: 'ERR_LLM_CIRCUIT_OPEN',
  skipped: 'ERR_LLM_SKIPPED',
  budget: 'ERR_LLM_BUDGET',
  closed: 'ERR_LLM_CLOSED',
  internal: 'ERR_INTERNAL',
}

/** The failure class an `ERR_LLM_*` code stands for (a replayed failure is rebuilt from its code). */
export function failureOfCode(code: string): FailureClass | undefined {
  return FAILURE_CLASSES.find((f) => CODE_OF[f] === code)
}

export interface LLMErrorDetails {
  provider?: string
  model?: string
  /** HTTP status of the last attempt, when there was a response. */
  status?: number
  /** Attempts made (1 = no retry). */
  attempts?: number
  /** The server's Retry-After, in milliseconds, when it sent one. */
  retryAfterMs?: number
  /** Structured output: the model's last reply and what was wrong with it. */
  raw?: string
  issues?: string
  /** Degradation ladder: the call was kept for later instead of being sent. */
  recorded?: boolean
}

export class LLMError extends MyriadError {
  readonly failure: FailureClass
  readonly details: LLMErrorDetails
  constructor(failure: FailureClass, message: string, details: LLMErrorDetails = {}, options?: { cause?: unknown }) {
    super(CODE_OF[failure], message, options)
    this.name = 'LLMError'
    this.failure = failure
    this.details = details
  }
}

/** Statuses worth another attempt: timeouts, conflicts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500
}

export function failureOfStatus(status: number): FailureClass {
  if (status === 429) return 'rate_limit'
  if (status === 408) return 'timeout'
  if (status >= 500) return 'server'
  return 'request'
}

/** Failures that say the provider is unhealthy (they feed its breaker and the AIMD limit). */
export function isProviderFault(failure: FailureClass): boolean {
  return failure === 'network' || failure === 'timeout' || failure === 'rate_limit' || failure === 'server'
}

/** Failures a retry may fix (with `request` only for 409, decided by status). */
export function isRetryableFailure(error: LLMError): boolean {
  if (error.details.status !== undefined) return isRetryableStatus(error.details.status)
  return error.failure === 'network' || error.failure === 'timeout' || error.failure === 'bad_response'
}

/** Anything thrown inside a call that is not already an LLMError (a bug, not a provider's doing). */
export function asLLMError(error: unknown): LLMError {
  if (error instanceof LLMError) return error
  return new LLMError('internal', error instanceof Error ? error.message : String(error), {}, { cause: error })
}
