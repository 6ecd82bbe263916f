//! The Postgres pipeline: accepted rows collect in one open batch per table; a batch is sealed when
//! it reaches `batch_rows` (or [`Pipeline::batch_bytes`] of data) or when the flush interval
//! passes, and `concurrency` writers (one connection each) COPY sealed batches, retrying with
//! backoff until each lands exactly once.
//! Backpressure: two semaphores, `max_pending_rows` row permits and `max_pending_bytes` byte
//! permits, taken by `write` and given back when the rows' batch is written (or given up on).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};

use super::copy::{self, CopyRows};
use super::given_up::GivenUp;
use super::postgres::{Batch, Failure, PgTarget};
use super::rows::{check, Cell, Rejected, Rows};
use super::schema::Table;
use super::{SinkOptions, SinkStats, WriteOutcome};
use crate::io::runtime;
use crate::{Error, Result};

pub(super) fn connect_error(f: Failure) -> Error {
    match f {
        Failure::Transient(m) | Failure::Permanent(m) => Error::SinkConnect(m),
    }
}

struct OpenBatch {
    rows: CopyRows,
    exps: Vec<String>,
    /// Byte permits its rows hold.
    pending_bytes: usize,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    batches: AtomicU64,
}

pub struct Pipeline {
    target: PgTarget,
    batch_rows: usize,
    max_pending: usize,
    max_pending_bytes: usize,
    close_timeout: Duration,
    open: Mutex<HashMap<Table, OpenBatch>>,
    queue: Mutex<Option<mpsc::UnboundedSender<Batch>>>,
    permits: Semaphore,
    byte_permits: Semaphore,
    /// Sealed batches not yet written or given up on, by sequence number.
    unfinished: Mutex<BTreeSet<u64>>,
    next_seq: AtomicU64,
    progress: Notify,
    given_up: Mutex<GivenUp>,
    counters: Counters,
    closed: AtomicBool,
    give_up: AtomicBool,
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Pipeline {
    pub async fn start(dsn: &str, options: &SinkOptions) -> Result<Arc<Pipeline>> {
        let target = PgTarget::new(dsn, &options.schema, options.connect_timeout)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let pipeline = Arc::new(Pipeline {
            target,
            batch_rows: options.batch_rows,
            max_pending: options.max_pending_rows,
            max_pending_bytes: options.max_pending_bytes,
            close_timeout: options.close_timeout,
            open: Mutex::new(HashMap::new()),
            queue: Mutex::new(Some(tx)),
            permits: Semaphore::new(options.max_pending_rows),
            byte_permits: Semaphore::new(options.max_pending_bytes),
            unfinished: Mutex::new(BTreeSet::new()),
            next_seq: AtomicU64::new(0),
            progress: Notify::new(),
            given_up: Mutex::new(GivenUp::default()),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            give_up: AtomicBool::new(false),
            writers: Mutex::new(Vec::new()),
        });
        // Connect and migrate before accepting rows: a wrong DSN fails `open`, not a later flush.
        let p = pipeline.clone();
        let first = runtime()
            .spawn(async move {
                let mut conn = p.target.connect().await.map_err(connect_error)?;
                p.target.migrate(&mut conn).await.map_err(connect_error)?;
                Ok::<_, Error>(conn)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut first = Some(first);
        let mut writers = Vec::new();
        for _ in 0..options.concurrency {
            writers.push(runtime().spawn(writer(pipeline.clone(), rx.clone(), first.take())));
        }
        *pipeline.writers.lock().unwrap() = writers;
        // Seal batches that are not full after each interval, so a trickle of rows still lands.
        super::spawn_ticker(Arc::downgrade(&pipeline), options.flush_interval, |p: &Pipeline| {
            let running = !(p.closed.load(Ordering::Acquire) && p.queue.lock().unwrap().is_none());
            if running {
                p.seal_all();
            }
            running
        });
        Ok(pipeline)
    }

    pub async fn write(&self, table: Table, rows: &Rows<'_>) -> Result<WriteOutcome> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SinkClosed);
        }
        let mut encoded = CopyRows::default();
        let mut indexes = Vec::new();
        let mut exps: Vec<String> = Vec::new();
        let mut rejected = check(table, rows, |index, cells| {
            if let Cell::Text(exp) = &cells[0] {
                if !exps.iter().any(|e| e == exp) {
                    exps.push(exp.to_string());
                }
            }
            encoded.push(cells);
            indexes.push(index);
        })?;
        self.counters.rejected.fetch_add(rejected.len() as u64, Ordering::Relaxed);
        let accepted = encoded.len();
        // In slices of at most a batch and of at most every byte permit, so one huge call cannot
        // ask for more permits than exist.
        let mut from = 0;
        while from < accepted {
            let (to, bytes) = self.slice(&encoded, from);
            let admitted = self.admit(to - from, bytes).await;
            if !admitted || !self.append(table, &encoded, from, to, &exps) {
                // The sink closed while this call waited for room: the rest is refused, not lost.
                if admitted {
                    self.permits.add_permits(to - from);
                    self.byte_permits.add_permits(bytes);
                }
                if from == 0 {
                    return Err(Error::SinkClosed);
                }
                rejected.extend(
                    indexes[from..].iter().map(|&index| Rejected { index, reason: "the sink closed before the row was accepted".into() }),
                );
                rejected.sort_by_key(|r| r.index);
                return Ok(WriteOutcome { accepted: from, rejected });
            }
            self.counters.accepted.fetch_add((to - from) as u64, Ordering::Relaxed);
            from = to;
        }
        Ok(WriteOutcome { accepted, rejected })
    }

    /// The rows from `from` that one admission takes: at most a batch of them, holding at most
    /// every byte permit (at least one row). Returns the end and the byte permits they need.
    fn slice(&self, encoded: &CopyRows, from: usize) -> (usize, usize) {
        let mut to = from;
        let mut bytes = 0;
        while to < encoded.len() && to - from < self.batch_rows {
            let charge = self.charge(encoded, to);
            if to > from && bytes + charge > self.max_pending_bytes {
                break;
            }
            bytes += charge;
            to += 1;
        }
        (to, bytes)
    }

    /// Byte permits row `i` holds: its size, or every permit for a row larger than all of them.
    fn charge(&self, encoded: &CopyRows, i: usize) -> usize {
        encoded.row_len(i).min(self.max_pending_bytes)
    }

    /// Waits for `rows` row permits and `bytes` byte permits; false (holding none) if the sink closed.
    async fn admit(&self, rows: usize, bytes: usize) -> bool {
        let Ok(row_permit) = self.permits.acquire_many(rows as u32).await else { return false };
        let Ok(byte_permit) = self.byte_permits.acquire_many(bytes as u32).await else { return false };
        row_permit.forget();
        byte_permit.forget();
        true
    }

    /// The most data a batch takes before it is sealed: a quarter of the byte permits, so that
    /// batches being written and one filling fit at once, and at most 16 MiB, one COPY's worth.
    fn batch_bytes(&self) -> usize {
        (self.max_pending_bytes / 4).min(16 << 20)
    }

    /// Moves rows `from..to` of `encoded` into the table's open batch, with the byte permits they
    /// hold, sealing it whenever it fills. False if the sink closed: `closed` is set under the same
    /// lock, so rows are either appended before close seals the open batches, or not at all.
    fn append(&self, table: Table, encoded: &CopyRows, mut from: usize, to: usize, exps: &[String]) -> bool {
        let mut open = self.open.lock().unwrap();
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        while from < to {
            let batch = open.entry(table).or_insert_with(|| OpenBatch {
                rows: CopyRows { bytes: copy::header(), ends: Vec::new() },
                exps: Vec::new(),
                pending_bytes: 0,
            });
            // As many rows as fit by count and by size; a row larger than a batch goes alone.
            let mut take = 0;
            let mut size = batch.rows.bytes.len();
            while from + take < to && batch.rows.len() + take < self.batch_rows {
                let row = encoded.row_len(from + take);
                if batch.rows.len() + take > 0 && size + row > self.batch_bytes() {
                    break;
                }
                size += row;
                take += 1;
            }
            if take > 0 {
                let start = if from == 0 { 0 } else { encoded.ends[from - 1] };
                let end = encoded.ends[from + take - 1];
                let base = batch.rows.bytes.len();
                batch.rows.bytes.extend_from_slice(&encoded.bytes[start..end]);
                batch.rows.ends.extend(encoded.ends[from..from + take].iter().map(|e| e - start + base));
                batch.pending_bytes += (from..from + take).map(|i| self.charge(encoded, i)).sum::<usize>();
                for exp in exps {
                    if !batch.exps.contains(exp) {
                        batch.exps.push(exp.clone());
                    }
                }
                from += take;
            }
            if batch.rows.len() >= self.batch_rows || from < to {
                let full = open.remove(&table).unwrap();
                self.seal(table, full);
            }
        }
        true
    }

    fn seal(&self, table: Table, open: OpenBatch) {
        let mut data = open.rows.bytes;
        data.extend_from_slice(&copy::TRAILER);
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let batch = Batch {
            id: uuid::Uuid::new_v4(),
            seq,
            table,
            rows: open.rows.ends.len(),
            exps: open.exps,
            data,
            may_exist: false,
            pending_bytes: open.pending_bytes,
        };
        self.submit(batch);
    }

    /// Queues a sealed batch for the writers (import uses it with deterministic ids).
    pub(super) fn submit(&self, batch: Batch) {
        self.unfinished.lock().unwrap().insert(batch.seq);
        let refused = match self.queue.lock().unwrap().as_ref() {
            Some(queue) => queue.send(batch).err().map(|e| e.0),
            None => Some(batch),
        };
        if let Some(batch) = refused {
            self.finish(&batch, Some("the sink closed before the batch could be queued".into()));
        }
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }

    /// Admits a batch made elsewhere (import) of `rows` rows and `bytes` bytes; returns the byte
    /// permits it holds, for [`Batch::pending_bytes`].
    pub(super) async fn reserve(&self, rows: usize, bytes: usize) -> Result<usize> {
        let bytes = bytes.min(self.max_pending_bytes);
        if !self.admit(rows.min(self.max_pending), bytes).await {
            return Err(Error::SinkClosed);
        }
        self.counters.accepted.fetch_add(rows as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    fn seal_all(&self) {
        let mut open = self.open.lock().unwrap();
        for (table, batch) in std::mem::take(&mut *open) {
            if !batch.rows.is_empty() {
                self.seal(table, batch);
            }
        }
    }

    /// Marks `batch` done: written (`failure` None) or given up on with a reason.
    fn finish(&self, batch: &Batch, failure: Option<String>) {
        match failure {
            None => {
                self.counters.written.fetch_add(batch.rows as u64, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            Some(reason) => {
                self.counters.failed.fetch_add(batch.rows as u64, Ordering::Relaxed);
                self.given_up.lock().unwrap().add(batch.table, batch.rows, reason);
            }
        }
        self.permits.add_permits(batch.rows.min(self.max_pending));
        self.byte_permits.add_permits(batch.pending_bytes);
        self.unfinished.lock().unwrap().remove(&batch.seq);
        self.progress.notify_waiters();
    }

    pub async fn flush(&self) -> Result<()> {
        self.seal_all();
        let target = self.next_seq.load(Ordering::Acquire);
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.unfinished.lock().unwrap().first().is_none_or(|&s| s >= target) {
                break;
            }
            notified.await;
        }
        match self.given_up.lock().unwrap().take_report() {
            None => Ok(()),
            Some(report) => Err(Error::SinkWrite(report)),
        }
    }

    pub async fn close(&self) -> Result<()> {
        {
            let _appending = self.open.lock().unwrap();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        let flushed = tokio::time::timeout(self.close_timeout, self.flush()).await;
        if flushed.is_err() {
            // The database stayed unreachable: stop retrying and report what was not written.
            self.give_up.store(true, Ordering::Release);
        }
        drop(self.queue.lock().unwrap().take());
        let writers = std::mem::take(&mut *self.writers.lock().unwrap());
        for w in writers {
            let _ = w.await;
        }
        self.permits.close();
        self.byte_permits.close();
        match flushed {
            Ok(result) => result,
            Err(_) => {
                let report = self.given_up.lock().unwrap().take_report().unwrap_or_default();
                Err(Error::SinkWrite(format!("gave up after the close timeout of {:?}: {report}", self.close_timeout)))
            }
        }
    }

    pub fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let (accepted, written, failed) =
            (c.accepted.load(Ordering::Relaxed), c.written.load(Ordering::Relaxed), c.failed.load(Ordering::Relaxed));
        SinkStats {
            accepted,
            written,
            rejected: c.rejected.load(Ordering::Relaxed),
            failed,
            retries: c.retries.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            lag: accepted.saturating_sub(written + failed),
        }
    }
}

/// One writer: takes sealed batches and writes each until it lands, reconnecting with backoff.
async fn writer(p: Arc<Pipeline>, queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Batch>>>, mut conn: Option<sqlx::PgConnection>) {
    loop {
        let Some(batch) = queue.lock().await.recv().await else { break };
        let mut attempt = 0u32;
        let mut permanent_once = false;
        let outcome = loop {
            if p.give_up.load(Ordering::Acquire) {
                break Some("the database stayed unreachable until the close timeout".to_string());
            }
            let result = match conn.as_mut() {
                Some(c) => p.target.write(c, &batch, attempt > 0).await,
                None => match p.target.connect().await {
                    Ok(c) => {
                        conn = Some(c);
                        continue;
                    }
                    Err(f) => Err(f),
                },
            };
            match result {
                Ok(()) => break None,
                Err(Failure::Permanent(reason)) if permanent_once => break Some(reason),
                Err(Failure::Permanent(_)) => {
                    // Once more, on a fresh connection and re-checked partitions (one may have been
                    // dropped under us); a second refusal is final.
                    permanent_once = true;
                    p.target.forget_partitions(&batch);
                }
                Err(Failure::Transient(_)) => {}
            }
            conn = None;
            attempt += 1;
            p.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(super::backoff(attempt)).await;
        };
        p.finish(&batch, outcome);
    }
    if let Some(c) = conn {
        let _ = sqlx::Connection::close(c).await;
    }
}
