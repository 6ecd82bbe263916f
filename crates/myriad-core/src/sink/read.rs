//! Reading archive files' rows back: into COPY batches (`import.rs`), and as JSON rows for
//! [`read_archive`] (tests, and replaying a run from its archive). Either way a file must be a
//! Myriad file under this version's schema of its table, and is read block by block up to its
//! last whole block (`blocks.rs`).

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;

use super::avro::{archive_path, schema_json};
use super::blocks::{Block, BlockReader};
use super::rows::Cell;
use super::schema::{ColType, Table};
use crate::{Error, Result};

/// An archive file open for reading its rows.
pub(super) struct RowFile {
    path: PathBuf,
    pub blocks: BlockReader,
    pub table: Table,
    pub exp: String,
    schema: Schema,
}

impl RowFile {
    /// Opens `path`, checking its metadata and schema.
    pub fn open(path: &Path) -> Result<RowFile> {
        let corrupt = |reason: &str| Error::CorruptArchive { path: path.into(), reason: reason.into() };
        let blocks = BlockReader::open(path)?;
        let table = blocks.meta_text("myriad.table").ok_or_else(|| corrupt("no myriad.table metadata: not a Myriad archive"))?;
        let table = Table::parse(&table)?;
        let exp = blocks.meta_text("myriad.exp_id").ok_or_else(|| corrupt("no myriad.exp_id metadata"))?;
        if blocks.meta_text("avro.codec").is_some_and(|codec| codec != "null") {
            return Err(corrupt("a compressed file: the sink writes them uncompressed (codec null)"));
        }
        blocks.check_schema(table)?;
        let schema = Schema::parse_str(&schema_json(table)).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(RowFile { path: path.into(), blocks, table, exp, schema })
    }

    pub fn corrupt(&self, reason: String) -> Error {
        Error::CorruptArchive { path: self.path.clone(), reason }
    }

    /// Decodes `block`'s rows in order, handing each one's index and cells to `row`, until `row`
    /// returns false.
    pub fn rows(&self, block: &Block, mut row: impl FnMut(usize, &[Cell<'static>]) -> bool) -> Result<()> {
        let decoder = GenericDatumReader::builder(&self.schema).build().map_err(|e| Error::Internal(e.to_string()))?;
        let mut data = &block.data[..];
        let mut cells = Vec::with_capacity(16);
        for index in 0..block.rows {
            let Value::Record(fields) = decoder.read_value(&mut data).map_err(|e| self.corrupt(e.to_string()))? else {
                return Err(self.corrupt("a row is not a record".into()));
            };
            cells.clear();
            for (column, (_, value)) in self.table.columns().iter().zip(fields) {
                cells.push(cell(column.ty, value).map_err(|r| self.corrupt(format!("column {}: {r}", column.name)))?);
            }
            if !row(index, &cells) {
                return Ok(());
            }
        }
        if !data.is_empty() {
            let reason = format!("the block at byte {} has {} bytes after its {} rows", block.offset, data.len(), block.rows);
            return Err(self.corrupt(reason));
        }
        Ok(())
    }
}

fn cell(ty: ColType, value: Value) -> std::result::Result<Cell<'static>, String> {
    Ok(match (ty, value) {
        (_, Value::Union(_, inner)) => return cell(ty, *inner),
        (_, Value::Null) => Cell::Null,
        (ColType::Text, Value::String(s)) => Cell::Text(Cow::Owned(s)),
        (ColType::Jsonb, Value::String(s)) => Cell::Json(Cow::Owned(s)),
        (ColType::Uuid, Value::Uuid(u)) => Cell::Uuid(*u.as_bytes()),
        (ColType::Uuid, Value::String(s)) => Cell::Uuid(*uuid::Uuid::try_parse(&s).map_err(|e| e.to_string())?.as_bytes()),
        (ColType::Timestamptz, Value::TimestampMicros(us) | Value::Long(us)) => Cell::Timestamp(us),
        (ColType::Float8, Value::Double(v)) => Cell::Float(v),
        (ColType::Int8, Value::Long(v)) => Cell::Int(v),
        (ColType::Bool, Value::Boolean(v)) => Cell::Bool(v),
        (ty, v) => return Err(format!("expected {ty:?}, found {v:?}")),
    })
}

/// Every `.avro` file under `dir`, at any depth.
pub(super) fn find_archives(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
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

/// The rows of `table` in the archive under `dir` (only experiment `exp`'s when given), in file
/// order, files by path: a JSON array of rows keyed by column name, every column present. Text
/// and uuid values are strings, times epoch milliseconds, jsonb values the JSON itself, float8 and
/// int8 values numbers, and no value null, so each row is one that [`super::Sink::write`] takes.
/// A torn block at the end of a file is left out (its rows were never flushed); a file that is not
/// a valid archive file of this version is `ERR_CORRUPT_ARCHIVE`.
pub async fn read_archive(dir: &Path, table: Table, exp: Option<&str>) -> Result<String> {
    let (dir, exp) = (dir.to_owned(), exp.map(str::to_owned));
    tokio::task::spawn_blocking(move || read_rows(&dir, table, exp.as_deref())).await.map_err(|e| Error::Internal(e.to_string()))?
}

fn read_rows(dir: &Path, table: Table, exp: Option<&str>) -> Result<String> {
    let mut files = Vec::new();
    match exp {
        Some(exp) => {
            std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
            let path = archive_path(dir, table, exp);
            if path.exists() {
                files.push(path);
            }
        }
        None => {
            find_archives(dir, &mut files)?;
            let name = format!("{}.avro", table.name());
            files.retain(|p| p.file_name().is_some_and(|n| *n == *name));
            files.sort();
        }
    }
    let mut out = b"[".to_vec();
    for path in files {
        let mut file = RowFile::open(&path)?;
        if file.table != table {
            return Err(file.corrupt(format!("its myriad.table is {}, not the {} its name says", file.table.name(), table.name())));
        }
        // A folder of hashed ids could in principle hold another experiment's file.
        if exp.is_some_and(|exp| exp != file.exp) {
            continue;
        }
        while let Some(block) = file.blocks.next_block()? {
            let mut bad = None;
            file.rows(&block, |_, cells| {
                bad = push_row(&mut out, table, cells).err();
                bad.is_none()
            })?;
            if let Some(reason) = bad {
                return Err(file.corrupt(reason));
            }
        }
    }
    out.push(b']');
    String::from_utf8(out).map_err(|e| Error::Internal(e.to_string()))
}

/// Appends one row as a JSON object (see [`read_archive`]).
fn push_row(out: &mut Vec<u8>, table: Table, cells: &[Cell]) -> std::result::Result<(), String> {
    if out.len() > 1 {
        out.push(b','); // after the previous row (`out` starts with the array's `[`)
    }
    out.push(b'{');
    for (i, (column, cell)) in table.columns().iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Column names are plain identifiers ([a-z_]+): no escaping needed.
        let _ = write!(out, "\"{}\":", column.name);
        let _ = match cell {
            Cell::Null => write!(out, "null"),
            Cell::Text(s) => serde_json::to_writer(&mut *out, &**s).map_err(std::io::Error::other),
            Cell::Uuid(u) => write!(out, "\"{}\"", uuid::Uuid::from_bytes(*u).hyphenated()),
            Cell::Timestamp(us) if us % 1000 == 0 => write!(out, "{}", us / 1000),
            Cell::Timestamp(us) => serde_json::to_writer(&mut *out, &(*us as f64 / 1000.0)).map_err(std::io::Error::other),
            Cell::Json(s) => {
                serde_json::from_str::<serde::de::IgnoredAny>(s).map_err(|e| format!("column {}: not JSON: {e}", column.name))?;
                out.extend_from_slice(s.as_bytes());
                Ok(())
            }
            Cell::Float(v) => serde_json::to_writer(&mut *out, v).map_err(std::io::Error::other),
            Cell::Int(v) => write!(out, "{v}"),
            Cell::Bool(v) => write!(out, "{v}"),
        };
    }
    out.push(b'}');
    Ok(())
}
