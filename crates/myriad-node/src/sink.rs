//! The recording sink for JS: a call's rows cross in the column form (`sink::Columns`: one string
//! of text values, typed arrays of lengths and numbers, one JSON string of jsonb values and odd
//! rows); decoding, checking, batching and COPY happen off the main thread.

use std::sync::Arc;
use std::time::Duration;

use myriad_core::sink::{self, Sink, SinkOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::to_js;

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

#[napi(object)]
pub struct NativeSinkStats {
    pub accepted: f64,
    pub written: f64,
    pub rejected: f64,
    pub failed: f64,
    pub retries: f64,
    pub batches: f64,
    pub lag: f64,
}

#[napi]
pub struct NativeSink {
    sink: Arc<Sink>,
}

#[napi]
impl NativeSink {
    #[napi(factory)]
    pub async fn open(config: NativeSinkConfig) -> Result<NativeSink> {
        let sink = Sink::open(options(config)).await.map_err(to_js)?;
        Ok(NativeSink { sink: Arc::new(sink) })
    }

    /// A call's rows in the column form (`myriad_core::sink::Columns`, built by
    /// `src/sink-rows.ts`): `keyed` marks the rows that went whole as JSON; the text and uuid
    /// values are the pieces of `joined` (see `text::Pieces`); times and numbers are in `numbers`;
    /// `json` holds the jsonb values and the keyed rows. Both strings are read as UTF-16 (see
    /// `text`): JSON.stringify escapes lone surrogates, and the pieces mark theirs.
    #[napi(ts_args_type = "table: string, keyed: Uint8Array, joined: string, lengths: Uint32Array, numbers: Float64Array, json: string")]
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        env: Env,
        table: String,
        keyed: Uint8Array,
        joined: Utf16String,
        lengths: Uint32Array,
        numbers: Float64Array,
        json: Utf16String,
    ) -> Result<AsyncBlock<NativeWriteOutcome>> {
        let sink = self.sink.clone();
        let keyed: Vec<bool> = keyed.iter().map(|&k| k != 0).collect();
        let (lengths, numbers) = (lengths.to_vec(), numbers.to_vec());
        AsyncBlockBuilder::new(async move {
            // Decoding runs here, off the JS thread.
            let json = crate::text::utf16_to_string(&json);
            let pieces = crate::text::Pieces::split(&joined, &lengths).ok_or_else(|| {
                to_js(myriad_core::Error::InvalidArg(format!("text lengths do not add up to the {} UTF-16 units sent", joined.len())))
            })?;
            let pieces = pieces.sink_pieces();
            let rows = sink::Rows::Columns(sink::Columns { keyed: &keyed, pieces: &pieces, numbers: &numbers, json: &json });
            let outcome = sink.write_rows(&table, &rows).await.map_err(to_js)?;
            let (rejected_indexes, rejected_reasons) = outcome.rejected.into_iter().map(|r| (r.index as u32, r.reason)).unzip();
            Ok(NativeWriteOutcome { accepted: outcome.accepted as u32, rejected_indexes, rejected_reasons })
        })
        .build(&env)
    }

    #[napi]
    pub async fn flush(&self) -> Result<()> {
        self.sink.flush().await.map_err(to_js)
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.sink.close().await.map_err(to_js)
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
    /// `text`, `uuid`, `timestamptz`, `jsonb` or `float8`.
    pub r#type: String,
    pub nullable: bool,
}

/// Each table's columns in schema order: the order of a row sent as an array.
#[napi]
pub fn sink_columns(table: String) -> Result<Vec<NativeSinkColumn>> {
    let table = sink::Table::parse(&table).map_err(to_js)?;
    Ok(table
        .columns()
        .iter()
        .map(|c| NativeSinkColumn { name: c.name.to_string(), r#type: c.ty.sql_name().to_string(), nullable: c.nullable })
        .collect())
}

/// Brings the schema on `dsn` to the latest version; returns the versions applied by this call.
#[napi]
pub async fn migrate_database(dsn: String, schema: Option<String>) -> Result<Vec<u32>> {
    let applied = sink::migrate(&dsn, schema.as_deref().unwrap_or("myriad")).await.map_err(to_js)?;
    Ok(applied.into_iter().map(|v| v as u32).collect())
}

#[napi(object)]
pub struct NativeImportReport {
    pub files: u32,
    pub rows: f64,
}

/// Loads every archive file under `dir` into Postgres (each row once, however often it runs).
#[napi]
pub async fn import_archive(dir: String, config: NativeSinkConfig) -> Result<NativeImportReport> {
    let dsn = config.dsn.clone().ok_or_else(|| crate::invalid("import needs a dsn"))?;
    let report =
        sink::import_archive(std::path::Path::new(&dir), &dsn, &options(NativeSinkConfig { dsn: None, ..config })).await.map_err(to_js)?;
    Ok(NativeImportReport { files: report.files as u32, rows: report.rows as f64 })
}
