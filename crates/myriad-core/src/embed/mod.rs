//! SBERT sentence embedding, exactly as sentence-transformers computes it for all-MiniLM-L6-v2:
//! WordPiece tokens truncated at the model's `max_seq_length` (256), padded per batch, the ONNX
//! transformer, mean pooling of the last hidden state over the attention mask, L2 normalisation.
//! [`EmbedQueue`] runs an embedder's calls on threads of its own.

mod queue;

use std::sync::Mutex;

use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::Tensor;
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};
use crate::model::{ModelFiles, ModelSource};
use crate::runtime;

pub use queue::EmbedQueue;

/// Most texts per ONNX run, so memory stays bounded whatever the caller hands us.
const CHUNK: usize = 64;
/// From this many texts, tokenisation runs on tokenizers' thread pool.
const PARALLEL_TOKENIZE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    CoreMl,
    Cuda,
}

impl Provider {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Provider::Cpu),
            "coreml" => Ok(Provider::CoreMl),
            "cuda" => Ok(Provider::Cuda),
            other => Err(Error::InvalidArg(format!("provider must be 'cpu', 'coreml' or 'cuda', got '{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::CoreMl => "coreml",
            Provider::Cuda => "cuda",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    pub source: ModelSource,
    /// ONNX Runtime intra-op threads; 0 = one per core.
    pub threads: usize,
    pub provider: Provider,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions { source: ModelSource::default(), threads: 0, provider: Provider::Cpu }
    }
}

/// Token ids of a batch, padded to its longest member: the exact tensors the model is fed.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub batch: usize,
    pub seq_len: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
}

pub struct Embedder {
    tokenizer: Tokenizer,
    session: Mutex<Session>,
    /// Whether the graph declares `token_type_ids` (most BERT exports do; we feed zeros).
    wants_token_type_ids: bool,
    dim: usize,
    files: ModelFiles,
    threads: usize,
    provider: Provider,
}

impl Embedder {
    pub fn load(opts: &EmbedderOptions) -> Result<Self> {
        runtime::ensure_loaded()?;
        let files = opts.source.resolve()?;
        let mut tokenizer =
            Tokenizer::from_file(&files.tokenizer).map_err(|e| Error::InvalidModel(format!("{}: {e}", files.tokenizer.display())))?;
        // The tokenizer.json on the hub truncates at 128 and pads to a fixed length; sentence-
        // transformers overrides both (truncate at max_seq_length, pad to the batch's longest).
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: files.max_seq_length, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);

        let threads = if opts.threads == 0 { available_cores() } else { opts.threads };
        let mut builder = Session::builder()?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort::Error::from)?
            .with_intra_threads(threads)
            .map_err(ort::Error::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::from)?
            // Spin inside a run (fast), but stop when it returns: otherwise the pool keeps spinning
            // on the cores the top-k scan needs next (a large search behind a spinning pool took
            // several times as long; turning spinning off entirely made every query slower).
            .with_config_entry("session.force_spinning_stop", "1")
            .map_err(ort::Error::from)?;
        builder = register_provider(builder, opts.provider)?;
        let session = builder.commit_from_file(&files.onnx).map_err(|e| Error::InvalidModel(format!("{}: {e}", files.onnx.display())))?;

        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !input_names.contains(&required) {
                return Err(Error::InvalidModel(format!(
                    "{} has inputs {input_names:?}; a BERT-style export with `{required}` is required",
                    files.onnx.display()
                )));
            }
        }
        let wants_token_type_ids = input_names.contains(&"token_type_ids");
        let mut embedder =
            Embedder { tokenizer, session: Mutex::new(session), wants_token_type_ids, dim: 0, files, threads, provider: opts.provider };
        // One tiny run tells the hidden size and warms the session up.
        embedder.dim = embedder.run(embedder.tokenize(&["dimension probe"])?)?.len();
        Ok(embedder)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// Tokenises `texts` the way [`Embedder::embed`] does, padded to the longest of them.
    pub fn tokenize<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Encoded> {
        let encodings = self.encode(texts)?;
        Ok(pad(&encodings.iter().collect::<Vec<_>>()))
    }

    /// Embeds `texts` into `texts.len() * dim` floats, row-major, each row L2-normalised.
    ///
    /// Texts are tokenised first, sorted by token count and cut into batches whose lengths are
    /// close (at most [`CHUNK`] texts, padding bounded by [`bucket_limit`]); rows go back in the
    /// caller's order. Less padding is less work, and it keeps int8 models accurate: their
    /// dynamic activation scales are per tensor, so a long run of pad tokens would coarsen them.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<f32>> {
        let encodings = self.encode(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let dim = self.dim;
        let mut out = vec![0f32; texts.len() * dim];
        let mut start = 0;
        while start < order.len() {
            let limit = bucket_limit(encodings[order[start]].len());
            let mut end = start + 1;
            while end < order.len() && end - start < CHUNK && encodings[order[end]].len() <= limit {
                end += 1;
            }
            let batch: Vec<&tokenizers::Encoding> = order[start..end].iter().map(|&i| &encodings[i]).collect();
            let rows = self.run(pad(&batch))?;
            for (k, &i) in order[start..end].iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&rows[k * dim..(k + 1) * dim]);
            }
            start = end;
        }
        Ok(out)
    }

    fn encode<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<tokenizers::Encoding>> {
        let err = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        if texts.len() < PARALLEL_TOKENIZE {
            // Waking tokenizers' rayon pool for a query or two costs more than it saves, and its
            // spinning threads then compete with ONNX Runtime for the cores.
            return texts.iter().map(|t| self.tokenizer.encode_fast(t.as_ref(), true).map_err(err)).collect();
        }
        let inputs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.tokenizer.encode_batch_fast(inputs, true).map_err(err)
    }

    /// Runs the model on an encoded batch and pools it: the step after tokenisation.
    pub fn run(&self, enc: Encoded) -> Result<Vec<f32>> {
        if enc.batch == 0 {
            return Ok(Vec::new());
        }
        let shape = [enc.batch, enc.seq_len];
        let ids = Tensor::from_array((shape, enc.input_ids))?;
        let mask = Tensor::from_array((shape, enc.attention_mask.clone()))?;
        let mut session = self.session.lock().map_err(|_| Error::Internal("session lock poisoned".into()))?;
        let outputs = if self.wants_token_type_ids {
            let types = Tensor::from_array((shape, vec![0i64; enc.batch * enc.seq_len]))?;
            session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask, "token_type_ids" => types])?
        } else {
            session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])?
        };
        let (out_shape, hidden) = outputs[0].try_extract_tensor::<f32>()?;
        if out_shape.len() != 3 || out_shape[0] as usize != enc.batch || out_shape[1] as usize != enc.seq_len {
            return Err(Error::InvalidModel(format!(
                "first output has shape {:?}; expected [batch, seq, hidden] token embeddings",
                &out_shape[..]
            )));
        }
        Ok(mean_pool_normalize(hidden, &enc.attention_mask, enc.batch, enc.seq_len, out_shape[2] as usize))
    }
}

/// The longest token count that may share a batch with a text of `shortest` tokens: padding
/// stays under a quarter of the batch (plus a few tokens, so short texts still batch together).
pub fn bucket_limit(shortest: usize) -> usize {
    shortest + (shortest / 4).max(4)
}

/// Pads encodings to the longest of them: the `[batch, seq]` tensors the model takes.
fn pad(encodings: &[&tokenizers::Encoding]) -> Encoded {
    let seq_len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
    let mut input_ids = vec![0i64; encodings.len() * seq_len];
    let mut attention_mask = vec![0i64; encodings.len() * seq_len];
    for (row, enc) in encodings.iter().enumerate() {
        let base = row * seq_len;
        for (j, (&id, &m)) in enc.get_ids().iter().zip(enc.get_attention_mask()).enumerate() {
            input_ids[base + j] = id as i64;
            attention_mask[base + j] = m as i64;
        }
    }
    Encoded { batch: encodings.len(), seq_len, input_ids, attention_mask }
}

/// sentence-transformers' pooling: average the token vectors where the mask is 1 (denominator
/// clamped at 1e-9), then divide by the L2 norm (clamped at 1e-12).
pub fn mean_pool_normalize(hidden: &[f32], mask: &[i64], batch: usize, seq: usize, dim: usize) -> Vec<f32> {
    let mut out = vec![0f32; batch * dim];
    for b in 0..batch {
        let row = &mut out[b * dim..(b + 1) * dim];
        let mut count = 0f32;
        for t in 0..seq {
            if mask[b * seq + t] == 0 {
                continue;
            }
            count += 1.0;
            let token = &hidden[(b * seq + t) * dim..(b * seq + t + 1) * dim];
            for (acc, &v) in row.iter_mut().zip(token) {
                *acc += v;
            }
        }
        let inv = 1.0 / count.max(1e-9);
        row.iter_mut().for_each(|v| *v *= inv);
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

fn register_provider(builder: ort::session::builder::SessionBuilder, provider: Provider) -> Result<ort::session::builder::SessionBuilder> {
    let unavailable = |reason: String| Error::ProviderUnavailable { provider: provider.name().into(), reason };
    match provider {
        // Named explicitly: with api-22, ort otherwise sets the auto-selection policy "max
        // efficiency", which prefers an NPU whenever the environment has one registered.
        Provider::Cpu => {
            builder.with_execution_providers([ort::ep::CPU::default().build().error_on_failure()]).map_err(|e| unavailable(e.to_string()))
        }
        #[cfg(feature = "coreml")]
        Provider::CoreMl => builder
            .with_execution_providers([ort::ep::CoreML::default().build().error_on_failure()])
            .map_err(|e| unavailable(e.to_string())),
        #[cfg(not(feature = "coreml"))]
        Provider::CoreMl => Err(unavailable("CoreML is compiled into the macOS builds only".into())),
        #[cfg(feature = "cuda")]
        Provider::Cuda => builder.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()]).map_err(|e| {
            unavailable(format!(
                "{e} (the CUDA provider libraries are not part of onnxruntime-node's npm package: \
                     point ORT_DYLIB_PATH at a CUDA build of ONNX Runtime)"
            ))
        }),
        #[cfg(not(feature = "cuda"))]
        Provider::Cuda => Err(unavailable("CUDA is compiled into the Linux and Windows x64 builds only".into())),
    }
}

pub(crate) fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
