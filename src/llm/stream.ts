// The consumer side of `llm.stream()`: chunks as an async iterable, the whole reply as `result`.
import type { StreamChunk, StreamResult } from './types.js'

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
