import { invalidArg, parseOptions } from '../errors/index.js'
import { type Binding, callNative, native, requireNative } from '../native/index.js'
import { type ImportOptions, ImportOptionsSchema, type SinkOptions, SinkOptionsSchema } from './options.js'
import { type EncodedRows, rowEncoder } from './rows.js'
import { SINK_TABLES, type SinkRows, type SinkTable } from './tables.js'

// Still importable from here, where they were defined before tables.ts.
export { SINK_TABLES, type SinkRows, type SinkTable, type Timestamp } from './tables.js'

export interface WriteResult {
  accepted: number
  /** Rows refused before reaching the database, by index in the call's array. */
  rejected: { index: number; reason: string }[]
}

/** The sink's counters since it opened (the binding's own type, documented in crates/myriad-node/src/sink.rs). */
export type SinkStats = Binding.NativeSinkStats

/**
 * Records simulation output: rows are checked and batched in Rust and written with binary COPY to
 * Postgres (each accepted row exactly once, across dropped connections and server restarts), or to
 * Avro archive files without a database.
 */
export class Sink {
  private readonly inner: Binding.NativeSink

  private constructor(inner: Binding.NativeSink) {
    this.inner = requireNative(inner, native.NativeSink, 'Sink', 'Sink.open(options)')
  }

  static async open(options?: SinkOptions): Promise<Sink> {
    const config = parseOptions(SinkOptionsSchema, options, 'Sink options')
    return new Sink(await callNative(() => native.NativeSink.open(config)))
  }

  /**
   * Accepts many rows at once. Rows that cannot be stored are rejected with a reason and the rest
   * go on; waits while `maxPending` rows are queued (nothing is dropped).
   */
  write<T extends SinkTable>(table: T, rows: readonly SinkRows[T][]): Promise<WriteResult> {
    if (!SINK_TABLES.includes(table)) return Promise.reject(invalidArg(`unknown table '${table}'; tables: ${SINK_TABLES.join(', ')}`))
    if (!Array.isArray(rows)) return Promise.reject(invalidArg('rows must be an array of objects'))
    if (rows.length === 0) return Promise.resolve({ accepted: 0, rejected: [] })
    // Not an async function: its suspended frame would hold `rows` (and what they reference) until
    // the native side answers, long enough under backpressure for them all to be promoted to V8's
    // old generation and to pile up there as garbage between full collections.
    let sent: Promise<Binding.NativeWriteOutcome>
    try {
      sent = this.send(table, rows)
    } catch (error) {
      return Promise.reject(error)
    }
    return sent.then((out) => ({
      accepted: out.accepted,
      rejected: out.rejectedIndexes.map((index, i) => ({ index, reason: out.rejectedReasons[i] })),
    }))
  }

  /**
   * Encodes and hands over, outside the async `write`, so that its suspended frame cannot keep the
   * call's encoded strings (hundreds of KB) alive while the native side works: strings that live
   * on get promoted, and old-generation growth brings full collections of a heap that may hold
   * millions of rows. (A precaution; no difference was measured either way.)
   */
  private send(table: SinkTable, rows: readonly unknown[]): Promise<Binding.NativeWriteOutcome> {
    let encoded: EncodedRows
    try {
      encoded = rowEncoder(table)(rows)
    } catch (e) {
      throw invalidArg(`rows cannot be serialised (${(e as Error).message}); a BigInt or a cycle?`)
    }
    const { keyed, joined, lengths, numbers, json } = encoded
    return callNative(() => this.inner.write(table, keyed, joined, lengths, numbers, json))
  }

  /**
   * Resolves when every row accepted so far is durable; rejects `ERR_SINK_WRITE` if rows were given
   * up on, or (archive) `ERR_IO` while the disk refuses a block, whose rows stay pending.
   */
  flush(): Promise<void> {
    return callNative(() => this.inner.flush())
  }

  /** Flushes and releases connections and files; later writes reject with `ERR_SINK_CLOSED`. */
  close(): Promise<void> {
    return callNative(() => this.inner.close())
  }

  stats(): SinkStats {
    return this.inner.stats()
  }
}

/** Creates or upgrades the schema (what `myriad db migrate` runs); returns the versions applied now. */
export function migrate(dsn: string, options: { schema?: string } = {}): Promise<number[]> {
  return callNative(() => native.migrateDatabase(dsn, options.schema))
}

/**
 * Loads every archive file under `dir` with COPY (what `myriad db import` runs), a batch per block
 * of each file. Rerunning it, also after later runs appended to the archive, writes nothing twice.
 */
export async function importArchive(dir: string, options: ImportOptions): Promise<{ files: number; rows: number }> {
  const config = parseOptions(ImportOptionsSchema, options, 'importArchive options')
  return callNative(() => native.importArchive(dir, config))
}
