//! The recording sink: rows from the simulation (profiles, states, messages, surveys, errors,
//! metrics, LLM calls), checked, batched by count or interval, and written with binary `COPY` to Postgres —
//! or, without a database, appended to Avro archive files that `myriad db import` loads later.
//!
//! Guarantees: a row is either rejected at [`Sink::write`] with a reason, or accepted; an accepted
//! row is written exactly once (see `postgres.rs`), or reported by [`Sink::flush`]/[`Sink::close`]
//! as failed. A full queue makes `write` wait; nothing is dropped.

mod archive;
mod avro;
mod blocks;
mod columns;
mod copy;
mod given_up;
mod import;
mod pipeline;
mod postgres;
mod read;
mod read_postgres;
mod rewind;
mod rows;
mod schema;

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use archive::Archive;
pub use avro::{archive_path, schema_json};
pub use columns::{Columns, Piece};
pub use import::{import_archive, ImportReport};
pub use read::read_archive;
pub use read_postgres::read_postgres;
pub use rewind::rewind_postgres;
pub use rows::{Rejected, Rows};
pub use schema::{partition_name, ColType, Column, Migration, Table, MIGRATIONS, TABLES};

use crate::{Error, Result};
use pipeline::Pipeline;

/// Where the archive goes when neither `dsn` nor `dir` is given.
pub const DEFAULT_ARCHIVE_DIR: &str = "myriad-archive";

#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// `postgres://user:pass@host:port/db`; without it the sink writes the Avro archive.
    pub dsn: Option<String>,
    /// The archive's directory (default [`DEFAULT_ARCHIVE_DIR`]).
    pub dir: Option<PathBuf>,
    /// The Postgres schema holding the tables (default `myriad`).
    pub schema: String,
    /// Rows per COPY batch (or per Avro block).
    pub batch_rows: usize,
    /// A batch that is not full is written after this long anyway.
    pub flush_interval: Duration,
    /// Rows accepted but not yet written before `write` waits.
    pub max_pending_rows: usize,
    /// Bytes of encoded rows accepted but not yet written before `write` waits: the bound that
    /// holds when rows are large (100,000 pending rows of 100 KB transcripts would be 10 GB).
    pub max_pending_bytes: usize,
    /// Batches written at once, one connection each.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// How long `close` waits for unwritten rows (the database may be down) before reporting them.
    pub close_timeout: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            dsn: None,
            dir: None,
            schema: "myriad".into(),
            batch_rows: 2000,
            flush_interval: Duration::from_millis(200),
            max_pending_rows: 100_000,
            max_pending_bytes: 256 << 20,
            concurrency: 2,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub accepted: u64,
    pub written: u64,
    pub rejected: u64,
    /// Rows accepted but given up on (reported by flush/close).
    pub failed: u64,
    pub retries: u64,
    pub batches: u64,
    /// Rows accepted and not yet written or failed.
    pub lag: u64,
}

enum Target {
    Postgres(Arc<Pipeline>),
    Archive(Arc<Archive>),
}

/// The least `max_pending_bytes`: below it, batches would be cut too small to write efficiently.
const MIN_PENDING_BYTES: usize = 1 << 20;

/// See the module docs. Cheap to share: clone the `Arc`.
pub struct Sink {
    target: Target,
}

impl Sink {
    pub async fn open(options: SinkOptions) -> Result<Sink> {
        if options.batch_rows == 0 || options.max_pending_rows < options.batch_rows || options.concurrency == 0 {
            return Err(Error::InvalidArg("batchRows must be >= 1, maxPending >= batchRows and concurrency >= 1".into()));
        }
        if options.max_pending_bytes < MIN_PENDING_BYTES || options.max_pending_bytes > u32::MAX as usize {
            return Err(Error::InvalidArg(format!("maxPendingBytes must be from {MIN_PENDING_BYTES} (1 MiB) to {}", u32::MAX)));
        }
        schema::validate_schema_name(&options.schema)?;
        let target = match &options.dsn {
            Some(dsn) => {
                if options.dir.is_some() {
                    return Err(Error::InvalidArg("give either dsn (Postgres) or dir (Avro archive), not both".into()));
                }
                Target::Postgres(Pipeline::start(dsn, &options).await?)
            }
            None => Target::Archive(Archive::open(options.dir.clone().unwrap_or_else(|| DEFAULT_ARCHIVE_DIR.into()), &options)?),
        };
        Ok(Sink { target })
    }

    /// Checks `json` (a JSON array of rows for `table`, see `rows`), accepts the good rows and waits
    /// while the queue is full.
    pub async fn write(&self, table: &str, json: &str) -> Result<WriteOutcome> {
        self.write_rows(table, &Rows::Json(json)).await
    }

    /// [`Sink::write`] for rows in either form (the column form is what the TypeScript layer sends).
    pub async fn write_rows(&self, table: &str, rows: &Rows<'_>) -> Result<WriteOutcome> {
        let table = Table::parse(table)?;
        match &self.target {
            Target::Postgres(p) => p.write(table, rows).await,
            Target::Archive(a) => a.write(table, rows).await,
        }
    }

    /// Resolves when every row accepted before the call is durable; rejects with `ERR_SINK_WRITE`
    /// if rows were given up on since the last flush.
    pub async fn flush(&self) -> Result<()> {
        match &self.target {
            Target::Postgres(p) => p.flush().await,
            Target::Archive(a) => a.flush(),
        }
    }

    /// Flushes and releases; later writes fail with `ERR_SINK_CLOSED`.
    pub async fn close(&self) -> Result<()> {
        match &self.target {
            Target::Postgres(p) => p.close().await,
            Target::Archive(a) => a.close().await,
        }
    }

    pub fn stats(&self) -> SinkStats {
        match &self.target {
            Target::Postgres(p) => p.stats(),
            Target::Archive(a) => a.stats(),
        }
    }
}

impl Drop for Sink {
    /// A Postgres sink dropped without `close` (its JS object collected) would keep its writers and
    /// connections for good: they hold the pipeline. It is closed in the background instead, which
    /// writes what it accepted and lets the connections go; with no caller left to tell, a failure
    /// goes to stderr. (The archive does the same in its own `Drop`.)
    fn drop(&mut self) {
        if let Target::Postgres(p) = &self.target {
            let p = p.clone();
            crate::io::runtime().spawn(async move {
                if let Err(e) = p.close().await {
                    eprintln!("myriad: a sink dropped without close(): {e}");
                }
            });
        }
    }
}

/// Runs the migrations on `dsn` (what `myriad db migrate` does); returns the versions applied now.
pub async fn migrate(dsn: &str, schema: &str) -> Result<Vec<i32>> {
    schema::validate_schema_name(schema)?;
    let target = postgres::PgTarget::new(dsn, schema, Duration::from_secs(10))?;
    let mut conn = target.connect().await.map_err(pipeline::connect_error)?;
    target.migrate(&mut conn).await.map_err(pipeline::connect_error)
}

/// Calls `tick` on `target` every `every` (on the I/O runtime) until the target is dropped or
/// `tick` returns false.
fn spawn_ticker<T: Send + Sync + 'static>(target: Weak<T>, every: Duration, tick: fn(&T) -> bool) {
    crate::io::runtime().spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match target.upgrade() {
                Some(t) if tick(&t) => {}
                _ => break,
            }
        }
    });
}

/// 50 ms doubling to 5 s, with up to 50% jitter so writers that failed together do not return together.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(7)).min(5000);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos() as u64;
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}
