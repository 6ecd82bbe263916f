use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use myriad_core::policy::UpdateStats as CoreStats;
use myriad_core::{Choice, PolicyOptions, Transition};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{guarded, invalid, Result};
use crate::settle::Job;

/// Options of `NativePolicy.create`, `.loadOnnx` and `.loadSafetensors`, documented in the TS
/// schema `src/policy/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativePolicyOptions {
    pub sizes: Option<Vec<u32>>,
    pub seed: Option<u32>,
    pub learning_rate: Option<f64>,
    pub baseline_decay: Option<f64>,
    pub entropy_bonus: Option<f64>,
}

impl NativePolicyOptions {
    fn into_core(self) -> PolicyOptions {
        let d = PolicyOptions::default();
        PolicyOptions {
            sizes: self.sizes.map_or(d.sizes, |s| s.into_iter().map(|v| v as usize).collect()),
            seed: self.seed.map_or(d.seed, u64::from),
            learning_rate: self.learning_rate.map_or(d.learning_rate, |v| v as f32),
            baseline_decay: self.baseline_decay.map_or(d.baseline_decay, |v| v as f32),
            entropy_bonus: self.entropy_bonus.map_or(d.entropy_bonus, |v| v as f32),
        }
    }
}

/// Options of `decideBatch`, documented in the TS schema `src/policy/options.ts`.
#[napi(object)]
pub struct NativeDecideOptions {
    pub temperature: Option<f64>,
}

#[napi(object)]
pub struct BatchDecision {
    pub actions: Uint32Array,
    /// Row-major, `actions.length * policy.actions`.
    pub probs: Float32Array,
}

#[napi(object)]
pub struct PolicyUpdateStats {
    pub transitions: u32,
    pub mean_reward: f64,
    pub baseline: f64,
    pub updates: f64,
}

/// Greedy without a temperature, sampled with one.
fn choice(temperature: Option<f64>) -> Choice {
    temperature.map_or(Choice::Greedy, |t| Choice::Sample { temperature: t as f32 })
}

type Shared = Arc<RwLock<myriad_core::Policy>>;

fn poisoned() -> myriad_core::Error {
    myriad_core::Error::Internal("policy lock poisoned".into())
}

/// The routing policy (MLP over a 50-dim state). Decisions take a shared lock; updates an
/// exclusive one.
#[napi]
pub struct NativePolicy {
    inner: Shared,
}

fn shared(policy: myriad_core::Policy) -> NativePolicy {
    NativePolicy { inner: Arc::new(RwLock::new(policy)) }
}

#[napi]
impl NativePolicy {
    /// A policy initialised deterministically from `seed`: untrained until `update` runs.
    #[napi(factory, catch_unwind)]
    pub fn create(options: Option<NativePolicyOptions>) -> Result<Self> {
        guarded(|| Ok(shared(myriad_core::Policy::new(&options.unwrap_or_default().into_core())?)))
    }

    #[napi(ts_return_type = "Promise<NativePolicy>")]
    pub fn load_onnx(path: String, options: Option<NativePolicyOptions>) -> AsyncTask<Job<NativePolicy>> {
        Job::spawn(move || Ok(shared(myriad_core::Policy::load_onnx(&PathBuf::from(path), &options.unwrap_or_default().into_core())?)))
    }

    #[napi(ts_return_type = "Promise<NativePolicy>")]
    pub fn load_safetensors(path: String, options: Option<NativePolicyOptions>) -> AsyncTask<Job<NativePolicy>> {
        Job::spawn(move || {
            Ok(shared(myriad_core::Policy::load_safetensors(&PathBuf::from(path), &options.unwrap_or_default().into_core())?))
        })
    }

    /// A policy's whole learning state written by `saveState` (weights, optimiser, baseline,
    /// sampling stream): for resuming a checkpoint.
    #[napi(ts_return_type = "Promise<NativePolicy>")]
    pub fn load_state(path: String) -> AsyncTask<Job<NativePolicy>> {
        Job::spawn(move || Ok(shared(myriad_core::Policy::load_state(&PathBuf::from(path))?)))
    }

    /// One decision written into `probs` (length = actions), returning the action: no object or
    /// array is created per call, which keeps a decision from JS within a few microseconds.
    #[napi(catch_unwind)]
    pub fn decide_into(&self, state: Float32ArraySlice, mut probs: Float32ArraySlice, temperature: Option<f64>) -> Result<u32> {
        guarded(|| {
            let d = self.inner.read().map_err(|_| poisoned())?.decide(&state, choice(temperature))?;
            // SAFETY: a synchronous call on the JS thread: nothing else touches the buffer meanwhile.
            let out = unsafe { probs.as_mut() };
            if out.len() != d.probs.len() {
                return Err(myriad_core::Error::Dimension { what: "probs".into(), expected: d.probs.len(), got: out.len() });
            }
            out.copy_from_slice(&d.probs);
            Ok(d.action as u32)
        })
    }

    /// Decisions for many states (`states.length` a multiple of the state size), off the JS thread.
    #[napi(ts_return_type = "Promise<BatchDecision>")]
    pub fn decide_batch(&self, states: Float32Array, options: Option<NativeDecideOptions>) -> AsyncTask<Job<BatchDecision>> {
        let (inner, states, choice) = (self.inner.clone(), states.to_vec(), choice(options.and_then(|o| o.temperature)));
        Job::spawn(move || {
            let (actions, probs) = inner.read().map_err(|_| poisoned())?.decide_batch(&states, choice)?;
            Ok(BatchDecision { actions: Uint32Array::new(actions), probs: Float32Array::new(probs) })
        })
    }

    /// One REINFORCE step over transitions given column-wise: `states` (n x stateDim),
    /// `actions` (n) and `rewards` (n).
    #[napi(ts_return_type = "Promise<PolicyUpdateStats>")]
    pub fn update(&self, states: Float32Array, actions: Uint32Array, rewards: Float32Array) -> Result<AsyncTask<Job<PolicyUpdateStats>>> {
        let n = actions.len();
        if rewards.len() != n {
            return Err(invalid(format!("{n} actions but {} rewards", rewards.len())));
        }
        let (inner, states, actions, rewards) = (self.inner.clone(), states.to_vec(), actions.to_vec(), rewards.to_vec());
        Ok(Job::spawn(move || {
            let mut policy = inner.write().map_err(|_| poisoned())?;
            let dim = policy.state_dim();
            if states.len() != n * dim {
                return Err(myriad_core::Error::Dimension {
                    what: format!("states for {n} transitions"),
                    expected: n * dim,
                    got: states.len(),
                });
            }
            let transitions: Vec<Transition> = states
                .chunks(dim)
                .zip(actions.iter().zip(&rewards))
                .map(|(s, (&a, &r))| Transition { state: s.to_vec(), action: a as usize, reward: r })
                .collect();
            let CoreStats { transitions, mean_reward, baseline, updates } = policy.update(&transitions)?;
            Ok(PolicyUpdateStats {
                transitions: transitions as u32,
                mean_reward: mean_reward as f64,
                baseline: baseline as f64,
                updates: updates as f64,
            })
        }))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn export_onnx(&self, path: String) -> AsyncTask<Job<()>> {
        let inner = self.inner.clone();
        Job::spawn(move || inner.read().map_err(|_| poisoned())?.export_onnx(&PathBuf::from(path)))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn save_safetensors(&self, path: String) -> AsyncTask<Job<()>> {
        let inner = self.inner.clone();
        Job::spawn(move || inner.read().map_err(|_| poisoned())?.save_safetensors(&PathBuf::from(path)))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn save_state(&self, path: String) -> AsyncTask<Job<()>> {
        let inner = self.inner.clone();
        Job::spawn(move || inner.read().map_err(|_| poisoned())?.save_state(&PathBuf::from(path)))
    }

    #[napi(getter, catch_unwind)]
    pub fn state_dim(&self) -> Result<u32> {
        guarded(|| Ok(self.inner.read().map_err(|_| poisoned())?.state_dim() as u32))
    }

    #[napi(getter, catch_unwind)]
    pub fn actions(&self) -> Result<u32> {
        guarded(|| Ok(self.inner.read().map_err(|_| poisoned())?.actions() as u32))
    }
}
