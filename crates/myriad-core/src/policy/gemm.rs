//! The dense layers' products, `y = b + W x`, from the transposed weights `Wt` (`[in][out]`): for
//! each input, broadcast it and add it times a row of `Wt` into accumulators that cover a tile of
//! outputs and stay in registers. Every kernel adds the inputs in the same order, starting from
//! the bias, so a state gets the same logits alone and in a batch.
//!
//! Why this shape, on the 50-256-128-64-5 net (`cargo run --release --example policy_latency`):
//! - one state: faster than 344 dot products (scoring every row of `W` against `x`: short dots, a
//!   horizontal sum each). The weights (216 KB) stream from L2 for every decision, which bounds
//!   it; inputs that ReLU zeroed are skipped, which halves the hidden layers' share.
//! - a batch, in blocks of [`BLOCK`] states on 2 threads: an AVX-512 tile of 6 states beat the
//!   AVX2 one, and 12 states a tile did better again (see [`BLOCK`]).

/// States per blocked pass: each weight is loaded once for all of them. 12 for AVX-512's 32
/// registers (24 accumulators): more decisions a second than 6, as the weights stream from L2
/// half as often.
pub const BLOCK: usize = 12;
/// States per pass of the AVX2 tile, which has 16 registers to AVX-512's 32.
const HALF: usize = BLOCK / 2;

/// `y = b + W x` for one input; `false` when no SIMD kernel fits (caller falls back).
pub fn gemv(x: &[f32], wt: &[f32], bias: &[f32], y: &mut [f32]) -> bool {
    let (n_in, n_out) = (x.len(), y.len());
    assert!(wt.len() == n_in * n_out && bias.len() == n_out);
    #[cfg(target_arch = "x86_64")]
    if n_out.is_multiple_of(16) && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: avx2 and fma were just detected; the shapes were checked above.
        unsafe { x86::gemv_avx2(x, wt, bias, y) };
        return true;
    }
    false
}

/// `ys = b + W xs` for exactly [`BLOCK`] inputs (row-major); `false` when no SIMD kernel fits.
pub fn gemm_block(xs: &[f32], wt: &[f32], bias: &[f32], n_in: usize, ys: &mut [f32]) -> bool {
    let n_out = bias.len();
    assert!(xs.len() == BLOCK * n_in && ys.len() == BLOCK * n_out && wt.len() == n_in * n_out);
    #[cfg(target_arch = "x86_64")]
    {
        if n_out.is_multiple_of(32) && std::is_x86_feature_detected!("avx512f") {
            // SAFETY: avx512f was just detected; the shapes were checked above.
            unsafe { x86::gemm_block_avx512(xs, wt, bias, n_in, ys) };
            return true;
        }
        if n_out.is_multiple_of(16) && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: as above, for avx2 and fma.
            unsafe { x86::gemm_block_avx2(xs, wt, bias, n_in, ys) };
            return true;
        }
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK, HALF};
    use std::arch::x86_64::*;

    /// Inputs that are exactly zero (ReLU zeroes about half of a hidden layer's) add nothing:
    /// they are listed out once, without a branch per input, and skipped. Output tiles of 64
    /// (eight accumulators, enough independent FMAs to fill both ports), then of 16.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemv_avx2(x: &[f32], wt: &[f32], bias: &[f32], y: &mut [f32]) {
        let (n_in, n_out) = (x.len(), y.len());
        let mut live = vec![0; n_in];
        let mut count = 0;
        for (k, &v) in x.iter().enumerate() {
            live[count] = k;
            count += (v != 0.0) as usize;
        }
        live.truncate(count);
        let mut o = 0;
        while o + 64 <= n_out {
            unsafe { tile::<8>(x, &live, wt, bias, n_out, o, y) };
            o += 64;
        }
        while o < n_out {
            unsafe { tile::<2>(x, &live, wt, bias, n_out, o, y) };
            o += 16;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize>(x: &[f32], live: &[usize], wt: &[f32], bias: &[f32], n_out: usize, o: usize, y: &mut [f32]) {
        unsafe {
            let mut acc = [_mm256_setzero_ps(); R];
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(bias.as_ptr().add(o + 8 * r));
            }
            for &k in live {
                let xv = _mm256_set1_ps(*x.get_unchecked(k));
                let row = wt.as_ptr().add(k * n_out + o);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(xv, _mm256_loadu_ps(row.add(8 * r)), *a);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(y.as_mut_ptr().add(o + 8 * r), *a);
            }
        }
    }

    /// A block as two halves of HALF states.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm_block_avx2(xs: &[f32], wt: &[f32], bias: &[f32], n_in: usize, ys: &mut [f32]) {
        let n_out = bias.len();
        for half in 0..2 {
            unsafe { half_block_avx2(&xs[half * HALF * n_in..], wt, bias, n_in, &mut ys[half * HALF * n_out..]) };
        }
    }

    /// A HALF-input x 16-output register tile: twelve accumulators stay in registers across the
    /// whole input dimension, so every weight load feeds six FMAs. 6 beat 4, and 8 (which spills
    /// registers), on a large batch of decisions.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn half_block_avx2(xs: &[f32], wt: &[f32], bias: &[f32], n_in: usize, ys: &mut [f32]) {
        let n_out = bias.len();
        let (x, w, y) = (xs.as_ptr(), wt.as_ptr(), ys.as_mut_ptr());
        for o in (0..n_out).step_by(16) {
            unsafe {
                let b0 = _mm256_loadu_ps(bias.as_ptr().add(o));
                let b1 = _mm256_loadu_ps(bias.as_ptr().add(o + 8));
                let mut acc = [[b0, b1]; HALF];
                for k in 0..n_in {
                    let w0 = _mm256_loadu_ps(w.add(k * n_out + o));
                    let w1 = _mm256_loadu_ps(w.add(k * n_out + o + 8));
                    for (s, a) in acc.iter_mut().enumerate() {
                        let xv = _mm256_broadcast_ss(&*x.add(s * n_in + k));
                        a[0] = _mm256_fmadd_ps(xv, w0, a[0]);
                        a[1] = _mm256_fmadd_ps(xv, w1, a[1]);
                    }
                }
                for (s, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(y.add(s * n_out + o), a[0]);
                    _mm256_storeu_ps(y.add(s * n_out + o + 8), a[1]);
                }
            }
        }
    }

    /// The tile twice as wide and twice as tall: BLOCK inputs x 32 outputs in 24 16-lane
    /// accumulators, every weight load feeding twelve FMAs.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_block_avx512(xs: &[f32], wt: &[f32], bias: &[f32], n_in: usize, ys: &mut [f32]) {
        let n_out = bias.len();
        let (x, w, y) = (xs.as_ptr(), wt.as_ptr(), ys.as_mut_ptr());
        for o in (0..n_out).step_by(32) {
            unsafe {
                let b0 = _mm512_loadu_ps(bias.as_ptr().add(o));
                let b1 = _mm512_loadu_ps(bias.as_ptr().add(o + 16));
                let mut acc = [[b0, b1]; BLOCK];
                for k in 0..n_in {
                    let w0 = _mm512_loadu_ps(w.add(k * n_out + o));
                    let w1 = _mm512_loadu_ps(w.add(k * n_out + o + 16));
                    for (s, a) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*x.add(s * n_in + k));
                        a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                        a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
                    }
                }
                for (s, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(y.add(s * n_out + o), a[0]);
                    _mm512_storeu_ps(y.add(s * n_out + o + 16), a[1]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain product in the kernels' order: bias first, then the inputs in turn.
    fn reference(x: &[f32], wt: &[f32], bias: &[f32]) -> Vec<f32> {
        let n_out = bias.len();
        let mut y = bias.to_vec();
        for (k, &v) in x.iter().enumerate() {
            for o in 0..n_out {
                y[o] = v.mul_add(wt[k * n_out + o], y[o]);
            }
        }
        y
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        // Some exact zeros, as ReLU leaves them.
        (0..n)
            .map(|i| {
                if (i as u32 * 7 + seed).is_multiple_of(3) {
                    0.0
                } else {
                    (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0
                }
            })
            .collect()
    }

    type BlockKernel = fn(&[f32], &[f32], &[f32], usize, &mut [f32]) -> bool;

    /// Every block kernel this CPU can run, by name (the dispatcher would pick only the widest).
    fn block_kernels() -> Vec<(&'static str, BlockKernel)> {
        let mut out: Vec<(&'static str, BlockKernel)> = vec![("dispatch", gemm_block)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                out.push(("avx2", |xs, wt, bias, n_in, ys| {
                    // SAFETY: detected above; the caller passes BLOCK inputs and a 16-multiple width.
                    unsafe { x86::gemm_block_avx2(xs, wt, bias, n_in, ys) };
                    true
                }));
            }
            if std::is_x86_feature_detected!("avx512f") {
                out.push(("avx512", |xs, wt, bias, n_in, ys| {
                    // SAFETY: as above, with a 32-multiple width.
                    unsafe { x86::gemm_block_avx512(xs, wt, bias, n_in, ys) };
                    true
                }));
            }
        }
        out
    }

    #[test]
    fn kernels_equal_the_plain_product_in_the_same_order() {
        for (n_in, n_out) in [(50, 256), (256, 128), (128, 64), (7, 32), (3, 96)] {
            let (wt, bias) = (data(n_in * n_out, 1), data(n_out, 2));
            let xs = data(BLOCK * n_in, 3);
            let want: Vec<Vec<f32>> = (0..BLOCK).map(|s| reference(&xs[s * n_in..(s + 1) * n_in], &wt, &bias)).collect();
            for (s, w) in want.iter().enumerate() {
                let mut y = vec![0.0; n_out];
                if gemv(&xs[s * n_in..(s + 1) * n_in], &wt, &bias, &mut y) {
                    assert_eq!(&y, w, "gemv {n_in}x{n_out} state {s}");
                }
            }
            for (name, kernel) in block_kernels() {
                let mut ys = vec![0.0; BLOCK * n_out];
                if kernel(&xs, &wt, &bias, n_in, &mut ys) {
                    for (s, w) in want.iter().enumerate() {
                        assert_eq!(&ys[s * n_out..(s + 1) * n_out], &w[..], "{name} {n_in}x{n_out} state {s}");
                    }
                }
            }
        }
        // A width only the 16-lane kernels take, and one no kernel takes.
        let (wt, bias) = (data(5 * 48, 4), data(48, 5));
        let mut y = vec![0.0; 48];
        assert!(!gemv(&data(5, 6), &wt[..5 * 5], &bias[..5], &mut y[..5]));
        if gemv(&data(5, 6), &wt, &bias, &mut y) {
            assert_eq!(y, reference(&data(5, 6), &wt, &bias));
        }
    }
}
