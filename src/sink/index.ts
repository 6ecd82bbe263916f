// The recording sink: rows batched in Rust, written with COPY to Postgres or to Avro archive files.
export { Sink, SINK_TABLES, migrate, importArchive, type SinkRows, type SinkStats, type SinkTable, type Timestamp, type WriteResult } from './sink.js'
export { SinkOptionsSchema, ImportOptionsSchema, type SinkOptions, type ImportOptions } from './options.js'
