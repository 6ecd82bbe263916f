//! A small dense ReLU network with its own forward and backward passes. Layer products run on
//! the kernels in [`super::gemm`]; a shape they do not cover falls back to the index's SIMD row
//! kernels (the variant without prefetch: the weights live in cache), `W x` as "score every row
//! of W against x".

use super::gemm;
pub use super::gemm::BLOCK;
use crate::index::kernels;

/// One fully connected layer: `y = W x + b`, `W` row-major `[out][in]`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    /// `W` transposed (`[in][out]`), what the kernels read; re-derived by [`Dense::refresh`].
    weight_t: Vec<f32>,
}

impl PartialEq for Dense {
    fn eq(&self, other: &Self) -> bool {
        (self.inputs, self.outputs, &self.weight, &self.bias) == (other.inputs, other.outputs, &other.weight, &other.bias)
    }
}

impl Dense {
    pub fn new(inputs: usize, outputs: usize, weight: Vec<f32>, bias: Vec<f32>) -> Self {
        let mut d = Dense { inputs, outputs, weight, bias, weight_t: Vec::new() };
        d.refresh();
        d
    }

    /// Re-derives the transposed copy after `weight` changed.
    pub fn refresh(&mut self) {
        let (n_in, n_out) = (self.inputs, self.outputs);
        self.weight_t.resize(n_in * n_out, 0.0);
        for o in 0..n_out {
            for i in 0..n_in {
                self.weight_t[i * n_out + o] = self.weight[o * n_in + i];
            }
        }
    }

    /// `ys = xs W^T + b` for `rows` inputs (row-major `[rows][in]` -> `[rows][out]`): a block of
    /// [`BLOCK`] goes through the register-tiled kernel where the CPU and shape allow.
    fn forward_rows(&self, xs: &[f32], rows: usize, ys: &mut [f32]) {
        if rows == BLOCK && gemm::gemm_block(xs, &self.weight_t, &self.bias, self.inputs, ys) {
            return;
        }
        for (x, y) in xs.chunks_exact(self.inputs).zip(ys.chunks_exact_mut(self.outputs)) {
            self.forward(x, y);
        }
    }

    fn forward(&self, x: &[f32], y: &mut [f32]) {
        if gemm::gemv(x, &self.weight_t, &self.bias, y) {
            return;
        }
        // No kernel for this shape (the 5 logits) or CPU: one dot product per output.
        (kernels().f32_cached)(x, &self.weight, y);
        for (v, b) in y.iter_mut().zip(&self.bias) {
            *v += b;
        }
    }
}

/// Layers with ReLU between them (none after the last: it outputs logits).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Dense>,
}

/// Gradients with the same shapes as the layers.
pub type Grads = Vec<(Vec<f32>, Vec<f32>)>;

impl Mlp {
    /// Layer sizes e.g. `[50, 256, 128, 64, 5]`, He-initialised from `seed` (deterministic).
    pub fn seeded(sizes: &[usize], seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        let layers = sizes
            .windows(2)
            .map(|w| {
                let (inputs, outputs) = (w[0], w[1]);
                let scale = (2.0 / inputs as f64).sqrt();
                let weight = (0..inputs * outputs).map(|_| (rng.normal() * scale) as f32).collect();
                Dense::new(inputs, outputs, weight, vec![0.0; outputs])
            })
            .collect();
        Mlp { layers }
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].inputs
    }

    pub fn output_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Logits for one input.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.run(x, 1, None)
    }

    /// Logits for `rows` inputs (row-major); a block of [`BLOCK`] takes one pass over the weights.
    pub fn forward_rows(&self, xs: &[f32], rows: usize) -> Vec<f32> {
        self.run(xs, rows, None)
    }

    /// Forward keeping every layer's input (post-ReLU), for the backward pass.
    fn forward_trace(&self, x: &[f32]) -> (Vec<Vec<f32>>, Vec<f32>) {
        let mut inputs = Vec::with_capacity(self.layers.len());
        let logits = self.run(x, 1, Some(&mut inputs));
        (inputs, logits)
    }

    /// The layers over `rows` inputs (row-major), ReLU between them; `trace` receives each
    /// layer's input.
    fn run(&self, xs: &[f32], rows: usize, mut trace: Option<&mut Vec<Vec<f32>>>) -> Vec<f32> {
        let mut cur = xs.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut next = vec![0f32; rows * layer.outputs];
            layer.forward_rows(&cur, rows, &mut next);
            if i + 1 < self.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            let input = std::mem::replace(&mut cur, next);
            if let Some(t) = trace.as_deref_mut() {
                t.push(input);
            }
        }
        cur
    }

    pub fn zero_grads(&self) -> Grads {
        self.layers.iter().map(|l| (vec![0.0; l.weight.len()], vec![0.0; l.bias.len()])).collect()
    }

    /// Adds d(loss)/d(params) to `grads`, given `x` and a function from logits to d(loss)/d(logits).
    /// Returns the logits.
    pub fn accumulate(&self, x: &[f32], grads: &mut Grads, dlogits: impl FnOnce(&[f32]) -> Vec<f32>) -> Vec<f32> {
        let (inputs, logits) = self.forward_trace(x);
        let mut delta = dlogits(&logits);
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let input = &inputs[i];
            let (gw, gb) = &mut grads[i];
            for (o, &d) in delta.iter().enumerate() {
                gb[o] += d;
                if d != 0.0 {
                    let row = &mut gw[o * layer.inputs..(o + 1) * layer.inputs];
                    for (g, &v) in row.iter_mut().zip(input) {
                        *g += d * v;
                    }
                }
            }
            if i == 0 {
                break;
            }
            // delta for the previous layer: W^T delta, gated by that layer's ReLU.
            let mut prev = vec![0f32; layer.inputs];
            for (o, &d) in delta.iter().enumerate() {
                if d != 0.0 {
                    for (p, &w) in prev.iter_mut().zip(&layer.weight[o * layer.inputs..(o + 1) * layer.inputs]) {
                        *p += d * w;
                    }
                }
            }
            for (p, &v) in prev.iter_mut().zip(input) {
                if v <= 0.0 {
                    *p = 0.0;
                }
            }
            delta = prev;
        }
        logits
    }
}

/// Adam over all parameters of an [`Mlp`].
#[derive(Debug, Clone)]
pub struct Adam {
    pub lr: f32,
    pub(crate) step: i32,
    pub(crate) m: Grads,
    pub(crate) v: Grads,
}

impl Adam {
    pub fn new(mlp: &Mlp, lr: f32) -> Self {
        Adam { lr, step: 0, m: mlp.zero_grads(), v: mlp.zero_grads() }
    }

    /// Gradient *ascent* step on `grads` (they point uphill of the objective).
    pub fn ascend(&mut self, mlp: &mut Mlp, grads: &Grads) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.step += 1;
        let (c1, c2) = (1.0 - B1.powi(self.step), 1.0 - B2.powi(self.step));
        for (li, layer) in mlp.layers.iter_mut().enumerate() {
            let (gw, gb) = &grads[li];
            let (mw, mb) = &mut self.m[li];
            let (vw, vb) = &mut self.v[li];
            for (params, g, m, v) in [(&mut layer.weight, gw, mw, vw), (&mut layer.bias, gb, mb, vb)] {
                for i in 0..params.len() {
                    m[i] = B1 * m[i] + (1.0 - B1) * g[i];
                    v[i] = B2 * v[i] + (1.0 - B2) * g[i] * g[i];
                    params[i] += self.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
                }
            }
            layer.refresh();
        }
    }
}

/// splitmix64: a tiny deterministic generator for initialisation and sampling.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backprop agrees with finite differences on a small net.
    #[test]
    fn gradients_match_finite_differences() {
        let mlp = Mlp::seeded(&[6, 5, 4, 3], 11);
        let x = [0.3, -0.2, 0.9, 0.1, -0.7, 0.5];
        // Objective: logit[1] (its gradient w.r.t. the logits is one-hot).
        let mut grads = mlp.zero_grads();
        mlp.accumulate(&x, &mut grads, |l| (0..l.len()).map(|i| (i == 1) as u8 as f32).collect());
        for (li, wi) in [(0usize, 7usize), (1, 3), (2, 5)] {
            let eps = 1e-3;
            let mut plus = mlp.clone();
            plus.layers[li].weight[wi] += eps;
            let mut minus = mlp.clone();
            minus.layers[li].weight[wi] -= eps;
            let numeric = (plus.forward(&x)[1] - minus.forward(&x)[1]) / (2.0 * eps);
            assert!((numeric - grads[li].0[wi]).abs() < 1e-2, "layer {li} w{wi}: {numeric} vs {}", grads[li].0[wi]);
        }
    }
}
