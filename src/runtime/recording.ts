// What a run records, through the existing `Sink` (COPY to Postgres, or the Avro archive): rows are
// gathered per table and handed over in chunks; a chunk the sink is still writing holds the next
// turns back (the sink's own bound), so nothing piles up unbounded and nothing is dropped. Every
// row carries the experiment id and the tick.
import type { Sink, SinkRows, SinkTable } from '../sink/index.js'

/** Rows per table handed to the sink in one call. */
const CHUNK = 4096
/** Chunks in flight before the producers are held back. */
const IN_FLIGHT = 4

export interface RecordingStats {
  /** Rows handed to the sink and accepted. */
  rows: number
  /** Rows the sink refused (a reason each, in `refusals`). */
  refused: number
  refusals: string[]
}

export class Recorder {
  private readonly buffers = new Map<SinkTable, unknown[]>()
  private readonly writes = new Set<Promise<void>>()
  private failure: unknown
  readonly stats: RecordingStats = { rows: 0, refused: 0, refusals: [] }

  constructor(
    readonly sink: Sink,
    readonly exp: string,
  ) {}

  add<T extends SinkTable>(table: T, row: SinkRows[T]): void {
    let buffer = this.buffers.get(table)
    if (!buffer) {
      buffer = []
      this.buffers.set(table, buffer)
    }
    buffer.push(row)
    if (buffer.length >= CHUNK) this.hand(table)
  }

  /** A promise while too many chunks are being written: the scheduler waits on it before starting turns. */
  congested(): Promise<void> | undefined {
    if (this.writes.size < IN_FLIGHT) return undefined
    return Promise.race(this.writes)
  }

  /** Hands every buffered row over and waits until the sink accepted all of them. */
  async flush(): Promise<void> {
    for (const table of this.buffers.keys()) this.hand(table)
    while (this.writes.size > 0) await Promise.all(this.writes)
    if (this.failure !== undefined) throw this.failure
  }

  /** Flushes, then waits until every row is durable (`sink.flush`). */
  async sync(): Promise<void> {
    await this.flush()
    await this.sink.flush()
  }

  private hand(table: SinkTable): void {
    const rows = this.buffers.get(table)
    if (!rows || rows.length === 0) return
    this.buffers.set(table, [])
    const write: Promise<void> = this.sink.write(table, rows as SinkRows[typeof table][]).then(
      (result) => {
        this.stats.rows += result.accepted
        this.stats.refused += result.rejected.length
        for (const r of result.rejected.slice(0, Math.max(0, 20 - this.stats.refusals.length))) this.stats.refusals.push(`${table}: ${r.reason}`)
        this.writes.delete(write)
      },
      (error: unknown) => {
        this.failure ??= error
        this.writes.delete(write)
      },
    )
    this.writes.add(write)
  }
}
