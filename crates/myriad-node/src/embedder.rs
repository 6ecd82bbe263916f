use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use myriad_core::{EmbedderOptions, ModelSource, Precision, Provider};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{guarded, to_js, Job};

#[napi(object)]
#[derive(Default)]
pub struct EmbedderLoadOptions {
    /// Hub repo id (default `sentence-transformers/all-MiniLM-L6-v2`) or a local directory.
    pub model: Option<String>,
    pub revision: Option<String>,
    /// ONNX file inside the repo; overrides `precision`.
    pub file: Option<String>,
    /// `fp32` (default, `onnx/model.onnx`) or `int8` (`onnx/model_qint8_avx512_vnni.onnx`, or
    /// `onnx/model_quint8_avx2.onnx` on x86 CPUs without VNNI).
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

type ModelJob = Box<dyn FnOnce() + Send>;

/// How long the model's thread polls for the next call before it sleeps: a caller that awaits one
/// query and sends the next is back within this, and finds the thread awake (on a VM, waking a
/// thread whose vCPU went idle is slow). Measured in one process, 20 alternating rounds in either
/// order, `topK(text)` over 5,000 agents, p50: int8 on one thread 2.17 vs 2.27 ms and 2.66 vs
/// 2.72 ms without polling; fp32 on two threads 11-55 us faster. It costs at most this much CPU
/// after each call.
const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(250);

/// The next job, or None once the embedder is gone.
fn next_job(jobs: &Receiver<ModelJob>) -> Option<ModelJob> {
    let deadline = Instant::now() + POLL_BEFORE_SLEEP;
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < deadline => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

/// A loaded sentence-embedding model. Its calls queue on a thread of its own: they serialise on
/// the one ONNX Runtime session anyway, and on libuv's pool (four threads) each waiting call would
/// hold a thread, so file reads, DNS lookups and crypto queued behind them waited as well.
#[napi]
pub struct Embedder {
    pub(crate) inner: Arc<myriad_core::Embedder>,
    /// The model's thread; it ends when the last sender (this object) is dropped.
    queue: Sender<ModelJob>,
    /// Calls sent to the model's thread and not started there yet.
    waiting: Arc<AtomicUsize>,
    /// A second thread for what follows an embedding (the search of `topK(text)`) while other calls
    /// wait for the model: the model's thread goes on to the next embedding meanwhile, so
    /// concurrent searches overlap embeddings instead of queueing behind them.
    follow_ups: Sender<ModelJob>,
}

impl Embedder {
    fn start(model: myriad_core::Embedder) -> myriad_core::Result<Embedder> {
        let spawn = |name: &str, serve: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(serve)
                .map_err(|e| myriad_core::Error::Internal(format!("{name} thread: {e}")))
        };
        let (queue, jobs) = channel::<ModelJob>();
        spawn(
            "myriad-embed",
            Box::new(move || {
                while let Some(job) = next_job(&jobs) {
                    job();
                }
            }),
        )?;
        let (follow_ups, later) = channel::<ModelJob>();
        spawn("myriad-embed-next", Box::new(move || later.into_iter().for_each(|job| job())))?;
        Ok(Embedder { inner: Arc::new(model), queue, waiting: Arc::default(), follow_ups })
    }

    /// Runs `work` with the model on its thread; the returned promise settles with the result
    /// (a panic becomes an `ERR_INTERNAL` rejection, as in [`Job`]).
    pub(crate) fn run<'env, T: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        work: impl FnOnce(&myriad_core::Embedder) -> myriad_core::Result<T> + Send + 'static,
    ) -> napi::Result<Object<'env>> {
        self.submit(env, work, Ok, false)
    }

    /// As [`Embedder::run`], then `then` on the result: on the model's thread when no other call
    /// waits for the model, else on the follow-up thread.
    pub(crate) fn run_then<'env, T: Send + 'static, U: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        work: impl FnOnce(&myriad_core::Embedder) -> myriad_core::Result<T> + Send + 'static,
        then: impl FnOnce(T) -> myriad_core::Result<U> + Send + 'static,
    ) -> napi::Result<Object<'env>> {
        self.submit(env, work, then, true)
    }

    fn submit<'env, T: Send + 'static, U: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        work: impl FnOnce(&myriad_core::Embedder) -> myriad_core::Result<T> + Send + 'static,
        then: impl FnOnce(T) -> myriad_core::Result<U> + Send + 'static,
        may_hand_off: bool,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred()?;
        let (model, waiting, follow_ups) = (self.inner.clone(), self.waiting.clone(), self.follow_ups.clone());
        let job = move || {
            waiting.fetch_sub(1, Ordering::AcqRel);
            let value = match guarded(|| work(&model)) {
                Ok(value) => value,
                Err(error) => return deferred.reject(error),
            };
            let finish = move || match guarded(|| then(value)) {
                Ok(result) => deferred.resolve(move |_| Ok(result)),
                Err(error) => deferred.reject(error),
            };
            if may_hand_off && waiting.load(Ordering::Acquire) > 0 {
                // The follow-up thread lives as long as any sender: the send cannot fail while
                // this job holds one, but if it did, the work still gets done here.
                if let Err(unsent) = follow_ups.send(Box::new(finish)) {
                    (unsent.0)();
                }
            } else {
                finish();
            }
        };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.queue.send(Box::new(job)).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            to_js(myriad_core::Error::Internal("the embedding thread has stopped".into()))
        })?;
        Ok(promise)
    }
}

#[napi]
impl Embedder {
    /// Resolves the model files and opens an ONNX Runtime session, off the JS thread.
    #[napi(ts_return_type = "Promise<Embedder>")]
    pub fn load(options: Option<EmbedderLoadOptions>) -> AsyncTask<Job<Embedder>> {
        Job::spawn(move || Embedder::start(myriad_core::Embedder::load(&options.unwrap_or_default().into_core()?)?))
    }

    /// Embeds `texts` into a `texts.length * dim` Float32Array of L2-normalised rows.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn embed<'env>(&self, env: &'env Env, texts: Vec<String>) -> napi::Result<Object<'env>> {
        self.run(env, move |model| Ok(Float32Array::new(model.embed(&texts)?)))
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
