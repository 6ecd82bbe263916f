// A circuit breaker per provider, on error rate and p99 latency over the last attempts.
import { type BreakerOptions, BreakerOptionsSchema } from './options.js'

export const DEFAULT_BREAKER: BreakerOptions = BreakerOptionsSchema.parse({})

export type BreakerState = 'closed' | 'open' | 'half-open'

// Outcome flags in the ring: a failure, a latency above p99Ms.
const FAILED = 1
const SLOW = 2

/**
 * The p99 test needs no sorting: the p99 of the window is above `p99Ms` exactly when more than 1%
 * of its latencies are, so counting slow attempts as they enter and leave the ring is enough.
 */
export class CircuitBreaker {
  state: BreakerState = 'closed'
  opens = 0
  private ring: Uint8Array
  private next = 0
  private count = 0
  private failed = 0
  private slow = 0
  private openedAt = 0
  private probesInFlight = 0
  private probeSuccesses = 0

  constructor(private readonly opts: BreakerOptions) {
    this.ring = new Uint8Array(opts.window)
  }

  /** May an attempt go now? In half-open state this takes a probe slot (give it back with `record`). */
  allow(now = performance.now()): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open') {
      if (now - this.openedAt < this.opts.cooldownMs) return false
      this.state = 'half-open'
      this.probesInFlight = 0
      this.probeSuccesses = 0
    }
    if (this.probesInFlight >= this.opts.halfOpenProbes) return false
    this.probesInFlight++
    return true
  }

  /** Would `allow` say yes, without taking a probe slot (for routing and the ladder). */
  available(now = performance.now()): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open') return now - this.openedAt >= this.opts.cooldownMs
    return this.probesInFlight < this.opts.halfOpenProbes
  }

  /** Gives back the probe slot of an attempt that never went out (cancelled while queued). */
  cancelProbe(): void {
    if (this.state === 'half-open') this.probesInFlight = Math.max(0, this.probesInFlight - 1)
  }

  record(failed: boolean, latencyMs: number, now = performance.now()): void {
    if (this.state === 'open') return // a straggler sent before it opened
    if (this.state === 'half-open') {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1)
      if (failed) return this.open(now)
      if (++this.probeSuccesses >= this.opts.halfOpenProbes) {
        this.clear()
        this.state = 'closed'
      }
      return
    }
    const flags = (failed ? FAILED : 0) | (latencyMs > this.opts.p99Ms ? SLOW : 0)
    if (this.count === this.ring.length) {
      const old = this.ring[this.next]
      if (old & FAILED) this.failed--
      if (old & SLOW) this.slow--
    } else {
      this.count++
    }
    this.ring[this.next] = flags
    this.next = (this.next + 1) % this.ring.length
    if (flags & FAILED) this.failed++
    if (flags & SLOW) this.slow++
    if (this.count >= this.opts.minRequests && (this.failed >= this.opts.errorRate * this.count || this.slow > 0.01 * this.count)) this.open(now)
  }

  /** Failure share and slow share of the window (for metrics). */
  snapshot(): { state: BreakerState; errorRate: number; slowRate: number; opens: number } {
    const n = Math.max(1, this.count)
    return { state: this.state, errorRate: this.failed / n, slowRate: this.slow / n, opens: this.opens }
  }

  private open(now: number) {
    this.openedAt = now
    this.opens++
    this.clear()
    this.state = 'open'
  }

  private clear() {
    this.ring.fill(0)
    this.next = 0
    this.count = 0
    this.failed = 0
    this.slow = 0
  }
}
