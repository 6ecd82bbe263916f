//! The local archive: one Avro object-container file per table and experiment
//! (`<dir>/<exp>/<table>.avro`), readable by any Avro tool and loadable with `myriad db import`.
//!
//! Writing uses its own encoder: the record layout is fixed per table, so each row is a few varints
//! and byte copies, several times faster than building `apache_avro::types::Value`s. The
//! `apache-avro` crate reads the files back (import, tests), which checks the two agree.
//! Files are appended to across runs: the header's sync marker is read back and reused.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::blocks::{check_schema, read_header, whole_blocks_end};
use super::rows::Cell;
use super::schema::{ColType, Table};
use crate::{Error, Result};

pub(super) const MAGIC: &[u8; 4] = b"Obj\x01";

/// The Avro schema of a table: nullable columns are `["null", T]` unions; times are
/// `timestamp-micros`; int8 columns are longs; jsonb columns are strings holding JSON text (marked
/// `"sqlType": "jsonb"`). A change of columns changes the schema, and files under another schema
/// are refused (see `blocks::check_schema`).
pub fn schema_json(table: Table) -> String {
    let fields: Vec<serde_json::Value> = table
        .columns()
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColType::Text => serde_json::json!("string"),
                ColType::Uuid => serde_json::json!({"type": "string", "logicalType": "uuid"}),
                ColType::Timestamptz => serde_json::json!({"type": "long", "logicalType": "timestamp-micros"}),
                ColType::Jsonb => serde_json::json!({"type": "string", "sqlType": "jsonb"}),
                ColType::Float8 => serde_json::json!("double"),
                ColType::Int8 => serde_json::json!("long"),
                ColType::Bool => serde_json::json!("boolean"),
            };
            if c.nullable {
                serde_json::json!({"name": c.name, "type": ["null", ty], "default": null})
            } else {
                serde_json::json!({"name": c.name, "type": ty})
            }
        })
        .collect();
    serde_json::json!({"type": "record", "name": table.name(), "namespace": "myriad", "fields": fields}).to_string()
}

/// Appends one row in the table's Avro record layout.
pub fn encode_row(out: &mut Vec<u8>, table: Table, cells: &[Cell]) {
    for (column, cell) in table.columns().iter().zip(cells) {
        if column.nullable {
            long(out, if matches!(cell, Cell::Null) { 0 } else { 1 });
        }
        match cell {
            Cell::Null => {}
            Cell::Text(s) | Cell::Json(s) => bytes(out, s.as_bytes()),
            Cell::Uuid(u) => bytes(out, uuid::Uuid::from_bytes(*u).hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes()),
            Cell::Timestamp(us) | Cell::Int(us) => long(out, *us),
            Cell::Float(v) => out.extend_from_slice(&v.to_le_bytes()),
            Cell::Bool(v) => out.push(u8::from(*v)),
        }
    }
}

fn long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64; // zig-zag
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// A container file open for appending blocks.
pub struct AvroFile {
    path: PathBuf,
    file: File,
    /// The file's length through its last whole block: where a failed write is cut back to.
    end: u64,
    /// A failed write may have left part of a block past `end` that could not be cut yet.
    torn: bool,
    sync: [u8; 16],
    block: Vec<u8>,
    block_rows: usize,
}

impl AvroFile {
    /// Opens `path` for appending, writing the header first if the file is new. An existing file
    /// must carry this table's schema.
    pub fn open(path: &Path, table: Table, exp_id: &str) -> Result<AvroFile> {
        let io = |e| Error::io(path, e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
        // One writer per file: blocks from two writers would interleave, and cutting back a failed
        // write assumes nobody else appends. The lock goes with the file when the sink closes. (A
        // file system without locks is written to unlocked, as before.)
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            let busy = "another sink, in this process or another, is writing this archive file";
            return Err(io(std::io::Error::new(std::io::ErrorKind::WouldBlock, busy)));
        }
        let schema = schema_json(table);
        let sync = if file.metadata().map_err(io)?.len() == 0 {
            let sync: [u8; 16] = rand_sync(path);
            let mut header = Vec::with_capacity(schema.len() + 128);
            header.extend_from_slice(MAGIC);
            long(&mut header, 4);
            for (k, v) in
                [("avro.schema", schema.as_str()), ("avro.codec", "null"), ("myriad.table", table.name()), ("myriad.exp_id", exp_id)]
            {
                bytes(&mut header, k.as_bytes());
                bytes(&mut header, v.as_bytes());
            }
            long(&mut header, 0);
            header.extend_from_slice(&sync);
            if let Err(e) = file.write_all(&header) {
                // Half a header would make the file unreadable for good; an empty one starts over.
                let _ = file.set_len(0);
                return Err(io(e));
            }
            sync
        } else {
            let (meta, sync, header_len) = read_header(&mut file).map_err(|reason| Error::CorruptArchive { path: path.into(), reason })?;
            check_schema(&meta, table, path)?;
            // A run that died mid-block leaves a torn block at the end; blocks appended after it
            // would be unreadable, so it is cut off. Its rows were never flushed (flush writes
            // whole blocks, then fsyncs), so nothing that was promised durable is lost.
            let len = file.metadata().map_err(io)?.len();
            let whole = whole_blocks_end(&mut file, path, header_len, &sync, len)?;
            if whole < len {
                eprintln!("myriad: {}: cut {} bytes of a torn block left by an interrupted run", path.display(), len - whole);
                file.set_len(whole).map_err(io)?;
            }
            file.seek(SeekFrom::End(0)).map_err(io)?;
            sync
        };
        let end = file.metadata().map_err(io)?.len();
        Ok(AvroFile { path: path.into(), file, end, torn: false, sync, block: Vec::new(), block_rows: 0 })
    }

    pub fn append(&mut self, encoded: &[u8], rows: usize) {
        self.block.extend_from_slice(encoded);
        self.block_rows += rows;
    }

    pub fn pending_rows(&self) -> usize {
        self.block_rows
    }

    /// Writes the pending rows as one block (to the OS; [`AvroFile::sync`] makes it durable) and
    /// returns its rows and data bytes. If the write fails, what it left is cut off and the rows
    /// stay pending, so the next try writes the block whole: no torn block inside the file, and
    /// no row twice.
    pub fn write_block(&mut self) -> Result<(usize, usize)> {
        if self.block_rows == 0 {
            return Ok((0, 0));
        }
        let io = |e| Error::io(&self.path, e);
        if self.torn {
            self.file.set_len(self.end).map_err(io)?;
            self.torn = false;
        }
        let mut head = Vec::with_capacity(20);
        long(&mut head, self.block_rows as i64);
        long(&mut head, self.block.len() as i64);
        // Unbuffered (the block is already one buffer): a failure is known here, with nothing of
        // the block left in a buffer to reach the file later.
        let written = [&head[..], &self.block[..], &self.sync[..]].iter().try_for_each(|part| self.file.write_all(part));
        if let Err(e) = written {
            self.torn = self.file.set_len(self.end).is_err();
            return Err(io(e));
        }
        self.end += (head.len() + self.block.len() + self.sync.len()) as u64;
        let done = (self.block_rows, self.block.len());
        self.block.clear();
        self.block_rows = 0;
        Ok(done)
    }

    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}

/// 16 bytes that differ per file and per run (the spec only asks that they be unlikely in data).
fn rand_sync(path: &Path) -> [u8; 16] {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(path.as_os_str().as_encoded_bytes(), nanos as u64);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&nanos.to_le_bytes(), std::process::id() as u64);
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&a.to_le_bytes());
    s[8..].copy_from_slice(&b.to_le_bytes());
    s
}

/// Where the archive keeps `table` of `exp_id`: ids that are safe as directory names are used as
/// they are, others by hash (the file's `myriad.exp_id` metadata keeps the exact id).
pub fn archive_path(dir: &Path, table: Table, exp_id: &str) -> PathBuf {
    let plain = !exp_id.is_empty()
        && exp_id.len() <= 100
        && !exp_id.starts_with('.')
        && exp_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let folder = if plain { exp_id.to_string() } else { format!("exp-{:016x}", xxhash_rust::xxh3::xxh3_64(exp_id.as_bytes())) };
    dir.join(folder).join(format!("{}.avro", table.name()))
}
