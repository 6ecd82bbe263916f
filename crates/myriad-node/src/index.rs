use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use myriad_core::{IndexOptions, Storage};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::embedder::NativeEmbedder;
use crate::error::{guarded, invalid, Result};
use crate::settle::Job;

/// Options of `NativeSemanticIndex.create` and `.load`, documented in the TS schema
/// `src/semantic-index/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativeIndexOptions {
    pub dim: Option<u32>,
    pub storage: Option<String>,
    pub threads: Option<u32>,
    pub parallel_threshold: Option<u32>,
}

impl NativeIndexOptions {
    fn into_core(self) -> myriad_core::Result<IndexOptions> {
        let d = IndexOptions::default();
        Ok(IndexOptions {
            dim: self.dim.map_or(d.dim, |v| v as usize),
            storage: self.storage.as_deref().map(Storage::parse).transpose()?.unwrap_or(d.storage),
            threads: self.threads.map_or(d.threads, |v| v as usize),
            parallel_threshold: self.parallel_threshold.map_or(d.parallel_threshold, |v| v as usize),
        })
    }
}

#[napi(object)]
pub struct Hit {
    pub id: String,
    pub score: f64,
}

#[napi(object)]
pub struct UpsertResult {
    pub inserted: u32,
    pub updated: u32,
}

type Shared = Arc<RwLock<myriad_core::SemanticIndex>>;

/// Exact cosine top-k over agent vectors. Mutations and searches run off the JS thread; the
/// index is shared behind a read-write lock, so searches run concurrently with each other.
#[napi]
pub struct NativeSemanticIndex {
    inner: Shared,
    /// Kept outside the lock so reading `size` never waits on a running scan.
    size: Arc<AtomicU32>,
}

fn read(inner: &Shared) -> myriad_core::Result<std::sync::RwLockReadGuard<'_, myriad_core::SemanticIndex>> {
    inner.read().map_err(|_| myriad_core::Error::Internal("index lock poisoned".into()))
}

fn write(inner: &Shared) -> myriad_core::Result<std::sync::RwLockWriteGuard<'_, myriad_core::SemanticIndex>> {
    inner.write().map_err(|_| myriad_core::Error::Internal("index lock poisoned".into()))
}

fn apply_upsert(inner: &Shared, size: &AtomicU32, ids: &[String], vectors: &[f32]) -> myriad_core::Result<UpsertResult> {
    let mut index = write(inner)?;
    let stats = index.upsert(ids, vectors)?;
    size.store(index.len() as u32, Ordering::Release);
    Ok(UpsertResult { inserted: stats.inserted as u32, updated: stats.updated as u32 })
}

/// Query-by-vector pairs a search may compare on the JS thread: 1,024 x 384 floats take ~20 us,
/// under half the trip to a worker thread.
const INLINE_SCAN_ROWS: usize = 1024;

fn to_hits(rows: Vec<Vec<myriad_core::Hit>>) -> Vec<Vec<Hit>> {
    rows.into_iter().map(|row| row.into_iter().map(|h| Hit { id: h.id, score: h.score as f64 }).collect()).collect()
}

/// `k` arrives as a JS number, so 1.5 or NaN must be refused here (an i64 argument would truncate
/// 1.5 to 1 without a word).
fn check_k(k: f64) -> Result<usize> {
    if !(k.fract() == 0.0 && (1.0..=u32::MAX as f64).contains(&k)) {
        return Err(invalid(format!("k must be a positive integer, got {k}")));
    }
    Ok(k as usize)
}

#[napi]
impl NativeSemanticIndex {
    /// An empty index.
    #[napi(factory, catch_unwind)]
    pub fn create(options: Option<NativeIndexOptions>) -> Result<Self> {
        let index = guarded(|| myriad_core::SemanticIndex::new(options.unwrap_or_default().into_core()?))?;
        Ok(NativeSemanticIndex { inner: Arc::new(RwLock::new(index)), size: Arc::new(AtomicU32::new(0)) })
    }

    /// Inserts or replaces one vector per id (`vectors.length == ids.length * dim`).
    #[napi(ts_return_type = "Promise<UpsertResult>")]
    pub fn upsert(&self, ids: Vec<String>, vectors: Float32Array) -> AsyncTask<Job<UpsertResult>> {
        let data = vectors.to_vec();
        let (inner, size) = (self.inner.clone(), self.size.clone());
        Job::spawn(move || apply_upsert(&inner, &size, &ids, &data))
    }

    /// Embeds `texts` with `embedder` and upserts them, in one trip to the embedder's thread.
    #[napi(ts_return_type = "Promise<UpsertResult>")]
    pub fn upsert_texts<'env>(
        &self,
        env: &'env Env,
        embedder: &NativeEmbedder,
        ids: Vec<String>,
        texts: Vec<String>,
    ) -> Result<Object<'env>> {
        if ids.len() != texts.len() {
            return Err(invalid(format!("{} ids but {} texts", ids.len(), texts.len())));
        }
        let (inner, size) = (self.inner.clone(), self.size.clone());
        embedder.run(env, move |model| apply_upsert(&inner, &size, &ids, &model.embed(&texts)?))
    }

    /// Removes ids; rejects with ERR_UNKNOWN_ID (removing nothing) if any is absent.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn remove(&self, ids: Vec<String>) -> AsyncTask<Job<u32>> {
        let (inner, size) = (self.inner.clone(), self.size.clone());
        Job::spawn(move || {
            let mut index = write(&inner)?;
            let removed = index.remove(&ids)?;
            size.store(index.len() as u32, Ordering::Release);
            Ok(removed as u32)
        })
    }

    /// Top-k for each query (`queries.length` a multiple of dim), best first.
    #[napi(ts_return_type = "Promise<Hit[][]>")]
    pub fn search(&self, queries: Float32Array, k: f64) -> Result<AsyncTask<Job<Vec<Vec<Hit>>>>> {
        let k = check_k(k)?;
        let (inner, q) = (self.inner.clone(), queries.to_vec());
        Ok(Job::spawn(move || Ok(to_hits(read(&inner)?.top_k_batch(&q, k)?))))
    }

    /// Top-k for each query right here on the JS thread when the scan is small enough to cost less
    /// than the trip to a worker and back (some tens of microseconds). Null when it is larger, or
    /// when a writer holds the index (the JS thread never waits for one): the caller then calls
    /// `search`.
    #[napi(catch_unwind)]
    pub fn search_inline(&self, queries: Float32Array, k: f64) -> Result<Option<Vec<Vec<Hit>>>> {
        let k = check_k(k)?;
        guarded(|| {
            let Ok(index) = self.inner.try_read() else { return Ok(None) };
            let rows = (queries.len() / index.dim().max(1)).saturating_mul(index.len());
            if rows > INLINE_SCAN_ROWS {
                return Ok(None);
            }
            Ok(Some(to_hits(index.top_k_batch(&queries, k)?)))
        })
    }

    /// Embeds `texts` with `embedder` and searches, in one trip to the embedder's threads (the
    /// search moves to its follow-up thread while other calls wait for the model).
    #[napi(ts_return_type = "Promise<Hit[][]>")]
    pub fn search_texts<'env>(&self, env: &'env Env, embedder: &NativeEmbedder, texts: Vec<String>, k: f64) -> Result<Object<'env>> {
        let k = check_k(k)?;
        if texts.is_empty() {
            return Err(invalid("texts must not be empty"));
        }
        let inner = self.inner.clone();
        embedder.run_then(env, move |model| model.embed(&texts), move |q| Ok(to_hits(read(&inner)?.top_k_batch(&q, k)?)))
    }

    /// The stored (L2-normalised) vector of `id`; throws ERR_UNKNOWN_ID.
    #[napi(catch_unwind)]
    pub fn get(&self, id: String) -> Result<Float32Array> {
        guarded(|| Ok(Float32Array::new(read(&self.inner)?.get(&id)?)))
    }

    /// `has` on the JS thread (a hash lookup), null when a writer holds the index.
    #[napi(catch_unwind)]
    pub fn has_inline(&self, id: String) -> Option<bool> {
        self.inner.try_read().ok().map(|index| index.contains(&id))
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn has(&self, id: String) -> AsyncTask<Job<bool>> {
        let inner = self.inner.clone();
        Job::spawn(move || Ok(read(&inner)?.contains(&id)))
    }

    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.size.load(Ordering::Acquire)
    }

    #[napi(getter, catch_unwind)]
    pub fn dim(&self) -> Result<u32> {
        guarded(|| Ok(read(&self.inner)?.dim() as u32))
    }

    #[napi(getter, catch_unwind)]
    pub fn storage(&self) -> Result<String> {
        guarded(|| Ok(read(&self.inner)?.options().storage.name().to_string()))
    }

    /// Writes the index to `path` atomically (temporary file + rename).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save(&self, path: String) -> AsyncTask<Job<()>> {
        let inner = self.inner.clone();
        Job::spawn(move || read(&inner)?.save(&PathBuf::from(path)))
    }

    /// Reads an index written by `save`; `dim` and `storage` come from the file.
    #[napi(ts_return_type = "Promise<NativeSemanticIndex>")]
    pub fn load(path: String, options: Option<NativeIndexOptions>) -> AsyncTask<Job<NativeSemanticIndex>> {
        Job::spawn(move || {
            let index = myriad_core::SemanticIndex::load(&PathBuf::from(path), options.unwrap_or_default().into_core()?)?;
            let size = Arc::new(AtomicU32::new(index.len() as u32));
            Ok(NativeSemanticIndex { inner: Arc::new(RwLock::new(index)), size })
        })
    }
}
