// One call's deadline and cancellation: a single timer and the caller's signal, shared by every
// wait of the call (token buckets, queues, backoff) and by each HTTP attempt.
import type { EventEmitter } from 'node:events'

import type { DeadlineQueue, Expiring } from './deadlines.js'
import { LLMError } from './errors.js'

type Listener = () => void

/**
 * The scope is also the abort signal undici gets. undici takes anything EventEmitter-shaped
 * (`aborted`, `reason`, `on`/`once`/`removeListener`); an AbortController with its EventTarget
 * costs a sizeable share of a call's CPU (docs/benchmarks/async.md), this costs nothing, and a call makes one attempt at a time.
 */
export class CallScope implements Expiring {
  readonly startedAt: number
  readonly deadline: number
  /** Set once the call is cancelled (its timeout fired or the caller aborted); every wait rejects with it. */
  reason: LLMError | undefined
  prevDue: Expiring | undefined = undefined
  nextDue: Expiring | undefined = undefined
  queued = false
  /** undici's listener for the attempt in flight (one at a time; more are kept in `moreListeners`). */
  private listener: Listener | undefined
  private moreListeners: Listener[] | undefined
  private cancelWait: (() => void) | undefined
  private readonly onCallerAbort: (() => void) | undefined

  constructor(
    private readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
    private readonly deadlines: DeadlineQueue,
  ) {
    this.startedAt = performance.now()
    this.deadline = this.startedAt + timeoutMs
    if (callerSignal?.aborted) {
      this.reason = new LLMError('aborted', 'the call was aborted before it started', {}, { cause: callerSignal.reason })
      return
    }
    if (Number.isFinite(timeoutMs)) deadlines.add(this)
    if (callerSignal) {
      this.onCallerAbort = () => this.cancel(new LLMError('aborted', 'the call was aborted', {}, { cause: callerSignal.reason }))
      callerSignal.addEventListener('abort', this.onCallerAbort, { once: true })
    }
  }

  /** The deadline passed (called by the DeadlineQueue). */
  expire(): void {
    this.cancel(new LLMError('timeout', `the call did not finish within ${this.timeoutMs} ms`))
  }

  get remainingMs(): number {
    return this.deadline - performance.now()
  }

  /** The signal for the HTTP attempt in progress. */
  get signal(): EventEmitter {
    return this as unknown as EventEmitter
  }

  get aborted(): boolean {
    return this.reason !== undefined
  }

  on(_event: 'abort', listener: Listener): this {
    if (!this.listener) this.listener = listener
    else (this.moreListeners ??= []).push(listener)
    return this
  }

  once(event: 'abort', listener: Listener): this {
    return this.on(event, listener) // cancel() runs listeners once anyway
  }

  removeListener(_event: 'abort', listener: Listener): this {
    if (this.listener === listener) this.listener = undefined
    else if (this.moreListeners) {
      const i = this.moreListeners.indexOf(listener)
      if (i >= 0) this.moreListeners.splice(i, 1)
    }
    return this
  }

  /** Throws the cancellation reason, if any (checked between the steps of a call). */
  check(): void {
    if (this.reason) throw this.reason
  }

  /** Waits `ms`, or rejects as soon as the call is cancelled. */
  sleep(ms: number): Promise<void> {
    this.check()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.cancelWait = undefined
        resolve()
      }, ms)
      this.cancelWait = () => {
        clearTimeout(timer)
        reject(this.reason)
      }
    })
  }

  /** Waits for `ready`; on cancellation calls `abandon` and rejects with the reason. */
  waitFor(ready: Promise<void>, abandon: () => void): Promise<void> {
    this.check()
    return new Promise((resolve, reject) => {
      this.cancelWait = () => {
        abandon()
        reject(this.reason)
      }
      ready.then(() => {
        if (this.reason) return // cancelled meanwhile: cancelWait already abandoned and rejected
        this.cancelWait = undefined
        resolve()
      })
    })
  }

  cancel(reason: LLMError): void {
    if (this.reason) return
    this.reason = reason
    const wait = this.cancelWait
    this.cancelWait = undefined
    wait?.()
    const first = this.listener
    const more = this.moreListeners
    this.listener = undefined
    this.moreListeners = undefined
    first?.()
    if (more) for (const listener of more) listener()
  }

  dispose(): void {
    this.deadlines.remove(this)
    if (this.onCallerAbort) this.callerSignal?.removeEventListener('abort', this.onCallerAbort)
  }
}
