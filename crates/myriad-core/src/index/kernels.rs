//! Dot products over stored rows: the inner loop of the exact scan.
//!
//! On x86_64 with AVX2+FMA(+F16C) we use explicit intrinsics, chosen once at run time, since the
//! baseline target only has SSE2. Elsewhere (aarch64 NEON, old x86) a portable version with
//! independent lane accumulators, which LLVM vectorises without needing fast-math.

use half::f16;

/// Scores a block of stored f32 rows against one query: `out[r] = dot(query, rows[r])`, with
/// `rows.len() == out.len() * query.len()`. One call per block (not per row) keeps call and
/// horizontal-sum overhead out of the inner loop, and lets four rows share each query load.
pub type ScoreF32 = fn(&[f32], &[f32], &mut [f32]);
/// The same over f16 rows (raw bits).
pub type ScoreF16 = fn(&[f32], &[u16], &mut [f32]);
/// Integer codes of a query against int8 codes of rows (the index's sketch): `out[r] =
/// dot(query, codes[r])`, exact. Integer lanes score twice the elements of f32 lanes per
/// instruction, so both the scan in cache and the whole top-k right after a model run are faster
/// than with the codes widened to f32. The caller keeps `dim * max|query| * 127` below 2^31, so
/// no sum overflows.
pub type DotI8 = fn(&[i16], &[i8], &mut [i32]);

pub struct Kernels {
    pub f32: ScoreF32,
    pub f16: ScoreF16,
    pub i8: DotI8,
    /// [`Kernels::f32`] without software prefetch: for data already in cache (small MLP layers),
    /// where the prefetch instructions would only cost issue slots.
    pub f32_cached: ScoreF32,
    pub name: &'static str,
}

pub fn kernels() -> &'static Kernels {
    static K: std::sync::OnceLock<Kernels> = std::sync::OnceLock::new();
    K.get_or_init(detect)
}

fn detect() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            return Kernels {
                f32: x86::score_f32,
                f16: x86::score_f16,
                i8: x86::dot_i8,
                f32_cached: x86::score_f32_cached,
                name: "avx2+fma+f16c",
            };
        }
    }
    Kernels {
        f32: score_portable::<f32>,
        f16: score_portable::<u16>,
        i8: dot_i8_portable,
        f32_cached: score_portable::<f32>,
        name: "portable",
    }
}

/// A stored value as the f32 the kernels multiply: f32 as is, f16 from its bits (how f16 rows are
/// kept).
pub trait Widen: Copy {
    fn widen(self) -> f32;
}
impl Widen for f32 {
    fn widen(self) -> f32 {
        self
    }
}
impl Widen for u16 {
    fn widen(self) -> f32 {
        f16::from_bits(self).to_f32()
    }
}

fn score_portable<T: Widen>(query: &[f32], rows: &[T], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        *o = dot_portable(query, row);
    }
}

fn dot_i8_portable(query: &[i16], rows: &[i8], out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        let mut acc = [0i32; LANES];
        let (qc, qt) = query.split_at(query.len() / LANES * LANES);
        let (rc, rt) = row.split_at(qc.len());
        for (x, y) in qc.chunks_exact(LANES).zip(rc.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += x[i] as i32 * y[i] as i32;
            }
        }
        *o = acc.iter().sum::<i32>() + qt.iter().zip(rt).map(|(&x, &y)| x as i32 * y as i32).sum::<i32>();
    }
}

const LANES: usize = 16;

pub fn dot_portable<T: Widen>(a: &[f32], b: &[T]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, at) = a.split_at(a.len() / LANES * LANES);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i].widen();
        }
    }
    acc.iter().sum::<f32>() + at.iter().zip(bt).map(|(x, &y)| x * y.widen()).sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// How far ahead (in rows) the scan prefetches.
    const PREFETCH_ROWS: usize = 8;
    /// The same for the sketch's int8 rows (6 KiB ahead at 384 dims): right after a model run, 16
    /// and 32 rows ahead did equally well, 8 worse, and no prefetch worst.
    const SKETCH_PREFETCH_ROWS: usize = 16;

    pub fn score_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * query.len());
        // SAFETY: selected only after detecting avx2+fma; lengths checked above.
        unsafe { score_avx2::<F32Rows, true>(query, rows, out) }
    }

    pub fn score_f32_cached(query: &[f32], rows: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * query.len());
        // SAFETY: as above.
        unsafe { score_avx2::<F32Rows, false>(query, rows, out) }
    }

    pub fn score_f16(query: &[f32], rows: &[u16], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * query.len());
        // SAFETY: selected only after detecting avx2+fma+f16c; lengths checked above.
        unsafe { score_avx2::<F16Rows, true>(query, rows, out) }
    }

    pub fn dot_i8(query: &[i16], rows: &[i8], out: &mut [i32]) {
        assert_eq!(rows.len(), out.len() * query.len());
        // SAFETY: selected only after detecting avx2; lengths checked above.
        unsafe { dot_i8_avx2(query, rows, out) }
    }

    /// How to load 8 stored values as f32 lanes, and one as a scalar for the tail.
    trait Load {
        type Elem: Copy;
        unsafe fn load8(p: *const Self::Elem) -> __m256;
        unsafe fn load1(p: *const Self::Elem) -> f32;
    }
    struct F32Rows;
    struct F16Rows;
    impl Load for F32Rows {
        type Elem = f32;
        #[inline(always)]
        unsafe fn load8(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load1(p: *const f32) -> f32 {
            *p
        }
    }
    impl Load for F16Rows {
        type Elem = u16;
        #[inline(always)]
        unsafe fn load8(p: *const u16) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn load1(p: *const u16) -> f32 {
            half::f16::from_bits(*p).to_f32()
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn score_avx2<L: Load, const PREFETCH: bool>(query: &[f32], rows: &[L::Elem], out: &mut [f32]) {
        let dim = query.len();
        let body = dim / 8 * 8;
        let q = query.as_ptr();
        let mut r = 0;
        // Four rows at a time: four independent FMA chains, one query load for all four.
        let row_bytes = dim * std::mem::size_of::<L::Elem>();
        while r + 4 <= out.len() {
            // Software prefetch a few rows ahead: the hardware streamer alone leaves a single
            // thread latency-bound here (prefetching made a large scan markedly faster).
            if PREFETCH {
                let ahead = rows.as_ptr().wrapping_add((r + PREFETCH_ROWS) * dim) as *const i8;
                let mut line = 0;
                while line < 4 * row_bytes {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                    line += 64;
                }
            }
            let base = rows.as_ptr().add(r * dim);
            let (p0, p1, p2, p3) = (base, base.add(dim), base.add(2 * dim), base.add(3 * dim));
            let (mut a0, mut a1, mut a2, mut a3) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i < body {
                let x = _mm256_loadu_ps(q.add(i));
                a0 = _mm256_fmadd_ps(x, L::load8(p0.add(i)), a0);
                a1 = _mm256_fmadd_ps(x, L::load8(p1.add(i)), a1);
                a2 = _mm256_fmadd_ps(x, L::load8(p2.add(i)), a2);
                a3 = _mm256_fmadd_ps(x, L::load8(p3.add(i)), a3);
                i += 8;
            }
            let mut sums = hsum4(a0, a1, a2, a3);
            for j in body..dim {
                let x = *q.add(j);
                sums[0] += x * L::load1(p0.add(j));
                sums[1] += x * L::load1(p1.add(j));
                sums[2] += x * L::load1(p2.add(j));
                sums[3] += x * L::load1(p3.add(j));
            }
            out[r..r + 4].copy_from_slice(&sums);
            r += 4;
        }
        while r < out.len() {
            let p = rows.as_ptr().add(r * dim);
            let mut acc = _mm256_setzero_ps();
            let mut i = 0;
            while i < body {
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(i)), L::load8(p.add(i)), acc);
                i += 8;
            }
            let mut sum = hsum4(acc, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())[0];
            for j in body..dim {
                sum += *q.add(j) * L::load1(p.add(j));
            }
            out[r] = sum;
            r += 1;
        }
    }

    /// Four rows at a time, as [`score_avx2`]; per 16 elements one sign extension of the row's
    /// bytes to i16 and one `vpmaddwd` (16 products summed in pairs into 8 i32 lanes).
    #[target_feature(enable = "avx2")]
    unsafe fn dot_i8_avx2(query: &[i16], rows: &[i8], out: &mut [i32]) {
        let dim = query.len();
        let body = dim / 16 * 16;
        let q = query.as_ptr();
        let load = |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i));
        let mut r = 0;
        while r + 4 <= out.len() {
            let ahead = rows.as_ptr().wrapping_add((r + SKETCH_PREFETCH_ROWS) * dim);
            let mut line = 0;
            while line < 4 * dim {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                line += 64;
            }
            let base = rows.as_ptr().add(r * dim);
            let (p0, p1, p2, p3) = (base, base.add(dim), base.add(2 * dim), base.add(3 * dim));
            let (mut a0, mut a1, mut a2, mut a3) =
                (_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256());
            let mut i = 0;
            while i < body {
                let x = _mm256_loadu_si256(q.add(i) as *const __m256i);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, load(p0.add(i))));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, load(p1.add(i))));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, load(p2.add(i))));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x, load(p3.add(i))));
                i += 16;
            }
            let mut sums = hsum4_i32(a0, a1, a2, a3);
            for j in body..dim {
                let x = *q.add(j) as i32;
                sums[0] += x * *p0.add(j) as i32;
                sums[1] += x * *p1.add(j) as i32;
                sums[2] += x * *p2.add(j) as i32;
                sums[3] += x * *p3.add(j) as i32;
            }
            out[r..r + 4].copy_from_slice(&sums);
            r += 4;
        }
        while r < out.len() {
            let p = rows.as_ptr().add(r * dim);
            let mut acc = _mm256_setzero_si256();
            let mut i = 0;
            while i < body {
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256(q.add(i) as *const __m256i), load(p.add(i))));
                i += 16;
            }
            let zero = _mm256_setzero_si256();
            let mut sum = hsum4_i32(acc, zero, zero, zero)[0];
            for j in body..dim {
                sum += *q.add(j) as i32 * *p.add(j) as i32;
            }
            out[r] = sum;
            r += 1;
        }
    }

    /// Horizontal sums of four i32 vectors at once.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn hsum4_i32(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> [i32; 4] {
        let ab = _mm256_hadd_epi32(a, b);
        let cd = _mm256_hadd_epi32(c, d);
        let abcd = _mm256_hadd_epi32(ab, cd);
        let lanes = _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
        let mut out = [0i32; 4];
        _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, lanes);
        out
    }

    /// Horizontal sums of four vectors at once.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> [f32; 4] {
        let ab = _mm256_hadd_ps(a, b);
        let cd = _mm256_hadd_ps(c, d);
        let abcd = _mm256_hadd_ps(ab, cd);
        let lanes = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
        let mut out = [0f32; 4];
        _mm_storeu_ps(out.as_mut_ptr(), lanes);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_kernels_agree_with_portable_ones() {
        let k = kernels();
        for n in [1usize, 7, 8, 31, 32, 33, 384, 1000] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
            let bh: Vec<u16> = b.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
            let b8: Vec<i8> = (0..n).map(|i| ((i * 53 % 255) as i32 - 127) as i8).collect();
            // Query codes as large as the caller allows (every third at the limit), so the sums
            // reach their largest.
            let limit = (i32::MAX / (127 * n as i32)).min(i16::MAX as i32);
            let a16: Vec<i16> = (0..n).map(|i| if i % 3 == 0 { limit } else { i as i32 * 911 % (2 * limit + 1) - limit } as i16).collect();
            let exact8 = |row: &[i8]| a16.iter().zip(row).map(|(&x, &y)| x as i64 * y as i64).sum::<i64>();
            let mut one = [0i32; 1];
            dot_i8_portable(&a16, &b8, &mut one);
            assert_eq!(one[0] as i64, exact8(&b8), "portable i8 n={n}");
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot_portable(&a, &b) as f64 - exact).abs() < 1e-3, "portable f32 n={n}");
            let via_f16 = dot_portable(&a, &bh);
            assert!((via_f16 as f64 - exact).abs() < 2e-2 * (n as f64).sqrt(), "f16 accuracy n={n}");
            // Blocks of 1..=9 rows exercise the 4-row body and the single-row tail.
            for rows in 1..=9usize {
                let block: Vec<f32> = (0..rows).flat_map(|r| b.iter().map(move |v| v * (r as f32 + 1.0))).collect();
                let block_h: Vec<u16> = block.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
                let block_8: Vec<i8> = (0..rows).flat_map(|r| b8.iter().map(move |&v| (v as i32 + r as i32).min(127) as i8)).collect();
                let (mut o32, mut o16, mut o8) = (vec![0f32; rows], vec![0f32; rows], vec![0i32; rows]);
                (k.f32)(&a, &block, &mut o32);
                (k.f16)(&a, &block_h, &mut o16);
                (k.i8)(&a16, &block_8, &mut o8);
                for r in 0..rows {
                    let scale = r as f64 + 1.0;
                    assert!((o32[r] as f64 - exact * scale).abs() < 1e-3 * scale, "f32 n={n} row={r}");
                    let want16 = dot_portable(&a, &block_h[r * n..(r + 1) * n]);
                    assert!((o16[r] - want16).abs() < 1e-3 * scale as f32, "f16 n={n} row={r}");
                    assert_eq!(o8[r] as i64, exact8(&block_8[r * n..(r + 1) * n]), "i8 n={n} row={r}");
                }
            }
        }
    }
}
