//! A policy's whole learning state in one safetensors file, for checkpoints: the weights, Adam's
//! moments and step, the reward baseline, the update count and the sampling stream's position.
//! Loaded back, the policy decides and learns exactly as the one saved would have
//! (`save_safetensors` keeps only the weights: a fresh optimiser and stream).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::mlp::{Adam, Dense, Mlp, SplitMix};
use super::{f32_bytes, from_f32_bytes, write_atomic, Policy};
use crate::{Error, Result};

const FORMAT: &str = "myriad-policy-state";
const VERSION: &str = "1";

impl Policy {
    /// Writes the learning state to `path` (atomically: a temporary file, then a rename).
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in self.mlp.layers.iter().enumerate() {
            let (mw, mb) = &self.adam.m[i];
            let (vw, vb) = &self.adam.v[i];
            for (name, shape, data) in [
                ("weight", vec![l.outputs, l.inputs], &l.weight),
                ("bias", vec![l.outputs], &l.bias),
                ("m.weight", vec![l.outputs, l.inputs], mw),
                ("m.bias", vec![l.outputs], mb),
                ("v.weight", vec![l.outputs, l.inputs], vw),
                ("v.bias", vec![l.outputs], vb),
            ] {
                tensors.push((format!("l{i}.{name}"), shape, f32_bytes(data)));
            }
        }
        let views = tensors
            .iter()
            .map(|(n, shape, data)| {
                Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| Error::Internal(e.to_string()))?))
            })
            .collect::<Result<Vec<_>>>()?;
        let rng = self.rng.lock().map(|r| r.0).unwrap_or_else(|poisoned| poisoned.into_inner().0);
        let meta: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("version", VERSION.to_string()),
            ("layers", self.mlp.layers.len().to_string()),
            ("adam_step", self.adam.step.to_string()),
            ("learning_rate", self.adam.lr.to_bits().to_string()),
            ("baseline", self.baseline.map(|b| b.to_bits().to_string()).unwrap_or_default()),
            ("baseline_decay", self.baseline_decay.to_bits().to_string()),
            ("entropy_bonus", self.entropy_bonus.to_bits().to_string()),
            ("updates", self.updates.to_string()),
            ("rng", rng.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(path, &bytes)
    }

    /// Reads a state written by [`Policy::save_state`]; anything else, or a damaged file, is
    /// `ERR_CHECKPOINT_CORRUPT` naming the file.
    pub fn load_state(path: &Path) -> Result<Policy> {
        let corrupt = |reason: String| Error::CorruptCheckpoint { path: path.into(), reason };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| meta.get(k).ok_or_else(|| corrupt(format!("no {k} in the metadata")));
        if field("format")? != FORMAT {
            return Err(corrupt(format!("not a policy state (format {:?})", meta.get("format"))));
        }
        if field("version")? != VERSION {
            return Err(corrupt(format!("policy state version {} (this Myriad reads {VERSION})", field("version")?)));
        }
        let number = |k: &str| field(k)?.parse::<u64>().map_err(|e| corrupt(format!("{k}: {e}")));
        let float = |k: &str| Ok::<f32, Error>(f32::from_bits(number(k)? as u32));
        let tensor = |name: String, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st.tensor(&name).map_err(|e| corrupt(format!("{name}: {e}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(corrupt(format!("{name}: expected f32 {shape:?}, found {:?} {:?}", t.dtype(), t.shape())));
            }
            Ok(from_f32_bytes(t.data()))
        };
        let count = number("layers")? as usize;
        let first = st.tensor("l0.weight").map_err(|e| corrupt(format!("l0.weight: {e}")))?.shape().to_vec();
        let (mut layers, mut m, mut v) = (Vec::new(), Vec::new(), Vec::new());
        let mut inputs = *first.get(1).ok_or_else(|| corrupt("l0.weight is not 2-dimensional".into()))?;
        for i in 0..count {
            let outputs = *st.tensor(&format!("l{i}.bias")).map_err(|e| corrupt(format!("l{i}.bias: {e}")))?.shape().first().unwrap_or(&0);
            let (w, b) = ([outputs, inputs], [outputs]);
            layers.push(Dense::new(inputs, outputs, tensor(format!("l{i}.weight"), &w)?, tensor(format!("l{i}.bias"), &b)?));
            m.push((tensor(format!("l{i}.m.weight"), &w)?, tensor(format!("l{i}.m.bias"), &b)?));
            v.push((tensor(format!("l{i}.v.weight"), &w)?, tensor(format!("l{i}.v.bias"), &b)?));
            inputs = outputs;
        }
        if layers.is_empty() {
            return Err(corrupt("no layers".into()));
        }
        let baseline = match field("baseline")?.as_str() {
            "" => None,
            bits => Some(f32::from_bits(bits.parse::<u32>().map_err(|e| corrupt(format!("baseline: {e}")))?)),
        };
        Ok(Policy {
            adam: Adam { lr: float("learning_rate")?, step: number("adam_step")? as i32, m, v },
            mlp: Mlp { layers },
            baseline,
            baseline_decay: float("baseline_decay")?,
            entropy_bonus: float("entropy_bonus")?,
            updates: number("updates")?,
            rng: Mutex::new(SplitMix(number("rng")?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Choice, PolicyOptions, Transition, STATE_DIM};

    fn states(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix(seed);
        (0..n * STATE_DIM).map(|_| rng.uniform() as f32).collect()
    }

    #[test]
    fn a_loaded_state_decides_and_learns_as_the_saved_one_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.state");
        let mut a = Policy::new(&PolicyOptions::default()).unwrap();
        let s = states(64, 1);
        let (actions, _) = a.decide_batch(&s, Choice::Sample { temperature: 1.0 }).unwrap();
        let transitions: Vec<_> = actions
            .iter()
            .enumerate()
            .map(|(i, &act)| Transition {
                state: s[i * STATE_DIM..(i + 1) * STATE_DIM].to_vec(),
                action: act as usize,
                reward: (i % 2) as f32,
            })
            .collect();
        a.update(&transitions).unwrap();
        a.save_state(&path).unwrap();
        let mut b = Policy::load_state(&path).unwrap();
        // The same sampled decisions, the same learning step, the same decisions after it.
        let next = states(64, 2);
        assert_eq!(
            a.decide_batch(&next, Choice::Sample { temperature: 1.0 }).unwrap(),
            b.decide_batch(&next, Choice::Sample { temperature: 1.0 }).unwrap()
        );
        let (sa, sb) = (a.update(&transitions).unwrap(), b.update(&transitions).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(a.logits(&next[..STATE_DIM]).unwrap(), b.logits(&next[..STATE_DIM]).unwrap());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_a_corrupt_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.state");
        Policy::new(&PolicyOptions::default()).unwrap().save_state(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = Policy::load_state(&path).err().unwrap();
        assert!(matches!(e, Error::CorruptCheckpoint { .. }), "{e}");
        Policy::new(&PolicyOptions::default()).unwrap().save_safetensors(&path).unwrap();
        let e = Policy::load_state(&path).err().unwrap();
        assert!(e.to_string().contains("no format in the metadata") || e.to_string().contains("not a policy state"), "{e}");
    }
}
