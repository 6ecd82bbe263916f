// Admission control: a semaphore whose limit may move, AIMD that moves it, and token buckets for
// requests and tokens per minute.

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

export interface AdaptiveOptions {
  /** The limit never drops below this (default 1). */
  min: number
  /** Where it starts (default: the provider's concurrency, the ceiling): AIMD lowers it on trouble. */
  initial?: number
  /** A latency above this multiple of the baseline is congestion (default 2). */
  latencyTolerance: number
  /** Multiplicative decrease on congestion (default 0.75). */
  backoffRatio: number
  /** Samples over which the baseline (lowest recent latency) is re-learned (default 500). */
  baselineWindow: number
}

export const DEFAULT_ADAPTIVE: AdaptiveOptions = { min: 1, latencyTolerance: 2, backoffRatio: 0.75, baselineWindow: 500 }

/**
 * Additive-increase / multiplicative-decrease on the provider's concurrency. Congestion is an
 * overload failure (429, 5xx, timeout, reset) or a latency above `latencyTolerance` x the baseline,
 * the lowest latency seen over the last `baselineWindow` samples: past the provider's knee, latency
 * climbs with concurrency, so the limit settles near the knee. The limit grows by one per window of
 * `limit` good samples while it is being used, and drops at most once per window, so one burst of
 * failures from requests sent together counts as one signal.
 */
export class AdaptiveLimit {
  private value: number
  private baseline = Infinity
  private epochMin = Infinity
  private epochSamples = 0
  private sinceDecrease = 0
  private credit = 0

  constructor(
    private readonly max: number,
    private readonly opts: AdaptiveOptions,
  ) {
    this.value = Math.min(max, Math.max(opts.min, opts.initial ?? max))
  }

  get limit(): number {
    return Math.floor(this.value)
  }

  get baselineMs(): number {
    return this.baseline
  }

  /** One finished attempt; `inflight` is the provider's in-flight count when it finished. */
  sample(latencyMs: number, overloaded: boolean, inflight: number): void {
    this.sinceDecrease++
    if (!overloaded) this.learnBaseline(latencyMs)
    const congested = overloaded || latencyMs > this.baseline * this.opts.latencyTolerance
    if (congested) {
      if (this.sinceDecrease >= this.limit) {
        this.value = Math.max(this.opts.min, this.value * this.opts.backoffRatio)
        this.sinceDecrease = 0
        this.credit = 0
      }
      return
    }
    // Growing a limit nobody reaches would only make the next overload worse.
    if (inflight + 1 < this.limit) return
    this.credit++
    if (this.credit >= this.limit) {
      this.credit = 0
      this.value = Math.min(this.max, this.value + 1)
    }
  }

  private learnBaseline(latencyMs: number) {
    if (latencyMs < this.epochMin) this.epochMin = latencyMs
    if (latencyMs < this.baseline) this.baseline = latencyMs
    if (++this.epochSamples >= this.opts.baselineWindow) {
      // A new epoch forgets an old low (the provider got slower for everyone, not congested by us).
      this.baseline = this.epochMin
      this.epochMin = Infinity
      this.epochSamples = 0
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
