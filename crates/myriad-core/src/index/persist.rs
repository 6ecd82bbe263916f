//! `save` / `load` in a small self-describing binary file (little-endian):
//!
//! ```text
//! "MYRIADIX"  u32 version=1  u32 dim  u8 storage(0=f32,1=f16)  [3 zero bytes]  u64 count
//! count x (u32 byte length, UTF-8 id)
//! count x dim x (f32 | f16) normalised vectors
//! ```
//! Written to a temporary file and renamed, so a crash never leaves a half-written index behind.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::{IndexOptions, Rows, SemanticIndex, Storage};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"MYRIADIX";
const VERSION: u32 = 1;
/// Vectors are read about this many bytes at a time, straight into the index's storage: loading
/// holds one block beside the index, not a copy of the file.
const LOAD_BLOCK_BYTES: usize = 4 << 20;

impl SemanticIndex {
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
            w.write_all(MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(self.opts.dim as u32).to_le_bytes())?;
            w.write_all(&[matches!(self.rows, Rows::F16(_)) as u8, 0, 0, 0])?;
            w.write_all(&(self.len() as u64).to_le_bytes())?;
            for id in self.ids() {
                w.write_all(&(id.len() as u32).to_le_bytes())?;
                w.write_all(id.as_bytes())?;
            }
            let all = 0..self.len();
            match &self.rows {
                Rows::F32(v) => {
                    v.blocks(all, usize::MAX).try_for_each(|(_, b)| b.iter().try_for_each(|x| w.write_all(&x.to_le_bytes())))?
                }
                Rows::F16(v) => {
                    v.blocks(all, usize::MAX).try_for_each(|(_, b)| b.iter().try_for_each(|x| w.write_all(&x.to_le_bytes())))?
                }
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Loads a file written by [`SemanticIndex::save`]. `opts.dim` and `opts.storage` come from the
    /// file; `threads` and `parallel_threshold` from `opts`.
    pub fn load(path: &Path, opts: IndexOptions) -> Result<Self> {
        let corrupt = |reason: &str| Error::CorruptIndex { path: path.to_path_buf(), reason: reason.to_string() };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut read = |buf: &mut [u8]| r.read_exact(buf).map_err(|_| corrupt("truncated"));

        let mut header = [0u8; 28];
        read(&mut header)?;
        if &header[0..8] != MAGIC {
            return Err(corrupt("bad magic (not a Myriad index)"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
        if version != VERSION {
            return Err(corrupt(&format!("unsupported version {version}")));
        }
        let dim = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
        let storage = match header[16] {
            0 => Storage::F32,
            1 => Storage::F16,
            _ => return Err(corrupt("unknown storage tag")),
        };
        let count = u64::from_le_bytes(header[20..28].try_into().unwrap());
        let width = if storage == Storage::F32 { 4 } else { 2 };
        // Check the claimed sizes against the file before allocating anything for them.
        let vector_bytes = count.checked_mul(dim as u64 * width).ok_or_else(|| corrupt("size overflow"))?;
        if dim == 0 || vector_bytes.saturating_add(28 + count.saturating_mul(4)) > file_len {
            return Err(corrupt("header does not match the file size"));
        }
        let count = count as usize;
        let mut index = SemanticIndex::new(IndexOptions { dim, storage, ..opts })?;
        index.reserve(count);
        let mut len = [0u8; 4];
        let mut id = Vec::new();
        for _ in 0..count {
            read(&mut len)?;
            let n = u32::from_le_bytes(len) as usize;
            if n == 0 || n > super::MAX_ID_BYTES {
                return Err(corrupt("bad id length"));
            }
            id.resize(n, 0);
            read(&mut id)?;
            let id = std::str::from_utf8(&id).map_err(|_| corrupt("id is not UTF-8"))?;
            if index.names.find(id).is_some() {
                return Err(corrupt("duplicate id"));
            }
            index.names.push(id);
        }
        let width = width as usize;
        let block_rows = (LOAD_BLOCK_BYTES / (dim * width)).max(1);
        let mut bytes = vec![0u8; block_rows.min(count) * dim * width];
        let mut values = Vec::with_capacity(dim);
        for start in (0..count).step_by(block_rows) {
            let block = &mut bytes[..block_rows.min(count - start) * dim * width];
            read(block)?;
            for row in block.chunks_exact(dim * width) {
                match &mut index.rows {
                    Rows::F32(v) => {
                        let stored = v.push_row_of(0.0);
                        for (x, b) in stored.iter_mut().zip(row.chunks_exact(4)) {
                            *x = f32::from_le_bytes(b.try_into().unwrap());
                        }
                        if stored.iter().any(|x| !x.is_finite()) {
                            return Err(corrupt("non-finite vector value"));
                        }
                        index.sketch.push(stored);
                    }
                    Rows::F16(v) => {
                        let stored = v.push_row_of(0);
                        for (x, b) in stored.iter_mut().zip(row.chunks_exact(2)) {
                            *x = u16::from_le_bytes(b.try_into().unwrap());
                        }
                        let decoded = super::decode_f16_into(stored, &mut values);
                        if decoded.iter().any(|x| !x.is_finite()) {
                            return Err(corrupt("non-finite vector value"));
                        }
                        index.sketch.push(decoded);
                    }
                }
            }
        }
        let mut trailing = [0u8; 1];
        if r.read(&mut trailing).map_err(|e| Error::io(path, e))? != 0 {
            return Err(corrupt("trailing bytes after the vectors"));
        }
        Ok(index)
    }
}
