//! Times the exact top-5 scan alone (no N-API): `cargo run --release --example scan -- 1000000 f16 2`.
use myriad_core::{IndexOptions, SemanticIndex, Storage};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(1_000_000, |s| s.parse().unwrap());
    let storage = Storage::parse(args.get(2).map_or("f16", |s| s)).unwrap();
    let threads: usize = args.get(3).map_or(2, |s| s.parse().unwrap());
    let dim = 384;
    let mut idx =
        SemanticIndex::new(IndexOptions { dim, storage, threads, parallel_threshold: if threads > 1 { 1 } else { usize::MAX } }).unwrap();
    let mut state = 42u64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for start in (0..n).step_by(50_000) {
        let m = 50_000.min(n - start);
        let ids: Vec<String> = (start..start + m).map(|i| format!("id{i}")).collect();
        let v: Vec<f32> = (0..m * dim).map(|_| rnd()).collect();
        idx.upsert(&ids, &v).unwrap();
    }
    let q: Vec<f32> = (0..dim).map(|_| rnd()).collect();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(idx.top_k(&q, 5).unwrap());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "n={n} {storage:?} threads={threads} kernels={} p50={:.2} ms min={:.2} ms",
        myriad_core::index::kernels().name,
        times[10],
        times[0]
    );
}
