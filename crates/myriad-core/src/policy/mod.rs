//! The routing policy: an MLP over a 50-dim state (see `src/policy-state.ts` for the layout) that
//! picks one of A candidates (default 5), learning online with REINFORCE and a reward baseline.
//!
//! A policy made from a seed is *untrained*: He-initialised weights, roughly uniform choices.

mod gemm;
pub mod mlp;
pub mod onnx;
mod state;

use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Result};
use mlp::{Adam, Mlp, SplitMix};

pub const STATE_DIM: usize = 50;
pub const DEFAULT_SIZES: [usize; 5] = [STATE_DIM, 256, 128, 64, 5];
/// Batches at least this large are split across threads.
const PARALLEL_BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct PolicyOptions {
    pub sizes: Vec<usize>,
    pub seed: u64,
    /// Adam step size.
    pub learning_rate: f32,
    /// Weight of the newest batch mean in the reward baseline (an EMA).
    pub baseline_decay: f32,
    /// Weight of the policy's entropy in the objective: keeps it exploring instead of locking
    /// onto one action before the rewards have said anything.
    pub entropy_bonus: f32,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions { sizes: DEFAULT_SIZES.to_vec(), seed: 42, learning_rate: 3e-4, baseline_decay: 0.1, entropy_bonus: 0.01 }
    }
}

/// How to turn probabilities into a choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    Greedy,
    /// Sample from softmax(logits / temperature).
    Sample {
        temperature: f32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: usize,
    pub probs: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: Vec<f32>,
    pub action: usize,
    pub reward: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    pub transitions: usize,
    pub mean_reward: f32,
    /// The baseline after this update.
    pub baseline: f32,
    pub updates: u64,
}

pub struct Policy {
    mlp: Mlp,
    adam: Adam,
    baseline: Option<f32>,
    baseline_decay: f32,
    entropy_bonus: f32,
    updates: u64,
    rng: Mutex<SplitMix>,
}

impl Policy {
    pub fn new(opts: &PolicyOptions) -> Result<Self> {
        if opts.sizes.len() < 2 || opts.sizes.iter().any(|&s| s == 0 || s > 65_536) {
            return Err(Error::InvalidArg(format!("layer sizes must be >= 2 positive numbers, got {:?}", opts.sizes)));
        }
        Ok(Self::from_mlp(Mlp::seeded(&opts.sizes, opts.seed), opts))
    }

    pub fn from_mlp(mlp: Mlp, opts: &PolicyOptions) -> Self {
        Policy {
            adam: Adam::new(&mlp, opts.learning_rate),
            mlp,
            baseline: None,
            baseline_decay: opts.baseline_decay,
            entropy_bonus: opts.entropy_bonus,
            updates: 0,
            rng: Mutex::new(SplitMix(opts.seed ^ 0xA5A5_5A5A)),
        }
    }

    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }
    pub fn state_dim(&self) -> usize {
        self.mlp.input_dim()
    }
    pub fn actions(&self) -> usize {
        self.mlp.output_dim()
    }

    pub fn logits(&self, state: &[f32]) -> Result<Vec<f32>> {
        self.check_state(state, "state")?;
        Ok(self.mlp.forward(state))
    }

    pub fn decide(&self, state: &[f32], choice: Choice) -> Result<Decision> {
        check_choice(choice)?;
        let logits = self.logits(state)?;
        Ok(self.choose(&logits, choice))
    }

    /// Decisions for `states.len() / state_dim` states: actions and row-major probabilities.
    pub fn decide_batch(&self, states: &[f32], choice: Choice) -> Result<(Vec<u32>, Vec<f32>)> {
        check_choice(choice)?;
        let dim = self.state_dim();
        if states.is_empty() || !states.len().is_multiple_of(dim) {
            return Err(Error::Dimension {
                what: format!("states (a multiple of {dim})"),
                expected: dim * (states.len() / dim).max(1),
                got: states.len(),
            });
        }
        if states.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotFinite("states".into()));
        }
        let (n, a) = (states.len() / dim, self.actions());
        let (mut actions, mut probs) = (vec![0u32; n], vec![0f32; n * a]);
        // Chunks of BLOCK states share each pass over the weights; decisions go straight into
        // place, with no allocation per decision.
        let run = |((chunk, acts), ps): ((&[f32], &mut [u32]), &mut [f32])| {
            let logits = self.mlp.forward_rows(chunk, chunk.len() / dim);
            for ((l, act), p) in logits.chunks(a).zip(acts.iter_mut()).zip(ps.chunks_mut(a)) {
                *act = self.choose_into(l, choice, p) as u32;
            }
        };
        if n >= PARALLEL_BATCH {
            states
                .par_chunks(dim * mlp::BLOCK)
                .zip(actions.par_chunks_mut(mlp::BLOCK))
                .zip(probs.par_chunks_mut(a * mlp::BLOCK))
                .for_each(run);
        } else {
            states.chunks(dim * mlp::BLOCK).zip(actions.chunks_mut(mlp::BLOCK)).zip(probs.chunks_mut(a * mlp::BLOCK)).for_each(run);
        }
        Ok((actions, probs))
    }

    /// One REINFORCE step with baseline over `transitions`: ascends
    /// mean((reward - baseline) * log pi(action | state) + entropy_bonus * H(pi(. | state))),
    /// then moves the baseline toward the batch's mean reward.
    pub fn update(&mut self, transitions: &[Transition]) -> Result<UpdateStats> {
        if transitions.is_empty() {
            return Err(Error::InvalidArg("update needs at least one transition".into()));
        }
        for (i, t) in transitions.iter().enumerate() {
            self.check_state(&t.state, &format!("transition {i}"))?;
            if t.action >= self.actions() {
                return Err(Error::InvalidArg(format!("transition {i}: action {} is not below {}", t.action, self.actions())));
            }
            if !t.reward.is_finite() {
                return Err(Error::NotFinite(format!("transition {i} reward")));
            }
        }
        let mean_reward = transitions.iter().map(|t| t.reward).sum::<f32>() / transitions.len() as f32;
        let baseline = self.baseline.unwrap_or(mean_reward);
        let scale = 1.0 / transitions.len() as f32;
        let mut grads = self.mlp.zero_grads();
        let beta = self.entropy_bonus * scale;
        for t in transitions {
            let advantage = (t.reward - baseline) * scale;
            self.mlp.accumulate(&t.state, &mut grads, |logits| {
                let p = softmax(logits, 1.0);
                let entropy: f32 = -p.iter().map(|&pi| pi * pi.max(1e-12).ln()).sum::<f32>();
                // d log softmax(a) / d z_i = onehot(a)_i - p_i;  dH / d z_i = -p_i (ln p_i + H)
                p.iter()
                    .enumerate()
                    .map(|(i, &pi)| advantage * ((i == t.action) as u8 as f32 - pi) - beta * pi * (pi.max(1e-12).ln() + entropy))
                    .collect()
            });
        }
        self.adam.ascend(&mut self.mlp, &grads);
        self.baseline = Some(baseline + self.baseline_decay * (mean_reward - baseline));
        self.updates += 1;
        Ok(UpdateStats { transitions: transitions.len(), mean_reward, baseline: self.baseline.unwrap_or(0.0), updates: self.updates })
    }

    pub fn export_onnx(&self, path: &Path) -> Result<()> {
        write_atomic(path, &onnx::export(&self.mlp))
    }

    pub fn load_onnx(path: &Path, opts: &PolicyOptions) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::from_mlp(onnx::import(&bytes)?, opts))
    }

    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let mut tensors = Vec::new();
        for (i, l) in self.mlp.layers.iter().enumerate() {
            tensors.push((format!("l{i}.weight"), vec![l.outputs, l.inputs], f32_bytes(&l.weight)));
            tensors.push((format!("l{i}.bias"), vec![l.outputs], f32_bytes(&l.bias)));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, shape, data)| {
                Ok((
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                ))
            })
            .collect::<Result<_>>()?;
        let bytes = safetensors::serialize(views, None).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(path, &bytes)
    }

    pub fn load_safetensors(path: &Path, opts: &PolicyOptions) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::InvalidModel(format!("{}: {e}", path.display())))?;
        let mut layers = Vec::new();
        for i in 0.. {
            let (Ok(w), Ok(b)) = (st.tensor(&format!("l{i}.weight")), st.tensor(&format!("l{i}.bias"))) else { break };
            let shape = w.shape();
            if w.dtype() != safetensors::Dtype::F32 || b.dtype() != safetensors::Dtype::F32 || shape.len() != 2 || b.shape() != [shape[0]] {
                return Err(Error::InvalidModel(format!("{}: layer {i} is not f32 [out, in] + [out]", path.display())));
            }
            layers.push(mlp::Dense::new(shape[1], shape[0], from_f32_bytes(w.data()), from_f32_bytes(b.data())));
        }
        if layers.is_empty() || layers.windows(2).any(|p| p[0].outputs != p[1].inputs) {
            return Err(Error::InvalidModel(format!("{}: no chain of l<i>.weight / l<i>.bias layers", path.display())));
        }
        Ok(Self::from_mlp(Mlp { layers }, opts))
    }

    fn check_state(&self, state: &[f32], what: &str) -> Result<()> {
        if state.len() != self.state_dim() {
            return Err(Error::Dimension { what: what.to_string(), expected: self.state_dim(), got: state.len() });
        }
        if state.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotFinite(what.to_string()));
        }
        Ok(())
    }

    fn choose(&self, logits: &[f32], choice: Choice) -> Decision {
        let mut probs = vec![0.0; logits.len()];
        let action = self.choose_into(logits, choice, &mut probs);
        Decision { action, probs }
    }

    /// The action for `logits`, with their probabilities written into `probs`.
    fn choose_into(&self, logits: &[f32], choice: Choice, probs: &mut [f32]) -> usize {
        match choice {
            Choice::Greedy => {
                softmax_into(logits, 1.0, probs);
                argmax(probs)
            }
            Choice::Sample { temperature } => {
                softmax_into(logits, temperature, probs);
                let u = self.rng.lock().map(|mut r| r.uniform() as f32).unwrap_or(0.5);
                let mut acc = 0.0;
                let action = probs.iter().position(|&p| {
                    acc += p;
                    u < acc
                });
                action.unwrap_or(probs.len() - 1)
            }
        }
    }
}

fn check_choice(choice: Choice) -> Result<()> {
    match choice {
        Choice::Sample { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
            Err(Error::InvalidArg(format!("temperature must be a positive number, got {temperature}")))
        }
        _ => Ok(()),
    }
}

pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let mut probs = vec![0.0; logits.len()];
    softmax_into(logits, temperature, &mut probs);
    probs
}

fn softmax_into(logits: &[f32], temperature: f32, probs: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (p, &l) in probs.iter_mut().zip(logits) {
        *p = ((l - max) / temperature).exp();
    }
    let sum: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_f32_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
