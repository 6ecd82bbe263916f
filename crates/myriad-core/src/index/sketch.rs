//! An int8 copy of the stored rows that single-query searches scan first, so the top-k reads a
//! quarter of f32's bytes (half of f16's) and still returns what scoring every stored row would.
//!
//! Why: one query against N rows is bound by memory, not arithmetic, and right after the model has
//! run (streaming its weights) the rows are no longer in cache. Scanning the f32 rows of a few
//! thousand agents then cost a sizeable fraction of the embedding itself.
//!
//! Exactness is kept by bounds, not hoped for. Each row `x` (unit length) is stored as codes `c`
//! with a scale `s = max|x| / 127`, and `slack` bounds what the codes lose: `||x - s c||_2`. The
//! unit query `q` is coded the same way in i16 (`q = t d + e`, [`QueryCodes`]), so that `d.c` is an
//! exact integer dot product (the fast kernel). Then `q.x = t s (d.c) + q.(x - s c) + e.(s c)`,
//! and Cauchy-Schwarz bounds the last two terms by `slack` and `||e|| (1.01 + slack)`; float
//! rounding of the stored row's score adds at most `2 dim u ||q||_1` (u = 2^-24). So with
//! `approx = t s (d.c)` and `bound` the sum, every row's exact score (as the kernel computes it)
//! lies in `[approx - bound, approx + bound]`. The k-th best lower
//! bound `t` is a score that at least k rows reach, so any row of the true top-k has an upper
//! bound `>= t`: those few candidates are scored again on the stored rows (f32, or the f16 values
//! the f16 scan scores), and the top-k of those scores is the answer the full scan would give.

use std::ops::Range;

use crate::chunked::Chunked;

/// Codes of a row are in -127..=127 (symmetric, so the scale maps the largest |x| to 127 exactly).
const CODE_MAX: f32 = 127.0;
/// Unit roundoff of f32.
const UNIT_ROUNDOFF: f64 = 1.0 / (1u64 << 24) as f64;

pub struct Sketch {
    /// Per row: `dim` codes.
    codes: Chunked<i8>,
    /// Per row: its scale and an upper bound on `||x - scale * codes||_2` (its slack).
    params: Chunked<[f32; 2]>,
}

impl Sketch {
    /// An empty sketch of rows of `dim`, `1 << shift` rows to a chunk (as the stored rows, so that
    /// a block of rows lies in one chunk of both).
    pub fn new(dim: usize, shift: u32) -> Self {
        Sketch { codes: Chunked::new(dim, shift), params: Chunked::new(1, shift) }
    }

    pub fn reserve(&mut self, rows: usize) {
        self.codes.reserve(rows);
        self.params.reserve(rows);
    }

    pub fn heap_bytes(&self) -> usize {
        self.codes.heap_bytes() + self.params.heap_bytes()
    }

    pub fn push(&mut self, row: &[f32]) {
        let params = quantize(row, self.codes.push_row_of(0));
        self.params.push(params);
    }

    pub fn write(&mut self, slot: usize, row: &[f32]) {
        *self.params.get_mut(slot) = quantize(row, self.codes.row_mut(slot));
    }

    pub fn copy(&mut self, from: usize, to: usize) {
        self.codes.copy_row(from, to);
        *self.params.get_mut(to) = *self.params.get(from);
    }

    pub fn truncate(&mut self, count: usize) {
        self.codes.truncate(count);
        self.params.truncate(count);
    }

    /// Rows `range` of the codes in blocks of at most `max_rows` rows, none crossing a chunk:
    /// `(first row, codes)`.
    pub fn blocks(&self, range: Range<usize>, max_rows: usize) -> impl Iterator<Item = (usize, &[i8])> + '_ {
        self.codes.blocks(range, max_rows)
    }

    /// `[scale, slack]` of rows `start..start + count`, a block from [`Sketch::blocks`].
    pub fn params(&self, start: usize, count: usize) -> &[[f32; 2]] {
        self.params.rows_in_chunk(start, count)
    }
}

/// A unit query as i16 codes `d` with a scale `t` (`q ~ t d`), and what its bounds add per row.
pub struct QueryCodes {
    pub codes: Vec<i16>,
    pub scale: f32,
    /// Multiplies a row's slack: `1 + ||e||`, rounded up.
    slack_factor: f32,
    /// Added to every row's bound: `1.01 ||e||` and the rounding terms.
    constant: f32,
}

impl QueryCodes {
    pub fn new(query: &[f32]) -> QueryCodes {
        // Keeps the integer dot product within i32: dim * code_max * 127 < 2^31 (32,767 up to
        // 516 dimensions, coarser codes and a wider bound beyond).
        let code_max = (i32::MAX as usize / (CODE_MAX as usize * query.len().max(1))).min(i16::MAX as usize) as f32;
        let max = query.iter().fold(0f32, |m, &v| m.max(v.abs()));
        let scale = if max == 0.0 { 0.0 } else { max / code_max };
        let mut lost = 0f64;
        let codes = query
            .iter()
            .map(|&v| {
                let code = if scale == 0.0 { 0.0 } else { (v / scale).round().clamp(-code_max, code_max) };
                lost += (v as f64 - scale as f64 * code as f64).powi(2);
                code as i16
            })
            .collect();
        let lost = lost.sqrt() * (1.0 + 1e-6) + 1e-12;
        // ||q|| is 1 within f32 rounding; 16 u covers the roundings of `approx` (an i32 made f32
        // and two products, |approx| < 2.1) and of the bound's own sums.
        let slack_factor = next_up(((1.0 + lost) * (1.0 + 1e-6)) as f32);
        let constant = next_up((1.01 * lost + rounding_bound(query) as f64 + 16.0 * UNIT_ROUNDOFF) as f32);
        QueryCodes { codes, scale, slack_factor, constant }
    }

    /// `(approx, bound)` for a row whose codes scored `dot` against these, with the row's scale
    /// and slack: its exact score lies within `approx +- bound`.
    #[inline]
    pub fn bounds(&self, dot: i32, row_scale: f32, row_slack: f32) -> (f32, f32) {
        (dot as f32 * (self.scale * row_scale), row_slack * self.slack_factor + self.constant)
    }
}

/// What float rounding can add to the gap between `approx` and the kernel's score of the stored
/// row, for a unit query. Written when both dot products were in floats, each off by at most
/// `dim u / (1 - dim u) * sum |q_i x_i|` (any summation order), with every `|x_i| <= 1.01` (unit
/// rows; f16 rounding moves them by 2^-11 at most) and `|scale c_i| <= max|x|`, plus a few
/// roundings of the final products, sums and of `||q||` around 1. The sketch's side is now an
/// exact integer dot product (its few roundings are in [`QueryCodes`]' 16 u), so one of the two
/// terms is spare: a margin of ~4e-4 at 384 dimensions, kept on purpose (it costs a few rescored
/// candidates, and the argument stays the one above).
fn rounding_bound(query: &[f32]) -> f32 {
    let dim_u = query.len() as f64 * UNIT_ROUNDOFF;
    let l1: f64 = query.iter().map(|&v| (v as f64).abs()).sum();
    (2.0 * 1.01 * dim_u / (1.0 - dim_u) * l1 + 8.0 * UNIT_ROUNDOFF) as f32
}

/// Writes the codes of `row` and returns `[scale, slack]`; the slack is rounded up, never down.
fn quantize(row: &[f32], codes: &mut [i8]) -> [f32; 2] {
    let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
    if max == 0.0 {
        codes.fill(0);
        return [0.0, 0.0];
    }
    let scale = max / CODE_MAX;
    let mut residual = 0f64;
    for (c, &v) in codes.iter_mut().zip(row) {
        let code = (v / scale).round().clamp(-CODE_MAX, CODE_MAX);
        *c = code as i8;
        let err = v as f64 - scale as f64 * code as f64;
        residual += err * err;
    }
    // f64 holds each term exactly enough that a relative margin of 1e-6 covers its own rounding;
    // the slack is also relative to ||q|| = 1 within f32 rounding.
    let slack = residual.sqrt() * (1.0 + 1e-6) + 1e-9;
    [scale, next_up(slack as f32)]
}

/// The smallest f32 above a positive finite `v` (so an f64 -> f32 cast can only round a bound up).
fn next_up(v: f32) -> f32 {
    f32::from_bits(v.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded random unit vectors of a given length; `spike` makes the first coordinate dominate
    /// (so every other one rounds coarsely).
    fn unit_vectors(seed: u64) -> impl FnMut(usize, bool) -> Vec<f32> {
        let mut state = seed;
        move |dim, spike| {
            let mut rnd = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            };
            let mut v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            if spike {
                v[0] = 40.0;
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        }
    }

    #[test]
    fn slack_bounds_what_the_codes_lose() {
        let mut unit = unit_vectors(7);
        let dim = 384;
        for _ in 0..50 {
            let row = unit(dim, false);
            let mut codes = vec![0i8; dim];
            let [scale, slack] = quantize(&row, &mut codes);
            assert!(codes.iter().any(|&c| c.abs() == 127), "the largest |x| maps to 127");
            let lost: f64 = row.iter().zip(&codes).map(|(&v, &c)| (v as f64 - scale as f64 * c as f64).powi(2)).sum::<f64>().sqrt();
            assert!(slack as f64 >= lost && (slack as f64) < lost * 1.001 + 1e-6, "slack {slack} vs lost {lost}");
            // Rounding codes to nearest loses at most half a step per coordinate.
            assert!(lost <= scale as f64 * 0.5 * (dim as f64).sqrt());
        }
        let mut codes = vec![1i8; 4];
        assert_eq!(quantize(&[0.0; 4], &mut codes), [0.0, 0.0]);
        assert_eq!(codes, [0; 4]);
    }

    #[test]
    fn integer_scores_of_coded_queries_bound_the_exact_ones() {
        let mut unit = unit_vectors(11);
        // 516 dimensions is the last with full 16-bit query codes; 65,536 the most an index has.
        for dim in [3, 384, 516, 517, 2000, 65_536] {
            for case in 0..8 {
                let (q, x) = (unit(dim, case % 4 == 1), unit(dim, case % 4 == 2));
                let coded = QueryCodes::new(&q);
                let largest = coded.codes.iter().map(|c| c.unsigned_abs() as usize).max().unwrap();
                assert!(largest * 127 * dim <= i32::MAX as usize, "dim {dim}: codes up to {largest} overflow");
                let mut codes = vec![0i8; dim];
                let [scale, slack] = quantize(&x, &mut codes);
                let dot: i64 = coded.codes.iter().zip(&codes).map(|(&a, &b)| a as i64 * b as i64).sum();
                let (approx, bound) = coded.bounds(dot as i32, scale, slack);
                let exact: f64 = q.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
                assert!((exact - approx as f64).abs() <= bound as f64, "dim {dim} case {case}: {exact} vs {approx} +- {bound}");
                // Tight enough to be useful: the query's codes add little to what the f32 query's
                // bound was (the row's slack and float rounding).
                if dim <= 516 {
                    let before = slack + rounding_bound(&q);
                    // Rounding to nearest loses at most half a step per coordinate.
                    let coding = 1.02 * coded.scale * 0.5 * (dim as f32).sqrt();
                    assert!(bound <= before * 1.001 + coding + 1e-6, "dim {dim}: bound {bound} against {before} + {coding}");
                }
            }
        }
        let zero = QueryCodes::new(&[0.0; 8]);
        assert_eq!((zero.codes, zero.scale), (vec![0; 8], 0.0));
    }
}
