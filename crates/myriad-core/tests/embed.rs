//! The embedder on the real model against sentence-transformers' reference vectors
//! (`__test__/fixtures/golden.json`). Needs ONNX Runtime (from node_modules/onnxruntime-node, or
//! ORT_DYLIB_PATH) and the model in the Hugging Face cache (`npm run fetch-model`).

mod common;

use common::{load_runtime, repo_root};
use myriad_core::{Embedder, EmbedderOptions, ErrorCode, ModelSource, Precision, Provider};

fn golden() -> (Vec<String>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(repo_root().join("__test__/fixtures/golden.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let emb = item["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            (item["text"].as_str().unwrap().to_string(), emb)
        })
        .unzip()
}

fn embedder(precision: Precision) -> Embedder {
    load_runtime();
    let source = ModelSource { precision, offline: Some(true), ..Default::default() };
    Embedder::load(&EmbedderOptions { source, threads: 2, provider: Provider::Cpu }).expect("model in the HF cache (npm run fetch-model)")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn check_against_golden(precision: Precision, min_cosine: f64) {
    let model = embedder(precision);
    let (texts, reference) = golden();
    assert!(texts.len() >= 30);
    let out = model.embed(&texts).unwrap();
    assert_eq!(out.len(), texts.len() * 384);
    for (i, (text, want)) in texts.iter().zip(&reference).enumerate() {
        let c = cosine(&out[i * 384..(i + 1) * 384], want);
        assert!(c >= min_cosine, "{precision:?}: cosine {c} for {:?}", &text.chars().take(40).collect::<String>());
    }
}

#[test]
fn fp32_matches_sentence_transformers() {
    check_against_golden(Precision::Fp32, 0.9999);
}

#[test]
fn int8_stays_close_to_sentence_transformers() {
    check_against_golden(Precision::Int8, 0.98);
}

#[test]
fn missing_files_and_unknown_providers_are_errors() {
    load_runtime();
    let offline = |source: ModelSource| EmbedderOptions { source: ModelSource { offline: Some(true), ..source }, ..Default::default() };
    let err = |o: EmbedderOptions| Embedder::load(&o).err().expect("must fail").code();
    assert_eq!(err(offline(ModelSource { model: "nobody/absent".into(), ..Default::default() })), ErrorCode::ModelNotFound);
    assert_eq!(err(offline(ModelSource { file: Some("onnx/nope.onnx".into()), ..Default::default() })), ErrorCode::ModelNotFound);
    #[cfg(not(feature = "coreml"))]
    assert_eq!(err(EmbedderOptions { provider: Provider::CoreMl, ..offline(ModelSource::default()) }), ErrorCode::ProviderUnavailable);
}

#[test]
fn pooling_averages_unmasked_tokens_then_normalises() {
    // Two tokens of dim 2 plus one padded token that must not count.
    let hidden = [3.0, 0.0, 1.0, 4.0, 100.0, 100.0];
    let out = myriad_core::embed::mean_pool_normalize(&hidden, &[1, 1, 0], 1, 3, 2);
    // mean = (2, 2) -> normalised (0.7071, 0.7071)
    assert!((out[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6 && (out[1] - out[0]).abs() < 1e-6);
}
