//! Reading the archive's container files (the writing side is `avro.rs`): the header, and the
//! blocks after it (row count, byte size, data, the file's sync marker), found without decoding
//! any row.
//!
//! A crash mid-write leaves a torn block at the end of a file. It holds rows that were never
//! flushed, so the sink cuts it off before appending and import stops before it. A block that does
//! not read whole but has the sync marker somewhere after its start is damage with whole blocks
//! after it, not a torn tail: nothing is cut and the file is reported corrupt.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::avro::{schema_json, MAGIC};
use super::schema::Table;
use crate::{Error, Result};

pub(super) type Meta = Vec<(String, Vec<u8>)>;

fn meta_value<'m>(meta: &'m Meta, key: &str) -> Option<&'m [u8]> {
    meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
}

/// A file is read or appended to only under this version's schema of its table: rows are encoded
/// and decoded by column position. A file of an earlier version (before a column was added) is
/// refused, its columns named beside this version's.
pub(super) fn check_schema(meta: &Meta, table: Table, path: &Path) -> Result<()> {
    let found = meta_value(meta, "avro.schema");
    if found == Some(schema_json(table).as_bytes()) {
        return Ok(());
    }
    let columns = |names: Vec<&str>| names.join(", ");
    let expected = columns(table.columns().iter().map(|c| c.name).collect());
    let schema: Option<serde_json::Value> = found.and_then(|s| serde_json::from_slice(s).ok());
    let names = schema.as_ref().and_then(|s| s["fields"].as_array()).map(|f| f.iter().map(|f| f["name"].as_str().unwrap_or("?")).collect());
    let mismatch = match names.map(columns) {
        Some(names) if names != expected => format!("its columns are ({names}), this version's are ({expected})"),
        Some(_) => "the columns' types differ".into(),
        None => "it has no readable avro.schema".into(),
    };
    let reason = format!("its schema is not this version's schema of table {}: {mismatch}", table.name());
    Err(Error::CorruptArchive { path: path.into(), reason })
}

/// The header's metadata, sync marker and length.
pub(super) fn read_header(file: &mut File) -> std::result::Result<(Meta, [u8; 16], u64), String> {
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    file.take(1 << 20).read_to_end(&mut head).map_err(|e| e.to_string())?;
    let mut r = Reader { b: &head, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not an Avro object container file".into());
    }
    let mut meta = Vec::new();
    loop {
        let mut count = r.long()?;
        if count == 0 {
            break;
        }
        if count < 0 {
            r.long()?; // a negative count is followed by the block's byte size
            count = -count;
        }
        for _ in 0..count {
            let klen = r.long()? as usize;
            let key = String::from_utf8_lossy(r.take(klen)?).into_owned();
            let vlen = r.long()? as usize;
            meta.push((key, r.take(vlen)?.to_vec()));
        }
    }
    let sync = r.take(16)?.try_into().map_err(|_| "bad sync marker")?;
    Ok((meta, sync, r.at as u64))
}

/// The whole block at `at`, if one is there: its row count, where its data starts, and where it
/// ends (after its sync marker). Reads only its head and marker.
fn block_at(file: &mut File, at: u64, len: u64, sync: &[u8; 16]) -> std::io::Result<Option<(usize, u64, u64)>> {
    file.seek(SeekFrom::Start(at))?;
    let mut head = Vec::with_capacity(20);
    file.take(20).read_to_end(&mut head)?;
    let mut r = Reader { b: &head, at: 0 };
    let (Ok(count), Ok(size)) = (r.long(), r.long()) else { return Ok(None) };
    let data = at + r.at as u64;
    if count <= 0 || size < 0 || (size as u64).saturating_add(data + 16) > len {
        return Ok(None);
    }
    let end = data + size as u64 + 16;
    let mut marker = [0u8; 16];
    file.seek(SeekFrom::Start(end - 16))?;
    file.read_exact(&mut marker)?;
    Ok((&marker == sync).then_some((count as usize, data, end)))
}

/// Where the last whole block ends, walking the blocks from the header on. What follows is a torn
/// block (see the module doc); damage with whole blocks after it is an error.
pub(super) fn whole_blocks_end(file: &mut File, path: &Path, header_len: u64, sync: &[u8; 16], len: u64) -> Result<u64> {
    let io = |e| Error::io(path, e);
    let mut at = header_len;
    while at < len {
        match block_at(file, at, len, sync).map_err(io)? {
            Some((_, _, end)) => at = end,
            None => break,
        }
    }
    if at < len && !is_torn_tail(file, at, len, sync).map_err(io)? {
        let reason = format!("the block at byte {at} is damaged and whole blocks follow it (not cutting them off)");
        return Err(Error::CorruptArchive { path: path.into(), reason });
    }
    Ok(at)
}

/// Whether the bytes from `from` to `len`, which are not a whole block, are a torn last block: no
/// sync marker follows `from` (a torn block ends before its own marker, and nothing is written
/// after it), so there is no whole block behind it to lose by cutting it off.
fn is_torn_tail(file: &mut File, from: u64, len: u64, sync: &[u8; 16]) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(from))?;
    let mut rest = file.take(len - from);
    let mut window = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = rest.read(&mut chunk)?;
        if n == 0 {
            return Ok(true);
        }
        window.extend_from_slice(&chunk[..n]);
        if window.windows(16).any(|w| w == sync) {
            return Ok(false);
        }
        // Keep the last 15 bytes: a marker may straddle two reads.
        window.drain(..window.len().saturating_sub(15));
    }
}

/// One whole block: where it starts in the file, its rows and their encoded data.
pub(super) struct Block {
    pub offset: u64,
    pub rows: usize,
    pub data: Vec<u8>,
}

/// A container file read block by block (import), up to its last whole block.
pub(super) struct BlockReader {
    path: PathBuf,
    file: File,
    meta: Meta,
    pub sync: [u8; 16],
    at: u64,
    end: u64,
}

impl BlockReader {
    /// Opens `path`; a torn block at its end is left out (with a line on stderr: its rows were
    /// never flushed).
    pub fn open(path: &Path) -> Result<BlockReader> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let (meta, sync, at) = read_header(&mut file).map_err(|reason| Error::CorruptArchive { path: path.into(), reason })?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let end = whole_blocks_end(&mut file, path, at, &sync, len)?;
        if end < len {
            eprintln!(
                "myriad: {}: left out {} bytes of a torn block at the end (rows an interrupted run never flushed)",
                path.display(),
                len - end
            );
        }
        Ok(BlockReader { path: path.into(), file, meta, sync, at, end })
    }

    /// The header's value for `key`, as text.
    pub fn meta_text(&self, key: &str) -> Option<String> {
        meta_value(&self.meta, key).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// [`check_schema`] for this file.
    pub fn check_schema(&self, table: Table) -> Result<()> {
        check_schema(&self.meta, table, &self.path)
    }

    /// The next block, `None` after the last whole one.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        let io = |e| Error::io(&self.path, e);
        if self.at >= self.end {
            return Ok(None);
        }
        // Whole when the file was opened; blocks are only ever appended after it.
        let (rows, data, end) = block_at(&mut self.file, self.at, self.end, &self.sync).map_err(io)?.ok_or_else(|| {
            Error::CorruptArchive { path: self.path.clone(), reason: format!("the block at byte {} changed while it was read", self.at) }
        })?;
        let mut bytes = vec![0u8; (end - 16 - data) as usize];
        self.file.seek(SeekFrom::Start(data)).map_err(io)?;
        self.file.read_exact(&mut bytes).map_err(io)?;
        let block = Block { offset: self.at, rows, data: bytes };
        self.at = end;
        Ok(Some(block))
    }
}

/// Varints and byte runs from a buffer.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let s = self.b.get(self.at..self.at.saturating_add(n)).ok_or("the header is cut short")?;
        self.at += n;
        Ok(s)
    }

    fn long(&mut self) -> std::result::Result<i64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err("a varint runs past 64 bits".into())
    }
}
