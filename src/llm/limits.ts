// Admission control: a semaphore whose limit may move, AIMD that moves it, and token buckets for
// requests and tokens per minute.
import { type AdaptiveOptions, AdaptiveOptionsSchema } from './options.js'

interface Waiter {
  resolve(): void
  settled: boolean
}

/**
 * A counting semaphore with a FIFO queue. `tryAcquire` is the fast path (no promise when a slot is
 * free); `limit` may change at any time (AIMD): a lower limit takes effect as slots are released.
 */
export class Semaphore {
  inflight = 0
  peak = 0
  private queue: Waiter[] = []
  private head = 0

  constructor(public limit: number) {}

  get waiting(): number {
    return this.queue.length - this.head
  }

  tryAcquire(): boolean {
    if (this.inflight >= this.limit || this.waiting > 0) return false
    this.take()
    return true
  }

  /** Resolves once a slot is ours; `abandon` (from the returned handle) gives up the place in line. */
  acquire(): { ready: Promise<void>; abandon(): void } {
    let waiter!: Waiter
    const ready = new Promise<void>((resolve) => {
      waiter = { resolve, settled: false }
    })
    this.queue.push(waiter)
    return {
      ready,
      abandon: () => {
        // A waiter handed a slot just before it gave up returns it.
        if (waiter.settled) this.release()
        else waiter.settled = true
      },
    }
  }

  release(): void {
    this.inflight--
    this.admit()
  }

  /** Hands free slots to waiters (after a release or a raised limit). */
  admit(): void {
    while (this.inflight < this.limit && this.head < this.queue.length) {
      const waiter = this.queue[this.head++]
      if (waiter.settled) continue
      waiter.settled = true
      this.take()
      waiter.resolve()
    }
    // Drop the consumed prefix now and then instead of shifting on every release.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }

  private take() {
    this.inflight++
    if (this.inflight > this.peak) this.peak = this.inflight
  }
}

export const DEFAULT_ADAPTIVE: AdaptiveOptions = AdaptiveOptionsSchema.parse({})

/** Latencies kept per window at most (every k-th attempt of a longer window): enough for a median. */
const MAX_WINDOW = 128

/**
 * Additive-increase / multiplicative-decrease on a provider's concurrency, judged once per window
 * of `limit` attempts, about one round trip of the whole limit (one congestion event is one signal,
 * however many attempts it slowed):
 *
 * - decrease (x `backoffRatio`) when the window had an overload failure (429, 5xx, timeout, reset)
 *   or its median latency is above `latencyTolerance` x the baseline; past a provider's knee,
 *   latency climbs with concurrency, so the limit settles near the knee;
 * - else increase by one when the window used the whole limit (growing a limit nobody reaches
 *   would only make the next overload worse).
 *
 * The baseline is the lowest 10th-percentile latency of the windows of the last `baselineSeconds`
 * (the current one included): requests that met no queue. It must outlive the congestion it is
 * there to detect: a baseline learned only from congested windows would call the congestion normal.
 * The signal is a window's median, not single
 * latencies, because LLM latency varies with the length of each answer and one long answer is not
 * congestion; answers whose lengths vary by more than `latencyTolerance` between the 10th and the
 * 50th percentile need a higher tolerance (or `adaptive: false`).
 */
export class AdaptiveLimit {
  private value: number
  private readonly latencies = new Float64Array(MAX_WINDOW)
  private samples = 0
  private attempts = 0
  private overloaded = false
  private saturated = false
  /** The lowest window 10th percentile per second, over the last `baselineSeconds` seconds. */
  private readonly lows: Float64Array
  private readonly lowSeconds: Float64Array

  constructor(
    private readonly max: number,
    private readonly opts: AdaptiveOptions,
  ) {
    this.value = Math.min(max, Math.max(opts.min, opts.initial ?? max))
    this.lows = new Float64Array(opts.baselineSeconds).fill(Infinity)
    this.lowSeconds = new Float64Array(opts.baselineSeconds).fill(-Infinity)
  }

  get limit(): number {
    return Math.floor(this.value)
  }

  /** The lowest recent 10th-percentile latency, ms (Infinity before the first window closes). */
  get baselineMs(): number {
    const oldest = Math.floor(performance.now() / 1000) - this.opts.baselineSeconds
    let low = Infinity
    for (let i = 0; i < this.lows.length; i++) if (this.lowSeconds[i] > oldest && this.lows[i] < low) low = this.lows[i]
    return low
  }

  /** One finished attempt; `inflight` is the provider's in-flight count when it finished. */
  sample(latencyMs: number, overloaded: boolean, inflight: number): void {
    const window = Math.max(1, this.limit)
    if (overloaded) this.overloaded = true
    else if (this.samples < MAX_WINDOW && this.attempts % Math.ceil(window / MAX_WINDOW) === 0) this.latencies[this.samples++] = latencyMs
    if (inflight + 1 >= this.limit) this.saturated = true
    if (++this.attempts >= window) this.closeWindow()
  }

  private closeWindow() {
    let median = Infinity
    if (this.samples) {
      const sorted = this.latencies.subarray(0, this.samples).sort()
      median = sorted[this.samples >> 1]
      this.rememberLow(sorted[Math.floor(this.samples / 10)])
    }
    if (this.overloaded || median > this.baselineMs * this.opts.latencyTolerance) {
      this.value = Math.max(this.opts.min, this.value * this.opts.backoffRatio)
    } else if (this.saturated) {
      this.value = Math.min(this.max, this.value + 1)
    }
    this.samples = 0
    this.attempts = 0
    this.overloaded = false
    this.saturated = false
  }

  private rememberLow(latencyMs: number) {
    const second = Math.floor(performance.now() / 1000)
    const slot = second % this.lows.length
    if (this.lowSeconds[slot] !== second) {
      this.lowSeconds[slot] = second
      this.lows[slot] = latencyMs
    } else if (latencyMs < this.lows[slot]) {
      this.lows[slot] = latencyMs
    }
  }
}

/**
 * A token bucket refilled continuously at `perMinute`, holding at most one second's worth (so a
 * per-minute quota is spread over the minute instead of spent in the first second). `reserve` may
 * drive it below zero: the caller waits the returned time, and later callers queue behind it.
 */
export class TokenBucket {
  private tokens: number
  private last: number
  readonly capacity: number
  private readonly perMs: number

  constructor(perMinute: number, now = performance.now()) {
    this.perMs = perMinute / 60_000
    this.capacity = Math.max(1, perMinute / 60)
    this.tokens = this.capacity
    this.last = now
  }

  /** Takes `n` tokens now; returns how long to wait (ms) until they would have been there. */
  reserve(n: number, now = performance.now()): number {
    this.refill(now)
    this.tokens -= n
    return this.tokens >= 0 ? 0 : -this.tokens / this.perMs
  }

  /** Gives back tokens taken by a call that did not happen, or corrects an estimate (negative: take more). */
  refund(n: number, now = performance.now()): void {
    this.refill(now)
    this.tokens = Math.min(this.capacity, this.tokens + n)
  }

  private refill(now: number) {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.perMs)
    this.last = now
  }
}
