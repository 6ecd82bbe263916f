//! Dot products over stored rows: the inner loop of the exact scan.
//!
//! On x86_64 with AVX2+FMA(+F16C) we use explicit intrinsics, chosen once at run time, since the
//! baseline target only has SSE2. Elsewhere (aarch64 NEON, old x86) a portable version with
//! independent lane accumulators, which LLVM vectorises without needing fast-math.

use half::f16;

/// Dot of an f32 query with one stored f32 row (same length).
pub type DotF32 = fn(&[f32], &[f32]) -> f32;
/// Dot of an f32 query with one stored f16 row (raw bits; same length).
pub type DotF16 = fn(&[f32], &[u16]) -> f32;

pub struct Kernels {
    pub f32: DotF32,
    pub f16: DotF16,
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
            return Kernels { f32: x86::dot_f32, f16: x86::dot_f16, name: "avx2+fma+f16c" };
        }
    }
    Kernels { f32: dot_f32_portable, f16: dot_f16_portable, name: "portable" }
}

const LANES: usize = 16;

pub fn dot_f32_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, at) = a.split_at(a.len() / LANES * LANES);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + at.iter().zip(bt).map(|(x, y)| x * y).sum::<f32>()
}

pub fn dot_f16_portable(a: &[f32], b: &[u16]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, at) = a.split_at(a.len() / LANES * LANES);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += x[i] * f16::from_bits(y[i]).to_f32();
        }
    }
    acc.iter().sum::<f32>() + at.iter().zip(bt).map(|(x, &y)| x * f16::from_bits(y).to_f32()).sum::<f32>()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: selected only after detecting avx2+fma; lengths checked above.
        unsafe { dot_f32_avx2(a, b) }
    }

    pub fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: selected only after detecting avx2+fma+f16c; lengths checked above.
        unsafe { dot_f16_avx2(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // Four independent accumulators hide the FMA latency.
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, a_j) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *a_j = _mm256_fmadd_ps(x, y, *a_j);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_f16_avx2(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, a_j) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i + 8 * j) as *const __m128i));
                *a_j = _mm256_fmadd_ps(x, y, *a_j);
            }
            i += 32;
        }
        while i + 8 <= n {
            let y = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i) as *const __m128i));
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), y, acc[0]);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        while i < n {
            sum += *pa.add(i) * half::f16::from_bits(*pb.add(i)).to_f32();
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
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
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(((k.f32)(&a, &b) as f64 - exact).abs() < 1e-3, "f32 n={n}");
            assert!((dot_f32_portable(&a, &b) as f64 - exact).abs() < 1e-3, "portable f32 n={n}");
            let via_f16 = dot_f16_portable(&a, &bh);
            assert!(((k.f16)(&a, &bh) - via_f16).abs() < 1e-3, "f16 n={n}");
            assert!((via_f16 as f64 - exact).abs() < 2e-2 * (n as f64).sqrt(), "f16 accuracy n={n}");
        }
    }
}
