// When to try again and how long to wait first.
import { type BackoffOptions, BackoffOptionsSchema } from './options.js'
import { type LLMError, isRetryableFailure } from './errors.js'

export const DEFAULT_BACKOFF: BackoffOptions = BackoffOptionsSchema.parse({})

/**
 * Exponential backoff with "equal jitter": half the window fixed, half random. Full jitter can pick
 * ~0 ms and hammer a provider that just said it is overloaded; no jitter makes every client that
 * failed together retry together.
 */
export function backoffMs(retry: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const window = Math.min(opts.maxMs, opts.baseMs * 2 ** (retry - 1))
  return window / 2 + random() * (window / 2)
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (!text) return undefined
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * How long to wait before retry number `retry` (1-based) after `error`, or undefined when the call
 * must fail now: the failure is not retryable, retries are spent, or the server asked for a wait
 * longer than we accept (or than the call has left).
 */
export function retryDelayMs(error: LLMError, retry: number, maxRetries: number, opts: BackoffOptions, remainingMs: number): number | undefined {
  if (retry > maxRetries || !isRetryableFailure(error)) return undefined
  const serverAsked = error.details.retryAfterMs
  const delay = serverAsked !== undefined ? Math.max(serverAsked, 0) : backoffMs(retry, opts)
  if (serverAsked !== undefined && serverAsked > opts.maxRetryAfterMs) return undefined
  if (delay >= remainingMs) return undefined
  return delay
}
