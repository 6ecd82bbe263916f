use std::path::PathBuf;

use myriad_core::{EmbedQueue, EmbedderOptions, ModelSource, Precision, Provider};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{guarded, napi_failed, Result};
use crate::settle::{Job, Settled};

/// Options of `NativeEmbedder.load`, documented in the TS schema `src/embedder/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativeEmbedderOptions {
    pub model: Option<String>,
    pub revision: Option<String>,
    pub file: Option<String>,
    pub precision: Option<String>,
    pub cache_dir: Option<String>,
    pub offline: Option<bool>,
    pub threads: Option<u32>,
    pub provider: Option<String>,
}

impl NativeEmbedderOptions {
    fn into_core(self) -> myriad_core::Result<EmbedderOptions> {
        let d = EmbedderOptions::default();
        let source = ModelSource {
            model: self.model.unwrap_or(d.source.model),
            revision: self.revision,
            file: self.file,
            precision: self.precision.as_deref().map(Precision::parse).transpose()?.unwrap_or(d.source.precision),
            cache_dir: self.cache_dir.map(PathBuf::from),
            offline: self.offline,
        };
        Ok(EmbedderOptions {
            source,
            threads: self.threads.map_or(d.threads, |t| t as usize),
            provider: self.provider.as_deref().map(Provider::parse).transpose()?.unwrap_or(d.provider),
        })
    }
}

#[napi(object)]
pub struct Tokenized {
    pub batch: u32,
    pub seq_len: u32,
    pub input_ids: BigInt64Array,
    pub attention_mask: BigInt64Array,
}

/// A loaded sentence-embedding model. Its calls queue on threads of its own
/// (`myriad_core::EmbedQueue`), not on libuv's pool.
#[napi]
pub struct NativeEmbedder {
    queue: EmbedQueue,
}

/// A promise and the callback that settles it, from any thread.
fn promise<T: ToNapiValue + Send + 'static>(env: &Env) -> Result<(impl FnOnce(myriad_core::Result<T>) + Send + 'static, Object<'_>)> {
    let (deferred, promise) = env.create_deferred().map_err(napi_failed)?;
    Ok((move |result: myriad_core::Result<T>| deferred.resolve(move |_| Ok(Settled(result))), promise))
}

impl NativeEmbedder {
    /// Runs `work` with the model on its thread; the returned promise settles with the result.
    pub(crate) fn run<'env, T: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        work: impl FnOnce(&myriad_core::Embedder) -> myriad_core::Result<T> + Send + 'static,
    ) -> Result<Object<'env>> {
        let (done, promise) = promise(env)?;
        self.queue.run(work, done);
        Ok(promise)
    }

    /// As [`NativeEmbedder::run`], then `then` on the result: on the model's thread when no other
    /// call waits for the model, else on the follow-up thread.
    pub(crate) fn run_then<'env, T: Send + 'static, U: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        work: impl FnOnce(&myriad_core::Embedder) -> myriad_core::Result<T> + Send + 'static,
        then: impl FnOnce(T) -> myriad_core::Result<U> + Send + 'static,
    ) -> Result<Object<'env>> {
        let (done, promise) = promise(env)?;
        self.queue.run_then(work, then, done);
        Ok(promise)
    }

    fn model(&self) -> &myriad_core::Embedder {
        self.queue.model()
    }
}

#[napi]
impl NativeEmbedder {
    /// Resolves the model files and opens an ONNX Runtime session, off the JS thread.
    #[napi(ts_return_type = "Promise<NativeEmbedder>")]
    pub fn load(options: Option<NativeEmbedderOptions>) -> AsyncTask<Job<NativeEmbedder>> {
        Job::spawn(move || {
            let model = myriad_core::Embedder::load(&options.unwrap_or_default().into_core()?)?;
            Ok(NativeEmbedder { queue: EmbedQueue::start(model)? })
        })
    }

    /// Embeds `texts` into a `texts.length * dim` Float32Array of L2-normalised rows.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn embed<'env>(&self, env: &'env Env, texts: Vec<String>) -> Result<Object<'env>> {
        self.run(env, move |model| Ok(Float32Array::new(model.embed(&texts)?)))
    }

    /// The model's input tensors for `texts` (truncated at 256 tokens, padded to the longest).
    #[napi(catch_unwind)]
    pub fn tokenize(&self, texts: Vec<String>) -> Result<Tokenized> {
        guarded(|| {
            let enc = self.model().tokenize(&texts)?;
            Ok(Tokenized {
                batch: enc.batch as u32,
                seq_len: enc.seq_len as u32,
                input_ids: BigInt64Array::new(enc.input_ids),
                attention_mask: BigInt64Array::new(enc.attention_mask),
            })
        })
    }

    #[napi(getter)]
    pub fn dim(&self) -> u32 {
        self.model().dim() as u32
    }

    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        self.model().threads() as u32
    }

    #[napi(getter)]
    pub fn provider(&self) -> String {
        self.model().provider().name().to_string()
    }

    /// The ONNX file in use (resolved from the hub cache or the local directory).
    #[napi(getter)]
    pub fn model_path(&self) -> String {
        self.model().files().onnx.display().to_string()
    }

    #[napi(getter)]
    pub fn max_seq_length(&self) -> u32 {
        self.model().files().max_seq_length as u32
    }
}
