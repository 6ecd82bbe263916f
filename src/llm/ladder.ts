// The degradation ladder: how much the layer gives up when providers struggle, in steps a caller
// can read (`llm.degradation()`) and the client applies to every call it routes.
import { type LadderOptions, LadderOptionsSchema } from './options.js'
import type { DegradationStep } from './types.js'

export const DEFAULT_LADDER: LadderOptions = LadderOptionsSchema.parse({})

export const STEPS: readonly DegradationStep[] = ['normal', 'fallback-model', 'skip-non-critical', 'record-only']

export interface Degradation {
  step: DegradationStep
  /** 0 normal .. 3 record-only. */
  level: number
  reason: string
  /** Set by `llm.degrade(step)` rather than measured. */
  forced: boolean
  /** Recent failure rate of provider attempts (network, timeout, 429, 5xx). */
  failureRate: number
}

const BUCKETS = 10

/** Attempts and failures in a sliding time window of BUCKETS buckets, with running totals (read per call). */
class FailureWindow {
  private attempts = new Uint32Array(BUCKETS)
  private failures = new Uint32Array(BUCKETS)
  private bucket = 0
  private bucketStart = 0
  totalAttempts = 0
  totalFailures = 0

  constructor(private readonly windowMs: number) {}

  add(failed: boolean, now: number) {
    this.advance(now)
    this.attempts[this.bucket]++
    this.totalAttempts++
    if (failed) {
      this.failures[this.bucket]++
      this.totalFailures++
    }
  }

  /** Drops the buckets that slid out of the window, so the totals cover the last `windowMs`. */
  advance(now: number) {
    const width = this.windowMs / BUCKETS
    let steps = Math.floor((now - this.bucketStart) / width)
    if (steps <= 0) return
    if (steps > BUCKETS) steps = BUCKETS
    for (let i = 0; i < steps; i++) {
      this.bucket = (this.bucket + 1) % BUCKETS
      this.totalAttempts -= this.attempts[this.bucket]
      this.totalFailures -= this.failures[this.bucket]
      this.attempts[this.bucket] = 0
      this.failures[this.bucket] = 0
    }
    this.bucketStart = now - ((now - this.bucketStart) % width)
  }
}

export class DegradationLadder {
  private window: FailureWindow
  private forced: DegradationStep | null = null

  constructor(
    private readonly opts: LadderOptions,
    /** Can any provider take a call now? */
    private readonly anyAvailable: () => boolean,
    /** Is the first (preferred) provider's circuit closed? */
    private readonly primaryClosed: () => boolean,
  ) {
    this.window = new FailureWindow(opts.windowMs)
  }

  record(failed: boolean, now = performance.now()): void {
    this.window.add(failed, now)
  }

  force(step: DegradationStep | null): void {
    this.forced = step
  }

  /** The step index now (0 normal .. 3 record-only); allocation-free, for every call. */
  level(now = performance.now()): number {
    return this.evaluate(now)
  }

  current(now = performance.now()): Degradation {
    const level = this.evaluate(now)
    this.window.advance(now)
    const attempts = this.window.totalAttempts
    const failureRate = attempts > 0 ? this.window.totalFailures / attempts : 0
    const step = STEPS[level]
    const percent = `${Math.round(failureRate * 100)}% of ${attempts} recent attempts failed`
    let reason: string
    if (this.forced) reason = 'set by degrade()'
    else if (step === 'record-only') reason = 'every provider circuit is open'
    else if (step === 'fallback-model' && !(attempts >= this.opts.minAttempts && failureRate >= this.opts.fallbackModelAt))
      reason = 'the first provider circuit is not closed'
    else reason = attempts > 0 ? percent : 'no recent attempts'
    return { step, level, reason, forced: this.forced !== null, failureRate }
  }

  private evaluate(now: number): number {
    if (this.forced) return STEPS.indexOf(this.forced)
    if (!this.anyAvailable()) return 3
    this.window.advance(now)
    const attempts = this.window.totalAttempts
    if (attempts >= this.opts.minAttempts) {
      const failureRate = this.window.totalFailures / attempts
      if (failureRate >= this.opts.skipNonCriticalAt) return 2
      if (failureRate >= this.opts.fallbackModelAt) return 1
    }
    return this.primaryClosed() ? 0 : 1
  }
}
