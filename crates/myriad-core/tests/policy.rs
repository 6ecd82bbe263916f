//! The routing policy: decisions, online learning in a synthetic routing world, and equality with
//! ONNX Runtime on the exported ONNX file.

mod common;

use myriad_core::policy::mlp::SplitMix;
use myriad_core::policy::STATE_DIM;
use myriad_core::{Choice, ErrorCode, Policy, PolicyOptions, Transition};

fn policy() -> Policy {
    Policy::new(&PolicyOptions::default()).unwrap()
}

fn random_states(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix(seed);
    (0..n * STATE_DIM).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect()
}

#[test]
fn decisions_are_distributions_and_batches_match_single_calls() {
    let p = policy();
    let states = random_states(300, 1);
    let (actions, probs) = p.decide_batch(&states, Choice::Greedy).unwrap();
    assert_eq!((actions.len(), probs.len()), (300, 1500));
    for (i, s) in states.chunks(STATE_DIM).enumerate() {
        let d = p.decide(s, Choice::Greedy).unwrap();
        assert_eq!(d.action as u32, actions[i]);
        assert!((d.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        for (a, b) in d.probs.iter().zip(&probs[i * 5..(i + 1) * 5]) {
            assert!((a - b).abs() < 1e-6);
        }
        let best = d.probs.iter().cloned().fold(0.0, f32::max);
        assert_eq!(d.probs[d.action], best, "greedy takes the most probable action");
    }
    // The same seed makes the same (untrained) policy.
    assert_eq!(policy().decide(&states[..STATE_DIM], Choice::Greedy).unwrap(), p.decide(&states[..STATE_DIM], Choice::Greedy).unwrap());
}

#[test]
fn sampling_follows_temperature() {
    let p = policy();
    let s = random_states(1, 2);
    let count = |t: f32| {
        (0..4000)
            .filter(|_| p.decide(&s, Choice::Sample { temperature: t }).unwrap().action == p.decide(&s, Choice::Greedy).unwrap().action)
            .count()
    };
    let (cold, hot) = (count(0.05), count(50.0));
    assert!(cold > 3900, "near-greedy at low temperature: {cold}");
    assert!(hot < 1400, "near-uniform at high temperature: {hot}");
}

#[test]
fn bad_input_is_rejected() {
    let mut p = policy();
    let code = |r: Result<(), myriad_core::Error>| r.unwrap_err().code();
    assert_eq!(code(p.decide(&[0.0; 49], Choice::Greedy).map(|_| ())), ErrorCode::Dimension);
    let mut nan = vec![0.0; STATE_DIM];
    nan[3] = f32::NAN;
    assert_eq!(code(p.decide(&nan, Choice::Greedy).map(|_| ())), ErrorCode::NotFinite);
    assert_eq!(code(p.decide(&[0.0; STATE_DIM], Choice::Sample { temperature: 0.0 }).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(code(p.decide_batch(&[0.0; 75], Choice::Greedy).map(|_| ())), ErrorCode::Dimension);
    assert_eq!(code(p.update(&[Transition { state: vec![0.0; STATE_DIM], action: 5, reward: 1.0 }]).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(code(p.update(&[]).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(code(Policy::new(&PolicyOptions { sizes: vec![50], ..Default::default() }).map(|_| ())), ErrorCode::InvalidArg);
}

/// A routing world: 5 candidates per request drawn from 20 agents whose success rates differ;
/// the state carries each candidate's (noisy) trust next to uninformative features.
struct World {
    success: Vec<f64>,
    rng: SplitMix,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        let success = (0..20).map(|_| 0.1 + 0.8 * rng.uniform()).collect();
        World { success, rng }
    }

    fn episode(&mut self) -> (Vec<f32>, [usize; 5]) {
        let mut picks = [0usize; 5];
        for i in 0..5 {
            loop {
                let a = (self.rng.uniform() * 20.0) as usize;
                if !picks[..i].contains(&a) {
                    picks[i] = a;
                    break;
                }
            }
        }
        let mut s: Vec<f32> = (0..STATE_DIM).map(|_| self.rng.uniform() as f32).collect();
        for (slot, &agent) in picks.iter().enumerate() {
            // Candidate block k occupies 8 + 8k .. 16 + 8k; feature 1 is trust.
            s[8 + 8 * slot + 1] = (self.success[agent] + 0.05 * self.rng.normal()).clamp(0.0, 1.0) as f32;
        }
        (s, picks)
    }

    fn reward(&mut self, agent: usize) -> f32 {
        (self.rng.uniform() < self.success[agent]) as u8 as f32
    }
}

#[test]
fn online_learning_beats_random_routing() {
    const UPDATES: usize = 500;
    let mut world = World::new(7);
    let mut p = policy();
    let evaluate = |p: &Policy, world: &mut World, random: bool| {
        let mut wins = 0.0;
        let mut rng = SplitMix(99);
        for _ in 0..3000 {
            let (s, picks) = world.episode();
            let slot = if random { (rng.uniform() * 5.0) as usize } else { p.decide(&s, Choice::Greedy).unwrap().action };
            wins += world.reward(picks[slot]);
        }
        wins / 3000.0
    };
    let random_rate = evaluate(&p, &mut world, true);
    let untrained = evaluate(&p, &mut world, false);
    for _ in 0..UPDATES {
        let batch: Vec<Transition> = (0..64)
            .map(|_| {
                let (state, picks) = world.episode();
                let action = p.decide(&state, Choice::Sample { temperature: 1.0 }).unwrap().action;
                let reward = world.reward(picks[action]);
                Transition { state, action, reward }
            })
            .collect();
        p.update(&batch).unwrap();
    }
    let learned = evaluate(&p, &mut world, false);
    println!("success: random {random_rate:.3}, untrained {untrained:.3}, after {UPDATES} updates {learned:.3}");
    // The best possible here (always the most reliable of five) is about 0.75-0.8.
    assert!(learned > random_rate + 0.12, "random {random_rate:.3}, learned {learned:.3}");
}

#[test]
fn onnx_round_trip_and_onnx_runtime_agree_with_rust_inference() {
    common::load_runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut p = policy();
    // Train a little so the weights are not the seeded ones.
    let states = random_states(64, 5);
    let batch: Vec<Transition> = states
        .chunks(STATE_DIM)
        .enumerate()
        .map(|(i, s)| Transition { state: s.to_vec(), action: i % 5, reward: (i % 3) as f32 })
        .collect();
    p.update(&batch).unwrap();

    let path = dir.path().join("policy.onnx");
    p.export_onnx(&path).unwrap();
    let back = Policy::load_onnx(&path, &PolicyOptions::default()).unwrap();
    assert_eq!(back.mlp(), p.mlp(), "ONNX import restores the exact weights");

    let st = dir.path().join("policy.safetensors");
    p.save_safetensors(&st).unwrap();
    assert_eq!(Policy::load_safetensors(&st, &PolicyOptions::default()).unwrap().mlp(), p.mlp());

    let mut session = ort::session::Session::builder().unwrap().commit_from_file(&path).unwrap();
    let input = ort::value::Tensor::from_array(([64usize, STATE_DIM], states.clone())).unwrap();
    let outputs = session.run(ort::inputs!["state" => input]).unwrap();
    let (shape, logits) = outputs["logits"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(&shape[..], &[64, 5]);
    let mut worst = 0f32;
    for (i, s) in states.chunks(STATE_DIM).enumerate() {
        for (a, b) in p.logits(s).unwrap().iter().zip(&logits[i * 5..(i + 1) * 5]) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-5, "max |rust - ort| = {worst}");
}
