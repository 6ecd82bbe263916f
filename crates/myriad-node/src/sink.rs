//! The recording sink for JS: a call's rows cross in the column form (`sink::Columns`: one string
//! of text values, typed arrays of lengths and numbers, one JSON string of jsonb values and odd
//! rows); decoding, checking, batching and COPY happen off the main thread.

use std::sync::Arc;
use std::time::Duration;

use myriad_core::sink::{self, Sink, SinkOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{guarded, napi_failed, Result};
use crate::settle::{settle, Settled};

/// Options of `NativeSink.open` and `importArchive`, documented in the TS schema
/// `src/sink/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativeSinkConfig {
    pub dsn: Option<String>,
    pub dir: Option<String>,
    pub schema: Option<String>,
    pub batch_rows: Option<u32>,
    pub flush_interval_ms: Option<u32>,
    pub max_pending: Option<u32>,
    pub max_pending_bytes: Option<u32>,
    pub concurrency: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub close_timeout_ms: Option<u32>,
}

fn options(c: NativeSinkConfig) -> SinkOptions {
    let d = SinkOptions::default();
    let ms = |v: Option<u32>, default: Duration| v.map(|v| Duration::from_millis(v as u64)).unwrap_or(default);
    SinkOptions {
        dsn: c.dsn,
        dir: c.dir.map(Into::into),
        schema: c.schema.unwrap_or(d.schema),
        batch_rows: c.batch_rows.map(|v| v as usize).unwrap_or(d.batch_rows),
        flush_interval: ms(c.flush_interval_ms, d.flush_interval),
        max_pending_rows: c.max_pending.map(|v| v as usize).unwrap_or(d.max_pending_rows),
        max_pending_bytes: c.max_pending_bytes.map(|v| v as usize).unwrap_or(d.max_pending_bytes),
        concurrency: c.concurrency.map(|v| v as usize).unwrap_or(d.concurrency),
        connect_timeout: ms(c.connect_timeout_ms, d.connect_timeout),
        close_timeout: ms(c.close_timeout_ms, d.close_timeout),
    }
}

#[napi(object)]
pub struct NativeWriteOutcome {
    pub accepted: u32,
    pub rejected_indexes: Vec<u32>,
    pub rejected_reasons: Vec<String>,
}

/// The sink's counters since it opened (`Sink.stats()` in TypeScript is this type).
#[napi(object)]
pub struct NativeSinkStats {
    pub accepted: f64,
    pub written: f64,
    pub rejected: f64,
    /// Accepted rows given up on (reported by `flush`/`close` as `ERR_SINK_WRITE`).
    pub failed: f64,
    pub retries: f64,
    pub batches: f64,
    /// Accepted rows not yet written.
    pub lag: f64,
}

/// The recording sink: Postgres through binary COPY, or the Avro archive.
#[napi]
pub struct NativeSink {
    sink: Arc<Sink>,
}

#[napi]
impl NativeSink {
    // A static method rather than a factory, as `NativeBus.connect` is.
    #[napi(ts_return_type = "Promise<NativeSink>")]
    pub async fn open(config: NativeSinkConfig) -> Settled<NativeSink> {
        settle(async move { Ok(NativeSink { sink: Arc::new(Sink::open(options(config)).await?) }) }).await
    }

    /// A call's rows in the column form (`myriad_core::sink::Columns`, built by
    /// `src/sink/rows.ts`): `keyed` marks the rows that went whole as JSON; the text and uuid
    /// values are the pieces of `joined` (see `text::Pieces`); times and numbers are in `numbers`;
    /// `json` holds the jsonb values and the keyed rows. Both strings are read as UTF-16 (see
    /// `text`): JSON.stringify escapes lone surrogates, and the pieces mark theirs.
    #[napi(
        ts_args_type = "table: string, keyed: Uint8Array, joined: string, lengths: Uint32Array, numbers: Float64Array, json: string",
        ts_return_type = "Promise<NativeWriteOutcome>"
    )]
    #[allow(clippy::too_many_arguments, reason = "the column form: one N-API value per column, by design")]
    pub fn write(
        &self,
        env: Env,
        table: String,
        keyed: Uint8Array,
        joined: Utf16String,
        lengths: Uint32Array,
        numbers: Float64Array,
        json: Utf16String,
    ) -> Result<AsyncBlock<Settled<NativeWriteOutcome>>> {
        let sink = self.sink.clone();
        let keyed: Vec<bool> = keyed.iter().map(|&k| k != 0).collect();
        let (lengths, numbers) = (lengths.to_vec(), numbers.to_vec());
        let write = async move {
            // Decoding runs here, off the JS thread.
            let json = crate::text::utf16_to_string(&json);
            let pieces = crate::text::Pieces::split(&joined, &lengths).ok_or_else(|| {
                myriad_core::Error::InvalidArg(format!("text lengths do not add up to the {} UTF-16 units sent", joined.len()))
            })?;
            let pieces = pieces.sink_pieces();
            let rows = sink::Rows::Columns(sink::Columns { keyed: &keyed, pieces: &pieces, numbers: &numbers, json: &json });
            let outcome = sink.write_rows(&table, &rows).await?;
            let (rejected_indexes, rejected_reasons) = outcome.rejected.into_iter().map(|r| (r.index as u32, r.reason)).unzip();
            Ok(NativeWriteOutcome { accepted: outcome.accepted as u32, rejected_indexes, rejected_reasons })
        };
        AsyncBlockBuilder::new(async move { Ok(settle(write).await) }).build(&env).map_err(napi_failed)
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn flush(&self) -> Settled<()> {
        settle(self.sink.flush()).await
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn close(&self) -> Settled<()> {
        settle(self.sink.close()).await
    }

    #[napi]
    pub fn stats(&self) -> NativeSinkStats {
        let s = self.sink.stats();
        NativeSinkStats {
            accepted: s.accepted as f64,
            written: s.written as f64,
            rejected: s.rejected as f64,
            failed: s.failed as f64,
            retries: s.retries as f64,
            batches: s.batches as f64,
            lag: s.lag as f64,
        }
    }
}

#[napi(object)]
pub struct NativeSinkColumn {
    pub name: String,
    /// `text`, `uuid`, `timestamptz`, `jsonb`, `float8` or `int8`.
    pub r#type: String,
    pub nullable: bool,
}

/// Each table's columns in schema order: the order of a row sent as an array.
#[napi]
pub fn sink_columns(table: String) -> Result<Vec<NativeSinkColumn>> {
    guarded(|| {
        let table = sink::Table::parse(&table)?;
        Ok(table
            .columns()
            .iter()
            .map(|c| NativeSinkColumn { name: c.name.to_string(), r#type: c.ty.sql_name().to_string(), nullable: c.nullable })
            .collect())
    })
}

/// Brings the schema on `dsn` to the latest version; returns the versions applied by this call.
#[napi(ts_return_type = "Promise<Array<number>>")]
pub async fn migrate_database(dsn: String, schema: Option<String>) -> Settled<Vec<u32>> {
    settle(async move {
        let schema = schema.unwrap_or_else(|| SinkOptions::default().schema);
        Ok(sink::migrate(&dsn, &schema).await?.into_iter().map(|v| v as u32).collect())
    })
    .await
}

#[napi(object)]
pub struct NativeImportReport {
    pub files: u32,
    pub rows: f64,
}

/// Loads every archive file under `dir` into Postgres (each row once, however often it runs).
#[napi(ts_return_type = "Promise<NativeImportReport>")]
pub async fn import_archive(dir: String, config: NativeSinkConfig) -> Settled<NativeImportReport> {
    settle(async move {
        let dsn = config.dsn.clone().ok_or_else(|| myriad_core::Error::InvalidArg("import needs a dsn".into()))?;
        let report = sink::import_archive(std::path::Path::new(&dir), &dsn, &options(NativeSinkConfig { dsn: None, ..config })).await?;
        Ok(NativeImportReport { files: report.files as u32, rows: report.rows as f64 })
    })
    .await
}

/// The rows of `table` in the archive under `dir` (only experiment `exp`'s when given), in file
/// order: a JSON array of rows keyed by column name (`myriad_core::sink::read_archive`), which
/// `src/sink/archive.ts` parses.
#[napi(ts_return_type = "Promise<string>")]
pub async fn read_archive(dir: String, table: String, exp: Option<String>) -> Settled<String> {
    settle(async move { sink::read_archive(std::path::Path::new(&dir), sink::Table::parse(&table)?, exp.as_deref()).await }).await
}

/// The rows of experiment `exp` in `table` on Postgres, as `read_archive` gives them
/// (`myriad_core::sink::read_postgres`), which `src/sink/archive.ts` parses.
#[napi(ts_return_type = "Promise<string>")]
pub async fn read_postgres(dsn: String, schema: Option<String>, table: String, exp: String) -> Settled<String> {
    settle(async move {
        let schema = schema.unwrap_or_else(|| SinkOptions::default().schema);
        sink::read_postgres(&dsn, &schema, sink::Table::parse(&table)?, &exp).await
    })
    .await
}

/// Deletes experiment `exp`'s rows of tick `fromTick` and later on Postgres (a resumed run's
/// first step); resolves with how many.
#[napi(ts_return_type = "Promise<number>")]
pub async fn rewind_postgres(dsn: String, schema: Option<String>, exp: String, from_tick: i64) -> Settled<f64> {
    settle(async move {
        let schema = schema.unwrap_or_else(|| SinkOptions::default().schema);
        Ok(sink::rewind_postgres(&dsn, &schema, &exp, from_tick).await? as f64)
    })
    .await
}
