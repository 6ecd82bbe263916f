//! SemanticIndex against a plain f64 brute-force reference, plus its error paths and persistence.

use myriad_core::{Error, ErrorCode, Hit, IndexOptions, SemanticIndex, Storage};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random_rows(rng: &mut StdRng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// Cosine by definition, in f64, over the raw (unnormalised) vectors; best first.
fn reference(rows: &[f32], ids: &[String], query: &[f32], k: usize) -> Vec<(String, f64)> {
    let dim = query.len();
    let qn = query.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    let mut all: Vec<(String, f64)> = rows
        .chunks_exact(dim)
        .zip(ids)
        .map(|(row, id)| {
            let dot: f64 = row.iter().zip(query).map(|(&a, &b)| a as f64 * b as f64).sum();
            let rn = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            (id.clone(), dot / (rn * qn))
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all
}

fn index(dim: usize, storage: Storage, threads: usize, parallel_threshold: usize) -> SemanticIndex {
    SemanticIndex::new(IndexOptions { dim, storage, threads, parallel_threshold }).unwrap()
}

#[test]
fn exact_top_k_equals_brute_force_serial_and_parallel() {
    let mut rng = StdRng::seed_from_u64(42);
    let (n, dim, k) = (3000, 384, 10);
    let rows = random_rows(&mut rng, n, dim);
    let names = ids(n, "agent");
    let queries = random_rows(&mut rng, 40, dim);
    // threshold 1 forces the multi-threaded path; usize::MAX keeps it on one thread.
    for (threads, threshold) in [(1, usize::MAX), (2, 1), (3, 100)] {
        let mut idx = index(dim, Storage::F32, threads, threshold);
        idx.upsert(&names, &rows).unwrap();
        let got = idx.top_k_batch(&queries, k).unwrap();
        assert_eq!(got.len(), 40);
        for (q, hits) in queries.chunks_exact(dim).zip(&got) {
            let want = reference(&rows, &names, q, k);
            let got_ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
            let want_ids: Vec<&str> = want.iter().map(|w| w.0.as_str()).collect();
            assert_eq!(got_ids, want_ids, "threads={threads}");
            for (h, w) in hits.iter().zip(&want) {
                assert!((h.score as f64 - w.1).abs() < 1e-5, "{} vs {}", h.score, w.1);
            }
        }
    }
}

#[test]
fn single_queries_through_the_int8_sketch_equal_the_full_f32_scan() {
    // Clusters of near-duplicates (differences far below an int8 step) make the sketch's bounds
    // overlap, so many rows must be scored again in f32; random rows leave few. Batches of more
    // than four queries take the plain scan: a single query must get exactly what it gets.
    let mut rng = StdRng::seed_from_u64(7);
    let (dim, k, clusters) = (384, 5, 20);
    let centres = random_rows(&mut rng, clusters, dim);
    let mut rows = Vec::new();
    // 9,000 rows: enough for the threaded scan to split the sketch into chunks (4,096 rows at least).
    for i in 0..6000 {
        rows.extend(centres[(i % clusters) * dim..][..dim].iter().map(|&v| v + rng.random_range(-1e-3f32..1e-3)));
    }
    rows.extend(random_rows(&mut rng, 3000, dim));
    let names = ids(9000, "near");
    let mut queries: Vec<f32> = centres[..10 * dim].iter().map(|&v| v + rng.random_range(-1e-2f32..1e-2)).collect();
    queries.extend(random_rows(&mut rng, 6, dim));
    for (storage, threads, threshold) in [(Storage::F32, 1, usize::MAX), (Storage::F32, 2, 1), (Storage::F16, 2, 1)] {
        let mut idx = index(dim, storage, threads, threshold);
        idx.upsert(&names, &rows).unwrap();
        let full_scan = idx.top_k_batch(&queries, k).unwrap();
        for (q, want) in queries.chunks_exact(dim).zip(&full_scan) {
            assert_eq!(&idx.top_k(q, k).unwrap(), want, "{storage:?} threads={threads}");
            assert_eq!(&idx.top_k_batch(&[q, q].concat(), k).unwrap()[1], want, "two queries, {storage:?} threads={threads}");
            if storage == Storage::F32 {
                for (h, r) in want.iter().zip(reference(&rows, &names, q, k)) {
                    assert!((h.score as f64 - r.1).abs() < 1e-5, "{} vs {}", h.score, r.1);
                }
            }
        }
    }
}

#[test]
fn f16_storage_scores_stay_within_2e_3_and_pick_near_best_rows() {
    let mut rng = StdRng::seed_from_u64(7);
    let (n, dim, k) = (2000, 384, 5);
    let rows = random_rows(&mut rng, n, dim);
    let names = ids(n, "a");
    let mut idx = index(dim, Storage::F16, 2, 1);
    idx.upsert(&names, &rows).unwrap();
    for q in random_rows(&mut rng, 10, dim).chunks_exact(dim) {
        let all = reference(&rows, &names, q, n);
        let kth_best = all[k - 1].1;
        let exact: std::collections::HashMap<&str, f64> = all.iter().map(|(id, s)| (id.as_str(), *s)).collect();
        for h in idx.top_k(q, k).unwrap() {
            let truth = exact[h.id.as_str()];
            assert!((h.score as f64 - truth).abs() < 2e-3, "score {} vs {truth}", h.score);
            assert!(truth >= kth_best - 4e-3, "{} is far from the true top {k}", h.id);
        }
    }
}

#[test]
fn upsert_replaces_and_remove_keeps_the_rest_searchable() {
    let mut idx = index(3, Storage::F32, 1, usize::MAX);
    let names = ids(4, "x");
    let s = idx.upsert(&names, &[1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 0.]).unwrap();
    assert_eq!((s.inserted, s.updated), (4, 0));
    // Replace x-00001 and add x-00004 in one batch.
    let s = idx.upsert(&["x-00001".into(), "x-00004".into()], &[0., 0., -1., 0., 2., 0.]).unwrap();
    assert_eq!((s.inserted, s.updated), (1, 1));
    assert_eq!(idx.len(), 5);
    assert_eq!(idx.top_k(&[0., 0., -1.], 1).unwrap()[0].id, "x-00001");

    assert_eq!(idx.remove(&["x-00000".into(), "x-00002".into()]).unwrap(), 2);
    assert_eq!(idx.len(), 3);
    assert!(!idx.contains("x-00000"));
    let hits = idx.top_k(&[0., 1., 0.], 3).unwrap();
    let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(got, vec!["x-00004", "x-00003", "x-00001"]);
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    // The moved row still holds its own vector.
    let v = idx.get("x-00004").unwrap();
    assert!((v[1] - 1.0).abs() < 1e-6 && v[0].abs() < 1e-6);
}

#[test]
fn repeated_id_in_one_batch_keeps_the_last_vector() {
    let mut idx = index(2, Storage::F32, 1, usize::MAX);
    idx.upsert(&["a".into(), "a".into()], &[1., 0., 0., 1.]).unwrap();
    assert_eq!(idx.len(), 1);
    assert_eq!(idx.top_k(&[0., 1.], 1).unwrap(), vec![Hit { id: "a".into(), score: 1.0 }]);
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let mut idx = index(3, Storage::F32, 1, usize::MAX);
    assert!(matches!(idx.top_k(&[1., 0., 0.], 1), Err(Error::EmptyIndex)));
    idx.upsert(&["a".into()], &[1., 2., 3.]).unwrap();

    let code = |r: Result<_, Error>| r.map(|_: ()| ()).unwrap_err().code();
    assert_eq!(code(idx.upsert(&["b".into()], &[1., 2.]).map(|_| ())), ErrorCode::Dimension);
    assert_eq!(code(idx.upsert(&["b".into(), "c".into()], &[1., 2., 3., f32::NAN, 0., 0.]).map(|_| ())), ErrorCode::NotFinite);
    assert_eq!(code(idx.upsert(&["b".into()], &[0., 0., 0.]).map(|_| ())), ErrorCode::ZeroVector);
    assert_eq!(code(idx.upsert(&["".into()], &[1., 0., 0.]).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(code(idx.upsert(&["x".repeat(2000)], &[1., 0., 0.]).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(idx.len(), 1, "a rejected batch must not insert its valid rows");
    assert!(!idx.contains("b"));

    assert_eq!(code(idx.top_k(&[1., 0.], 1).map(|_| ())), ErrorCode::Dimension);
    assert_eq!(code(idx.top_k(&[1., 0., f32::INFINITY], 1).map(|_| ())), ErrorCode::NotFinite);
    assert_eq!(code(idx.top_k(&[0., 0., 0.], 1).map(|_| ())), ErrorCode::ZeroVector);
    assert_eq!(code(idx.top_k(&[1., 0., 0.], 0).map(|_| ())), ErrorCode::InvalidArg);
    assert_eq!(code(idx.remove(&["a".into(), "ghost".into()]).map(|_| ())), ErrorCode::UnknownId);
    assert!(idx.contains("a"), "a failed remove must remove nothing");
    assert_eq!(code(idx.get("ghost").map(|_| ())), ErrorCode::UnknownId);
    // k larger than the index returns everything there is.
    assert_eq!(idx.top_k(&[1., 0., 0.], 50).unwrap().len(), 1);
}

#[test]
fn save_and_load_round_trip_both_storages() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let rows = random_rows(&mut rng, 500, 16);
    let names: Vec<String> = (0..500).map(|i| format!("550e8400-e29b-41d4-a716-{i:012}")).collect();
    let query = random_rows(&mut rng, 1, 16);
    for storage in [Storage::F32, Storage::F16] {
        let mut idx = index(16, storage, 1, usize::MAX);
        idx.upsert(&names, &rows).unwrap();
        idx.remove(&names[..10]).unwrap();
        let path = dir.path().join(format!("{}.idx", storage.name()));
        idx.save(&path).unwrap();
        let back = SemanticIndex::load(&path, IndexOptions::default()).unwrap();
        assert_eq!((back.len(), back.dim(), back.options().storage), (490, 16, storage));
        assert_eq!(back.top_k(&query, 7).unwrap(), idx.top_k(&query, 7).unwrap());
    }
}

#[test]
fn corrupt_or_foreign_files_are_rejected_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(4, Storage::F32, 1, usize::MAX);
    idx.upsert(&ids(3, "z"), &[1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.]).unwrap();
    let good = dir.path().join("good.idx");
    idx.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let load = |name: &str, content: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        SemanticIndex::load(&p, IndexOptions::default()).map(|_| ()).unwrap_err().code()
    };
    assert_eq!(load("truncated.idx", &bytes[..bytes.len() - 5]), ErrorCode::CorruptIndex);
    assert_eq!(load("magic.idx", &[b"NOTANIDX", &bytes[8..]].concat()), ErrorCode::CorruptIndex);
    assert_eq!(load("trailing.idx", &[&bytes[..], b"xx"].concat()), ErrorCode::CorruptIndex);
    let mut huge = bytes.clone();
    huge[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(load("huge.idx", &huge), ErrorCode::CorruptIndex);
    // A NaN among the vectors (the last value of the file), in either storage.
    let mut nan32 = bytes.clone();
    let end = nan32.len();
    nan32[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(load("nan32.idx", &nan32), ErrorCode::CorruptIndex);
    let mut half = index(4, Storage::F16, 1, usize::MAX);
    half.upsert(&ids(3, "h"), &[1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.]).unwrap();
    let half_path = dir.path().join("half.idx");
    half.save(&half_path).unwrap();
    let mut nan16 = std::fs::read(&half_path).unwrap();
    let end = nan16.len();
    nan16[end - 2..].copy_from_slice(&0x7E00u16.to_le_bytes());
    assert_eq!(load("nan16.idx", &nan16), ErrorCode::CorruptIndex);
    let missing = SemanticIndex::load(&dir.path().join("absent.idx"), IndexOptions::default());
    assert_eq!(missing.map(|_| ()).unwrap_err().code(), ErrorCode::Io);
}
