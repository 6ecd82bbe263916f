//! `SemanticIndex`: agent embeddings kept L2-normalised in one dense matrix, searched exactly
//! (brute force) for the top-k cosine matches. Exact on purpose: at 10^6 x 384 a SIMD scan takes
//! tens of milliseconds, which beats building and tuning an approximate index for this workload,
//! and results never silently miss an agent.

mod kernels;
mod persist;
mod sketch;
mod topk;

use std::collections::HashMap;
use std::ops::Range;

use half::f16;
use rayon::prelude::*;

use crate::error::{Error, Result};
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

enum Rows {
    F32(Vec<f32>),
    /// f16 bit patterns (`half::f16::to_bits`), so the SIMD kernel can load them directly.
    F16(Vec<u16>),
}

pub struct SemanticIndex {
    opts: IndexOptions,
    ids: Vec<String>,
    slots: HashMap<String, u32>,
    rows: Rows,
    sketch: Sketch,
    pool: Option<rayon::ThreadPool>,
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

/// What a pass over the sketch leaves for one query: the k best lower bounds (the k-th of them is
/// the threshold) and every row whose upper bound reached the threshold at the time.
struct Bounded {
    lower: TopK,
    candidates: Vec<(f32, u32)>,
}

impl SemanticIndex {
    pub fn new(opts: IndexOptions) -> Result<Self> {
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
            Storage::F32 => Rows::F32(Vec::new()),
            Storage::F16 => Rows::F16(Vec::new()),
        };
        Ok(SemanticIndex {
            opts: IndexOptions { threads, ..opts },
            ids: Vec::new(),
            slots: HashMap::new(),
            rows,
            sketch: Sketch::new(opts.dim),
            pool,
        })
    }

    pub fn options(&self) -> &IndexOptions {
        &self.opts
    }
    pub fn dim(&self) -> usize {
        self.opts.dim
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }
    pub fn ids(&self) -> &[String] {
        &self.ids
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
        let mut normalized = vectors.to_vec();
        for (i, row) in normalized.chunks_exact_mut(dim).enumerate() {
            normalize(row, &format!("vector {i} (id '{}')", ids[i]))?;
        }
        let mut stats = UpsertStats::default();
        for (id, row) in ids.iter().zip(normalized.chunks_exact(dim)) {
            match self.slots.get(id) {
                Some(&slot) => {
                    self.write_row(slot as usize, row);
                    stats.updated += 1;
                }
                None => {
                    if self.ids.len() >= u32::MAX as usize {
                        return Err(Error::InvalidArg("the index holds at most 2^32 - 1 vectors".into()));
                    }
                    self.slots.insert(id.clone(), self.ids.len() as u32);
                    self.ids.push(id.clone());
                    self.push_row(row);
                    stats.inserted += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Removes ids; fails with `ERR_UNKNOWN_ID` (and removes nothing) if any is absent.
    pub fn remove(&mut self, ids: &[String]) -> Result<usize> {
        if let Some(missing) = ids.iter().find(|id| !self.slots.contains_key(id.as_str())) {
            return Err(Error::UnknownId(missing.clone()));
        }
        let mut removed = 0;
        for id in ids {
            // A repeated id in the batch is already gone the second time.
            let Some(slot) = self.slots.remove(id) else { continue };
            let slot = slot as usize;
            let last = self.ids.len() - 1;
            // Keep the matrix dense: the last row moves into the hole.
            if slot != last {
                self.copy_row(last, slot);
                let moved = self.ids[last].clone();
                self.slots.insert(moved.clone(), slot as u32);
                self.ids[slot] = moved;
            }
            self.ids.pop();
            self.truncate_rows(last);
            removed += 1;
        }
        Ok(removed)
    }

    /// The stored (normalised) vector of `id`.
    pub fn get(&self, id: &str) -> Result<Vec<f32>> {
        let slot = *self.slots.get(id).ok_or_else(|| Error::UnknownId(id.to_string()))? as usize;
        let dim = self.opts.dim;
        Ok(match &self.rows {
            Rows::F32(v) => v[slot * dim..(slot + 1) * dim].to_vec(),
            Rows::F16(v) => decode_f16(&v[slot * dim..(slot + 1) * dim]),
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
        if self.ids.is_empty() {
            return Err(Error::EmptyIndex);
        }
        let mut q = queries.to_vec();
        for (i, row) in q.chunks_exact_mut(dim).enumerate() {
            normalize(row, &format!("query {i}"))?;
        }
        let k = k.min(self.ids.len());
        let mut out = Vec::with_capacity(q.len() / dim);
        for block in q.chunks(QUERY_BLOCK * dim) {
            for top in self.scan(block, k) {
                out.push(top.into_sorted().into_iter().map(|c| Hit { id: self.ids[c.slot as usize].clone(), score: c.score }).collect());
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
        let n = self.ids.len();
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
        let dim = self.opts.dim;
        let kern = kernels();
        let mut tops: Vec<TopK> = (0..queries.len() / dim).map(|_| TopK::new(k)).collect();
        let mut scores = [0f32; SCAN_BLOCK];
        // Row blocks outermost: a block stays in cache while every query of the batch scores it.
        let mut start = rows.start;
        while start < rows.end {
            let end = (start + SCAN_BLOCK).min(rows.end);
            let out = &mut scores[..end - start];
            for (top, q) in tops.iter_mut().zip(queries.chunks_exact(dim)) {
                match &self.rows {
                    Rows::F32(data) => (kern.f32)(q, &data[start * dim..end * dim], out),
                    Rows::F16(data) => (kern.f16)(q, &data[start * dim..end * dim], out),
                }
                for (i, &score) in out.iter().enumerate() {
                    top.push(score, (start + i) as u32);
                }
            }
            start = end;
        }
        tops
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
                        let row = slot as usize * dim..(slot as usize + 1) * dim;
                        match &self.rows {
                            Rows::F32(data) => (kern.f32)(q, &data[row], &mut out),
                            Rows::F16(data) => (kern.f16)(q, &data[row], &mut out),
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
        let mut start = rows.start;
        while start < rows.end {
            let end = (start + SCAN_BLOCK).min(rows.end);
            let out = &mut dots[..end - start];
            for (b, q) in found.iter_mut().zip(coded) {
                (kern.i8)(&q.codes, sketch.codes(start, end), out);
                for (i, &dot) in out.iter().enumerate() {
                    let slot = start + i;
                    let (approx, bound) = q.bounds(dot, sketch.scale(slot), sketch.slack(slot));
                    let upper = approx + bound;
                    // Rows below the threshold so far stay below the final one, which only rises.
                    if upper >= b.lower.threshold() {
                        b.candidates.push((upper, slot as u32));
                        b.lower.push(approx - bound, slot as u32);
                    }
                }
            }
            start = end;
        }
        found
    }

    fn push_row(&mut self, row: &[f32]) {
        match &mut self.rows {
            Rows::F32(v) => {
                v.extend_from_slice(row);
                self.sketch.push(row);
            }
            Rows::F16(v) => {
                v.extend(row.iter().map(|&x| f16::from_f32(x).to_bits()));
                self.sketch.push(&decode_f16(&v[v.len() - row.len()..]));
            }
        }
    }

    fn write_row(&mut self, slot: usize, row: &[f32]) {
        let range = slot * self.opts.dim..(slot + 1) * self.opts.dim;
        match &mut self.rows {
            Rows::F32(v) => {
                v[range].copy_from_slice(row);
                self.sketch.write(slot, row);
            }
            Rows::F16(v) => {
                for (d, &x) in v[range.clone()].iter_mut().zip(row) {
                    *d = f16::from_f32(x).to_bits();
                }
                self.sketch.write(slot, &decode_f16(&v[range]));
            }
        }
    }

    fn copy_row(&mut self, from: usize, to: usize) {
        let dim = self.opts.dim;
        match &mut self.rows {
            Rows::F32(v) => v.copy_within(from * dim..(from + 1) * dim, to * dim),
            Rows::F16(v) => v.copy_within(from * dim..(from + 1) * dim, to * dim),
        }
        self.sketch.copy(from, to);
    }

    fn truncate_rows(&mut self, count: usize) {
        let len = count * self.opts.dim;
        match &mut self.rows {
            Rows::F32(v) => v.truncate(len),
            Rows::F16(v) => v.truncate(len),
        }
        self.sketch.truncate(count);
    }
}

/// f16 bit patterns as the f32 values the f16 kernel scores.
fn decode_f16(bits: &[u16]) -> Vec<f32> {
    bits.iter().map(|&b| f16::from_bits(b).to_f32()).collect()
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

/// Scales `row` to unit length; rejects NaN/inf and the zero vector, which has no direction.
fn normalize(row: &mut [f32], what: &str) -> Result<()> {
    if row.iter().any(|v| !v.is_finite()) {
        return Err(Error::NotFinite(what.to_string()));
    }
    let norm = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::ZeroVector(what.to_string()));
    }
    let inv = (1.0 / norm) as f32;
    row.iter_mut().for_each(|v| *v *= inv);
    Ok(())
}
