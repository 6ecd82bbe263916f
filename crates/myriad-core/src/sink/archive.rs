//! The archive target: rows appended to Avro files, one per table and experiment. Writing a block
//! is one file write, so `write` does it inline as blocks fill, a ticker writes the partial ones,
//! and `flush` and `close` fsync every file.
//!
//! When the disk refuses a block (full, or failing), the file is cut back to its last whole block
//! and the block stays pending, to be written whole by the next try: a file never holds a torn or
//! a doubled block. Pending rows are bounded as in the Postgres pipeline: past `max_pending_rows`
//! or `max_pending_bytes`, `write` waits, retrying with backoff, until the disk takes them; `close`
//! retries until its timeout and then reports the rows it gives up on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::avro::{archive_path, encode_row, AvroFile};
use super::given_up::GivenUp;
use super::rows::{check, Cell, Rows};
use super::schema::Table;
use super::{SinkOptions, SinkStats, WriteOutcome};
use crate::{Error, Result};

/// Rows and bytes appended to blocks but not yet written, across every file.
#[derive(Default)]
struct Pending {
    rows: usize,
    bytes: usize,
}

#[derive(Default)]
struct Files {
    open: HashMap<(Table, String), AvroFile>,
    pending: Pending,
}

pub struct Archive {
    dir: PathBuf,
    batch_rows: usize,
    max_pending_rows: usize,
    max_pending_bytes: usize,
    close_timeout: Duration,
    files: Mutex<Files>,
    accepted: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    blocks: AtomicU64,
    closed: AtomicBool,
}

/// A call's accepted rows for one experiment: Avro-encoded, and where each row ends.
type Group = (String, Vec<u8>, Vec<usize>);

impl Archive {
    pub fn open(dir: PathBuf, options: &SinkOptions) -> Result<Arc<Archive>> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let archive = Arc::new(Archive {
            dir,
            batch_rows: options.batch_rows,
            max_pending_rows: options.max_pending_rows,
            max_pending_bytes: options.max_pending_bytes,
            close_timeout: options.close_timeout,
            files: Mutex::new(Files::default()),
            accepted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        // Partial blocks go to the OS after each interval (`flush` is what fsyncs), and blocks the
        // disk refused are tried again; the error shows at the next flush.
        super::spawn_ticker(Arc::downgrade(&archive), options.flush_interval, |a: &Archive| {
            let open = !a.closed.load(Ordering::Acquire);
            if open {
                let _ = a.write_blocks(&mut a.files.lock().unwrap(), false);
            }
            open
        });
        Ok(archive)
    }

    pub async fn write(&self, table: Table, rows: &Rows<'_>) -> Result<WriteOutcome> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SinkClosed);
        }
        // Encoded outside the lock, grouped by experiment (one file each).
        let mut groups: Vec<Group> = Vec::new();
        let rejected = check(table, rows, |_, cells| {
            let Cell::Text(exp) = &cells[0] else { unreachable!("exp_id is a required text column") };
            let group = match groups.iter().position(|(e, ..)| e == exp) {
                Some(at) => &mut groups[at],
                None => {
                    groups.push((exp.to_string(), Vec::new(), Vec::new()));
                    groups.last_mut().unwrap()
                }
            };
            encode_row(&mut group.1, table, cells);
            group.2.push(group.1.len());
        })?;
        let accepted: usize = groups.iter().map(|g| g.2.len()).sum();
        let bytes: usize = groups.iter().map(|g| g.1.len()).sum();
        if accepted == 0 {
            // Nothing to hold back: the reasons are the whole answer, full disk or not.
            self.rejected.fetch_add(rejected.len() as u64, Ordering::Relaxed);
            return Ok(WriteOutcome { accepted, rejected });
        }
        let mut attempt = 0;
        loop {
            {
                let mut files = self.files.lock().unwrap();
                if self.closed.load(Ordering::Acquire) {
                    return Err(Error::SinkClosed);
                }
                let pending = &files.pending;
                // A call larger than the bound goes alone, once nothing else is pending.
                if pending.rows == 0
                    || (pending.rows + accepted <= self.max_pending_rows && pending.bytes + bytes <= self.max_pending_bytes)
                {
                    self.append(&mut files, table, groups)?;
                    self.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
                    self.rejected.fetch_add(rejected.len() as u64, Ordering::Relaxed);
                    return Ok(WriteOutcome { accepted, rejected });
                }
                // Blocks are written as they fill, so rows pile up to the bound only while the disk
                // refuses them, or in the partial blocks of many files: write every block now.
                if self.write_blocks(&mut files, false).is_ok() {
                    continue;
                }
            }
            attempt += 1;
            tokio::time::sleep(super::backoff(attempt)).await;
        }
    }

    /// Appends each group to its file's block, writing a block each time one fills, so blocks hold
    /// `batch_rows` rows however large the call. (While the disk refuses them, the rest of the
    /// call joins the pending block instead of trying a write per row.)
    fn append(&self, files: &mut Files, table: Table, groups: Vec<Group>) -> Result<()> {
        // Open every file first, so a file that cannot be opened refuses the call before any of
        // its rows are taken.
        for (exp, ..) in &groups {
            if let std::collections::hash_map::Entry::Vacant(slot) = files.open.entry((table, exp.clone())) {
                slot.insert(AvroFile::open(&archive_path(&self.dir, table, exp), table, exp)?);
            }
        }
        let Files { open, pending } = files;
        for (exp, bytes, ends) in groups {
            let file = open.get_mut(&(table, exp)).expect("opened above");
            let (mut row, mut refused) = (0, false);
            while row < ends.len() {
                let room = if refused { usize::MAX } else { self.batch_rows.saturating_sub(file.pending_rows()).max(1) };
                let to = ends.len().min(row.saturating_add(room));
                let (start, end) = (if row == 0 { 0 } else { ends[row - 1] }, ends[to - 1]);
                file.append(&bytes[start..end], to - row);
                pending.rows += to - row;
                pending.bytes += end - start;
                row = to;
                // The rows are accepted either way: a block the disk refuses stays pending, and
                // the next write, tick or flush tries again (a flush reports the error).
                if file.pending_rows() >= self.batch_rows && self.write_block(pending, file).is_err() {
                    refused = true;
                }
            }
        }
        Ok(())
    }

    fn write_block(&self, pending: &mut Pending, file: &mut AvroFile) -> Result<()> {
        let (rows, bytes) = file.write_block()?;
        if rows > 0 {
            pending.rows -= rows;
            pending.bytes -= bytes;
            self.written.fetch_add(rows as u64, Ordering::Relaxed);
            self.blocks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes every file's pending block, each tried even when another fails; with `sync`, also
    /// makes the files durable. Returns the first error.
    fn write_blocks(&self, files: &mut Files, sync: bool) -> Result<()> {
        let Files { open, pending } = files;
        let mut outcome = Ok(());
        for file in open.values_mut() {
            let result = self.write_block(pending, file).and_then(|()| if sync { file.sync() } else { Ok(()) });
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }

    /// Resolves when every accepted row is durable. If the disk refuses a block, rejects with its
    /// error; the rows stay pending and are tried again.
    pub fn flush(&self) -> Result<()> {
        self.write_blocks(&mut self.files.lock().unwrap(), true)
    }

    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let deadline = Instant::now() + self.close_timeout;
        let mut attempt = 0;
        while let Err(e) = self.flush() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.give_up(e));
            }
            attempt += 1;
            tokio::time::sleep(super::backoff(attempt).min(left)).await;
        }
        self.files.lock().unwrap().open.clear();
        Ok(())
    }

    /// After the close timeout: one last try per file, then every row still pending counts as
    /// failed and is reported.
    fn give_up(&self, last: Error) -> Error {
        let mut files = self.files.lock().unwrap();
        let Files { open, pending } = &mut *files;
        let mut given_up = GivenUp::default();
        for ((table, _), mut file) in open.drain() {
            if let Err(e) = self.write_block(pending, &mut file) {
                given_up.add(table, file.pending_rows(), e.to_string());
                self.failed.fetch_add(file.pending_rows() as u64, Ordering::Relaxed);
            }
        }
        *pending = Pending::default();
        match given_up.take_report() {
            Some(report) => Error::SinkWrite(format!("gave up after the close timeout of {:?}: {report}", self.close_timeout)),
            // Every block was written; what failed was making a file durable.
            None => last,
        }
    }

    pub fn stats(&self) -> SinkStats {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (accepted, written, failed) = (load(&self.accepted), load(&self.written), load(&self.failed));
        SinkStats {
            accepted,
            written,
            rejected: load(&self.rejected),
            failed,
            retries: 0,
            batches: load(&self.blocks),
            lag: accepted.saturating_sub(written + failed),
        }
    }
}

impl Drop for Archive {
    /// A sink dropped without `close` (its JS object collected) still writes the rows it accepted,
    /// as far as the disk allows; with no caller left to tell, a failure goes to stderr.
    fn drop(&mut self) {
        let mut files = std::mem::take(self.files.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if let Err(e) = self.write_blocks(&mut files, false) {
            eprintln!("myriad: an archive sink dropped without close() could not write its last rows: {e}");
        }
    }
}
