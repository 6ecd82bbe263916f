//! `myriad db import <dir>`: loads archive files into Postgres through the same COPY pipeline.
//! Batch ids derive from the file's sync marker and the batch's position in the file, so importing
//! the same archive twice (or resuming after a failure) writes each row once.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

use apache_avro::types::Value;

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

pub async fn import_archive(dir: &Path, dsn: &str, options: &SinkOptions) -> Result<ImportReport> {
    let mut files = Vec::new();
    find_archives(dir, &mut files)?;
    files.sort();
    let pipeline = Pipeline::start(dsn, options).await?;
    let mut report = ImportReport::default();
    for path in files {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
        let (batch_rows, batch_bytes) = (options.batch_rows, pipeline.batch_bytes());
        let reading = path.clone();
        let reader = tokio::task::spawn_blocking(move || read_batches(&reading, batch_rows, batch_bytes, &tx));
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            report.rows += batch.rows as u64;
            let pending_bytes = pipeline.reserve(batch.rows, batch.data.len()).await?;
            pipeline.submit(Batch { seq: pipeline.next_seq(), pending_bytes, ..batch });
        }
        reader.await.map_err(|e| Error::Internal(e.to_string()))?;
        report.files += 1;
    }
    pipeline.close().await?;
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

/// Reads `path` into COPY batches of `batch_rows` (fewer if they reach `batch_bytes`), handing
/// each to `out` as it fills.
fn read_batches(path: &Path, batch_rows: usize, batch_bytes: usize, out: &tokio::sync::mpsc::Sender<Result<Batch>>) {
    let corrupt = |reason: String| Error::CorruptArchive { path: path.into(), reason };
    let result = (|| -> Result<()> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = apache_avro::Reader::new(file).map_err(|e| corrupt(e.to_string()))?;
        let meta = reader.user_metadata();
        let text = |k: &str| meta.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        let table = Table::parse(&text("myriad.table").ok_or_else(|| corrupt("no myriad.table metadata: not a Myriad archive".into()))?)?;
        let exp = text("myriad.exp_id").ok_or_else(|| corrupt("no myriad.exp_id metadata".into()))?;
        let key = file_key(path)?;
        let mut rows = CopyRows { bytes: copy::header(), ends: Vec::new() };
        let mut index = 0u64;
        let mut cells = Vec::with_capacity(8);
        let send = |rows: &mut CopyRows, index: &mut u64| {
            let mut data = std::mem::replace(rows, CopyRows { bytes: copy::header(), ends: Vec::new() });
            data.bytes.extend_from_slice(&copy::TRAILER);
            let id = uuid::Uuid::from_u128(xxhash_rust::xxh3::xxh3_128(&[&key[..], &index.to_le_bytes()].concat()));
            *index += 1;
            let batch = Batch { id, seq: 0, table, rows: data.ends.len(), exps: vec![exp.clone()], data: data.bytes, may_exist: true, pending_bytes: 0 };
            out.blocking_send(Ok(batch)).is_ok()
        };
        for value in reader {
            let value = value.map_err(|e| corrupt(e.to_string()))?;
            let Value::Record(fields) = value else { return Err(corrupt("a row is not a record".into())) };
            cells.clear();
            for (column, (_, value)) in table.columns().iter().zip(fields) {
                cells.push(cell(column.ty, value).map_err(|r| corrupt(format!("column {}: {r}", column.name)))?);
            }
            rows.push(&cells);
            if (rows.len() >= batch_rows || rows.bytes.len() >= batch_bytes) && !send(&mut rows, &mut index) {
                return Ok(());
            }
        }
        if !rows.is_empty() {
            send(&mut rows, &mut index);
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = out.blocking_send(Err(e));
    }
}

/// What identifies a file across imports: its 16-byte sync marker, random per file, so two
/// archives never share batch ids while a file keeps its own wherever it is copied.
fn file_key(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let (_, sync, _) = super::avro::read_header(&mut file).map_err(|reason| Error::CorruptArchive { path: path.into(), reason })?;
    Ok(sync.to_vec())
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
