//! The archive target: rows appended to Avro files, one per table and experiment. Writing a block
//! is a buffered file write, so `write` does it inline (no queue to bound); `flush` and `close`
//! fsync every file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::avro::{archive_path, encode_row, AvroFile};
use super::rows::{check, Cell, Rows};
use super::schema::Table;
use super::{SinkOptions, SinkStats, WriteOutcome};
use crate::{Error, Result};

pub struct Archive {
    dir: PathBuf,
    batch_rows: usize,
    files: Mutex<HashMap<(Table, String), AvroFile>>,
    accepted: AtomicU64,
    written: AtomicU64,
    rejected: AtomicU64,
    blocks: AtomicU64,
    closed: AtomicBool,
}

impl Archive {
    pub fn open(dir: PathBuf, options: &SinkOptions) -> Result<Arc<Archive>> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let archive = Arc::new(Archive {
            dir,
            batch_rows: options.batch_rows,
            files: Mutex::new(HashMap::new()),
            accepted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        // Partial blocks go to the OS after each interval (`flush` is what fsyncs); a failing disk
        // shows up at the next write or flush, which return the error.
        super::spawn_ticker(Arc::downgrade(&archive), options.flush_interval, |a: &Archive| {
            let open = !a.closed.load(Ordering::Acquire);
            if open {
                let _ = a.write_blocks(false);
            }
            open
        });
        Ok(archive)
    }

    pub fn write(&self, table: Table, rows: &Rows<'_>) -> Result<WriteOutcome> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SinkClosed);
        }
        // Encoded outside the lock, grouped by experiment (one file each).
        let mut groups: Vec<(String, Vec<u8>, usize)> = Vec::new();
        let rejected = check(table, rows, |_, cells| {
            let Cell::Text(exp) = &cells[0] else { unreachable!("exp_id is a required text column") };
            let group = match groups.iter().position(|(e, ..)| e == exp) {
                Some(at) => &mut groups[at],
                None => {
                    groups.push((exp.to_string(), Vec::new(), 0));
                    groups.last_mut().unwrap()
                }
            };
            encode_row(&mut group.1, table, cells);
            group.2 += 1;
        })?;
        let accepted: usize = groups.iter().map(|g| g.2).sum();
        let mut files = self.files.lock().unwrap();
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SinkClosed);
        }
        // Open every file first, so a file that cannot be opened refuses the call before any of
        // its rows are taken.
        for (exp, ..) in &groups {
            if let std::collections::hash_map::Entry::Vacant(slot) = files.entry((table, exp.clone())) {
                slot.insert(AvroFile::open(&archive_path(&self.dir, table, exp), table, exp)?);
            }
        }
        let mut full = Vec::new();
        for (exp, bytes, rows) in groups {
            let file = files.get_mut(&(table, exp.clone())).expect("opened above");
            file.append(&bytes, rows);
            if file.pending_rows() >= self.batch_rows {
                full.push(exp);
            }
        }
        self.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
        self.rejected.fetch_add(rejected.len() as u64, Ordering::Relaxed);
        for exp in full {
            // The rows are accepted either way: a block that fails to write now stays pending,
            // and the next write or flush tries again (and reports the error).
            if let Ok(rows) = files.get_mut(&(table, exp)).expect("opened above").write_block() {
                self.written.fetch_add(rows as u64, Ordering::Relaxed);
                self.blocks.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(WriteOutcome { accepted, rejected })
    }

    /// Writes every pending block; with `sync`, also makes the files durable.
    fn write_blocks(&self, sync: bool) -> Result<()> {
        let mut files = self.files.lock().unwrap();
        for file in files.values_mut() {
            let rows = file.write_block()?;
            if rows > 0 {
                self.written.fetch_add(rows as u64, Ordering::Relaxed);
                self.blocks.fetch_add(1, Ordering::Relaxed);
            }
            if sync {
                file.sync()?;
            }
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.write_blocks(true)
    }

    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.write_blocks(true);
        self.files.lock().unwrap().clear();
        result
    }

    pub fn stats(&self) -> SinkStats {
        let (accepted, written) = (self.accepted.load(Ordering::Relaxed), self.written.load(Ordering::Relaxed));
        SinkStats {
            accepted,
            written,
            rejected: self.rejected.load(Ordering::Relaxed),
            failed: 0,
            retries: 0,
            batches: self.blocks.load(Ordering::Relaxed),
            lag: accepted.saturating_sub(written),
        }
    }
}
