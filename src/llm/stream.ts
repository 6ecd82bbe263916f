// `llm.stream()`: the consumer side (chunks as an async iterable, the whole reply as `result`) and
// the pump that reads the SSE body into it.
import type { Dispatcher } from 'undici'

import { LLMError } from './errors.js'
import { SseDecoder } from './sse.js'
import type { StreamChunk, StreamRequest, StreamResult } from './types.js'
import { readStreamEvent } from './wire.js'

/**
 * The pump (the call reading the SSE body) pushes chunks in; `for await` takes them out. Leaving
 * the loop early (`break`, `return`, a throw) stops the pump and closes the connection, like the
 * request's `until` hook. The call runs whether or not anyone iterates: `result` always settles.
 */
export class LLMStream implements AsyncIterable<StreamChunk> {
  readonly result: Promise<StreamResult>
  /** Set by the pump while a body is open: closes it. */
  onStop: (() => void) | undefined
  stopRequested = false
  private chunks: StreamChunk[] = []
  private finished = false
  private failure: unknown
  private wake: (() => void) | undefined

  constructor(run: (stream: LLMStream) => Promise<StreamResult>) {
    this.result = run(this).then(
      (result) => {
        this.finish()
        return result
      },
      (error: unknown) => {
        this.finish(error)
        throw error
      },
    )
    // A stream consumed only through its iterator must not leave an unhandled rejection behind.
    this.result.catch(() => {})
  }

  push(chunk: StreamChunk): void {
    this.chunks.push(chunk)
    this.wakeConsumer()
  }

  /** Early return from the consumer side. */
  stop(): void {
    if (this.stopRequested) return
    this.stopRequested = true
    this.onStop?.()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamChunk> {
    try {
      for (;;) {
        if (this.chunks.length > 0) {
          const batch = this.chunks
          this.chunks = []
          for (const chunk of batch) yield chunk
          continue
        }
        if (this.finished) {
          if (this.failure !== undefined) throw this.failure
          return
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve
        })
      }
    } finally {
      // Reached on a normal end too, where stopping is a no-op.
      if (!this.finished) this.stop()
    }
  }

  private finish(error?: unknown) {
    this.finished = true
    this.failure = error
    this.wakeConsumer()
  }

  private wakeConsumer() {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}

export interface Pumped {
  text: string
  finishReason: string | null
  promptTokens: number | undefined
  completionTokens: number | undefined
  stoppedEarly: boolean
}

export interface PumpOptions {
  until: StreamRequest['until']
  idleTimeoutMs: number
  provider: string
  model: string
  /** Turns a read error into the call's LLMError. */
  classify(error: unknown): LLMError
  /** Told when the first chunk went out (from then on the attempt cannot be retried). */
  emitted(): void
}

/** Reads an SSE body into `stream` until [DONE], the `until` hook, the consumer leaving, or an error. */
export async function pumpStream(body: Dispatcher.ResponseData['body'], stream: LLMStream, opts: PumpOptions): Promise<Pumped> {
  const decoder = new SseDecoder()
  const out: Pumped = { text: '', finishReason: null, promptTokens: undefined, completionTokens: undefined, stoppedEarly: false }
  let idleError: LLMError | undefined
  const stop = () => {
    out.stoppedEarly = true
    body.destroy()
  }
  // Our own idle timer, refreshed per read: undici's bodyTimeout ticks at ~0.5 s, and a stream that
  // trickles faster than that never trips it.
  const idle = setTimeout(() => {
    idleError = new LLMError('timeout', `${opts.provider}: no stream data for ${opts.idleTimeoutMs} ms`, { provider: opts.provider, model: opts.model })
    body.destroy(idleError)
  }, opts.idleTimeoutMs)
  stream.onStop = stop
  if (stream.stopRequested) stop()
  try {
    // Read to the end even after [DONE]: leaving the loop early would destroy the body and with
    // it a socket the pool could reuse.
    let sawDone = false
    reading: for await (const bytes of body) {
      idle.refresh()
      if (sawDone) continue
      for (const data of decoder.push(bytes as Uint8Array)) {
        if (data === '[DONE]') {
          sawDone = true
          break
        }
        const event = readStreamEvent(data, opts.provider, opts.model)
        if (event.promptTokens !== undefined) out.promptTokens = event.promptTokens
        if (event.completionTokens !== undefined) out.completionTokens = event.completionTokens
        if (event.finishReason) out.finishReason = event.finishReason
        if (!event.delta && !event.finishReason) continue
        out.text += event.delta
        const chunk = { delta: event.delta, text: out.text, finishReason: out.finishReason }
        opts.emitted()
        stream.push(chunk)
        if (opts.until?.(out.text, chunk)) {
          stop()
          break reading
        }
      }
    }
  } catch (error) {
    // Closing the body ourselves ends the loop with an error that is not a failure.
    if (!out.stoppedEarly) throw idleError ?? opts.classify(error)
  } finally {
    clearTimeout(idle)
    stream.onStop = undefined
  }
  return out
}
