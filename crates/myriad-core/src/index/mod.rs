//! `SemanticIndex`: agent embeddings kept L2-normalised in one dense matrix, searched exactly
//! (brute force) for the top-k cosine matches. Exact on purpose: at 10^6 x 384 a SIMD scan takes
//! tens of milliseconds, which beats building and tuning an approximate index for this workload,
//! and results never silently miss an agent.

mod kernels;
mod persist;
mod sketch;
mod topk;

use std::ops::Range;

use half::f16;
use rayon::prelude::*;

use crate::chunked::{chunk_shift, Chunked};
use crate::error::{Error, Result};
use crate::names::Names;
pub use kernels::kernels;
use sketch::{QueryCodes, Sketch};
use topk::TopK;

/// How vectors are stored. `F16` halves memory at ~1e-3 score error. Either way an int8 sketch of
/// the stored rows (a quarter of f32's size) sits beside them for single-query scans: `sketch.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
}

impl Storage {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Storage::F32),
            "f16" => Ok(Storage::F16),
            other => Err(Error::InvalidArg(format!("storage must be 'f32' or 'f16', got '{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IndexOptions {
    pub dim: usize,
    pub storage: Storage,
    /// Scan threads; 0 = one per core.
    pub threads: usize,
    /// Below this many vectors a search runs on the calling thread: handing work to the pool costs
    /// more than scanning a couple of thousand rows.
    pub parallel_threshold: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions { dim: 384, storage: Storage::F32, threads: 0, parallel_threshold: 4_096 }
    }
}

/// One match: an agent id and its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpsertStats {
    pub inserted: usize,
    pub updated: usize,
}

/// The stored rows, in chunks of rows that never move (`chunked.rs`: growing copies at most one
/// chunk, and the store holds less than a chunk beyond its rows).
enum Rows {
    F32(Chunked<f32>),
    /// f16 bit patterns (`half::f16::to_bits`), so the SIMD kernel can load them directly.
    F16(Chunked<u16>),
}

pub struct SemanticIndex {
    opts: IndexOptions,
    /// The ids, by slot (a slot is a row of `rows` and of `sketch`).
    names: Names,
    rows: Rows,
    sketch: Sketch,
    pool: Option<rayon::ThreadPool>,
}

/// Bytes an index has allocated, by part: capacities, allocator overhead not included (what a
/// process's RSS shows beyond these is the allocator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexMemory {
    /// The stored rows: `dim` f32 or f16 values a row.
    pub rows: usize,
    /// The int8 sketch: `dim` bytes a row, and 8 for its scale and slack.
    pub sketch: usize,
    /// The ids, each kept once, and the map from id to row.
    pub ids: usize,
}

impl IndexMemory {
    pub fn total(&self) -> usize {
        self.rows + self.sketch + self.ids
    }
}

/// Longest accepted id in bytes (UUIDs are 36).
pub const MAX_ID_BYTES: usize = 1024;
/// Queries per pass over the matrix in a batch search: each row is loaded once for all of them,
/// and 32 queries of 384 floats (48 KiB) stay in cache.
const QUERY_BLOCK: usize = 32;
/// Rows scored per kernel call: 128 rows of 384 f32 (192 KiB) stay in L2 across a query block.
const SCAN_BLOCK: usize = 128;
/// Up to this many queries per pass, searches scan the int8 sketch first. A single query is bound
/// by memory, where reading a quarter of f32's bytes pays; a block of many queries reuses each row
/// from cache and is bound by arithmetic, where the stored rows are cheaper to score.
const SKETCH_MAX_QUERIES: usize = 4;
/// Rows are stored in chunks of about this many bytes of f32 (a power of two rows, at least
/// [`SCAN_BLOCK`]): 65,536 rows of 384 dimensions, 96 MiB of f32 or 48 of f16, and 24 MiB of
/// sketch. An index smaller than a chunk grows its first one geometrically from what it needs.
/// Why this large: the addon's allocator, mimalloc 3, asks for transparent huge pages, so memory
/// is resident 2 MiB at a time, and chunks of a few MiB left ~11 % of the index's RSS in the gaps
/// around them (1,000,000 f16 rows: 1,321 bytes a row with chunks of 4,096 rows, 1,213 with
/// these, 1,190 with the system allocator either way; `examples/memory`).
const CHUNK_BYTES: usize = 128 << 20;

/// What a pass over the sketch leaves for one query: the k best lower bounds (the k-th of them is
/// the threshold) and every row whose upper bound reached the threshold at the time.
struct Bounded {
    lower: TopK,
    candidates: Vec<(f32, u32)>,
}

impl SemanticIndex {
    pub fn new(opts: IndexOptions) -> Result<Self> {
        let shift = chunk_shift(opts.dim.max(1) * 4, CHUNK_BYTES, SCAN_BLOCK.trailing_zeros());
        Self::with_chunk_shift(opts, shift)
    }

    /// [`SemanticIndex::new`] with `1 << shift` rows to a chunk of storage.
    fn with_chunk_shift(opts: IndexOptions, shift: u32) -> Result<Self> {
        if opts.dim == 0 || opts.dim > 65_536 {
            return Err(Error::InvalidArg(format!("dim must be in 1..=65536, got {}", opts.dim)));
        }
        let threads = if opts.threads == 0 { crate::embed::available_cores() } else { opts.threads };
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("myriad-scan-{i}"))
                    .build()
                    .map_err(|e| Error::Internal(format!("scan thread pool: {e}")))?,
            )
        } else {
            None
        };
        let rows = match opts.storage {
            Storage::F32 => Rows::F32(Chunked::new(opts.dim, shift)),
            Storage::F16 => Rows::F16(Chunked::new(opts.dim, shift)),
        };
        Ok(SemanticIndex { opts: IndexOptions { threads, ..opts }, names: Names::new(), rows, sketch: Sketch::new(opts.dim, shift), pool })
    }

    pub fn options(&self) -> &IndexOptions {
        &self.opts
    }
    pub fn dim(&self) -> usize {
        self.opts.dim
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.len() == 0
    }
    pub fn contains(&self, id: &str) -> bool {
        self.names.find(id).is_some()
    }
    /// The ids, in row order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|slot| self.names.get(slot))
    }

    /// What the index has allocated, by part.
    pub fn memory(&self) -> IndexMemory {
        let rows = match &self.rows {
            Rows::F32(v) => v.heap_bytes(),
            Rows::F16(v) => v.heap_bytes(),
        };
        IndexMemory { rows, sketch: self.sketch.heap_bytes(), ids: self.names.heap_bytes() }
    }

    /// Makes room for `additional` more rows: pushing them then allocates nothing, and a row
    /// never moves (see `chunked.rs`).
    pub fn reserve(&mut self, additional: usize) {
        self.names.reserve(additional);
        match &mut self.rows {
            Rows::F32(v) => v.reserve(additional),
            Rows::F16(v) => v.reserve(additional),
        }
        self.sketch.reserve(additional);
    }

    /// Inserts or replaces one vector per id (`vectors` is `ids.len() * dim` floats, row-major).
    /// Everything is validated before anything changes: a bad batch leaves the index untouched.
    /// Within a batch, a repeated id keeps its last vector.
    pub fn upsert(&mut self, ids: &[String], vectors: &[f32]) -> Result<UpsertStats> {
        let dim = self.opts.dim;
        check_len(vectors.len(), ids.len(), dim, "vectors")?;
        for id in ids {
            check_id(id)?;
        }
        // Each row's 1 / norm, checked before anything changes; rows are normalised one at a time
        // as they are stored (a copy of the batch would cost as much memory as the batch).
        let mut inverse_norms = Vec::with_capacity(ids.len());
        for (i, row) in vectors.chunks_exact(dim).enumerate() {
            inverse_norms.push(inverse_norm(row, || format!("vector {i} (id '{}')", ids[i]))?);
        }
        // Room for the new ids at once (an id repeated within the batch is counted twice).
        self.reserve(ids.iter().filter(|id| !self.contains(id)).count());
        let mut stats = UpsertStats::default();
        let (mut row, mut decoded) = (vec![0f32; dim], Vec::new());
        for ((id, raw), &inv) in ids.iter().zip(vectors.chunks_exact(dim)).zip(&inverse_norms) {
            row.iter_mut().zip(raw).for_each(|(x, &v)| *x = v * inv);
            let row = &row[..];
            match self.names.find(id) {
                Some(slot) => {
                    self.write_row(slot, row, &mut decoded);
                    stats.updated += 1;
                }
                None => {
                    if self.len() >= u32::MAX as usize {
                        return Err(Error::InvalidArg("the index holds at most 2^32 - 1 vectors".into()));
                    }
                    self.names.push(id);
                    self.push_row(row, &mut decoded);
                    stats.inserted += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Removes ids; fails with `ERR_UNKNOWN_ID` (and removes nothing) if any is absent.
    pub fn remove(&mut self, ids: &[String]) -> Result<usize> {
        if let Some(missing) = ids.iter().find(|id| !self.contains(id)) {
            return Err(Error::UnknownId(missing.clone()));
        }
        let mut removed = 0;
        for id in ids {
            // A repeated id in the batch is already gone the second time.
            let Some(slot) = self.names.find(id) else { continue };
            let last = self.len() - 1;
            // Keep the matrix dense: the last row (and its id) moves into the hole.
            self.names.swap_remove(slot);
            if slot != last {
                self.copy_row(last, slot);
            }
            self.truncate_rows(last);
            removed += 1;
        }
        Ok(removed)
    }

    /// The stored (normalised) vector of `id`.
    pub fn get(&self, id: &str) -> Result<Vec<f32>> {
        let slot = self.names.find(id).ok_or_else(|| Error::UnknownId(id.to_string()))?;
        Ok(match &self.rows {
            Rows::F32(v) => v.row(slot).to_vec(),
            Rows::F16(v) => decode_f16(v.row(slot)),
        })
    }

    pub fn top_k(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        Ok(self.top_k_batch(query, k)?.pop().unwrap_or_default())
    }

    /// Exact top-k by cosine for each query (`queries` is `n * dim` floats); best first.
    pub fn top_k_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let dim = self.opts.dim;
        if k == 0 {
            return Err(Error::InvalidArg("k must be a positive integer".into()));
        }
        if queries.is_empty() || !queries.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                what: format!("queries (a multiple of dimension {dim})"),
                expected: dim * (queries.len() / dim).max(1),
                got: queries.len(),
            });
        }
        if self.is_empty() {
            return Err(Error::EmptyIndex);
        }
        let mut q = queries.to_vec();
        for (i, row) in q.chunks_exact_mut(dim).enumerate() {
            let inv = inverse_norm(row, || format!("query {i}"))?;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        let k = k.min(self.len());
        let mut out = Vec::with_capacity(q.len() / dim);
        for block in q.chunks(QUERY_BLOCK * dim) {
            for top in self.scan(block, k) {
                out.push(
                    top.into_sorted()
                        .into_iter()
                        .map(|c| Hit { id: self.names.get(c.slot as usize).to_string(), score: c.score })
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    /// One pass over all rows for a block of normalised queries.
    fn scan(&self, queries: &[f32], k: usize) -> Vec<TopK> {
        if queries.len() / self.opts.dim <= SKETCH_MAX_QUERIES {
            self.scan_sketched(queries, k)
        } else {
            self.over_rows(1, |r| self.scan_rows(queries, k, r), |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect())
        }
    }

    /// Runs `pass` over all rows: on the calling thread, or in chunks across the pool when the index
    /// is big enough, `merge` combining the chunks' results. `cheapness` is how many times fewer
    /// bytes a row costs this pass than an f32 row (4 for the int8 sketch): thresholds are in f32
    /// rows' worth of work.
    fn over_rows<T: Send>(&self, cheapness: usize, pass: impl Fn(Range<usize>) -> T + Sync, merge: impl Fn(T, T) -> T + Sync) -> T {
        let n = self.len();
        match &self.pool {
            Some(pool) if n >= self.opts.parallel_threshold.saturating_mul(cheapness) => {
                // Two chunks per thread evens out stragglers; at least 1024 f32 rows' worth keeps a
                // chunk worth the hand-off (4096 as the floor left 5,000 rows split 4096 + 904: no gain).
                let chunk = (n / (self.opts.threads * 2)).max(1024 * cheapness);
                let ranges: Vec<Range<usize>> = (0..n).step_by(chunk).map(|s| s..(s + chunk).min(n)).collect();
                pool.install(|| ranges.into_par_iter().map(&pass).reduce_with(&merge)).unwrap_or_else(|| pass(0..0))
            }
            _ => pass(0..n),
        }
    }

    fn scan_rows(&self, queries: &[f32], k: usize, rows: Range<usize>) -> Vec<TopK> {
        let kern = kernels();
        match &self.rows {
            Rows::F32(data) => scan_blocks(data, kern.f32, queries, k, rows),
            Rows::F16(data) => scan_blocks(data, kern.f16, queries, k, rows),
        }
    }

    /// The top-k `scan_rows` would find, through the sketch: bounds for every row from the int8
    /// codes, then the stored rows' score of only those that may belong (the argument is in
    /// `sketch.rs`).
    fn scan_sketched(&self, queries: &[f32], k: usize) -> Vec<TopK> {
        let dim = self.opts.dim;
        let coded: Vec<QueryCodes> = queries.chunks_exact(dim).map(QueryCodes::new).collect();
        // Split only at four times the f32 threshold: a sketch of several thousand rows scanned
        // faster on one thread than on two.
        let bounded = self.over_rows(
            4,
            |r| self.bound_rows(&coded, k, r),
            |a, b| {
                a.into_iter()
                    .zip(b)
                    .map(|(mut x, y)| {
                        x.candidates.extend(y.candidates);
                        Bounded { lower: x.lower.merge(y.lower), candidates: x.candidates }
                    })
                    .collect()
            },
        );
        let kern = kernels();
        let mut out = [0f32; 1];
        bounded
            .into_iter()
            .zip(queries.chunks_exact(dim))
            .map(|(b, q)| {
                let threshold = b.lower.threshold();
                let mut top = TopK::new(k);
                for &(upper, slot) in &b.candidates {
                    if upper >= threshold {
                        match &self.rows {
                            Rows::F32(data) => (kern.f32)(q, data.row(slot as usize), &mut out),
                            Rows::F16(data) => (kern.f16)(q, data.row(slot as usize), &mut out),
                        }
                        top.push(out[0], slot);
                    }
                }
                top
            })
            .collect()
    }

    fn bound_rows(&self, coded: &[QueryCodes], k: usize, rows: Range<usize>) -> Vec<Bounded> {
        let sketch = &self.sketch;
        let kern = kernels();
        let mut found: Vec<Bounded> = coded.iter().map(|_| Bounded { lower: TopK::new(k), candidates: Vec::new() }).collect();
        let mut dots = [0i32; SCAN_BLOCK];
        let dim = self.opts.dim;
        for (start, codes) in sketch.blocks(rows, SCAN_BLOCK) {
            let count = codes.len() / dim;
            let (out, params) = (&mut dots[..count], sketch.params(start, count));
            for (b, q) in found.iter_mut().zip(coded) {
                (kern.i8)(&q.codes, codes, out);
                for (i, (&dot, &[scale, slack])) in out.iter().zip(params).enumerate() {
                    let slot = start + i;
                    let (approx, bound) = q.bounds(dot, scale, slack);
                    let upper = approx + bound;
                    // Rows below the threshold so far stay below the final one, which only rises.
                    if upper >= b.lower.threshold() {
                        b.candidates.push((upper, slot as u32));
                        b.lower.push(approx - bound, slot as u32);
                    }
                }
            }
        }
        found
    }

    /// Appends a normalised row (and its sketch). `decoded` is scratch space for the f16 values.
    fn push_row(&mut self, row: &[f32], decoded: &mut Vec<f32>) {
        match &mut self.rows {
            Rows::F32(v) => {
                v.push_row(row);
                self.sketch.push(row);
            }
            Rows::F16(v) => {
                let stored = v.push_row_of(0);
                encode_f16(row, stored);
                self.sketch.push(decode_f16_into(stored, decoded));
            }
        }
    }

    fn write_row(&mut self, slot: usize, row: &[f32], decoded: &mut Vec<f32>) {
        match &mut self.rows {
            Rows::F32(v) => {
                v.row_mut(slot).copy_from_slice(row);
                self.sketch.write(slot, row);
            }
            Rows::F16(v) => {
                let stored = v.row_mut(slot);
                encode_f16(row, stored);
                self.sketch.write(slot, decode_f16_into(stored, decoded));
            }
        }
    }

    fn copy_row(&mut self, from: usize, to: usize) {
        match &mut self.rows {
            Rows::F32(v) => v.copy_row(from, to),
            Rows::F16(v) => v.copy_row(from, to),
        }
        self.sketch.copy(from, to);
    }

    fn truncate_rows(&mut self, count: usize) {
        match &mut self.rows {
            Rows::F32(v) => v.truncate(count),
            Rows::F16(v) => v.truncate(count),
        }
        self.sketch.truncate(count);
    }
}

/// The top-k of each query (`dim` floats each) over `rows` of `data`, scored by `score`.
fn scan_blocks<T>(data: &Chunked<T>, score: fn(&[f32], &[T], &mut [f32]), queries: &[f32], k: usize, rows: Range<usize>) -> Vec<TopK> {
    let dim = data.width();
    let mut tops: Vec<TopK> = (0..queries.len() / dim).map(|_| TopK::new(k)).collect();
    let mut scores = [0f32; SCAN_BLOCK];
    // Row blocks outermost: a block stays in cache while every query of the batch scores it.
    for (start, block) in data.blocks(rows, SCAN_BLOCK) {
        let out = &mut scores[..block.len() / dim];
        for (top, q) in tops.iter_mut().zip(queries.chunks_exact(dim)) {
            score(q, block, out);
            for (i, &s) in out.iter().enumerate() {
                top.push(s, (start + i) as u32);
            }
        }
    }
    tops
}

fn encode_f16(row: &[f32], bits: &mut [u16]) {
    for (d, &x) in bits.iter_mut().zip(row) {
        *d = f16::from_f32(x).to_bits();
    }
}

/// f16 bit patterns as the f32 values the f16 kernel scores.
fn decode_f16(bits: &[u16]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bits.len());
    decode_f16_into(bits, &mut out);
    out
}

/// [`decode_f16`] into `out`'s space, returned.
fn decode_f16_into<'a>(bits: &[u16], out: &'a mut Vec<f32>) -> &'a [f32] {
    out.clear();
    out.extend(bits.iter().map(|&b| f16::from_bits(b).to_f32()));
    out
}

fn check_len(got: usize, rows: usize, dim: usize, what: &str) -> Result<()> {
    if got != rows * dim {
        return Err(Error::Dimension { what: format!("{what} for {rows} ids of dimension {dim}"), expected: rows * dim, got });
    }
    Ok(())
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidArg("ids must be non-empty strings".into()));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidArg(format!("id of {} bytes exceeds {MAX_ID_BYTES}", id.len())));
    }
    Ok(())
}

/// What scales `row` to unit length; rejects NaN/inf and the zero vector, which has no direction.
fn inverse_norm(row: &[f32], what: impl Fn() -> String) -> Result<f32> {
    if row.iter().any(|v| !v.is_finite()) {
        return Err(Error::NotFinite(what()));
    }
    let norm = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::ZeroVector(what()));
    }
    Ok((1.0 / norm) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Storage in chunks of 8 rows, so that scans, the sketch's blocks, updates and removals all
    /// cross chunk boundaries: the results must be those of an index holding every row in one.
    #[test]
    fn small_chunks_give_what_one_chunk_gives() {
        let mut state = 9u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let dim = 24;
        for storage in [Storage::F32, Storage::F16] {
            let opts = IndexOptions { dim, storage, threads: 2, parallel_threshold: 1 };
            let mut small = SemanticIndex::with_chunk_shift(opts.clone(), 3).unwrap();
            let mut whole = SemanticIndex::with_chunk_shift(opts, 20).unwrap();
            for round in 0..60 {
                let n = (rnd() % 40) as usize + 1;
                let ids: Vec<String> = (0..n).map(|_| format!("id-{}", rnd() % 400)).collect();
                let vectors: Vec<f32> = (0..n * dim).map(|_| (rnd() % 2001) as f32 / 1000.0 - 1.0).collect();
                assert_eq!(small.upsert(&ids, &vectors).unwrap(), whole.upsert(&ids, &vectors).unwrap());
                if round % 3 == 2 {
                    let mut gone: Vec<String> = whole.ids().filter(|_| rnd() % 4 == 0).map(str::to_string).collect();
                    gone.dedup();
                    assert_eq!(small.remove(&gone).unwrap(), whole.remove(&gone).unwrap());
                }
                assert!(small.ids().eq(whole.ids()));
                if whole.is_empty() {
                    continue;
                }
                let queries: Vec<f32> = (0..6 * dim).map(|_| (rnd() % 2001) as f32 / 1000.0 - 0.9).collect();
                for k in [1, 5, 50] {
                    assert_eq!(small.top_k(&queries[..dim], k).unwrap(), whole.top_k(&queries[..dim], k).unwrap());
                    assert_eq!(small.top_k_batch(&queries, k).unwrap(), whole.top_k_batch(&queries, k).unwrap());
                }
                for id in whole.ids().take(5) {
                    assert_eq!(small.get(id).unwrap(), whole.get(id).unwrap());
                }
            }
            assert!(whole.len() > 100, "{} rows left", whole.len());
            // Saved from chunks of 8 rows, loaded into the usual ones: the same index.
            let path = std::env::temp_dir().join(format!("myriad-chunks-{}-{}.idx", std::process::id(), storage.name()));
            small.save(&path).unwrap();
            let back = SemanticIndex::load(&path, IndexOptions::default()).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert!(back.ids().eq(whole.ids()));
            let query: Vec<f32> = (0..dim).map(|i| i as f32 - 10.0).collect();
            assert_eq!(back.top_k(&query, 20).unwrap(), whole.top_k(&query, 20).unwrap());
        }
    }

    #[test]
    fn an_index_holds_little_beyond_its_rows() {
        let (n, dim) = (20_000, 384);
        let mut state = 5u64;
        let mut vectors = |rows: usize| -> Vec<f32> {
            (0..rows * dim)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        let ids: Vec<String> = (0..n).map(|i| format!("a-{i}")).collect();
        let f16 = IndexOptions { dim, storage: Storage::F16, ..Default::default() };
        // One batch: its rows are reserved exactly (the chunks' list aside).
        let mut once = SemanticIndex::new(f16.clone()).unwrap();
        once.upsert(&ids, &vectors(n)).unwrap();
        let m = once.memory();
        assert!(m.rows >= n * dim * 2 && m.rows <= n * dim * 2 + 256, "{m:?}");
        assert!(m.sketch >= n * (dim + 8) && m.sketch <= n * (dim + 8) + 512, "{m:?}");
        // Ids of 6 bytes or less: an 8-byte span, the bytes, a 4-byte slot and a control byte in a
        // table of 32,768 buckets, and the arena's 64 KiB chunks and the spans' 512 KiB ones.
        assert!(m.ids <= n * (8 + 7) + 32_768 * 5 + (1 << 16) + (1 << 19) + 1024, "{m:?}");
        // Batches of 1,000: the chunk being filled grows by doubling, so at most a chunk (65,536
        // rows) beyond the rows, and at most twice them below a chunk.
        let mut batched = SemanticIndex::new(f16).unwrap();
        for at in (0..n).step_by(1000) {
            batched.upsert(&ids[at..at + 1000], &vectors(1000)).unwrap();
        }
        let b = batched.memory();
        assert!(b.rows <= 2 * n * dim * 2 && b.sketch <= 2 * n * (dim + 8), "{b:?}");
    }
}
