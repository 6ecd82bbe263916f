// Counters and a latency histogram, cheap enough to update on every call of a million.
import { FAILURE_CLASSES, type FailureClass } from './errors.js'

// Log-spaced buckets 1% apart from 10 us to ~10 min: O(1) record, fixed memory, quantiles within 1%.
const MIN_MS = 0.01
const GROWTH = Math.log(1.01)
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / GROWTH) + 1

export class LatencyHistogram {
  private counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  max = 0

  record(ms: number): void {
    const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / GROWTH))
    this.counts[index]++
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  /** The latency below which a share `q` of the samples fall (bucket upper bound, capped at max). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= rank) return Math.min(this.max, MIN_MS * Math.exp(i * GROWTH))
    }
    return this.max
  }
}

export interface ProviderMetrics {
  inflight: number
  /** The concurrency limit now (moves under AIMD). */
  limit: number
  queued: number
  breaker: 'closed' | 'open' | 'half-open'
  breakerOpens: number
  attempts: number
  failures: number
}

export interface LLMMetrics {
  /** Calls made (chat, json, stream, embed). */
  requests: number
  successes: number
  failures: Record<FailureClass, number>
  /** Attempts after a call's first (each retry counted once). */
  retries: number
  /** Structured-output calls that needed the repair round. */
  repairs: number
  /** HTTP attempts sent. */
  attempts: number
  /** Attempts sent to another provider than the requested (or first) one because its circuit was open. */
  failovers: number
  /** Calls finished over their wall time, ms, queueing and retries included. */
  latency: { p50: number; p95: number; p99: number; mean: number; max: number }
  inflight: number
  peakConcurrency: number
  tokensIn: number
  tokensOut: number
  /** Successful calls per second between the first call and the last completion. */
  opsPerSecond: number
  /** From the providers' configured prices; 0 when none are set. */
  cost: number
  /** Messages dropped or shortened by the prompt budget. */
  trimmedMessages: number
  recorded: number
  providers: Record<string, ProviderMetrics>
}

/** The mutable counters behind `llm.metrics()`. */
export class MetricsRecorder {
  requests = 0
  successes = 0
  retries = 0
  repairs = 0
  attempts = 0
  failovers = 0
  inflight = 0
  peakConcurrency = 0
  tokensIn = 0
  tokensOut = 0
  cost = 0
  trimmedMessages = 0
  recorded = 0
  failures = Object.fromEntries(FAILURE_CLASSES.map((c) => [c, 0])) as Record<FailureClass, number>
  latency = new LatencyHistogram()
  private firstStart = 0
  private lastEnd = 0

  callStarted(now: number): void {
    this.requests++
    if (this.firstStart === 0) this.firstStart = now
  }

  callEnded(now: number, startedAt: number, failure?: FailureClass): void {
    this.latency.record(now - startedAt)
    this.lastEnd = now
    if (failure) this.failures[failure]++
    else this.successes++
  }

  attemptStarted(): void {
    this.attempts++
    if (++this.inflight > this.peakConcurrency) this.peakConcurrency = this.inflight
  }

  attemptEnded(): void {
    this.inflight--
  }

  snapshot(providers: Record<string, ProviderMetrics>): LLMMetrics {
    const seconds = (this.lastEnd - this.firstStart) / 1000
    const h = this.latency
    return {
      requests: this.requests,
      successes: this.successes,
      failures: { ...this.failures },
      retries: this.retries,
      repairs: this.repairs,
      attempts: this.attempts,
      failovers: this.failovers,
      latency: { p50: h.quantile(0.5), p95: h.quantile(0.95), p99: h.quantile(0.99), mean: h.count ? h.sum / h.count : 0, max: h.max },
      inflight: this.inflight,
      peakConcurrency: this.peakConcurrency,
      tokensIn: this.tokensIn,
      tokensOut: this.tokensOut,
      opsPerSecond: seconds > 0 ? this.successes / seconds : 0,
      cost: this.cost,
      trimmedMessages: this.trimmedMessages,
      recorded: this.recorded,
      providers,
    }
  }
}
