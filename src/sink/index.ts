// The recording sink: rows batched in Rust, written with COPY to Postgres or to Avro archive files.
export { Sink, migrate, importArchive, type SinkStats, type WriteResult } from './sink.js'
export { SINK_TABLES, type ArchivedRow, type SinkRows, type SinkTable, type Timestamp } from './tables.js'
export { readArchive, readPostgres } from './read.js'
export { SinkOptionsSchema, ImportOptionsSchema, type SinkOptions, type ImportOptions } from './options.js'
