//! `myriad db import <dir>`: loads archive files into Postgres through the same COPY pipeline.
//!
//! Each batch is one block of a file (or a part of a large one), and its id derives from the file's
//! sync marker and the block's offset. Blocks are only ever appended, never rewritten, so the ids
//! stay the same however the file grows: importing twice, resuming after a failure, or importing
//! again after later runs appended to the archive writes each row once. (Ids by the batch's row
//! position would not: a later import would cut the batches elsewhere, and skip or double rows.)

use std::path::{Path, PathBuf};

use super::copy::{self, CopyRows};
use super::pipeline::Pipeline;
use super::postgres::Batch;
use super::read::{find_archives, RowFile};
use super::SinkOptions;
use crate::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub files: usize,
    pub rows: u64,
}

/// Rows and bytes of a batch when a block is cut into parts (a block holds the sink's `batchRows`
/// rows, or more after the disk refused writes). Constants, not options: the ids depend on them.
const PART_ROWS: usize = 2000;
const PART_BYTES: usize = 16 << 20;

/// Loads every archive file under `dir`. Of `options`, `batch_rows` is not used: batches follow
/// the files' blocks (see the module doc).
pub async fn import_archive(dir: &Path, dsn: &str, options: &SinkOptions) -> Result<ImportReport> {
    let mut files = Vec::new();
    find_archives(dir, &mut files)?;
    files.sort();
    let pipeline = Pipeline::start(dsn, options).await?;
    // Closed whatever happens, so a corrupt file does not leave the writers and their connections
    // behind; the batches already handed over still land (a rerun skips them).
    let imported = import_files(&pipeline, files).await;
    let closed = pipeline.close().await;
    let report = imported?;
    closed?;
    Ok(report)
}

async fn import_files(pipeline: &Pipeline, files: Vec<PathBuf>) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    for path in files {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
        let reading = path.clone();
        let reader = tokio::task::spawn_blocking(move || read_batches(&reading, &tx));
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            report.rows += batch.rows as u64;
            let pending_bytes = pipeline.reserve(batch.rows, batch.data.len()).await?;
            pipeline.submit(Batch { seq: pipeline.next_seq(), pending_bytes, ..batch });
        }
        reader.await.map_err(|e| Error::Internal(e.to_string()))?;
        report.files += 1;
    }
    Ok(report)
}

/// Reads `path` into COPY batches, a block (or a part of one) each, handing each to `out`.
fn read_batches(path: &Path, out: &tokio::sync::mpsc::Sender<Result<Batch>>) {
    let result = (|| -> Result<()> {
        let mut file = RowFile::open(path)?;
        while let Some(block) = file.blocks.next_block()? {
            let fresh = || CopyRows { bytes: copy::header(), ends: Vec::new() };
            let mut rows = fresh();
            let (mut part, mut taken) = (0u64, true);
            file.rows(&block, |row, cells| {
                rows.push(cells);
                if rows.len() >= PART_ROWS || rows.bytes.len() >= PART_BYTES || row + 1 == block.rows {
                    let key = [&file.blocks.sync[..], &block.offset.to_le_bytes(), &part.to_le_bytes()].concat();
                    let mut done = std::mem::replace(&mut rows, fresh());
                    done.bytes.extend_from_slice(&copy::TRAILER);
                    let batch = Batch {
                        id: uuid::Uuid::from_u128(xxhash_rust::xxh3::xxh3_128(&key)),
                        seq: 0,
                        table: file.table,
                        rows: done.len(),
                        exps: vec![file.exp.clone()],
                        data: done.bytes,
                        may_exist: true,
                        pending_bytes: 0,
                    };
                    // The import has stopped (an earlier batch failed): read no further.
                    taken = out.blocking_send(Ok(batch)).is_ok();
                    part += 1;
                }
                taken
            })?;
            if !taken {
                return Ok(());
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = out.blocking_send(Err(e));
    }
}
