//! Times one-query embedding on the calling thread, and the model run alone on the same tokens:
//! `ORT_DYLIB_PATH=... cargo run --release --example embed_latency -- fp32 2`.
use myriad_core::{Embedder, EmbedderOptions, ModelSource, Precision};
use std::time::Instant;

fn p50(mut f: impl FnMut(usize)) -> f64 {
    let mut times: Vec<f64> = (0..300)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[150]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let precision = if args.get(1).map_or("fp32", |s| s) == "int8" { Precision::Int8 } else { Precision::Fp32 };
    let threads: usize = args.get(2).map_or(2, |s| s.parse().unwrap());
    let source = ModelSource { precision, offline: Some(true), ..Default::default() };
    let e = Embedder::load(&EmbedderOptions { source, threads, ..Default::default() }).unwrap();
    let texts = [
        "Who can help me reconcile quarterly tax filings for a small business?",
        "debug a memory leak in a Rust async service",
        "translate a legal contract into French",
    ];
    let encoded: Vec<_> = texts.iter().map(|t| e.tokenize(&[t]).unwrap()).collect();
    for _ in 0..3 {
        let embed = p50(|i| {
            std::hint::black_box(e.embed(&[texts[i % 3]]).unwrap());
        });
        let run = p50(|i| {
            std::hint::black_box(e.run(encoded[i % 3].clone()).unwrap());
        });
        println!("{precision:?} {threads}t: embed p50 {embed:.3} ms, model run alone p50 {run:.3} ms");
    }
}
