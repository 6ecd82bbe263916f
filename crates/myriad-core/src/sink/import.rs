//! `myriad db import <dir>`: loads archive files into Postgres through the same COPY pipeline.
//!
//! Each batch is one block of a file (or a part of a large one), and its id derives from the file's
//! sync marker and the block's offset. Blocks are only ever appended, never rewritten, so the ids
//! stay the same however the file grows: importing twice, resuming after a failure, or importing
//! again after later runs appended to the archive writes each row once. (Ids by the batch's row
//! position would not: a later import would cut the batches elsewhere, and skip or double rows.)

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;

use super::avro::schema_json;
use super::blocks::BlockReader;
use super::copy::{self, CopyRows};
use super::pipeline::Pipeline;
use super::postgres::Batch;
use super::rows::Cell;
use super::schema::{ColType, Table};
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

fn find_archives(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            find_archives(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "avro") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads `path` into COPY batches, a block (or a part of one) each, handing each to `out`.
fn read_batches(path: &Path, out: &tokio::sync::mpsc::Sender<Result<Batch>>) {
    let corrupt = |reason: String| Error::CorruptArchive { path: path.into(), reason };
    let result = (|| -> Result<()> {
        let mut file = BlockReader::open(path)?;
        let table =
            Table::parse(&file.meta_text("myriad.table").ok_or_else(|| corrupt("no myriad.table metadata: not a Myriad archive".into()))?)?;
        let exp = file.meta_text("myriad.exp_id").ok_or_else(|| corrupt("no myriad.exp_id metadata".into()))?;
        if file.meta_text("avro.codec").is_some_and(|codec| codec != "null") {
            return Err(corrupt("a compressed file: the sink writes them uncompressed (codec null)".into()));
        }
        file.check_schema(table)?;
        let schema = Schema::parse_str(&schema_json(table)).map_err(|e| Error::Internal(e.to_string()))?;
        let decoder = GenericDatumReader::builder(&schema).build().map_err(|e| Error::Internal(e.to_string()))?;
        let mut cells = Vec::with_capacity(8);
        while let Some(block) = file.next_block()? {
            let mut data = &block.data[..];
            let fresh = || CopyRows { bytes: copy::header(), ends: Vec::new() };
            let mut rows = fresh();
            let mut part = 0u64;
            for row in 0..block.rows {
                let Value::Record(fields) = decoder.read_value(&mut data).map_err(|e| corrupt(e.to_string()))? else {
                    return Err(corrupt("a row is not a record".into()));
                };
                cells.clear();
                for (column, (_, value)) in table.columns().iter().zip(fields) {
                    cells.push(cell(column.ty, value).map_err(|r| corrupt(format!("column {}: {r}", column.name)))?);
                }
                rows.push(&cells);
                if rows.len() >= PART_ROWS || rows.bytes.len() >= PART_BYTES || row + 1 == block.rows {
                    let key = [&file.sync[..], &block.offset.to_le_bytes(), &part.to_le_bytes()].concat();
                    let mut done = std::mem::replace(&mut rows, fresh());
                    done.bytes.extend_from_slice(&copy::TRAILER);
                    let batch = Batch {
                        id: uuid::Uuid::from_u128(xxhash_rust::xxh3::xxh3_128(&key)),
                        seq: 0,
                        table,
                        rows: done.len(),
                        exps: vec![exp.clone()],
                        data: done.bytes,
                        may_exist: true,
                        pending_bytes: 0,
                    };
                    if out.blocking_send(Ok(batch)).is_err() {
                        return Ok(());
                    }
                    part += 1;
                }
            }
            if !data.is_empty() {
                return Err(corrupt(format!("the block at byte {} has {} bytes after its {} rows", block.offset, data.len(), block.rows)));
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = out.blocking_send(Err(e));
    }
}

fn cell(ty: ColType, value: Value) -> std::result::Result<Cell<'static>, String> {
    Ok(match (ty, value) {
        (_, Value::Union(_, inner)) => return cell(ty, *inner),
        (_, Value::Null) => Cell::Null,
        (ColType::Text | ColType::Jsonb, Value::String(s)) if ty == ColType::Text => Cell::Text(Cow::Owned(s)),
        (ColType::Jsonb, Value::String(s)) => Cell::Json(Cow::Owned(s)),
        (ColType::Uuid, Value::Uuid(u)) => Cell::Uuid(*u.as_bytes()),
        (ColType::Uuid, Value::String(s)) => Cell::Uuid(*uuid::Uuid::try_parse(&s).map_err(|e| e.to_string())?.as_bytes()),
        (ColType::Timestamptz, Value::TimestampMicros(us) | Value::Long(us)) => Cell::Timestamp(us),
        (ColType::Float8, Value::Double(v)) => Cell::Float(v),
        (ty, v) => return Err(format!("expected {ty:?}, found {v:?}")),
    })
}
