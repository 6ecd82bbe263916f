use std::path::PathBuf;
use std::sync::Arc;

use myriad_core::{EmbedderOptions, ModelSource, Precision, Provider};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{guarded, Job};

#[napi(object)]
#[derive(Default)]
pub struct EmbedderLoadOptions {
    /// Hub repo id (default `sentence-transformers/all-MiniLM-L6-v2`) or a local directory.
    pub model: Option<String>,
    pub revision: Option<String>,
    /// ONNX file inside the repo; overrides `precision`.
    pub file: Option<String>,
    /// `fp32` (default, `onnx/model.onnx`) or `int8` (`onnx/model_qint8_avx512_vnni.onnx`).
    pub precision: Option<String>,
    /// Hugging Face hub cache directory (default `$HF_HOME/hub`).
    pub cache_dir: Option<String>,
    /// Never touch the network (default: `HF_HUB_OFFLINE`).
    pub offline: Option<bool>,
    /// ONNX Runtime intra-op threads (default: one per core).
    pub threads: Option<u32>,
    /// `cpu` (default), `coreml` or `cuda`.
    pub provider: Option<String>,
}

impl EmbedderLoadOptions {
    fn into_core(self) -> myriad_core::Result<EmbedderOptions> {
        let defaults = ModelSource::default();
        let source = ModelSource {
            model: self.model.unwrap_or(defaults.model),
            revision: self.revision,
            file: self.file,
            precision: self.precision.as_deref().map(Precision::parse).transpose()?.unwrap_or(Precision::Fp32),
            cache_dir: self.cache_dir.map(PathBuf::from),
            offline: self.offline,
        };
        Ok(EmbedderOptions {
            source,
            threads: self.threads.unwrap_or(0) as usize,
            provider: self.provider.as_deref().map(Provider::parse).transpose()?.unwrap_or(Provider::Cpu),
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

/// A loaded sentence-embedding model. Thread-safe; calls queue on one ONNX Runtime session.
#[napi]
pub struct Embedder {
    pub(crate) inner: Arc<myriad_core::Embedder>,
}

#[napi]
impl Embedder {
    /// Resolves the model files and opens an ONNX Runtime session, off the JS thread.
    #[napi(ts_return_type = "Promise<Embedder>")]
    pub fn load(options: Option<EmbedderLoadOptions>) -> AsyncTask<Job<Embedder>> {
        Job::spawn(move || {
            let opts = options.unwrap_or_default().into_core()?;
            Ok(Embedder { inner: Arc::new(myriad_core::Embedder::load(&opts)?) })
        })
    }

    /// Embeds `texts` into a `texts.length * dim` Float32Array of L2-normalised rows.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn embed(&self, texts: Vec<String>) -> AsyncTask<Job<Float32Array>> {
        let inner = self.inner.clone();
        Job::spawn(move || Ok(Float32Array::new(inner.embed(&texts)?)))
    }

    /// The model's input tensors for `texts` (truncated at 256 tokens, padded to the longest).
    #[napi(catch_unwind)]
    pub fn tokenize(&self, texts: Vec<String>) -> napi::Result<Tokenized> {
        guarded(|| {
            let enc = self.inner.tokenize(&texts)?;
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
        self.inner.dim() as u32
    }

    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        self.inner.threads() as u32
    }

    #[napi(getter)]
    pub fn provider(&self) -> String {
        self.inner.provider().name().to_string()
    }

    /// The ONNX file in use (resolved from the hub cache or the local directory).
    #[napi(getter)]
    pub fn model_path(&self) -> String {
        self.inner.files().onnx.display().to_string()
    }

    #[napi(getter)]
    pub fn max_seq_length(&self) -> u32 {
        self.inner.files().max_seq_length as u32
    }
}
