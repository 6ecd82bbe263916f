//! Decision latency of the policy alone (no N-API): `cargo run --release --example policy_latency`.
use myriad_core::{Choice, Policy, PolicyOptions};
use std::time::Instant;

fn main() {
    let p = Policy::new(&PolicyOptions::default()).unwrap();
    let states: Vec<f32> = (0..1000 * 50).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut acc = 0usize;
        for i in 0..100_000 {
            acc += p.decide(&states[(i % 1000) * 50..(i % 1000 + 1) * 50], Choice::Greedy).unwrap().action;
        }
        let single = t.elapsed().as_secs_f64() / 100_000.0 * 1e6;
        let batch: Vec<f32> = states.iter().cycle().take(100_000 * 50).copied().collect();
        let t = Instant::now();
        let (a, _) = p.decide_batch(&batch, Choice::Greedy).unwrap();
        let per_s = a.len() as f64 / t.elapsed().as_secs_f64();
        println!("single {single:.2} us/decision, batched {per_s:.0}/s (checksum {acc})");
    }
}
